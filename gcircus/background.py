"""ThreadedArbiter: Circus's `background=True` — start() returns, the arbiter runs on.

In a monkey-patched application threading.Thread is a greenlet on the app's hub,
so child exits are still reported by the hub's child watchers. In an unpatched
program it is a real thread with its own hub, where child watchers cannot exist
(libev allows them only on the main loop): exits are then found by polling each
child every gcircus.process.FALLBACK_POLL_INTERVAL seconds.
"""
import threading

from gcircus.arbiter import Arbiter


class ThreadedArbiter(Arbiter):
    def __init__(self, *args, **kw):
        kw.setdefault("handle_signals", False)  # only the main thread may own signals
        super().__init__(*args, **kw)
        self._thread = None
        self._error = None

    def start(self):
        """Run the arbiter in a thread; return once it is serving (or raise its start error)."""
        self._thread = threading.Thread(target=self._run, name="gcircus-arbiter", daemon=True)
        self._thread.start()
        while not self.started.wait(0.05):   # a gevent Event from another thread: poll it
            if not self._thread.is_alive():
                if self._error is not None:
                    raise self._error
                raise RuntimeError("the arbiter thread ended before it started")

    def _run(self):
        try:
            Arbiter.start(self)
        except BaseException as error:  # handed to the thread that called start()
            self._error = error

    def stop(self):
        """Stop the arbiter and wait for its thread to end (from any thread but its own)."""
        thread = self._thread
        if thread is None:
            return
        if self.on_own_hub():
            # a quit command or a plugin: stop here; the thread ends by itself once start() returns
            Arbiter.stop(self)
            return
        if thread.is_alive():
            Arbiter.stop(self)
        thread.join()
        self._thread = None
