"""Finding and waiting for processes that are not our children (a process's descendants, stopped with it).

The kernel reports their exit through a pidfd (Linux 5.3+): it becomes readable when the
process ends, so the hub waits on it like on a socket, and a signal sent through it can
never reach an unrelated process that reused the pid. Without pidfd support we poll.

Descendants are found through /proc/<pid>/task/<tid>/children: a walk down one tree costs
tens of microseconds, where a ppid map of the whole system costs a scan of every process.
"""
import os
import signal
import time

import gevent
from gevent.socket import wait_read

_POLL_INTERVAL = 0.05   # only where pidfd_open is missing (old kernels)
# Kernels built without CONFIG_PROC_CHILDREN have no children files: psutil's whole-system scan then.
# A read of a children file shorter than this ends it: the kernel fills whole pages (of pids of a few bytes).
_SHORT_READ = 1024
_CHILDREN_FILES = os.path.exists("/proc/self/task/%d/children" % os.getpid())


class ProcessHandles:
    """Handles on a set of pids, taken now: signal them, wait for them, SIGKILL the rest."""

    def __init__(self, pids):
        opened = {pid: _open(pid) for pid in pids}
        self.handles = {pid: fd for pid, fd in opened.items() if fd is not False}

    def signal(self, sig):
        for pid, fd in list(self.handles.items()):
            try:
                if fd is None:
                    os.kill(pid, sig)
                else:
                    signal.pidfd_send_signal(fd, sig)
            except ProcessLookupError:
                self.forget(pid)

    def wait(self, timeout):
        """Wait until every process has exited or timeout passed; returns the pids still alive."""
        deadline = time.monotonic() + max(0.0, timeout)
        for pid, fd in list(self.handles.items()):
            remaining = deadline - time.monotonic()
            if fd is not None:
                try:
                    wait_read(fd, timeout=max(remaining, 0.001))
                except gevent.socket.timeout:
                    continue
                self.forget(pid)
                continue
            while _alive(pid) and time.monotonic() < deadline:
                gevent.sleep(_POLL_INTERVAL)
            if not _alive(pid):
                self.forget(pid)
        return sorted(self.handles)

    def close(self):
        for pid in list(self.handles):
            self.forget(pid)

    def forget(self, pid):
        """Let pid go: it is neither signalled nor waited for from now on."""
        fd = self.handles.pop(pid, None)
        if fd is not None:
            os.close(fd)


def read_stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name (field n of proc(5) is [n - 3]), or None
    (gone, or not Linux). One open and read: no psutil, which a daemon loads only for stats."""
    try:
        fd = os.open("/proc/%d/stat" % pid, os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 2048)
    except OSError:
        return None
    finally:
        os.close(fd)
    fields = data[data.rfind(b")") + 2:].split()   # the command may hold spaces and parens
    return fields if len(fields) >= 40 else None


def descendants(pid):
    """Pids of every descendant of pid (children, their children, ...), as they hang below it now.

    A descendant that left the tree before (a double fork: re-parented to init or a subreaper) is not
    found: no record of where it came from remains."""
    if not _CHILDREN_FILES:
        return _descendants_by_scan(pid)
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        for thread in _threads(current):    # a child belongs to the thread that forked it
            children = _read_children(current, thread)
            found.extend(children)
            pending.extend(children)
    return found


def _threads(pid):
    """The thread ids of pid ([] when it is gone). A stop takes the tree of every process it stops: one stat
    tells a single-threaded process (its task directory links itself, its parent and one thread) without
    listing the directory."""
    task = "/proc/%d/task" % pid
    try:
        if os.stat(task).st_nlink == 3:
            return (pid,)
        return [int(thread) for thread in os.listdir(task)]
    except OSError:
        return ()                       # gone meanwhile


def _read_children(pid, thread):
    try:
        fd = os.open("/proc/%d/task/%d/children" % (pid, thread), os.O_RDONLY)
    except OSError:
        return []                       # the thread ended meanwhile
    try:
        data = chunk = os.read(fd, 65536)
        # the kernel hands the list out a page at a time (thousands of children need more reads); a read far
        # shorter than a page was the last, which spares the closing empty read in the usual case
        while len(chunk) > _SHORT_READ:
            chunk = os.read(fd, 65536)
            data += chunk
    except OSError:
        return []
    finally:
        os.close(fd)
    return [int(child) for child in data.split()]


def _descendants_by_scan(pid):
    import psutil       # only on kernels without children files
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def _open(pid):
    """A pidfd for pid; None when the kernel has none to give; False when pid is gone."""
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except OSError:
        return None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
