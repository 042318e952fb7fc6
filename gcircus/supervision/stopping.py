"""How a watcher stops its processes and signals them (the Watcher's stopping half, mixed into it).

A process is stopped in a greenlet of its own: the stop signal (through the before/after_signal hooks),
then SIGKILL to whatever of its tree is left at graceful_timeout, counted from the moment the signal was
sent. Its descendants are taken before the signal (once it exits they are re-parented away) and stopped
too, so a stop leaves nothing behind.
"""
import logging
import signal
import time

import gevent

from gcircus.supervision.hubcall import on_owner_hub
from gcircus.supervision.pidfds import ProcessHandles, descendants

logger = logging.getLogger("gcircus")

# How long a stop waits after SIGKILL before giving up on a process (stuck in the kernel).
SIGKILL_TIMEOUT = 10.0


class ProcessStopping:
    """Stopping and signalling a Watcher's processes. Uses the watcher's processes, hooks, events,
    stop options and greenlet group (see Watcher)."""

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
