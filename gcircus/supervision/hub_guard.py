"""Guarding the one hub everything runs on.

- Slicer: long work on the hub (sampling hundreds of processes, a burst of spawns)
  gives the hub a turn every few milliseconds, so commands, exits and output keep
  flowing meanwhile.
- HubGuard: measures how long each turn of the hub's loop holds it. A turn longer
  than the threshold is a stall: it is counted, and logged with the greenlet that held
  the hub (named for what it is: plugin, hook, command, stream, watcher) and its stack.

How the guard stays free when idle: a libev `check` watcher marks the start of each
turn and a `prepare` watcher its end (both cost a clock read). A monitoring thread
sleeps on a lock while the hub waits for events, and is woken only when a turn begins
after such a sleep; it then looks again only once per threshold while turns go on. So
an idle daemon wakes nothing, and a busy one pays a clock read and a mutex per turn
plus one wake-up of the thread per threshold. Which greenlet held the hub is found only
when a stall is seen (a scan of the live greenlets: a switch tracer would cost every
switch ~0.4 us, measured).
"""
import gc
import logging
import sys
import time
import traceback

import gevent
import greenlet
from gevent import monkey

logger = logging.getLogger("gcircus")

SLICE = 0.005        # longest stretch of bulk work between two turns of the hub
PAUSE = 0.0001       # the turn: a real (tiny) sleep, so timers and I/O run too, not only ready greenlets

DEFAULT_STALL_THRESHOLD = 0.1
# The same culprit stalling again within this many seconds is counted but not logged again.
LOG_INTERVAL = 10.0
STACK_LIMIT = 12     # innermost frames shown in a stall report

# Native threading primitives even in a monkey-patched program: the monitor is a real thread.
_start_thread, _allocate_lock, _get_ident = monkey.get_original(
    "_thread", ["start_new_thread", "allocate_lock", "get_ident"])
_real_sleep = monkey.get_original("time", "sleep")

_EV_MAXPRI, _EV_MINPRI = 2, -2


class Slicer:
    """Yields to the hub whenever `budget` seconds of work went by without a pause.

    A loop that is about to block anyway (its queue is empty) calls reset() instead of
    tick(): the hub gets its turn then, and the next burst starts a fresh budget."""

    def __init__(self, budget=SLICE):
        self.budget = budget
        self.since = time.monotonic()
        self.pauses = 0

    def reset(self):
        self.since = time.monotonic()

    def tick(self):
        if time.monotonic() - self.since > self.budget:
            gevent.sleep(PAUSE)
            self.pauses += 1
            self.since = time.monotonic()


class Stall:
    """One turn of the hub that held it longer than the threshold."""

    __slots__ = ("seconds", "culprit", "stack", "when")

    def __init__(self, seconds, culprit, stack):
        self.seconds = seconds
        self.culprit = culprit
        self.stack = stack
        self.when = time.time()

    def as_dict(self):
        return {"seconds": round(self.seconds, 3), "culprit": self.culprit, "time": self.when}


