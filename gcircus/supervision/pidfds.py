"""Waiting for processes that are not our children (a child's children, with stop_children).

The kernel reports their exit through a pidfd (Linux 5.3+): it becomes readable when the
process ends, so the hub waits on it like on a socket, and a signal sent through it can
never reach an unrelated process that reused the pid. Without pidfd support we poll.
"""
import os
import signal
import time

import gevent
from gevent.socket import wait_read

_POLL_INTERVAL = 0.05   # only where pidfd_open is missing (old kernels)


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
                self._forget(pid)

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
                self._forget(pid)
                continue
            while _alive(pid) and time.monotonic() < deadline:
                gevent.sleep(_POLL_INTERVAL)
            if not _alive(pid):
                self._forget(pid)
        return sorted(self.handles)

    def close(self):
        for pid in list(self.handles):
            self._forget(pid)

    def _forget(self, pid):
        fd = self.handles.pop(pid, None)
        if fd is not None:
            os.close(fd)


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
