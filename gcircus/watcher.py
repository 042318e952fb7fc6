"""Watcher: runs `numprocesses` copies of one command and keeps them alive.

Commands on one watcher run one at a time under its lock and wait for each other.
Exits arrive from the hub (Process exit listeners) on a queue drained by the
watcher's supervise greenlet, so a dead child is replaced the moment the kernel
reports it. Children that die younger than `min_uptime` are crashes: they are
respawned after an exponential backoff, for ever (whoever wants to give up after N
crashes configures the Flapping plugin). Spawns that fail (exec errors) count
apart: more than `max_retry` in a row stop the watcher, as in Circus.

The watcher's lock, exit queue and greenlets belong to the hub it runs on (its
arbiter's); public methods called from another thread run there (on_owner_hub).
"""
import itertools
import logging
import os
import random
import signal
import time

import gevent
from gevent.event import Event
from gevent.lock import RLock
from gevent.pool import Group
from gevent.queue import Queue

from gcircus.aliases import extend_import_path
from gcircus.supervision import children_record, cmdline
from gcircus.converters import to_signum  # noqa: F401  (re-exported: commands parse signals)
from gcircus.exc import ArgumentError, ConflictError, SpawnError
from gcircus.supervision.backoff import backoff_delay
from gcircus.supervision.hooks import Hooks
from gcircus.supervision.hub_guard import Slicer
from gcircus.supervision.hubcall import on_owner_hub
from gcircus.options import WATCHER_DEFAULTS
from gcircus.supervision.pidfds import ProcessHandles, descendants
from gcircus.process import UNEXISTING, Process, describe_exit
from gcircus.sockets import ProcessSockets
from gcircus.states import WatcherState, check_transition
from gcircus.supervision.output import WatcherStreams

logger = logging.getLogger("gcircus")

# Constructor defaults, written once in the option table (None-defaults stay literal: "not set" is no choice).
_D = WATCHER_DEFAULTS

# How long a stop waits for a process's pipes to reach EOF before closing its streams.
PIPE_DRAIN_TIMEOUT = 2.0
# How long a stop waits after SIGKILL before giving up on a process (stuck in the kernel).
SIGKILL_TIMEOUT = 10.0


# The event each state publishes when the watcher enters it (Circus's `start` and `stop`).
_STATE_EVENTS = {WatcherState.ACTIVE: "start", WatcherState.STOPPED: "stop"}