class HubGuard:
    """Measures the calling thread's hub; start() on that hub, stop() when done.

    `stalls` counts the turns that held the hub longer than `threshold` seconds,
    `last_stall` is the latest (a Stall), `longest_stall` the longest in seconds.
    """

    def __init__(self, threshold=DEFAULT_STALL_THRESHOLD):
        self.threshold = float(threshold)
        self.stalls = 0
        self.longest_stall = 0.0
        self.last_stall = None
        self._loop = None
        self._check = None
        self._prepare = None
        self._turn_began = 0.0        # monotonic time the current (or last) turn began
        self._turn_ended = 0.0        # monotonic time the last turn ended
        self._mutex = _allocate_lock()
        self._wake = None             # held while the monitor sleeps; a fresh one per start()
        self._monitor_asleep = False
        self._running = False
        self._generation = 0          # a monitor thread ends once start()/stop() moved past its own
        self._hub_thread = None
        self._hub = None
        self._captured = None         # (turn began, culprit, stack) seen by the monitor thread
        self._last_logged = {}        # culprit -> (monotonic time logged, stalls since not logged)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self):
        if self._running or self.threshold <= 0:
            return self
        self._running = True
        self._hub_thread = _get_ident()
        self._hub = gevent.get_hub()
        self._loop = self._hub.loop
        self._check = self._loop.check()
        self._check.priority = _EV_MAXPRI         # first thing after the poll
        self._prepare = self._loop.prepare()
        self._prepare.priority = _EV_MINPRI       # after gevent's own callbacks have run
        # The turn that starts the guard counts from now, and a callback closes it: an arbiter's start()
        # runs its watchers' first spawns and hooks in that very turn, before the hub runs again.
        self._turn_began = time.monotonic()
        self._turn_ended = self._turn_began - 1e-6
        self._check.start(self._turn_begins)
        self._prepare.start(self._turn_ends)
        self._generation += 1
        self._loop.run_callback(self._first_turn_ends, self._generation)
        self._monitor_asleep = False
        self._wake = _allocate_lock()
        self._wake.acquire()
        _start_thread(self._monitor_loop, (self._generation, self._wake))
        return self

    def stop(self):
        if not self._running:
            return
        self._running = False
        self._generation += 1
        for watcher in (self._check, self._prepare):
            watcher.stop()
            watcher.close()
        self._check = self._prepare = None
        with self._mutex:
            if self._monitor_asleep:
                self._monitor_asleep = False
                self._wake.release()

    def set_threshold(self, threshold):
        """A new threshold (0 or less: stop guarding); starts the guard on this hub if needed."""
        self.threshold = float(threshold)
        if self.threshold <= 0:
            self.stop()
        elif not self._running:
            self.start()

    # -- on the hub ----------------------------------------------------------------------

    def _turn_begins(self):
        self._turn_began = time.monotonic()
        with self._mutex:
            if self._monitor_asleep:
                self._monitor_asleep = False
                self._wake.release()

    def _first_turn_ends(self, generation):
        if self._generation == generation:     # not stopped (or restarted) meanwhile
            self._turn_ends()

    def _turn_ends(self):
        now = time.monotonic()
        began = self._turn_began
        if began > self._turn_ended and now - began > self.threshold:
            self._record(now - began, began)
        self._turn_ended = now

    def _record(self, seconds, began):
        captured, self._captured = self._captured, None
        if captured is not None and captured[0] == began:
            culprit, stack = captured[1], captured[2]
        else:   # the monitor did not look in time (a stall just past the threshold)
            culprit, stack = "a greenlet not identified in time", None
        stall = Stall(seconds, culprit, stack)
        self.stalls += 1
        self.longest_stall = max(self.longest_stall, seconds)
        self.last_stall = stall
        logged, unlogged = self._last_logged.get(culprit, (None, 0))
        now = time.monotonic()
        if logged is not None and now - logged < LOG_INTERVAL:
            self._last_logged[culprit] = (logged, unlogged + 1)
            return
        self._last_logged[culprit] = (now, 0)
        again = " (and %d more times since the last report)" % unlogged if unlogged else ""
        logger.warning("hub stalled for %.0f ms by %s%s: every watcher, command and stream waited "
                       "(threshold %.0f ms)%s", seconds * 1000, culprit, again, self.threshold * 1000,
                       "\n" + "".join(stack) if stack else "")

    # -- the monitor thread --------------------------------------------------------------

    def _monitor_loop(self, generation, wake):
        """A real thread, from start() to stop(): looks at the hub while its turns go on."""
        while self._generation == generation:
            with self._mutex:
                busy = self._turn_began > self._turn_ended
                if not busy:
                    self._monitor_asleep = True
            if not busy:
                wake.acquire()      # until a turn begins (or stop)
                continue
            began = self._turn_began
            remaining = began + self.threshold - time.monotonic()
            if remaining > 0:
                _real_sleep(remaining)
                continue
            if self._turn_began == began and self._turn_began > self._turn_ended:
                self._capture(began)
            _real_sleep(self.threshold)

    def _capture(self, began):
        if self._captured is not None and self._captured[0] == began:
            return
        frame = sys._current_frames().get(self._hub_thread)
        active = self._running_greenlet()
        stack = traceback.format_stack(frame, STACK_LIMIT) if frame is not None else None
        culprit = describe(active, frame)
        if self._turn_began == began:         # still the same turn: the capture is its
            self._captured = (began, culprit, stack)


    def _running_greenlet(self):
        """The greenlet running on the hub's thread now (the hub itself when none is):
        the one child of our hub that is alive and has no saved frame."""
        for obj in gc.get_objects():
            if isinstance(obj, greenlet.greenlet) and obj.parent is self._hub and obj \
                    and obj.gr_frame is None:
                return obj
        return self._hub


def describe(active, frame=None):
    """What held the hub, for humans: a hook (found in the stack), else the greenlet by its name."""
    hook = _hook_in(frame)
    name = _greenlet_name(active)
    if hook is not None:
        return "%s (in greenlet %s)" % (hook, name)
    for prefix, kind in (("plugin[", "plugin"), ("command[", "command"), ("pump[", "stream of"),
                         ("watcher[", "watcher"), ("kill[", "stopping process")):
        if name.startswith(prefix) and name.endswith("]"):
            return "%s %s" % (kind, name[len(prefix):-1])
    return "greenlet %s" % name


def _hook_in(frame):
    """'hook NAME of watcher W' when a watcher hook is on the stack, else None."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "run" and code.co_filename.endswith("hooks.py"):
            local = frame.f_locals
            watcher = local.get("watcher")
            return "hook %s of watcher %s" % (local.get("name"), getattr(watcher, "name", watcher))
        frame = frame.f_back
    return None


def _greenlet_name(active):
    if active is None:
        return "?"
    if isinstance(active, gevent.hub.Hub):
        return "hub (callbacks and watchers)"
    name = getattr(active, "name", None)     # gevent's Greenlet has a name; a raw greenlet does not
    return name if isinstance(name, str) else repr(active)
