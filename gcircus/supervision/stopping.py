"""How a watcher stops its processes and signals them (the Watcher's stopping half, mixed into it).

A process is stopped in a greenlet of its own: the stop signal (through the before/after_signal hooks),
then SIGKILL to whatever of its tree is left at graceful_timeout, counted from the moment the signal was
sent. Its descendants are taken before the signal (once it exits they are re-parented away) and stopped
too, so a stop leaves nothing behind.

A watcher's stop does the same for all its processes at once from one greenlet (no greenlet, Event or timer
per process: a stop of 10,000 would spend more on them than on the signals): each gets the stop signal in
turn, one wait covers every exit, and each one still there at its own graceful_timeout gets SIGKILL. Signal
hooks (which may take their time) and processes with descendants still get a greenlet each.
"""
import logging
import signal
import time

import gevent
from gevent.event import Event

from gcircus.supervision.hub_guard import Slicer
from gcircus.supervision.hubcall import on_owner_hub
from gcircus.supervision.pidfds import ProcessHandles, descendants

logger = logging.getLogger("gcircus")

# How long a stop waits after SIGKILL before giving up on a process (stuck in the kernel).
SIGKILL_TIMEOUT = 10.0
# The longest stretch of a bulk stop's signalling between two turns of the hub. Longer than the usual slice: each
# turn that collects exits ends with a waitpid(-1) that finds none (libev's way), and the kernel answers it by
# looking at every child of the daemon: ~1 ms with 10,000 children, a fifth of a 5 ms slice. Still far below
# what the hub guard calls a stall.
BULK_SLICE = 0.02


class ExitCountdown:
    """The exits a bulk stop waits for, each with its deadline and the step of its stop it is at: one Event for
    them all, set as the last one arrives (the watcher's exit callback calls exited())."""

    GRACE = "grace"             # the stop signal is sent; graceful_timeout runs
    DELIVERY = "delivery"       # exited in time, by the kernel's account; the hub has yet to deliver it
    KILLED = "killed"           # SIGKILL sent

    def __init__(self, timeout):
        self.timeout = timeout      # graceful_timeout of this stop
        self.pending = {}           # process -> (deadline, step)
        self._done = Event()

    def expect(self, process, deadline, step=GRACE):
        self.pending[process] = (deadline, step)

    def exited(self, process):
        """From the hub: process exited. True when it was one this countdown waits for."""
        if self.pending.pop(process, None) is None:
            return False
        if not self.pending:
            self._done.set()
        return True

    def give_up(self, process):
        self.pending.pop(process, None)

    def wait(self, timeout):
        """Wait until nothing is pending (True) or timeout passed (False)."""
        if self.pending and timeout > 0:
            self._done.clear()      # it may have been set while the stop still signalled
            self._done.wait(timeout)
        return not self.pending

    def next_deadline(self):
        return min(deadline for deadline, _step in self.pending.values())

    def due(self, now):
        """[(process, step)] of the pending processes whose deadline has come."""
        return [(process, step) for process, (deadline, step) in self.pending.items() if deadline <= now]


