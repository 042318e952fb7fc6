"""Watching a daemon's children through /proc, cheaply enough to poll every few milliseconds (Linux only).

This kernel has no /proc/<pid>/task/<tid>/children file, and psutil's children() reads every process's stat on
each call (slow with 500+ processes, and it takes CPU from the daemon being measured on a 2-core machine). A
ChildScanner classifies each pid once:

- a *child* is a pid whose /proc/<pid>/stat shows ppid == the daemon and comm == the expected command ("sleep"):
  comm changes at exec, so a child counts once it has exec'd, "as reported by the system";
- a pid with ppid == the daemon and another comm is *pending* (forked, not exec'd yet) and read again next time;
- anything else is an *other*, remembered with its start time and not read again while it stays listed.

`scan()` lists /proc (pids that left the listing are forgotten, so a reused pid is read afresh) and reads only the
pids not classified yet. `wait_new_child()` is the fast path for respawns: pids are allocated sequentially, so
each poll reads the kernel's last allocated pid (/proc/sys/kernel/ns_last_pid) and opens the stat files of the
pids allocated since the previous poll only (retrying for a while those not visible yet: a pid becomes visible in
/proc a little after it is allocated, not always in order), with a full `scan()` every 20 ms as the fallback
(e.g. if the pid counter wrapped, which also triggers a re-check of the cached "others" by start time).
"""
import os
import time

PROC = "/proc"
LAST_PID = "/proc/sys/kernel/ns_last_pid"


def read_stat(pid):
    """(comm, state, ppid, starttime) of ``pid`` from /proc/<pid>/stat, or None if it is gone.

    comm may hold spaces and parentheses: it lies between the first '(' and the LAST ')'.
    """
    try:
        fd = os.open("/proc/%d/stat" % pid, os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 1024)
    except OSError:     # ESRCH: it went away between open and read
        return None
    finally:
        os.close(fd)
    left, right = data.find(b"("), data.rfind(b")")
    if left < 0 or right < 0:
        return None
    fields = data[right + 2:].split()
    # fields[0] is field 3 (state), fields[1] field 4 (ppid), fields[19] field 22 (starttime)
    return data[left + 1:right], fields[0], int(fields[1]), int(fields[19])


def last_pid():
    """The last pid the kernel allocated (in our pid namespace)."""
    with open(LAST_PID, "rb") as handle:
        return int(handle.read())


def list_pids():
    """Numeric entries of /proc (thread-group leaders, not threads)."""
    return {int(name) for name in os.listdir(PROC) if name.isdigit()}


def is_alive(pid, starttime=None):
    """The process exists, is not a zombie, and (when given) has this start time."""
    stat = read_stat(pid)
    return stat is not None and stat[1] != b"Z" and (starttime is None or stat[3] == starttime)


class ChildScanner:
    """The exec'd children (comm == ``comm``) of ``parent``, found incrementally; see the module docstring."""

    def __init__(self, parent, comm=b"sleep"):
        self.parent = parent
        self.comm = comm
        self.children = {}      # pid -> (starttime, monotonic time it was first seen exec'd)
        self.pending = set()    # forked by the parent, not exec'd yet
        self.others = {}        # pid -> starttime, not ours
        self.high = 0           # highest pid seen
        self.reads = 0          # stat files read (the cost of the scanning)

    def _classify(self, pid):
        """Read pid's stat once; True if it is a newly confirmed child."""
        self.reads += 1
        stat = read_stat(pid)
        if stat is None:
            self.pending.discard(pid)
            return False
        comm, _state, ppid, starttime = stat
        if pid > self.high:
            self.high = pid
        if ppid != self.parent:
            self.pending.discard(pid)
            self.others[pid] = starttime
            return False
        if comm != self.comm:
            self.pending.add(pid)
            return False
        self.pending.discard(pid)
        self.children[pid] = (starttime, time.monotonic())
        return True

    def _known(self, pid):
        return pid in self.children or pid in self.others

    def scan(self):
        """List /proc and classify what is new; returns the list of newly confirmed children."""
        pids = list_pids()
        for cache in (self.children, self.others):
            for pid in [pid for pid in cache if pid not in pids]:
                del cache[pid]
        self.pending &= pids
        fresh = [pid for pid in pids if not self._known(pid)]
        if any(pid < self.high - 1000 and pid not in self.pending for pid in fresh):
            self._recheck_others()      # the pid counter wrapped: a cached pid may be a new process now
        return [pid for pid in fresh if self._classify(pid)]

    def _recheck_others(self):
        for pid, starttime in list(self.others.items()):
            stat = read_stat(pid)
            if stat is None or stat[3] != starttime:
                del self.others[pid]
                if stat is not None:
                    self._classify(pid)

    def live_children(self):
        """Confirmed children still alive (not zombies), checked by start time."""
        return [pid for pid, (starttime, _seen) in self.children.items() if is_alive(pid, starttime)]

    def wait_for_count(self, count, timeout, interval=0.002):
        """Scan until ``count`` children were confirmed; the monotonic time the last one was seen, or None."""
        deadline = time.monotonic() + timeout
        while True:
            self.scan()
            if len(self.children) >= count:
                return max(seen for _start, seen in self.children.values())
            if time.monotonic() >= deadline:
                return None
            time.sleep(interval)

    def wait_new_child(self, timeout, interval=0.0002, full_every=0.02, retry=64):
        """Poll for a child that was not known before; (pid, monotonic time seen) or None after ``timeout``.

        Each poll reads the kernel's last allocated pid and the stat files of the pids allocated since the
        previous poll, plus the pending children and the recent pids that were allocated but not visible yet.
        """
        now = time.monotonic()
        deadline, next_full = now + timeout, now + full_every
        checked = last_pid()
        unseen = set()
        while True:
            for pid in list(self.pending):
                if self._classify(pid):
                    return pid, self.children[pid][1]
            newest = last_pid()
            if newest < checked:        # the pid counter wrapped: the full scan below finds the child
                checked, next_full = newest, now
            for pid in sorted(unseen) + list(range(checked + 1, newest + 1)):
                if self._known(pid):
                    unseen.discard(pid)
                elif self._classify(pid):
                    return pid, self.children[pid][1]
                elif pid in self.others or pid in self.pending:
                    unseen.discard(pid)
                elif pid > newest - retry:
                    unseen.add(pid)     # allocated, not in /proc yet (or already gone)
                else:
                    unseen.discard(pid)
            checked = newest
            now = time.monotonic()
            if now >= next_full:
                next_full = now + full_every
                found = self.scan()
                if found:
                    return found[0], self.children[found[0]][1]
            if now >= deadline:
                return None
            time.sleep(interval)
