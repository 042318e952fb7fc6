"""What a watcher does when one of its processes exits (the Watcher's exit half, mixed into it).

A process that ran at least min_uptime is replaced at once, and before anything is told (spawn first,
tell later): the reap event is published right after the fork, so it still precedes the spawn event.
When nothing else is being done to the watcher and the replacement runs no user code, that replacement is
even forked in the hub's own callback for the exit, without the hop to the watcher's greenlet (see
`_may_replace_inline`), and the hub lets it finish its exec before going on (spawner.Launch.start's
hand_over_cpu); the log line and what follows a failed spawn still run in that greenlet.
One that died younger is a crash: it is respawned after an exponential backoff, for ever. Spawns that
fail (exec errors) count apart: more than max_retry in a row stop the watcher, as in Circus.
"""
import itertools
import logging
import time

from gevent import get_hub, getcurrent

from gcircus.process import UNEXISTING, describe_exit
from gcircus.states import WatcherState
from gcircus.supervision.backoff import backoff_delay
from gcircus.supervision.hubcall import on_owner_hub

logger = logging.getLogger("gcircus")

# How long a stop waits for a process's pipes to reach EOF before closing its streams.
PIPE_DRAIN_TIMEOUT = 2.0

#: After an exit replaced in the hub's callback, the exits of the next this many seconds (of any watcher) take the
#: watcher's greenlet: a mass exit (a killed process group) is then replaced in slices that let commands and other
#: watchers have their turns, as before, and only a lone exit skips the hop.
INLINE_SPACING = 0.002
_inline_allowed_at = 0.0


class Replaced:
    """What is left to do, in the watcher's greenlet, after an exit was replaced in the hub's callback."""

    __slots__ = ("process", "replacement")

    def __init__(self, process, replacement):
        self.process = process
        self.replacement = replacement


