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
import logging
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
from gcircus.exc import ArgumentError, ConflictError
from gcircus.supervision.hooks import Hooks
from gcircus.supervision.hub_guard import Slicer
from gcircus.supervision.hubcall import on_owner_hub
from gcircus.options import WATCHER_DEFAULTS
from gcircus.process import Process
from gcircus.states import WatcherState, check_transition
from gcircus.supervision.exits import PIPE_DRAIN_TIMEOUT, ExitHandling, Replaced
from gcircus.supervision.output import WatcherStreams
from gcircus.supervision.spawning import ProcessSpawning
from gcircus.supervision.stopping import ProcessStopping

logger = logging.getLogger("gcircus")

# Constructor defaults, written once in the option table (None-defaults stay literal: "not set" is no choice).
_D = WATCHER_DEFAULTS



# The event each state publishes when the watcher enters it (Circus's `start` and `stop`).
_STATE_EVENTS = {WatcherState.ACTIVE: "start", WatcherState.STOPPED: "stop"}


class Watcher(ProcessSpawning, ExitHandling, ProcessStopping):
    """Manages the processes of one command (Circus's API and options).

    Its halves live beside it in gcircus/supervision: spawning (ProcessSpawning), what an exit does
    (ExitHandling: replace, back off, reap) and stopping and signalling (ProcessStopping)."""

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
        self._exit_countdowns = []     # the ExitCountdowns of the bulk stops under way (they reap what they get)
        # Handed to every process it spawns: one bound method each for the watcher, not one per process
        # (where a process finds its option variables, and whom it tells of its exit)
        self._process_variables = self._variables
        self._process_exit_listener = self._on_process_exit
        self._supervisor = None
        self._ready_launch = None      # the launch of the next process, prepared after a spawn (ready_launch)
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
        # notify_event's work without its hop-to-the-hub check: every caller runs on the hub already, and a
        # stop of thousands publishes two events per process
        fields.setdefault("time", time.time())
        if self.publisher is not None:
            self.publisher.publish("watcher.%s.%s" % (self.res_name, topic), fields)   # event_topic's spelling

    @on_owner_hub
    def call_hook(self, hook_name, **kwargs):
        """Run hook hook_name (if configured) with Circus's arguments; True when it allows (or none is set)."""
        return self._call_hook(hook_name, **kwargs)

    def _call_hook(self, hook_name, **kwargs):
        # call_hook for callers on the hub already (the watcher's own code)
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
        for item in exits:
            replaced = type(item) is Replaced       # its replacement was forked in the hub's callback already
            try:
                with self._lock:
                    if replaced:
                        self._after_replace(item.process, item.replacement)
                    else:
                        self._handle_exit(item)
            except Exception:
                logger.exception("watcher %s failed handling the exit of %s", self.name,
                                 item.process.pid if replaced else item.pid)
            if exits.qsize():
                slicer.tick()
            else:
                slicer.reset()      # the loop blocks next: the hub gets its turn anyway

    def _on_process_exit(self, process):
        """Hub callback: must not block, so the exit is queued for the supervise loop, unless a bulk stop
        waits for it (the stop reaps what it stopped) or its replacement can be forked right here (see
        _may_replace_inline)."""
        for countdown in self._exit_countdowns:
            if countdown.exited(process):
                return
        if self._may_replace_inline(process):
            self._replace_inline(process)
            return
        self._ensure_supervisor()
        self._exits.put_nowait(process)

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

    @on_owner_hub
    def stop_requested(self):
        """True while a stop of this watcher or of its arbiter is under way: nothing spawns."""
        return self._stops_pending > 0 or (self.arbiter is not None and self.arbiter.stopping)

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
            if not self._call_hook("before_start"):
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
            if not self._call_hook("after_start"):
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
        self._call_hook("before_stop")
        processes = list(self.processes.values())
        self.kill_processes()
        self.streams.drain(PIPE_DRAIN_TIMEOUT)  # every pump, those of processes reaped earlier too
        if close_streams:
            self.streams.close()
        self._set_state(WatcherState.STOPPED)  # publishes `stop`
        self._call_hook("after_stop")
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
            process.remove_exit_listener(self._process_exit_listener)
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
