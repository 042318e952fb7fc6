"""Output streams: where a watcher's stdout/stderr chunks go (``gcircus.stream``, as ``circus.stream``).

Modules: ``base`` (the chunk contract, the EOF convention, UTF-8 decoding and line framing), ``file``
(FileStream, WatchedFileStream), ``rotating`` (TimedRotatingFileStream), ``console`` (StdoutStream,
FancyStdoutStream), ``memory`` (QueueStream, NullStream), ``threaded`` (ThreadedStream), ``factory`` (get_stream).
The pipe-reading pump lives in ``gcircus.stream.pump``.

The names below are imported from their modules when first used (``from gcircus.stream import FileStream``
works as ever): the daemon imports this package for its pump and log writer, and a watcher that captures
nothing should not hold every stream class (and the modules they import) in memory.
"""
import importlib

_HOMES = {
    'EOF_KEY': 'base', 'MAX_PARTIAL_LINE': 'base', 'eof_chunk': 'base', 'notify_eof': 'base',
    'FileStream': 'file', 'WatchedFileStream': 'file', 'TimedRotatingFileStream': 'rotating',
    'StdoutStream': 'console', 'FancyStdoutStream': 'console', 'QueueStream': 'memory', 'NullStream': 'memory',
    'ThreadedStream': 'threaded', 'get_stream': 'factory', 'resolve_stream_class': 'factory',
    'BUILTIN_STREAMS': 'factory',
}

__all__ = [
    'EOF_KEY', 'MAX_PARTIAL_LINE', 'eof_chunk', 'notify_eof',
    'FileStream', 'WatchedFileStream', 'TimedRotatingFileStream',
    'StdoutStream', 'FancyStdoutStream', 'QueueStream', 'NullStream',
    'ThreadedStream', 'get_stream', 'resolve_stream_class', 'BUILTIN_STREAMS',
]


def __getattr__(name):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError('module %r has no attribute %r' % (__name__, name))
    return getattr(importlib.import_module('gcircus.stream.' + home), name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