class ExitHandling:
    """Reaping, replacing and backing off for a Watcher. Uses the watcher's processes, state, lock,
    hooks, events, respawn options and greenlet group (see Watcher)."""

    def _handle_exit(self, process):
        if process.pid not in self.processes:
            return  # a stop or reload already reaped it
        if self._replaces_first(process):
            self._replace(process)
            return
        self._reap(process)
        if process.stopping or self.state is not WatcherState.ACTIVE:
            return
        logger.info("%s: process %s (wid %s) %s", self.name, process.pid, process.wid,
                    describe_exit(process.returncode))
        if not self.respawn or self.on_demand:
            if not self._live_processes():
                self._set_state(WatcherState.STOPPED)  # ACTIVE -> STOPPED: nothing is to be respawned
                self.streams.close_when_drained(PIPE_DRAIN_TIMEOUT, self.is_stopped)
            return
        self.restarts += 1
        if process.age() >= self.min_uptime:
            self._fill()
            return
        self._crash_streak += 1
        delay = self._backoff_delay(self._crash_streak)
        logger.warning("%s: process %s died after %.2fs (min_uptime %ss): crash %d in a row, %s",
                       self.name, process.pid, process.age(), self.min_uptime, self._crash_streak,
                       "backing off %.3g s" % delay if delay else "respawning at once")
        self._schedule_fill(delay)

    def _replaces_first(self, process):
        """Whether process, which died on its own after min_uptime, is replaced before anything is told.

        The reap hooks are user code Circus runs before the replacement's spawn: with either one set, the
        exit takes the ordinary path, so its order stays the one users know. Early deaths take it too (the
        crash-loop policy decides when they are retried)."""
        return (not process.stopping and self.state is WatcherState.ACTIVE and self.respawn
                and not self.on_demand and self._respawn_timer is None and not self.stop_requested()
                and len(self.processes) <= self.numprocesses       # so that, without it, one is missing
                and process.age() >= self.min_uptime
                and "before_reap" not in self.hooks and "after_reap" not in self.hooks)

    def _may_replace_inline(self, process):
        """Whether the exit of process can be replaced right in the hub's callback that reports it.

        The hop to the watcher's greenlet (a queue put, a wake-up, a switch) is a fair share of what a respawn
        costs the hub, and it buys nothing when nothing else is being done to the watcher: its lock is free (no
        command or exit is half done; one waiting for the lock is woken after this, as if the exit had come
        first), no exit is queued before this one, the watcher is full (so the replacement is the only spawn
        due), and the spawn runs no user code (no spawn or reap hook: code that could wait, which the hub
        cannot). Everything else, and every exit of a burst, takes the greenlet."""
        if getcurrent() is not get_hub():      # a fallback poller's greenlet (not the hub) queues as before
            return False
        exits = self._exits
        if self._lock.locked() or (exits is not None and exits.qsize()):
            return False
        hooks = self.hooks
        return (len(self.processes) == self.numprocesses and process.pid in self.processes
                and "before_spawn" not in hooks and "after_spawn" not in hooks
                and time.monotonic() >= _inline_allowed_at and self._replaces_first(process))

    def _replace_inline(self, process):
        """Fork the replacement here, in the hub's callback; the rest of _replace is queued for the greenlet."""
        global _inline_allowed_at
        try:
            replacement = self._replace_spawn(process, hand_over_cpu=True)
        except Exception:       # nothing here should raise: spawn failures come back as None
            logger.exception("%s: replacing process %s failed", self.name, process.pid)
            replacement = None
        _inline_allowed_at = time.monotonic() + INLINE_SPACING
        self._ensure_supervisor()
        self._exits.put_nowait(Replaced(process, replacement))

    def _replace(self, process):
        """Spawn first, tell later: the replacement's fork is the first thing done; the reap event is
        published right after it (so it still precedes the spawn event), then the bookkeeping and the log."""
        self._after_replace(process, self._replace_spawn(process))

    def _replace_spawn(self, process, hand_over_cpu=False):
        """The part of a replacement that precedes the log: forget process, spawn its replacement, tell the
        reap in between. Returns the replacement, or None when it could not be spawned."""
        self._forget(process)                          # out of the live count: one replacement is due
        told = []

        def tell():
            told.append(True)
            self._tell_reaped(process)
        try:
            replacement = self.spawn_process(after_fork=tell, hand_over_cpu=hand_over_cpu)
        finally:
            if not told:        # the spawn raised before telling: the reap is still told, once
                tell()
        self.restarts += 1
        return replacement

    def _after_replace(self, process, replacement):
        logger.info("%s: process %s (wid %s) %s", self.name, process.pid, process.wid,
                    describe_exit(process.returncode))
        if replacement is None:
            if self.state is WatcherState.ACTIVE:
                self._spawn_failed()
            return
        self._spawn_failure_streak = 0
        if len(self.processes) < self.numprocesses:
            self._fill()                               # only when something else is also missing

    def _spawn_failed(self):
        """Count one failed spawn; stop the watcher once more than max_retry failed in a row."""
        self._spawn_failure_streak += 1
        if self.max_retry != -1 and self._spawn_failure_streak > self.max_retry:
            logger.error("%s: giving up after %d failed spawns in a row (max_retry %d): stopping the "
                         "watcher", self.name, self._spawn_failure_streak, self.max_retry)
            # callers hold the lock; the stop is part of their decision
            self._give_up_locked("%d failed spawns in a row (max_retry %d)"
                                 % (self._spawn_failure_streak, self.max_retry))
            return
        delay = self._backoff_delay(self._spawn_failure_streak)
        logger.warning("%s: spawn failure %d in a row, %s", self.name, self._spawn_failure_streak,
                       "backing off %.3g s" % delay if delay else "retrying at once")
        self._schedule_fill(delay)

    def _backoff_delay(self, streak):
        return backoff_delay(streak, self.backoff_base, self.backoff_max)

    def _schedule_fill(self, delay):
        if delay <= 0:
            self._fill()
        elif self._respawn_timer is None:
            self._retry_at = time.time() + delay
            self._retry_delay = delay
            self._respawn_timer = self._spawn_greenlet("respawn", self._delayed_fill, delay=delay)

    def _delayed_fill(self):
        with self._lock:
            self._respawn_timer = None
            self._retry_at = None
            if self.state is WatcherState.ACTIVE:
                self._fill()

    def _cancel_respawn(self):
        if self._respawn_timer is not None:
            self._respawn_timer.kill(block=False)
            self._respawn_timer = None
            self._retry_at = None

    @on_owner_hub
    def backoff(self):
        """While a respawn waits for the backoff: {'crashes', 'spawn_failures' (in a row), 'delay' (the
        whole wait, seconds), 'retry_at' (time.time() of the next try), 'retry_in' (seconds)}; None otherwise."""
        retry_at = self._retry_at
        if retry_at is None:
            return None
        return {"crashes": self._crash_streak, "spawn_failures": self._spawn_failure_streak,
                "delay": self._retry_delay, "retry_at": retry_at, "retry_in": max(0.0, retry_at - time.time())}

    def _expire(self, process):
        """max_age reached: start the replacement first, then retire the old process."""
        with self._lock:
            if process.pid not in self.processes or process.stopping or \
                    self.state is not WatcherState.ACTIVE:
                return
            logger.info("%s: process %s reached max_age, replacing it", self.name, process.pid)
            self._begin_kill(process)
            self._fill()

    def _reap(self, process):
        """Forget a dead process: before_reap, `reap` event, after_reap (once per process)."""
        if self._forget(process):
            self._tell_reaped(process)

    def _tell_reaped(self, process):
        """What reaping a process that left self.processes means: hooks, event, bookkeeping."""
        if process.age() >= self.min_uptime:
            self._crash_streak = 0      # it ran long enough, however it ended: the crash loop is over
        if process.max_age_timer is not None:
            process.max_age_timer.kill(block=False)
        now = time.time()
        pid, exit_code = process.pid, process.returncode
        self.last_exit_code = exit_code
        hooks = self.hooks          # asked first: a stop reaps thousands, and most watchers set no hook
        if "before_reap" in hooks:
            self._call_hook("before_reap", process_pid=pid, time=now)
        self._event("reap", process_pid=pid, time=now, exit_code=exit_code)
        if "after_reap" in hooks:
            self._call_hook("after_reap", process_pid=pid, time=now, exit_code=exit_code,
                            process_status=None if process.stopping else UNEXISTING)

    @on_owner_hub
    def reap_processes(self, limit=None):
        """Reap the tracked processes that have exited (the check_delay safety net).

        With limit, only that many are checked, the next ones at the next call (round robin): the
        sweep of a tick then costs the same with 10 processes or 10,000."""
        with self._lock:
            if limit is None or limit >= len(self.processes):
                batch = list(self.processes.values())
            else:
                start = self._sweep_at if self._sweep_at < len(self.processes) else 0
                batch = list(itertools.islice(self.processes.values(), start, start + limit))
                self._sweep_at = start + limit
            for process in batch:
                process.check_exit()
                if process.has_exited():
                    self._handle_exit(process)
