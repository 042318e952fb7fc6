"""get_stream: turn a watcher's ``stdout_stream``/``stderr_stream`` mapping into a stream object.

Resolution order (Circus's): ``class`` (a built-in name, a ``circus.stream.X``/``gcircus.stream.X`` name, any other
importable ``module.attr``, or a class object), with every other key passed as a constructor keyword (strings from
INI are converted by the classes themselves); else ``stream``, a ready-made callable used as is; else ``filename``,
a :class:`FileStream`. The caller's mapping is never modified (Circus pops ``class`` out of it, so ``options``
stops reporting it).
"""

from gcircus.aliases import import_dotted
from gcircus.stream.console import FancyStdoutStream, StdoutStream
from gcircus.stream.file import FileStream, WatchedFileStream
from gcircus.stream.memory import NullStream, QueueStream
from gcircus.stream.rotating import TimedRotatingFileStream
from gcircus.stream.threaded import ThreadedStream

BUILTIN_STREAMS = {cls.__name__: cls for cls in (
    FileStream, WatchedFileStream, TimedRotatingFileStream, StdoutStream, FancyStdoutStream, QueueStream,
    NullStream)}

# Circus configs name its classes; they resolve to ours so an existing config runs unchanged.
_ALIAS_PACKAGES = ('circus.stream.', 'gcircus.stream.')

# Accepted for Circus compatibility (the polling delay of its long-gone thread redirector); means nothing here.
IGNORED_KEYS = ('refresh_time',)

BACKENDS = ('gevent', 'thread')


def resolve_stream_class(name):
    """The class named by a ``class`` value; ValueError (unknown built-in) or ImportError (failed import)."""
    if not isinstance(name, str):
        if callable(name):
            return name
        raise ValueError('stream class must be a name or a class, not %r' % (name,))
    name = name.strip()
    builtin = _builtin(name)
    if builtin is not None:
        return builtin
    if '.' not in name:
        raise ValueError('unknown stream class %r (built-in classes: %s)' % (name, ', '.join(BUILTIN_STREAMS)))
    if name.startswith('circus.stream.'):
        raise ValueError('unknown stream class %r: gcircus has no such Circus stream' % (name,))
    cls = import_dotted(name, 'stream class')
    if not callable(cls):
        raise ValueError('stream class %r is not callable' % (name,))
    return cls


def _builtin(name):
    for package in _ALIAS_PACKAGES:
        if name.startswith(package):
            name = name[len(package):]
            break
    if '.' in name:
        return None
    found = BUILTIN_STREAMS.get(name)
    if found is None:   # INI users write 'filestream' too
        found = next((cls for key, cls in BUILTIN_STREAMS.items() if key.lower() == name.lower()), None)
    return found


def get_stream(conf, backend='gevent'):
    """Build the stream described by ``conf`` (a mapping or None); None when there is nothing to build.

    With ``backend='thread'`` the stream is wrapped in a :class:`ThreadedStream` so its writes run in gevent's
    threadpool; with ``'gevent'`` (default) it runs on the hub as is.
    """
    if backend not in BACKENDS:
        raise ValueError('invalid stream backend %r: expected one of %s' % (backend, ', '.join(BACKENDS)))
    if not conf:
        return None
    options = {key: value for key, value in conf.items() if key not in IGNORED_KEYS}
    if 'class' in options:
        stream = _instantiate(resolve_stream_class(options.pop('class')), options)
    elif 'stream' in options:
        stream = options['stream']
        if not callable(stream):
            raise ValueError('stream %r is not callable' % (stream,))
    elif 'filename' in options:
        stream = _instantiate(FileStream, options)
    else:
        raise ValueError("a stream configuration needs 'class', 'stream' or 'filename'; got %s"
                         % (', '.join(repr(key) for key in conf) or 'nothing'))
    return ThreadedStream(stream) if backend == 'thread' else stream


def _instantiate(cls, options):
    try:
        return cls(**options)
    except TypeError as err:
        # A user class whose signature does not take these options: say which class, not just "unexpected kwarg".
        raise ValueError('cannot create stream %s with options %s: %s'
                         % (getattr(cls, '__name__', cls), sorted(options), err)) from err
