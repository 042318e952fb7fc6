"""Running a method on the hub that owns its object, whoever calls it.

An arbiter and its watchers live on one gevent hub: their locks, queues, events and
greenlets belong to it, and gevent forbids using them from another thread's hub (at
best an error, at worst a wake-up delivered to the wrong loop and lost). A program
that runs the arbiter in a background thread still calls `watcher.incr()` or
`arbiter.stop()` from its own thread, so every public method of those classes is
wrapped with `on_owner_hub`: called from another thread, the call is handed to the
owner hub (`run_callback_threadsafe`), runs there in a greenlet of its own, and its
result or exception comes back to the caller. Called on the owner hub, or when no hub
owns the object (not started), it runs directly.

The caller waits without blocking anything it should not: on its own hub when its
thread has one (other greenlets keep running), on a plain thread event otherwise.
"""
import functools

import gevent
from gevent import monkey
from gevent.event import AsyncResult

try:
    from gevent._hub_local import get_hub_if_exists
except ImportError:     # a gevent without it: creating a hub in the calling thread is only wasteful
    get_hub_if_exists = gevent.get_hub

# A thread event that blocks the calling thread even in a monkey-patched program (where the
# module's Event is gevent's, bound to a hub the caller may not run).
_ThreadEvent = monkey.get_original("threading", "Event")

# How often a caller checks that the owner hub still runs while it waits: a hub destroyed with
# the call still queued (its thread ended) would otherwise leave the caller waiting forever.
LIVENESS_CHECK = 0.5


def current_hub():
    """This thread's hub, without creating one in a thread that has none."""
    return get_hub_if_exists()


class HubGone(RuntimeError):
    """The owner hub ended while a call handed to it was running."""


class _Call:
    """One call handed to another hub: runs there, reports back to the caller."""

    def __init__(self, function, args, kwargs):
        self.function = function
        self.args = args
        self.kwargs = kwargs
        self.started = False
        self.caller_hub = current_hub()
        self.outcome = AsyncResult() if self.caller_hub is not None else None
        self.done = _ThreadEvent() if self.caller_hub is None else None
        self.value = None
        self.error = None

    def begin(self):
        """Runs on the owner hub's loop (a callback): the call itself needs a greenlet, it may wait."""
        self.started = True
        greenlet = gevent.spawn(self._run)
        greenlet.name = "call[%s]" % getattr(self.function, "__qualname__", self.function)

    def _run(self):
        try:
            self.value = self.function(*self.args, **self.kwargs)
        except BaseException as error:  # handed to the caller, who re-raises it
            self.error = error
        if self.caller_hub is None:
            self.done.set()
        else:
            self.caller_hub.loop.run_callback_threadsafe(self.outcome.set, True)

    def wait(self, owner_hub):
        """True when the call completed; False when the owner hub ended before starting it."""
        while True:
            if self.done is not None:
                finished = self.done.wait(LIVENESS_CHECK)
            else:
                finished = self.outcome.wait(LIVENESS_CHECK) is not None
            if finished:
                return True
            if owner_hub.dead or owner_hub.loop is None:
                if self.started:
                    raise HubGone("the hub running %s ended before the call returned" % self.function.__qualname__)
                return False


def call_on_hub(hub, function, *args, **kwargs):
    """Run function(*args, **kwargs) on hub and return its result (or raise its exception) here.

    If the hub ends before the call starts, nothing owns the objects any more: the call
    runs here instead.
    """
    call = _Call(function, args, kwargs)
    try:
        hub.loop.run_callback_threadsafe(call.begin)
    except AttributeError:          # the loop was destroyed under us (hub.loop is None)
        return function(*args, **kwargs)
    if not call.wait(hub):
        return function(*args, **kwargs)
    if call.error is not None:
        raise call.error
    return call.value


def on_owner_hub(method):
    """Decorator for the public methods of an object with an owner_hub() method (None: unowned)."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        hub = self.owner_hub()
        if hub is None or hub is current_hub():
            return method(self, *args, **kwargs)
        return call_on_hub(hub, method, self, *args, **kwargs)
    return run
