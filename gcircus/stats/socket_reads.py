"""Counting how often the arbiter's listening sockets have connections waiting
(the `reads` of `stat.sockets.<fd>` in Circus's stats stream).

Circus polls every socket with select() every 10 ms. Here a read watcher on the
hub per socket counts one observation when a connection is pending, then rests
10 ms before it looks again: the same figure, and no wake-up at all while no
client connects.

The rest is a fresh one-shot timer each time: restarting the same libev timer
object from a callback (this gevent) makes it fire at once, and a connection
left waiting in the accept queue then spun the hub ~100,000 times a second and
inflated `reads` as much.
"""
import gevent

READ = 1
RESOLUTION = 0.01   # at most one observation per socket per RESOLUTION seconds


class _Counted:
    __slots__ = ("sock", "fd", "io", "timer", "reads")

    def __init__(self, sock, fd):
        self.sock, self.fd = sock, fd
        self.io = self.timer = None
        self.reads = 0


class SocketReads:
    """Owned by the stats streamer; `sync(sockets)` follows the arbiter's socket set."""

    def __init__(self):
        self._counted = {}    # name -> _Counted
        self._loop = gevent.get_hub().loop

    def sync(self, sockets):
        """Watch exactly the bound sockets of `sockets` (name -> socket); returns
        [(fd, address, reads since the last call)], by name."""
        wanted = {}
        for name, sock in list(sockets.items()):
            fd = _fileno(sock)
            if fd >= 0 and getattr(sock, "so_reuseport", False) is not True:
                wanted[name] = (sock, fd)
        for name in list(self._counted):
            entry = self._counted[name]
            if name not in wanted or wanted[name] != (entry.sock, entry.fd):
                self._drop(name)
        counts = []
        for name, (sock, fd) in sorted(wanted.items()):
            entry = self._counted.get(name)
            if entry is None:
                entry = self._counted[name] = _Counted(sock, fd)
                self._arm(entry)
            counts.append((fd, _address(sock), entry.reads))
            entry.reads = 0
        return counts

    def _arm(self, entry):
        if _fileno(entry.sock) != entry.fd:
            return   # closed (or replaced) since: sync() drops it
        if entry.io is None:
            entry.io = self._loop.io(entry.fd, READ)
        entry.io.start(self._readable, entry)

    def _readable(self, entry):
        """Hub callback: a connection is pending; count it, look again in RESOLUTION."""
        entry.reads += 1
        entry.io.stop()
        if entry.timer is not None:
            entry.timer.close()
        entry.timer = self._loop.timer(RESOLUTION)
        entry.timer.start(self._arm, entry)

    def _drop(self, name):
        entry = self._counted.pop(name)
        for watcher in (entry.io, entry.timer):
            if watcher is not None:
                watcher.stop()
                watcher.close()

    def stop(self):
        for name in list(self._counted):
            self._drop(name)


def _fileno(sock):
    try:
        return sock.fileno()
    except OSError:
        return -1


def _address(sock):
    address = getattr(sock, "address", None)
    if isinstance(address, str):
        return address
    try:
        name = sock.getsockname()
    except OSError:
        return "?"
    if isinstance(name, tuple):
        return "%s:%s" % name[:2]
    return name.decode() if isinstance(name, bytes) else str(name)