class Watcher:
    """Manages the processes of one command (Circus's API and options)."""

    # What spawn_process builds for each child. A seam for subclasses (and for the decision tests,
    # which script exits with a fake process instead of forking).
    process_class = Process

    def __init__(self, name, cmd, args=None, numprocesses=_D["numprocesses"], warmup_delay=_D["warmup_delay"],
                 working_dir=None, shell=_D["shell"], uid=None, max_retry=_D["max_retry"], gid=None,
                 send_hup=_D["send_hup"], env=None, stopped=True, graceful_timeout=_D["graceful_timeout"],
                 prereload_fn=None, rlimits=None, executable=None, stdout_stream=None, stderr_stream=None,
                 stream_backend=_D["stream_backend"], priority=_D["priority"], singleton=_D["singleton"],
                 use_sockets=_D["use_sockets"], copy_env=_D["copy_env"], **options):
        known = {key: options.pop(key, WATCHER_DEFAULTS[key]) for key in list(WATCHER_DEFAULTS)
                 if key in options}
        opt = dict(WATCHER_DEFAULTS, **known)
        self.name = name
        self.res_name = name.lower().replace(" ", "_")
        self.cmd = cmd
        self.args = args
        self.numprocesses = int(numprocesses)
        self.warmup_delay = float(warmup_delay)
        self.working_dir = working_dir
        self.shell = shell
        self.shell_args = opt["shell_args"]
        self.uid = uid
        self.gid = gid
        self.max_retry = int(max_retry)
        self.send_hup = send_hup
        self.stop_signal = to_signum(opt["stop_signal"])
        self.stop_children = bool(opt["stop_children"])
        self.die_with_daemon = bool(opt["die_with_daemon"])
        self.env = dict(env) if env else {}
        self.graceful_timeout = float(graceful_timeout)
        self.prereload_fn = prereload_fn
        self.rlimits = dict(rlimits) if rlimits else {}
        self.executable = executable
        self.stream_backend = stream_backend
        self.priority = int(priority)
        self.singleton = singleton
        self.use_sockets = use_sockets
        self.copy_env = copy_env
        self.copy_path = opt["copy_path"]
        self.max_age = float(opt["max_age"])
        self.max_age_variance = float(opt["max_age_variance"])
        self.respawn = opt["respawn"]
        self.autostart = opt["autostart"]
        self.on_demand = opt["on_demand"]
        self.virtualenv = opt["virtualenv"]
        self.virtualenv_py_ver = opt["virtualenv_py_ver"]
        self.stdin_socket = opt["stdin_socket"]
        self.close_child_stdin = opt["close_child_stdin"]
        self.close_child_stdout = opt["close_child_stdout"]
        self.close_child_stderr = opt["close_child_stderr"]
        self.min_uptime = float(opt["min_uptime"])
        self.backoff_base = float(opt["backoff_base"])
        self.backoff_max = float(opt["backoff_max"])
        self.critical = bool(opt["critical"])   # giving up stops the arbiter (Arbiter.watcher_gave_up)
        extend_import_path(self.env)  # as Circus: hooks and streams may live where the env's PYTHONPATH says
        self.hooks = Hooks(opt["hooks"])
        # Circus's `loop` (a tornado IOLoop) means nothing on one gevent hub: accepted, not kept as an option
        options.pop("loop", None)
        self.options = options  # free-form options, for plugins (e.g. flapping.max_retry)
        if self.singleton and self.numprocesses not in (0, 1):
            raise ArgumentError("watcher %s: singleton watchers have at most one process" % name)
        self.streams = WatcherStreams(stdout_stream, stderr_stream, stream_backend)
        self.child_env = cmdline.build_env(self.env, copy_env, self.copy_path, self.virtualenv,
                                           self.virtualenv_py_ver)
        self.state = WatcherState.STOPPED
        self.processes = {}            # pid -> Process, in spawn order
        self._wids = set()             # the wids of self.processes (_track / _forget keep it so)
        self._wid_floor = 1            # every wid below it is in use
        self._sweep_at = 0             # where the safety-net sweep goes on at its next slice
        self.arbiter = None
        self.publisher = None
        self.sockets = {}              # name -> CircusSocket, given by the arbiter
        self.config_spec = None        # the config section it was built from (reloadconfig compares it)
        self._hub = None               # the hub a watcher without an arbiter was started on
        self._lock = RLock()
        self._exits = None             # Queue of exited processes, built on the supervisor's hub
        self._greenlets = Group()      # every greenlet the watcher spawns: close() ends them all
        self._supervisor = None
        self._respawn_timer = None
        self._retry_at = None          # time.time() of the respawn the backoff delays
        self._retry_delay = None       # how long that backoff waits in all (seconds)
        self._crash_streak = 0         # deaths before min_uptime in a row: they set the backoff
        self._spawn_failure_streak = 0  # failed spawns in a row: more than max_retry stop the watcher
        self._spawned_count = 0
        # what the dashboard and /metrics report
        self.restarts = 0              # processes that ended on their own and were replaced
        self.spawn_failures = 0        # spawns that failed (the command could not be started)
        self.last_exit_code = None     # exit code of the process reaped last
        self.last_start_time = None    # time.time() when the watcher last became active
        self._stopped_requested = stopped
        # stop() calls waiting for (or holding) the lock: while any is pending nothing spawns,
        # and _stop_wake cuts every warmup pause short, so a stop never waits a warmup out
        self._stops_pending = 0
        self._stop_wake = Event()
        self._info_sampler = None      # a ProcessSampler, from the first info() on
        self.gave_up = None            # why it stopped for good without being asked; None otherwise

    # -- events and hooks ------------------------------------------------------------

    @on_owner_hub
    def notify_event(self, topic, msg):
        """Publish `watcher.<name>.<topic>` with body msg (a dict) on the event channel."""
        if self.publisher is not None:
            self.publisher.publish_watcher_event(self.name, topic, **msg)

    def _event(self, topic, **fields):
        fields.setdefault("time", time.time())
        self.notify_event(topic, fields)

    @on_owner_hub
    def call_hook(self, hook_name, **kwargs):
        """Run hook hook_name (if configured) with Circus's arguments; True when it allows (or none is set)."""
        return self.hooks.run(hook_name, self, self.arbiter, self._event, **kwargs)

    def _set_state(self, target):
        """The one writer of the state: checks the move and publishes the event it means."""
        check_transition(self.state, target)
        logger.debug("watcher %s: %s -> %s", self.name, self.state, target)
        self.state = target
        event = _STATE_EVENTS.get(target)
        if event is not None:
            logger.info("%s %s", self.name, "started" if target is WatcherState.ACTIVE else "stopped")
            self._event(event)

    def _spawn_greenlet(self, name, function, *args, delay=0):
        """A named greenlet owned by this watcher (killed by close())."""
        greenlet = gevent.Greenlet(function, *args)
        greenlet.name = "%s[%s]" % (name, self.name)
        self._greenlets.add(greenlet)
        if delay > 0:
            greenlet.start_later(delay)
        else:
            greenlet.start()
        return greenlet

    # -- supervision -----------------------------------------------------------------

    def owner_hub(self):
        """The hub this watcher runs on: its arbiter's, or its own start()'s (None when unowned)."""
        if self.arbiter is not None:
            return self.arbiter.owner_hub()
        hub = self._hub
        if hub is None or hub.dead or hub.loop is None:
            return None
        return hub

    def rebind_hub(self):
        """Replace the hub-bound objects (command lock, exit queue, events, greenlet group) with
        fresh ones, which the next hub to use them takes.

        The arbiter calls it on its own hub as it starts, before any command can run (a lock
        used earlier from another thread belongs to that thread's hub), and when its background
        thread ends. A running watcher keeps its objects."""
        if self._supervisor is not None and not self._supervisor.dead:
            return
        self._lock = RLock()
        self._exits = None
        self._stop_wake = Event()
        self._greenlets = Group()

    def _ensure_supervisor(self):
        if self._supervisor is None or self._supervisor.dead:
            self._exits = Queue()       # created here: a queue belongs to the hub that creates it
            self._supervisor = self._spawn_greenlet("watcher", self._supervise_loop)

    def _supervise_loop(self):
        """Owned by the watcher; lives from its first start until close(); handles exits in order.
        Exits that arrive together are handled in slices: a mass exit (a killed process group,
        a crashing dependency) is replaced while commands and other watchers keep their turns."""
        slicer = Slicer()
        exits = self._exits         # close() drops the attribute; this loop ends with its greenlet
        for process in exits:
            try:
                with self._lock:
                    self._handle_exit(process)
            except Exception:
                logger.exception("watcher %s failed handling the exit of %s", self.name, process.pid)
            if exits.qsize():
                slicer.tick()
            else:
                slicer.reset()      # the loop blocks next: the hub gets its turn anyway

    def _on_process_exit(self, process):
        """Hub callback: must not block, so the exit is queued for the supervise loop."""
        self._ensure_supervisor()
        self._exits.put_nowait(process)

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

    def _replace(self, process):
        """Spawn first, tell later: the replacement's fork is the first thing done; the reap event is
        published right after it (so it still precedes the spawn event), then the bookkeeping and the log."""
        self._forget(process)                          # out of the live count: one replacement is due
        told = []

        def tell():
            told.append(True)
            self._tell_reaped(process)
        try:
            replacement = self.spawn_process(after_fork=tell)
        finally:
            if not told:        # the spawn raised before telling: the reap is still told, once
                tell()
        self.restarts += 1
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

    # -- processes -------------------------------------------------------------------

    def _live_processes(self):
        return [p for p in self.processes.values() if not p.stopping and not p.has_exited()]

    @on_owner_hub
    def get_active_processes(self):
        """The live processes (not exited, not being stopped)."""
        return self._live_processes()

    @on_owner_hub
    def get_processes_pids(self):
        """The pids of every tracked process, stopping ones included."""
        return [p.pid for p in self.processes.values()]

    def _next_wid(self):
        """The lowest wid no tracked process has, in O(1) for a start or a respawn: every wid below
        self._wid_floor is in use. The set is rebuilt whenever a process left self.processes without
        _forget (its size says so)."""
        wids = self._wids
        if len(wids) != len(self.processes):
            self._wids = wids = {p.wid for p in self.processes.values()}
            self._wid_floor = 1
        wid = self._wid_floor
        while wid in wids:
            wid += 1
        self._wid_floor = wid      # (not past it: it is in use only once _track has the process)
        return wid

    @on_owner_hub
    def stop_requested(self):
        """True while a stop of this watcher or of its arbiter is under way: nothing spawns."""
        return self._stops_pending > 0 or (self.arbiter is not None and self.arbiter.stopping)

    def _track(self, process):
        self.processes[process.pid] = process
        self._wids.add(process.wid)

    def _forget(self, process):
        """Take process out of self.processes; False if it was not there."""
        if self.processes.pop(process.pid, None) is None:
            return False
        self._wids.discard(process.wid)
        self._wid_floor = min(self._wid_floor, process.wid)
        return True

    def _fill(self):
        """Spawn until numprocesses run; failures back off (they never spin). Each spawn is
        followed by one turn of the hub, so a burst of spawns never holds it (commands,
        exits and other watchers run in between); a stop interrupts the warmup pauses."""
        if not self.runs_processes():
            return []
        started = []
        slicer = Slicer()
        # Counted once (a start of N is O(N)), again after a warmup pause. The hub turns in between can only
        # lower the live count (an exit, a stop): the exit's own handling refills, the stop is checked.
        missing = self._missing()
        while missing > 0 and self._may_spawn():
            if started:
                if self.warmup_delay > 0:
                    if self._stop_wake.wait(self.warmup_delay):
                        break       # a stop is waiting for us
                    missing = self._missing()
                else:
                    slicer.tick()
                if missing <= 0 or not self._may_spawn():
                    break           # the count, state or stop changed while we paused
            process = self.spawn_process()
            if process is None:
                if self.state in (WatcherState.STARTING, WatcherState.ACTIVE):
                    self._spawn_failed()     # a hook's refusal has stopped the watcher already
                break
            self._spawn_failure_streak = 0
            started.append(process.pid)
            missing -= 1
        return started

    def _missing(self):
        return self.numprocesses - len(self._live_processes())

    def _may_spawn(self):
        return self.state in (WatcherState.STARTING, WatcherState.ACTIVE) and not self.stop_requested()

    @on_owner_hub
    def spawn_processes(self):
        """Spawn the missing processes; returns their pids."""
        with self._lock:
            return self._fill()

    def _variables(self):
        extra = {key: getattr(self, key) for key in ("numprocesses", "graceful_timeout", "max_age",
                                                     "max_retry", "priority", "name")}
        extra.update(self.options)
        # $(circus.env.X) sees the daemon's environment too; the child's own env wins.
        extra.update(("env." + key.lower(), value) for key, value in os.environ.items())
        return extra

    def _socket_fds(self):
        return {name: sock.fileno() for name, sock in self.sockets.items()}

    @on_owner_hub
    def spawn_process(self, after_fork=None):
        """Spawn one process; returns it, or None (error logged) when it could not start
        (or a stop is under way: a process spawned now would be left behind).

        after_fork() is called once the new process is registered (or no process was spawned), before the
        after_spawn hook and the `spawn` event."""
        if self.stop_requested():
            if after_fork is not None:
                after_fork()
            logger.debug("%s: not spawning, the watcher is stopping", self.name)
            return None
        if not self.call_hook("before_spawn"):
            if after_fork is not None:
                after_fork()
            logger.warning("%s: before_spawn hook refused the spawn", self.name)
            self.stop()  # as Circus: a refused spawn stops the watcher
            return None
        process_sockets = ProcessSockets(self)  # so_reuseport: a fresh socket per process
        try:
            sockets = process_sockets.fds()
            process = self.process_class(
                self._next_wid(), self.cmd, args=self.args, working_dir=self.working_dir,
                shell=self.shell, uid=self.uid, gid=self.gid, env=self.child_env,
                rlimits=self.rlimits, executable=self.executable, use_fds=self.use_sockets,
                watcher=self, name=self.name,
                pipe_stdout=self.streams.stdout is not None and not self.close_child_stdout,
                pipe_stderr=self.streams.stderr is not None and not self.close_child_stderr,
                close_child_stdin=self.close_child_stdin,
                close_child_stdout=self.close_child_stdout, close_child_stderr=self.close_child_stderr,
                shell_args=self.shell_args, sockets=sockets, variables=self._variables,
                stdin_fd=sockets[self.stdin_socket] if self.stdin_socket else None,
                die_with_daemon=self.die_with_daemon)
        except (SpawnError, OSError, ValueError, KeyError) as error:
            failure = error
        else:
            failure = None
        finally:
            process_sockets.close()  # the child holds its own copies now
        if failure is not None:
            if after_fork is not None:
                after_fork()
            logger.error("error in %r: %s", self.name, failure)
            self.spawn_failures += 1
            return None
        self._track(process)
        self._attach_pumps(process)
        process.add_exit_listener(self._on_process_exit)
        if after_fork is not None:
            after_fork()        # the new process is registered: whoever is told sees it
        self._spawned_count += 1
        if not self.call_hook("after_spawn", pid=process.pid):
            logger.warning("%s: after_spawn hook refused process %s", self.name, process.pid)
            process.stopping = True
            process.kill_tree(signal.SIGKILL)
            self._forget(process)
            self.stop()  # as Circus: the process is dropped and the watcher stopped
            return None
        self._event("spawn", process_pid=process.pid, time=process.started)
        if self.max_age > 0:
            lifetime = self.max_age + random.uniform(0, self.max_age_variance)
            process.max_age_timer = self._spawn_greenlet("max_age", self._expire, process, delay=lifetime)
        return process

    def _attach_pumps(self, process):
        self.streams.attach(process, self.name)

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
        self.last_exit_code = process.returncode
        self.call_hook("before_reap", process_pid=process.pid, time=now)
        self._event("reap", process_pid=process.pid, time=now, exit_code=process.returncode)
        self.call_hook("after_reap", process_pid=process.pid, time=now,
                       exit_code=process.returncode,
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

    # -- killing ---------------------------------------------------------------------

    def _signal(self, process, signum):
        """Send signum through the before/after_signal hooks; SIGKILL is never vetoed. Returns the
        time.monotonic() at which it was sent (or would have been, had a hook not vetoed it): the
        hooks may take their time, and a graceful_timeout runs from the signal, not from them."""
        allowed = self.call_hook("before_signal", pid=process.pid, signum=signum)
        sent = time.monotonic()
        if allowed or signum == signal.SIGKILL:
            process.send_signal(signum)
        self.call_hook("after_signal", pid=process.pid, signum=signum)
        return sent

    def _begin_kill(self, process, sig=None, graceful_timeout=None):
        """Start stopping process in its own greenlet (idempotent); returns that greenlet."""
        if process.killer is None:
            process.stopping = True
            process.killer = self._spawn_greenlet("kill:%s" % process.pid, self._kill_body, process, sig,
                                                  graceful_timeout)
        return process.killer

    def _kill_body(self, process, sig, graceful_timeout):
        """Stop process and its whole tree: the stop signal, then SIGKILL to whatever is left at graceful_timeout.

        With stop_children every descendant gets the stop signal with the process; without it the process alone
        gets it (it may stop its children its own way), and the descendants still there once it has exited get it
        next: orphaned, nobody else would ever stop them."""
        sig = self.stop_signal if sig is None else sig
        timeout = self.graceful_timeout if graceful_timeout is None else graceful_timeout
        if process.has_exited():
            return
        # taken before the signal: once a process exits, its children are re-parented away from its tree
        tree = ProcessHandles(descendants(process.pid))
        try:
            self._event("kill", process_pid=process.pid)
            sent = self._signal(process, sig)
            if self.stop_children:
                for descendant in tree.handles:
                    self._event("kill", process_pid=descendant)
                tree.signal(sig)
            # graceful_timeout runs from the signal (not from the hooks around it); a process that
            # exited in time but whose exit the hub has not delivered yet (it was busy) is waited
            # for, not SIGKILLed
            if process.wait_exited(max(0.0, timeout - (time.monotonic() - sent))) or (
                    process.exit_pending() and process.wait_exited(SIGKILL_TIMEOUT)):
                if tree.handles:
                    self._stop_orphans(process, tree, sig, timeout - (time.monotonic() - sent))
                return
            logger.warning("%s: process %s did not stop within %ss, sending SIGKILL to its tree",
                           self.name, process.pid, timeout)
            self._event("kill", process_pid=process.pid)
            self._signal(process, signal.SIGKILL)
            process.kill_tree(signal.SIGKILL)       # and what it forked since the tree was taken
            tree.signal(signal.SIGKILL)
            if not process.wait_exited(SIGKILL_TIMEOUT):
                logger.error("%s: process %s survived SIGKILL for %ss (uninterruptible sleep?); "
                             "no longer waiting for it", self.name, process.pid, SIGKILL_TIMEOUT)
            tree.wait(SIGKILL_TIMEOUT)
        finally:
            tree.close()

    def _stop_orphans(self, process, tree, sig, remaining):
        """The process stopped in time; its descendants get what is left of graceful_timeout, then SIGKILL."""
        if not self.stop_children:
            tree.signal(sig)
        survivors = tree.wait(remaining)
        if survivors:
            logger.warning("%s: descendants %s of process %s did not stop within graceful_timeout, "
                           "sending SIGKILL", self.name, survivors, process.pid)
            tree.signal(signal.SIGKILL)
            tree.wait(SIGKILL_TIMEOUT)

    @on_owner_hub
    def kill_process(self, process, sig=None, graceful_timeout=None):
        """Stop one process (stop signal, then SIGKILL of its tree after graceful_timeout)."""
        self._begin_kill(process, sig, graceful_timeout).join()
        with self._lock:
            self._reap(process)
        return True

    @on_owner_hub
    def kill_processes(self, sig=None, graceful_timeout=None):
        """Stop every process concurrently and reap them."""
        killers = [self._begin_kill(p, sig, graceful_timeout) for p in list(self.processes.values())]
        gevent.joinall(killers)
        for process in list(self.processes.values()):
            if process.has_exited():
                self._reap(process)

    # -- management --------------------------------------------------------------------

    @on_owner_hub
    def manage_processes(self, wait=False, respawn=None):
        """Bring the process count to numprocesses: spawn the missing, retire the oldest surplus.

        The missing are spawned only when the watcher respawns (respawn=None: its own option);
        an explicit resize passes respawn=True."""
        respawn = self.respawn if respawn is None else respawn
        with self._lock:
            if self.state is not WatcherState.ACTIVE or self._balanced():
                return []
            live = sorted(self._live_processes(), key=lambda p: p.started, reverse=True)
            surplus = live[self.numprocesses:]
            killers = [self._begin_kill(p) for p in surplus]
            if respawn and self._respawn_timer is None:  # a pending backoff decides when to respawn
                self._fill()
        if wait:
            gevent.joinall(killers)
            with self._lock:
                for process in surplus:
                    self._reap(process)
        return [p.pid for p in surplus]

    def _balanced(self):
        """True when nothing is to be spawned or retired, told in O(1): as many processes as wanted and no
        greenlet but the supervise loop (no process being stopped, no backoff, no max_age retirement).
        A tracked process is then live, or its exit is queued for the supervise loop, which refills."""
        return len(self.processes) == self.numprocesses and len(self._greenlets) <= 1

    @on_owner_hub
    def reap_and_manage_processes(self, limit=None):
        """The safety-net sweep: reap exits the hub missed (limit: processes checked), then fix the count."""
        self.reap_processes(limit)
        self.manage_processes()

    @on_owner_hub
    def set_numprocesses(self, num, wait=False):
        """Set the target count (negative clamps to 0) and apply it; returns the count."""
        return self._resize(lambda current: int(num), wait)

    @on_owner_hub
    def incr(self, nb=1, wait=False):
        """Add nb processes (wait: until they run and a surplus is stopped); returns numprocesses."""
        return self._resize(lambda current: current + int(nb), wait)

    @on_owner_hub
    def decr(self, nb=1, wait=False):
        """Remove nb processes, never below 0 (wait: until the surplus has stopped); returns numprocesses."""
        return self._resize(lambda current: current - int(nb), wait)

    def _resize(self, target_of, wait):
        # The count is read and written under the command lock: two concurrent incr both count.
        with self._lock:
            num = max(target_of(self.numprocesses), 0)
            if self.singleton and num > 1:
                raise ArgumentError("watcher %s is a singleton: at most one process" % self.name)
            self.numprocesses = num
            self.manage_processes(wait=wait, respawn=True)
            return self.numprocesses

    @property
    def command_lock(self):
        """The lock commands on this watcher take, so they run one at a time (reentrant)."""
        return self._lock

    # -- lifecycle -------------------------------------------------------------------

    @on_owner_hub
    def start(self):
        """Start the watcher; returns {'started': new pids, 'kept': pids already running}.

        ConflictError once its arbiter is stopped (a stopped arbiter spawns nothing)."""
        if self.arbiter is not None and self.arbiter.stopping:
            raise ConflictError("watcher %s: its arbiter is stopped and spawns nothing until it starts again"
                                % self.name)
        if self.arbiter is None and self.owner_hub() is None:
            self.rebind_hub()       # a watcher without an arbiter belongs to the hub that starts it
            self._hub = gevent.get_hub()
        with self._lock:
            kept = [p.pid for p in self._live_processes()]
            if self.state is not WatcherState.STOPPED:
                return {"started": self._fill(), "kept": kept}
            if not self.call_hook("before_start"):
                logger.warning("%s: before_start hook refused the start", self.name)
                return {"started": [], "kept": kept}
            self._ensure_supervisor()
            self._set_state(WatcherState.STARTING)
            self._crash_streak = self._spawn_failure_streak = 0
            self.gave_up = None
            self.streams.open()
            started = self._fill()
            if self.state is not WatcherState.STARTING:
                return {"started": started, "kept": kept}  # spawning failed for good
            if not self.call_hook("after_start"):
                logger.warning("%s: after_start hook failed, stopping", self.name)
                self._stop_locked()  # STARTING -> STOPPING: it never became active
                return {"started": [], "kept": kept}
            self.last_start_time = time.time()
            self._set_state(WatcherState.ACTIVE)  # publishes `start`
            return {"started": started, "kept": kept}

    @on_owner_hub
    def stop(self, close_streams=True):
        """Stop every process (graceful_timeout, then SIGKILL) and return their pids.

        From the call on, nothing spawns and a warmup pause in progress ends at once,
        so the stop gets the command lock without waiting a warmup out."""
        self._stops_pending += 1
        self._stop_wake.set()
        try:
            with self._lock:
                return self._stop_locked(close_streams)
        finally:
            self._stops_pending -= 1
            if not self._stops_pending:
                self._stop_wake.clear()

    def runs_processes(self):
        """False for a watcher standing for something else (a plugin's): it never spawns, and the
        commands that act on processes (incr, decr, signal, kill, set numprocesses) refuse it."""
        return True

    def is_plugin(self):
        """True for a plugin's watcher (`plugin:NAME`): its process count is not the user's to change."""
        return False

    def stopping(self):
        """Called under the command lock as every stop begins, before the processes are stopped:
        the seam for a watcher that owns something besides processes (a plugin's stops its plugin)."""

    def _stop_locked(self, close_streams=True):
        self.stopping()
        if self.state in (WatcherState.STOPPED, WatcherState.STOPPING):
            return []
        self._set_state(WatcherState.STOPPING)
        self._cancel_respawn()
        self.call_hook("before_stop")
        processes = list(self.processes.values())
        self.kill_processes()
        self.streams.drain(PIPE_DRAIN_TIMEOUT)  # every pump, those of processes reaped earlier too
        if close_streams:
            self.streams.close()
        self._set_state(WatcherState.STOPPED)  # publishes `stop`
        self.call_hook("after_stop")
        return [p.pid for p in processes]

    @on_owner_hub
    def give_up(self, reason):
        """Stop for good because the watcher cannot be kept up (a supervising plugin decided so):
        `gave_up` says why until the next start, and a critical watcher stops the arbiter."""
        with self._lock:
            return self._give_up_locked(reason)

    def _give_up_locked(self, reason):
        self.gave_up = reason
        stopped = self._stop_locked()
        if self.arbiter is not None:
            self.arbiter.watcher_gave_up(self)
        return stopped

    @on_owner_hub
    def restart(self):
        """Stop then start; returns {'stopped', 'started', 'kept'}."""
        with self._lock:
            stopped = self._stop_locked(close_streams=False)
            result = self.start()
        return {"stopped": stopped, "started": result["started"], "kept": result["kept"]}

    @on_owner_hub
    def reload(self, graceful=True, sequential=False):
        """Replace the processes: new generation first, then the old one is stopped."""
        if self.prereload_fn is not None:
            self.prereload_fn(self)
        if not graceful:
            return self.restart()
        with self._lock:
            if self.state is WatcherState.STOPPED:
                result = self.start()
                return {"stopped": [], "started": result["started"], "kept": result["kept"]}
            old = self._live_processes()
            if self.send_hup:
                for process in old:
                    process.send_signal(signal.SIGHUP)
                self._event("reload")
                return {"stopped": [], "started": [], "kept": [p.pid for p in old]}
            started = self._reload_sequential(old) if sequential else self._reload_overlapping(old)
            self._event("reload")
            return {"stopped": [p.pid for p in old], "started": started, "kept": []}

    def _reload_overlapping(self, old):
        started = []
        for process in old:
            process.stopping = True  # out of the live count, so _fill starts a full generation
        started = self._fill()
        gevent.joinall([self._begin_kill(p) for p in old])
        for process in old:
            self._reap(process)
        return started

    def _reload_sequential(self, old):
        started = []
        for process in old:
            self._begin_kill(process).join()
            self._reap(process)
            started.extend(self._fill())
        return started

    # -- signals and information -----------------------------------------------------

    @on_owner_hub
    def send_signal(self, pid, signum):
        """Send signum to the process pid (through the signal hooks); KeyError if it is not ours."""
        process = self.processes.get(int(pid))
        if process is None:
            raise KeyError("watcher %s has no process %s" % (self.name, pid))
        self._signal(process, signum)

    @on_owner_hub
    def send_signal_processes(self, signum):
        """Send signum to every process of the watcher."""
        for process in list(self.processes.values()):
            self._signal(process, signum)

    @on_owner_hub
    def send_signal_child(self, pid, child_id, signum):
        """Send signum to child_id, a direct child of the process pid."""
        process = self.processes.get(int(pid))
        if process is None:
            raise KeyError("watcher %s has no process %s" % (self.name, pid))
        process.send_signal_child(int(child_id), signum)

    @on_owner_hub
    def send_signal_children(self, pid, signum, recursive=False):
        """Send signum to every child of the process pid (every descendant with recursive)."""
        process = self.processes.get(int(pid))
        if process is None:
            raise KeyError("watcher %s has no process %s" % (self.name, pid))
        process.send_signal_children(signum, recursive)

    @on_owner_hub
    def status(self):
        """Circus's state names, plus "backoff": active, but waiting to respawn a crash loop."""
        if self.state is WatcherState.ACTIVE and self._retry_at is not None:
            return "backoff"
        return str(self.state)

    @on_owner_hub
    def is_stopped(self):
        """True when the watcher is stopped."""
        return self.state is WatcherState.STOPPED

    @on_owner_hub
    def is_active(self):
        """True when the watcher is active (started, processes supervised)."""
        return self.state is WatcherState.ACTIVE

    @on_owner_hub
    def info(self, table=None):
        """{pid: info} of every process (Process.info()'s dicts), from one /proc scan (or the
        given ProcTable) and sampled in slices: the hub gets a turn every few ms."""
        # imported here: psutil and the sampler cost a daemon that is never asked for stats ~2 MiB
        from gcircus.supervision.sampler import ProcessSampler, processes_info
        if self._info_sampler is None:
            self._info_sampler = ProcessSampler()
        infos, keys = processes_info(list(self.processes.values()), self._info_sampler, table=table)
        self._info_sampler.retain(keys)
        return infos

    @on_owner_hub
    def process_info(self, pid):
        """Process.info() of the process pid (KeyError if it is not ours)."""
        return self.processes[int(pid)].info()

    @on_owner_hub
    def close(self):
        """Release the watcher's greenlets (after stop); used when it is removed. Processes still running
        (`rm --nostop`) are no longer managed: their exits are not replaced, and a gcircusd restarted after a
        crash leaves them alone (they leave the children record)."""
        self._greenlets.kill(block=False)
        for process in self.processes.values():
            process.remove_exit_listener(self._on_process_exit)
            if children_record.current is not None:
                children_record.current.remove(process.pid)
        self._supervisor = None
        self._exits = None
        self._respawn_timer = None

    def __len__(self):
        """The number of processes (Circus's API)."""
        return len(self.processes)

    def __repr__(self):
        return "<Watcher %s %s>" % (self.name, self.state)
