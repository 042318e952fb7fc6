"""Output streams: where a watcher's stdout/stderr chunks go (``gcircus.stream``, as ``circus.stream``).

Modules: ``base`` (the chunk contract, the EOF convention, UTF-8 decoding and line framing), ``file``
(FileStream, WatchedFileStream), ``rotating`` (TimedRotatingFileStream), ``console`` (StdoutStream,
FancyStdoutStream), ``memory`` (QueueStream, NullStream), ``threaded`` (ThreadedStream), ``factory`` (get_stream).
The pipe-reading pump lives in ``gcircus.stream.pump``.
"""
from gcircus.stream.base import EOF_KEY, MAX_PARTIAL_LINE, eof_chunk, notify_eof
from gcircus.stream.console import FancyStdoutStream, StdoutStream
from gcircus.stream.factory import BUILTIN_STREAMS, get_stream, resolve_stream_class
from gcircus.stream.file import FileStream, WatchedFileStream
from gcircus.stream.memory import NullStream, QueueStream
from gcircus.stream.rotating import TimedRotatingFileStream
from gcircus.stream.threaded import ThreadedStream

__all__ = [
    'EOF_KEY', 'MAX_PARTIAL_LINE', 'eof_chunk', 'notify_eof',
    'FileStream', 'WatchedFileStream', 'TimedRotatingFileStream',
    'StdoutStream', 'FancyStdoutStream', 'QueueStream', 'NullStream',
    'ThreadedStream', 'get_stream', 'resolve_stream_class', 'BUILTIN_STREAMS',
]
