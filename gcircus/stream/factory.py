"""get_stream: turn a watcher's ``stdout_stream``/``stderr_stream`` mapping into a stream object.

Resolution order (Circus's): ``class`` (a built-in name, a ``circus.stream.X``/``gcircus.stream.X`` name, any other
importable ``module.attr``, or a class object), with every other key passed as a constructor keyword (strings from
INI are converted by the classes themselves); else ``stream``, a ready-made callable used as is; else ``filename``,
a :class:`FileStream`. The caller's mapping is never modified (Circus pops ``class`` out of it, so ``options``
stops reporting it).
"""
import importlib

from gcircus.aliases import import_dotted

# The built-in classes by name, with the module of gcircus.stream each lives in. A module is imported when a
# class of it is first asked for: the config loader checks stream names with this table, and a daemon whose
# watchers capture nothing (or only to files) never holds the other modules (and what they import) in memory.
_BUILTIN_MODULES = {
    'FileStream': 'file', 'WatchedFileStream': 'file', 'TimedRotatingFileStream': 'rotating',
    'StdoutStream': 'console', 'FancyStdoutStream': 'console', 'QueueStream': 'memory', 'NullStream': 'memory'}

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
        raise ValueError('unknown stream class %r (built-in classes: %s)' % (name, ', '.join(_BUILTIN_MODULES)))
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
    if name not in _BUILTIN_MODULES:   # INI users write 'filestream' too
        name = next((key for key in _BUILTIN_MODULES if key.lower() == name.lower()), None)
    return None if name is None else builtin_stream(name)


def builtin_stream(name):
    """The built-in stream class called name (exactly), its module imported on first use."""
    return getattr(importlib.import_module('gcircus.stream.' + _BUILTIN_MODULES[name]), name)


def __getattr__(name):
    """BUILTIN_STREAMS, {name: class} of every built-in class, is made (and its modules imported) when asked."""
    if name == 'BUILTIN_STREAMS':
        return {key: builtin_stream(key) for key in _BUILTIN_MODULES}
    raise AttributeError('module %r has no attribute %r' % (__name__, name))


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
        stream = _instantiate(builtin_stream('FileStream'), options)
    else:
        raise ValueError("a stream configuration needs 'class', 'stream' or 'filename'; got %s"
                         % (', '.join(repr(key) for key in conf) or 'nothing'))
    if backend == 'thread':
        from gcircus.stream.threaded import ThreadedStream
        return ThreadedStream(stream)
    return stream


def _instantiate(cls, options):
    try:
        return cls(**options)
    except TypeError as err:
        # A user class whose signature does not take these options: say which class, not just "unexpected kwarg".
        raise ValueError('cannot create stream %s with options %s: %s'
                         % (getattr(cls, '__name__', cls), sorted(options), err)) from err
