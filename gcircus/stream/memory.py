"""Streams that keep output in memory or discard it: QueueStream and NullStream."""
import queue

from gcircus.stream.base import eof_chunk


class QueueStream(queue.Queue):
    """A :class:`queue.Queue` that receives every chunk mapping (as Circus's, which tests read from).

    At EOF (``flush_partial``) the EOF chunk of :mod:`gcircus.stream.base` is queued too, so a reader can tell that
    a pipe was drained.
    ``queue.Queue`` blocks the calling thread: inside a gevent hub that is not monkey-patched, read it with
    ``get_nowait()`` or ``get(timeout=...)`` from another thread, never with a blocking ``get()`` in a greenlet.
    """

    def __init__(self, **kw):
        super().__init__()

    def __call__(self, chunk):
        self.put(chunk)

    def flush_partial(self, pid, name):
        self.put(eof_chunk(pid, name))

    def open(self):
        pass

    def close(self):
        pass


class NullStream:
    """Discard all output (useful to drain a child's pipe without keeping anything)."""

    def __init__(self, **kw):
        pass

    def __call__(self, chunk):
        pass

    def open(self):
        pass

    def close(self):
        pass
