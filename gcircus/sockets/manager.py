"""The arbiter's sockets: SocketManager (name -> CircusSocket) and ProcessSockets.

- SocketManager binds every socket before any spawn, tolerates one that cannot bind,
  adds and removes sockets live (reloadconfig) and owns the on_demand starter. It
  reads like Circus's `arbiter.sockets` mapping; changes go through add()/remove().
- ProcessSockets: the fds one spawn passes; so_reuseport sockets get a fresh OS
  socket per process, closed in the parent right after the spawn.
"""
import errno
import logging
from collections.abc import Mapping

from gcircus.sockets.circus_socket import socket_error
from gcircus.sockets.on_demand import OnDemandStarter
from gcircus.sockets.usage import sockets_used_by

logger = logging.getLogger("gcircus")


class ProcessSockets:
    """The sockets one spawn hands to its process: `fds()` before, `close()` after (the
    child keeps its own copies, the arbiter must not leak one per spawn)."""

    def __init__(self, watcher):
        self.watcher = watcher
        self._own = []

    def fds(self):
        """name -> fd; a fresh socket for each so_reuseport socket the watcher uses."""
        sockets = self.watcher.sockets or {}
        used = sockets_used_by(self.watcher, sockets)
        fds = {}
        for name, sock in sockets.items():
            if getattr(sock, "so_reuseport", False) and name in used:
                own = sock.new_process_socket()
                self._own.append(own)
                fds[name] = own.fileno()
            elif sock.fileno() >= 0:
                fds[name] = sock.fileno()
            elif name in used:
                raise socket_error(errno.ENOTCONN, "socket %s is not bound (%s)"
                                   % (name, getattr(sock, "bind_error", None) or "not started"))
        return fds

    def close(self):
        """Close the per-process copies in the parent: the child holds its own."""
        for sock in self._own:
            sock.close()
        self._own = []


class SocketManager(Mapping):
    """The arbiter's sockets by name; binds them at start and closes them at stop.

    `start(arbiter)` binds every socket (one that cannot bind is logged, left
    unbound, and the rest carry on) and arms the on_demand starter; `add` and
    `remove` change the set live (reloadconfig) and tell the on_demand starter, so
    a read watcher never outlives its fd; `stop()` closes everything. Watchers hold
    this very object, so they see the changes at their next spawn.
    """

    def __init__(self, sockets=()):
        if hasattr(sockets, "values"):
            sockets = sockets.values()
        self._sockets = {sock.name: sock for sock in sockets or ()}
        self.arbiter = None
        self.on_demand = None

    def __getitem__(self, name):
        return self._sockets[name]

    def __iter__(self):
        return iter(self._sockets)

    def __len__(self):
        return len(self._sockets)

    def start(self, arbiter):
        self.arbiter = arbiter
        for sock in list(self._sockets.values()):
            self._bind(sock)
        self.on_demand = OnDemandStarter(arbiter, self)
        self.on_demand.start()

    @staticmethod
    def _bind(sock):
        if not hasattr(sock, "bind_and_listen"):
            return False
        try:
            sock.bind_and_listen()
        except OSError as error:
            logger.error("%s", error)
            return False
        logger.debug("socket %s bound on %s (fd %d)", sock.name, sock.address, sock.fileno())
        return True

    def _changed(self):
        if self.on_demand is not None:
            self.on_demand.refresh()

    def add(self, sock):
        """Add a socket (bound at once when the arbiter runs); returns True if it is bound."""
        if sock.name in self._sockets:
            raise ValueError("a socket named %r already exists" % sock.name)
        bound = self.arbiter is not None and self._bind(sock)
        self._sockets[sock.name] = sock
        self._changed()
        return bound

    def remove(self, name):
        """Remove and close a socket; KeyError if unknown."""
        sock = self._sockets.pop(name)
        self._changed()             # on_demand stops watching its fd before it is closed
        sock.close()
        return sock

    def stop(self):
        if self.on_demand is not None:
            self.on_demand.stop()
            self.on_demand = None
        for sock in list(self._sockets.values()):
            if hasattr(sock, "close"):
                sock.close()
        self.arbiter = None
