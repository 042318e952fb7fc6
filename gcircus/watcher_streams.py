"""A watcher's stdout/stderr streams: built from their config mappings, opened on
start and closed on stop. The stream classes themselves live in gcircus.stream."""


def _build(conf, backend):
    if not conf:
        return None
    from gcircus.stream import get_stream  # the stream package imports this module's users
    return get_stream(conf, backend)


class WatcherStreams:
    """Holds the two streams and the mappings they came from (reported by `options`)."""

    def __init__(self, stdout_conf=None, stderr_conf=None, backend="gevent"):
        self.backend = backend
        self.stdout_conf = dict(stdout_conf) if stdout_conf else None
        self.stderr_conf = dict(stderr_conf) if stderr_conf else None
        self.stdout = _build(self.stdout_conf, backend)
        self.stderr = _build(self.stderr_conf, backend)

    def _each(self):
        seen = set()
        for stream in (self.stdout, self.stderr):
            if stream is not None and id(stream) not in seen:
                seen.add(id(stream))
                yield stream

    def open(self):
        for stream in self._each():
            opener = getattr(stream, "open", None)
            if opener is not None:
                opener()

    def close(self):
        for stream in self._each():
            closer = getattr(stream, "close", None)
            if closer is not None:
                closer()

    def replace(self, name, conf):
        """Swap the stdout or stderr stream for one built from conf; the old one is closed."""
        new = _build(conf, self.backend)
        old = getattr(self, name)
        setattr(self, name, new)
        setattr(self, name + "_conf", dict(conf) if conf else None)
        if old is not None and old is not new and hasattr(old, "close"):
            old.close()
        return new
