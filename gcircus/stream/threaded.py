"""ThreadedStream: runs a stream that may block (a user class doing network or slow disk I/O) off the hub.

Each call is a job on a gevent queue drained by a single worker greenlet, which hands the job to gevent's threadpool
and waits for it cooperatively. One worker per stream keeps the writes in order; the queue is bounded, so a stream
slower than its producer throttles the pump's greenlet (and through the pipe, the child) instead of buffering
without limit. The worker exists only while jobs are pending.
"""
import gevent
import gevent.event
import gevent.queue

from gcircus.stream.base import log


class ThreadedStream:
    """Wrap ``inner`` so its calls, ``open()`` and ``close()`` run in gevent's threadpool, one at a time, in order.

    :param inner: the stream to run.
    :param max_pending: chunks that may wait before ``__call__`` blocks its (green) caller.
    :param close_timeout: seconds ``close()`` waits for pending writes and the inner close to finish.

    Other attributes are read from ``inner``. An exception raised by ``inner`` is logged once per incident (until a
    call succeeds again), never re-raised.
    """

    #: Not forwarded to ``inner``: a splice would write on the hub thread, past the queue and out of order.
    splice_from = None

    def __init__(self, inner, max_pending=16, close_timeout=30.0):
        self.inner = inner
        self.close_timeout = close_timeout
        self.max_pending = max_pending
        self._jobs = None           # the queue, built by the worker's hub (see _submit)
        self._worker_running = False
        self._failing = False       # an incident is logged once, until a call succeeds again

    def __getattr__(self, name):
        if name == 'inner':         # not set yet (during unpickling/copy): don't recurse
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __call__(self, chunk):
        self._submit(self.inner, chunk)

    def flush_partial(self, pid, name):
        """Forward the EOF notice (after the writes queued before it) if the inner stream takes one."""
        if hasattr(self.inner, 'flush_partial'):
            self._submit(self.inner.flush_partial, pid, name)

    def open(self):
        """Queue the inner ``open()``; later writes run after it."""
        if hasattr(self.inner, 'open'):
            self._submit(self.inner.open)

    def close(self):
        """Wait (up to ``close_timeout``) until pending writes and the inner ``close()`` have run."""
        done = self._submit(getattr(self.inner, 'close', _nothing))
        if not done.wait(self.close_timeout):
            log.warning('%r: pending writes still running after %ss; close() continues in the background',
                        self.inner, self.close_timeout)

    def _submit(self, func, *args):
        done = gevent.event.Event()
        if not self._worker_running:
            # A queue belongs to the hub that creates it, and a stream built in one thread may write
            # in another's (a background arbiter): with no worker the queue is empty, so a fresh one
            # on this hub loses nothing.
            self._jobs = gevent.queue.Queue(self.max_pending)
        self._jobs.put((func, args, done))
        if not self._worker_running:
            self._worker_running = True
            gevent.spawn(self._pump_jobs).name = 'stream-thread[%s]' % type(self.inner).__name__
        return done

    def _pump_jobs(self):
        """Owned by this ThreadedStream; lives while jobs are queued and ends when the queue is empty."""
        pool = gevent.get_hub().threadpool
        try:
            while True:
                try:
                    func, args, done = self._jobs.get_nowait()
                except gevent.queue.Empty:
                    return
                try:
                    pool.apply(func, args)
                except Exception:
                    if not self._failing:
                        self._failing = True
                        log.exception('stream %r failed; its output is dropped until a write succeeds', self.inner)
                else:
                    if self._failing:
                        self._failing = False
                        log.warning('stream %r works again', self.inner)
                finally:
                    done.set()
        finally:
            # No yield between the empty queue and this line, so _submit never sees a worker that is about to end.
            self._worker_running = False

    def __repr__(self):
        return '<ThreadedStream %r>' % (self.inner,)


def _nothing():
    pass
