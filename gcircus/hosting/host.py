"""Host: what gcircusd's host (systemd, a container runtime) gives it and expects back.

Read once at daemon start, before any arbiter is built (the environment variables meant
for us are removed then, so no child inherits them): the systemd notifier and watchdog,
the sockets systemd passed in, the subreaper role, the record of the children (which a
gcircusd restarted after a crash reads to stop what its predecessor left running).
gcircusd attaches every arbiter it runs, and closes the Host when it exits.
"""
import logging
import os

from gcircus.hosting.notify import SystemdNotifier
from gcircus.supervision import children_record
from gcircus.sockets.activation import inherited_sockets

logger = logging.getLogger("gcircus")

# gcircusd's exit status when a critical watcher gave up (0: stopped as asked, 1: could not start)
EXIT_CRITICAL = 3
# how long adopted orphans get to stop at exit when the arbiter had no watcher to take it from
DEFAULT_ORPHAN_GRACE = 10.0


class Host:
    """notifier: a SystemdNotifier or None; subreaper: a Subreaper or None; record: a
    children_record.ChildRecord or None."""

    def __init__(self, notifier=None, subreaper=None, record=None):
        self.notifier = notifier
        self.subreaper = subreaper
        self.record = record
        self.arbiter = None
        self._warned_unused = False

    @classmethod
    def from_environ(cls, subreaper=False, config_path=None):
        """The host as this process's environment describes it. subreaper: --subreaper; PID 1
        (a container's init) is always a subreaper. config_path: the daemon's configuration, whose
        children are recorded (None: no record)."""
        inherited_sockets()              # take LISTEN_FDS now, before any child env is built
        notifier = SystemdNotifier.from_environ()
        reaper = None
        if subreaper or os.getpid() == 1:
            from gcircus.hosting.subreaper import Subreaper     # here: it loads ctypes and psutil
            reaper = Subreaper()
        record = None
        if config_path is not None:
            try:
                record = children_record.ChildRecord(children_record.default_path(config_path))
            except OSError as error:
                logger.warning("children are not recorded (%s): a restart after a crash will not stop "
                               "the processes a killed daemon left running", error)
        return cls(notifier, reaper, record)

    def start(self):
        """Once, before the first arbiter starts: stop the processes a crashed predecessor left, start
        recording ours. OSError when the subreaper role is refused."""
        if self.subreaper is not None:
            self.subreaper.start()
        if self.record is not None:
            try:
                claimed = self.record.claim()
            except OSError as error:
                logger.warning("children are not recorded (%s: %s)", self.record.path, error)
                claimed = False
            else:
                if not claimed:
                    logger.warning("children are not recorded: another gcircusd of this configuration "
                                   "holds %s", self.record.path)
            if claimed:
                children_record.current = self.record
            else:
                self.record = None

    def attach(self, arbiter):
        """Report on this arbiter (each start of the daemon) from now on."""
        self.arbiter = arbiter
        if self.notifier is not None:
            self.notifier.attach(arbiter)
        arbiter.lifecycle_listeners.append(self._on_lifecycle)

    def _on_lifecycle(self, arbiter, event):
        if event == "ready" and not self._warned_unused:
            self._warned_unused = True
            for name in inherited_sockets().unused():
                logger.warning("systemd passed a socket named %r that no [socket:%s] section uses",
                               name, name)

    def close(self):
        """The daemon exits: adopted orphans are stopped, systemd hears nothing more."""
        try:
            if self.subreaper is not None:
                watchers = self.arbiter.watchers if self.arbiter is not None else []
                graces = [w.graceful_timeout for w in watchers]
                self.subreaper.grace = max(graces) if graces else DEFAULT_ORPHAN_GRACE
                self.subreaper.stop_orphans()
        finally:
            if self.notifier is not None:
                self.notifier.close()
            if self.record is not None:
                children_record.current = None
                self.record.close()
