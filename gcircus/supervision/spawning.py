"""How a watcher starts its processes (the Watcher's spawning half, mixed into it).

A start of N processes is O(N): the missing count is taken once, wids come from a set, and each spawn
is followed by one turn of the hub, so a burst of spawns never holds it.
"""
import logging
import os
import random
import signal

from gcircus.exc import SpawnError
from gcircus.process import Process, start_launch
from gcircus.sockets import ProcessSockets
from gcircus.supervision import ready_launch
from gcircus.states import WatcherState
from gcircus.supervision.hub_guard import Slicer
from gcircus.supervision.hubcall import on_owner_hub

logger = logging.getLogger("gcircus")


class ProcessSpawning:
    """Spawning a Watcher's processes and keeping their count. Uses the watcher's command, options,
    sockets, streams, hooks, events, state and lock (see Watcher)."""

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
    def spawn_process(self, after_fork=None, hand_over_cpu=False):
        """Spawn one process; returns it, or None (error logged) when it could not start
        (or a stop is under way: a process spawned now would be left behind).

        after_fork() is called once the new process is registered (or no process was spawned), before the
        after_spawn hook and the `spawn` event. hand_over_cpu: let the new process finish its exec before
        the hub goes on (see spawner.Launch.start); for a lone replacement whose latency counts."""
        if self.stop_requested():
            if after_fork is not None:
                after_fork()
            logger.debug("%s: not spawning, the watcher is stopping", self.name)
            return None
        if not self._call_hook("before_spawn"):
            if after_fork is not None:
                after_fork()
            logger.warning("%s: before_spawn hook refused the spawn", self.name)
            self.stop()  # as Circus: a refused spawn stops the watcher
            return None
        ready = self._ready_launch
        if ready is not None and ready.fits(self):
            process, failure = self._spawn_ready(ready, hand_over_cpu)
        else:
            process, failure = self._spawn_new()
        if failure is not None:
            if after_fork is not None:
                after_fork()
            logger.error("error in %r: %s", self.name, failure)
            self.spawn_failures += 1
            return None
        self._track(process)
        self._attach_pumps(process)
        process.add_exit_listener(self._process_exit_listener)
        if after_fork is not None:
            after_fork()        # the new process is registered: whoever is told sees it
        self._spawned_count += 1
        if not self._call_hook("after_spawn", pid=process.pid):
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

    def _process_options(self, sockets):
        """The keywords of a new process of this watcher (but its wid and command), with its sockets' fds."""
        return dict(
            args=self.args, working_dir=self.working_dir, shell=self.shell, uid=self.uid, gid=self.gid,
            env=self.child_env, rlimits=self.rlimits, executable=self.executable, use_fds=self.use_sockets,
            watcher=self, name=self.name,
            pipe_stdout=self.streams.stdout is not None and not self.close_child_stdout,
            pipe_stderr=self.streams.stderr is not None and not self.close_child_stderr,
            close_child_stdin=self.close_child_stdin,
            close_child_stdout=self.close_child_stdout, close_child_stderr=self.close_child_stderr,
            shell_args=self.shell_args, sockets=sockets, variables=self._process_variables,
            stdin_fd=sockets[self.stdin_socket] if self.stdin_socket else None,
            die_with_daemon=self.die_with_daemon)

    def _spawn_new(self):
        """Build a process and spawn it: (process, None), or (None, the error)."""
        process_sockets = ProcessSockets(self)  # so_reuseport: a fresh socket per process
        try:
            sockets = process_sockets.fds()
            options = self._process_options(sockets)
            process = self.process_class(self._next_wid(), self.cmd, **options)
        except (SpawnError, OSError, ValueError, KeyError) as error:
            return None, error
        finally:
            process_sockets.close()  # the child holds its own copies now
        try:
            self._ready_launch = ready_launch.prepare_from(self, process, options)
        except (SpawnError, OSError, ValueError) as error:   # the spawn just worked: not expected
            logger.warning("%s: cannot prepare the next launch (%s): every spawn builds its own", self.name, error)
            self._ready_launch = None
        return process, None

    def _spawn_ready(self, ready, hand_over_cpu=False):
        """Fork the ready launch first, then build its process around the child: (process, None), or
        (None, the error)."""
        try:
            child, forked_after, forked_before = start_launch(ready.launch, hand_over_cpu)
        except SpawnError as error:
            return None, error
        process = Process(self._next_wid(), self.cmd, spawn=False, **ready.options)
        process.adopt(child, forked_after, forked_before)
        return process, None

    def _attach_pumps(self, process):
        self.streams.attach(process, self.name)
