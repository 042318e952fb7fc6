"""The child subreaper role: what PID 1 of a container does, and `gcircusd --subreaper`.

A process whose parent dies is re-parented to the nearest ancestor marked as a child
subreaper (prctl PR_SET_CHILD_SUBREAPER), or to PID 1. Such orphans (a daemonising
program's grandchildren, a worker's helpers) then become our children, and each one that
exits is a zombie until we collect it.

Collecting them needs no code of ours and no waitpid(-1) in Python: gevent's libev loop
(the default loop, which gcircusd runs on) answers SIGCHLD by collecting every exited
child and hands each status to the child watcher of that pid, if any. Our own processes
have one (gcircus.process registers it before the spawning greenlet can yield), so their
exit status reaches their watcher; an orphan has none, so its status is dropped and it
is simply gone. What this module adds:
- becoming the subreaper, and making sure the SIGCHLD handler is installed from the
  start, not only at the first spawn;
- at exit, stopping the orphans still running (SIGTERM, then SIGKILL after the grace
  period), so none outlives the daemon that adopted it.
"""
import ctypes
import logging
import os
import signal

import gevent
import psutil

from gcircus.supervision.pidfds import ProcessHandles

logger = logging.getLogger("gcircus")

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    """Mark this process as a child subreaper; OSError when the kernel refuses."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        number = ctypes.get_errno()
        raise OSError(number, "prctl(PR_SET_CHILD_SUBREAPER): %s" % os.strerror(number))


def collect_exited_children():
    """Have the hub collect every exited child from now on (see the module docstring)."""
    loop = gevent.get_hub().loop
    if getattr(loop, "default", False) and hasattr(loop, "install_sigchld"):
        loop.install_sigchld()
        return True
    logger.warning("subreaper: this hub's loop does not collect exited children; "
                   "orphans may stay zombies")
    return False


def adopted_children(own_pids):
    """Pids of our living children that are not in own_pids (our supervised processes)."""
    try:
        children = psutil.Process().children()
    except psutil.Error:
        return []
    adopted = []
    for child in children:
        if child.pid in own_pids:
            continue
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                adopted.append(child.pid)
        except psutil.NoSuchProcess:
            continue
    return adopted


class Subreaper:
    """Owned by gcircusd when it is PID 1 or runs with --subreaper."""

    def __init__(self, grace=10.0):
        self.grace = grace       # seconds adopted orphans get to stop at exit before SIGKILL

    def start(self):
        if os.getpid() != 1:     # PID 1 adopts every orphan of its namespace anyway
            become_subreaper()
        collect_exited_children()
        logger.info("child subreaper: orphaned descendants are adopted and collected")

    def stop_orphans(self, own_pids=()):
        """Stop the adopted orphans still running (the daemon exits): SIGTERM, then SIGKILL
        what is left after `grace` seconds. Returns the pids it signalled."""
        pids = adopted_children(set(own_pids))
        if not pids:
            return []
        logger.info("stopping %d adopted orphan process(es): %s", len(pids), pids)
        handles = ProcessHandles(pids)
        try:
            handles.signal(signal.SIGTERM)
            survivors = handles.wait(self.grace)
            if survivors:
                logger.warning("adopted orphans %s did not stop within %ss, sending SIGKILL",
                               survivors, self.grace)
                handles.signal(signal.SIGKILL)
                handles.wait(self.grace)
        finally:
            handles.close()
        return pids