class ProcessStopping:
    """Stopping and signalling a Watcher's processes. Uses the watcher's processes, hooks, events,
    stop options and greenlet group (see Watcher)."""

    def _signal(self, process, signum):
        """Send signum through the before/after_signal hooks; SIGKILL is never vetoed. Returns the
        time.monotonic() at which it was sent (or would have been, had a hook not vetoed it): the
        hooks may take their time, and a graceful_timeout runs from the signal, not from them."""
        allowed = self._call_hook("before_signal", pid=process.pid, signum=signum)
        sent = time.monotonic()
        if allowed or signum == signal.SIGKILL:
            process.send_signal(signum)
        self._call_hook("after_signal", pid=process.pid, signum=signum)
        return sent

    def _begin_kill(self, process, sig=None, graceful_timeout=None):
        """Start stopping process in its own greenlet (idempotent); returns that greenlet."""
        if process.killer is None:
            process.stopping = True
            process.killer = self._spawn_greenlet("kill:%s" % process.pid, self._kill_body, process, sig,
                                                  graceful_timeout)
        return process.killer

    def _kill_body(self, process, sig, graceful_timeout, pids=None):
        """Stop process and its whole tree: the stop signal, then SIGKILL to whatever is left at graceful_timeout.

        With stop_children every descendant gets the stop signal with the process; without it the process alone
        gets it (it may stop its children its own way), and the descendants still there once it has exited get it
        next: orphaned, nobody else would ever stop them."""
        sig = self.stop_signal if sig is None else sig
        timeout = self.graceful_timeout if graceful_timeout is None else graceful_timeout
        if process.has_exited():
            return
        # taken before the signal: once a process exits, its children are re-parented away from its tree
        tree = ProcessHandles(descendants(process.pid) if pids is None else pids)
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
            self._escalate(process, tree, timeout)
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
        """Stop every process concurrently and reap them (before the caller publishes `stop`)."""
        processes = list(self.processes.values())
        if "before_signal" in self.hooks or "after_signal" in self.hooks:
            # signal hooks may take their time (draining a process first): each process its own greenlet,
            # so that one slow hook delays no other process's signal
            killers = [self._begin_kill(p, sig, graceful_timeout) for p in processes]
        else:
            killers = self._begin_bulk_kill(processes, sig, graceful_timeout)
        gevent.joinall(killers)
        slicer = Slicer()
        for process in list(self.processes.values()):
            if process.has_exited():
                self._reap(process)
                slicer.tick()

    def _begin_bulk_kill(self, processes, sig, graceful_timeout):
        """Stop processes from one greenlet (a stop of thousands spawns no greenlet, Event or timer per
        process); returns the greenlets to join. Processes already being stopped keep their own."""
        killers = [p.killer for p in processes if p.killer is not None]
        fresh = [p for p in processes if p.killer is None]
        if fresh:
            bulk = self._spawn_greenlet("kill:%d processes" % len(fresh), self._bulk_kill_body, fresh, sig,
                                        graceful_timeout)
            for process in fresh:
                process.stopping = True
                process.killer = bulk
            killers.append(bulk)
        return killers

    def _bulk_kill_body(self, processes, sig, graceful_timeout):
        """What _kill_body does for each process, for many at once: the stop signal to each in turn, then one
        wait for all their exits, SIGKILL to each one still there at its graceful_timeout (counted from its
        own signal). A process with descendants gets a greenlet of its own (_kill_body): its tree is stopped
        with it, which needs its own waits."""
        sig = self.stop_signal if sig is None else sig
        timeout = self.graceful_timeout if graceful_timeout is None else graceful_timeout
        exits = ExitCountdown(timeout)
        self._exit_countdowns.append(exits)
        slicer = Slicer(BULK_SLICE)
        with_trees = []
        try:
            for process in processes:
                slicer.tick()
                if process.has_exited():
                    continue
                pids = descendants(process.pid)     # before the signal, as _kill_body does
                if pids:
                    process.killer = self._spawn_greenlet("kill:%s" % process.pid, self._kill_body, process,
                                                          sig, timeout, pids)
                    with_trees.append(process.killer)
                    continue
                self._event("kill", process_pid=process.pid)
                sent = time.monotonic()
                process.send_signal(sig)        # no signal hook is set: that is what made this stop a bulk one
                exits.expect(process, sent + timeout)
            self._await_exits(exits)
        finally:
            self._exit_countdowns.remove(exits)
        gevent.joinall(with_trees)

    def _await_exits(self, exits):
        """Wait for the exits exits expects, each up to its deadline; then the _kill_body treatment: an exit
        the kernel made in time but the hub has not delivered is waited for, a refusal gets SIGKILL."""
        while exits.pending:
            if exits.wait(exits.next_deadline() - time.monotonic()):
                return
            now = time.monotonic()
            for process, step in exits.due(now):
                if step == ExitCountdown.GRACE and process.exit_pending():
                    exits.expect(process, now + SIGKILL_TIMEOUT, ExitCountdown.DELIVERY)
                elif step != ExitCountdown.KILLED:
                    self._escalate(process, None, exits.timeout)
                    exits.expect(process, time.monotonic() + SIGKILL_TIMEOUT, ExitCountdown.KILLED)
                else:
                    exits.give_up(process)
                    logger.error("%s: process %s survived SIGKILL for %ss (uninterruptible sleep?); "
                                 "no longer waiting for it", self.name, process.pid, SIGKILL_TIMEOUT)

    def _escalate(self, process, tree, timeout):
        """process did not stop within graceful_timeout: SIGKILL to it and to its whole tree."""
        logger.warning("%s: process %s did not stop within %ss, sending SIGKILL to its tree",
                       self.name, process.pid, timeout)
        self._event("kill", process_pid=process.pid)
        self._signal(process, signal.SIGKILL)
        process.kill_tree(signal.SIGKILL)       # and what it forked since the tree was taken
        if tree is not None:
            tree.signal(signal.SIGKILL)

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
