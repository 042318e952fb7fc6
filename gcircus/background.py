"""ThreadedArbiter: Circus's `background=True` — start() returns, the arbiter runs on.

In a monkey-patched application threading.Thread is a greenlet on the app's hub,
so child exits are still reported by the hub's child watchers. In an unpatched
program it is a real thread with its own hub, where child watchers cannot exist
(libev allows them only on the main loop): exits are then found by polling each
child every gcircus.process.FALLBACK_POLL_INTERVAL seconds, and handled at once.

Either way the arbiter's objects belong to the hub its thread runs: the caller's
thread uses them only through the public methods, which run on that hub.
"""
import threading

import gevent

from gcircus.arbiter import Arbiter
from gcircus.supervision.hubcall import current_hub


class ThreadedArbiter(Arbiter):
    """An Arbiter whose start() runs it in a thread and returns once it serves.

    handle_signals is off (only the main thread may own signals): stop it from the
    program's own shutdown path (see docs/embedding.md)."""

    def __init__(self, *args, **kw):
        kw.setdefault("handle_signals", False)
        super().__init__(*args, **kw)
        self._thread = None
        self._error = None

    def start(self):
        """Run the arbiter in a thread; return once it is serving (or raise its start error)."""
        if self._thread is not None and self._thread.is_alive():
            return
        # threading's Event as the program has it: a real one, or gevent's when monkey-patched
        # (then the "thread" is a greenlet of this hub, and a real wait would block it)
        serving = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._run, args=(serving,), name="gcircus-arbiter", daemon=True)
        self._thread.start()
        serving.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        if not self._thread.is_alive() and not self.stopping:
            raise RuntimeError("the arbiter thread ended before it started")

    def _run(self, serving):
        """The arbiter thread: owns its hub when it made one, and destroys it on the way out,
        so calls from other threads stop being sent to a hub nobody runs any more."""
        own_hub = current_hub() is None
        announcer = gevent.spawn(self._announce, serving)
        try:
            Arbiter.start(self)
        except BaseException as error:  # handed to the thread that called start()
            self._error = error
        finally:
            announcer.kill()
            if own_hub:
                self._leave_hub()
                gevent.get_hub().destroy(destroy_loop=True)
            serving.set()

    def _announce(self, serving):
        """Owned by the arbiter thread; lives until the arbiter serves (or the thread ends)."""
        self.started.wait()
        serving.set()

    def stop(self):
        """Stop the arbiter and wait for its thread to end (from any thread but its own)."""
        thread = self._thread
        if thread is None:
            return
        Arbiter.stop(self)       # runs on the arbiter's hub, wherever it is called from
        if threading.current_thread() is not thread:
            # not from the arbiter's own thread (a quit command): that one ends by itself
            thread.join()
