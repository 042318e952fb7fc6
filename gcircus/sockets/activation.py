"""Sockets passed in by systemd's socket activation (sd_listen_fds, without libsystemd).

systemd opens a .socket unit's listening sockets itself (so a port below 1024 needs no
root in the daemon, and the socket outlives a daemon restart), then starts the service
with them as fds 3, 4, ... and says so in the environment: LISTEN_FDS (how many),
LISTEN_PID (for which process: a child that inherits the variables must not take them)
and LISTEN_FDNAMES (their names, colon-separated; FileDescriptorName= in the unit).

A `[socket:NAME]` whose name matches one of them adopts it instead of binding: its
address is the one systemd bound, and it is never bound again. The inherited fds stay
open for the daemon's lifetime (close-on-exec: children get the copies their watcher
passes), so the socket survives reloadconfig and `restart`, as it survives a daemon
restart under systemd.
"""
import fcntl
import logging
import os
import socket

logger = logging.getLogger("gcircus")

SD_LISTEN_FDS_START = 3
LISTEN_VARIABLES = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


class InheritedSockets:
    """name -> inherited fd, read once from the environment (the variables are then removed)."""

    def __init__(self, fds_by_name=None):
        self.fds = dict(fds_by_name or {})
        self.adopted = set()         # names some CircusSocket has adopted

    @classmethod
    def from_environ(cls, environ=None, pid=None):
        environ = os.environ if environ is None else environ
        pid = os.getpid() if pid is None else pid
        count, owner, names = (environ.pop(name, None) for name in LISTEN_VARIABLES)
        if count is None:
            return cls()
        if owner is None or owner.strip() != str(pid):
            logger.debug("LISTEN_FDS is for process %s, not us: ignored", owner)
            return cls()
        try:
            count = int(count)
        except ValueError:
            logger.warning("LISTEN_FDS=%r is not a number: no socket taken from systemd", count)
            return cls()
        names = names.split(":") if names else []
        fds = {}
        for index in range(count):
            fd = SD_LISTEN_FDS_START + index
            # [socket:NAME] names are lower-cased by the config loader: match them so
            name = (names[index] if index < len(names) else "unknown").lower()
            try:
                flags = fcntl.fcntl(fd, fcntl.F_GETFD)
            except OSError:
                logger.warning("LISTEN_FDS: fd %d (%s) is not open: ignored", fd, name)
                continue
            fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
            if name in fds:
                logger.warning("LISTEN_FDNAMES names two sockets %r (fds %d and %d): the first is used",
                               name, fds[name], fd)
                continue
            fds[name] = fd
        if fds:
            logger.info("sockets passed by systemd: %s",
                        ", ".join("%s (fd %d)" % item for item in sorted(fds.items())))
        return cls(fds)

    def take(self, name):
        """A new socket object on (a duplicate of) the inherited fd called name, or None."""
        fd = self.fds.get(name.lower())
        if fd is None:
            return None
        self.adopted.add(name.lower())
        return socket.socket(fileno=os.dup(fd))

    def unused(self):
        """Names of inherited sockets no CircusSocket has adopted."""
        return sorted(set(self.fds) - self.adopted)


_inherited = None


def inherited_sockets():
    """The process's inherited sockets (read from the environment at the first call)."""
    global _inherited
    if _inherited is None:
        _inherited = InheritedSockets.from_environ()
    return _inherited
