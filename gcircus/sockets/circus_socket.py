"""CircusSocket: one listening socket the arbiter holds for its watchers (Circus's keyword signature).

The OS socket is created by bind_and_listen(), so a closed CircusSocket can be bound
again (arbiter restart, reloadconfig).

so_reuseport sockets are bound (never listened on) by the arbiter too: that
reserves the port, turns port 0 into a real port every process then shares, and
takes no connections (the kernel only balances over listening sockets).
"""
import errno
import logging
import os
import socket

from gevent import socket as green_socket

from gcircus import converters as conv
from gcircus.options import SOCKET_DEFAULTS, SOCKET_OPTIONS
from gcircus.sockets.activation import inherited_sockets

logger = logging.getLogger("gcircus")

LISTENING_TYPES = (socket.SOCK_STREAM, socket.SOCK_SEQPACKET)
# Constructor defaults, written once in the option table.
_D = SOCKET_DEFAULTS


def _proto(value):
    """Protocol number from an int, a numeric string or a name for getprotobyname."""
    if value in (None, ""):
        return 0
    proto = conv.to_socket_proto(value)
    if isinstance(proto, int):
        return proto
    try:
        return socket.getprotobyname(proto)
    except OSError:
        raise ValueError("unknown protocol %r" % value) from None


def socket_error(number, message):
    """An OSError whose text is exactly `message` (no '[Errno n]' prefix) and whose errno is set."""
    error = OSError(message)
    error.errno = number
    return error


class CircusSocket:
    """A listening socket shared by the processes of one or more watchers.

    :param name: referenced as ``$(circus.sockets.<name>)``.
    :param host, port: address; ``port=0`` asks for an ephemeral port, the real
        port is readable from ``port`` once bound.
    :param path: unix socket path (forces AF_UNIX; host and port become None).
    :param family, type, proto: constants or their names (``'AF_INET6'``, ``'tcp'``).
    :param backlog: listen backlog.
    :param umask: applied while binding a unix socket (int, or octal string).
    :param replace: unlink an existing unix socket file instead of failing.
    :param interface: bind to this device (SO_BINDTODEVICE).
    :param so_reuseport: each process gets its own socket on the same port.
    :param blocking: leave the fd blocking (non-blocking by default).
    """

    def __init__(self, name="", host=_D["host"], port=_D["port"], family=_D["family"], type=_D["type"],
                 proto=_D["proto"], backlog=_D["backlog"], path=None, umask=None, replace=_D["replace"],
                 interface=None, so_reuseport=_D["so_reuseport"], blocking=_D["blocking"]):
        self.name = name
        self.path = path
        self.family = socket.AF_UNIX if path else getattr(socket, conv.to_socket_family(family))
        if self.family == socket.AF_UNIX and not path:
            raise ValueError("socket %s: an AF_UNIX socket needs a path" % name)
        self.is_unix = self.family == socket.AF_UNIX
        self.host, self.port = (None, None) if self.is_unix else (host, conv.to_port(port))
        self.socktype = getattr(socket, conv.to_socket_type(type))
        self.proto = _proto(proto)
        self.backlog = conv.to_backlog(backlog)
        self.umask = None if umask is None else conv.to_umask(umask)
        self.replace = bool(replace)
        self.interface = interface or None
        if so_reuseport and self.is_unix:
            raise ValueError("socket %s: so_reuseport needs an AF_INET or AF_INET6 socket" % name)
        self.so_reuseport = bool(so_reuseport) and hasattr(socket, "SO_REUSEPORT")
        self.blocking = bool(blocking)
        self.config = None              # the [socket:NAME] dict, when loaded from a config
        self.bind_error = None          # why the last bind failed, for logs
        self._configured = (self.host, self.port)
        self._sock = None
        self._address = None            # resolved at bind, reused by per-process copies
        self._path_id = None            # (st_dev, st_ino) of the unix socket file we created
        self.inherited = False          # the socket is systemd's (socket activation), not bound by us

    @classmethod
    def load_from_config(cls, config):
        """Build from a `[socket:NAME]` dict (gcircus.config); unknown keys are ignored."""
        kwargs = {key: config[key] for key in SOCKET_OPTIONS if config.get(key) is not None}
        sock = cls(name=config["name"], **kwargs)
        sock.config = dict(config)
        return sock

    # -- binding -------------------------------------------------------------------

    @property
    def address(self):
        """'host:port' (resolved once known) or the unix path, for messages."""
        if self.is_unix:
            return self.path
        host, port = self._address[:2] if self._address else (self.host, self.port)
        if self.family == socket.AF_INET6:
            return "[%s]:%s" % (host, port)
        return "%s:%s" % (host, port)

    def _resolve(self):
        if self.is_unix:
            return self.path
        if self._address is None:
            # gevent's resolver: a slow DNS answer must not freeze the hub
            infos = green_socket.getaddrinfo(self.host, self.port, self.family, self.socktype)
            if not infos:
                raise OSError(errno.EADDRNOTAVAIL, "cannot resolve %r" % self.host)
            self._address = infos[0][4]
        return self._address

    def _new_socket(self, reuseport):
        sock = socket.socket(self.family, self.socktype, self.proto)
        try:
            if not self.is_unix:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuseport:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if self.interface:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE,
                                self.interface.encode() + b"\0")
            sock.setblocking(self.blocking)
        except BaseException:
            sock.close()
            raise
        return sock

    def _bind_unix(self, sock):
        if os.path.exists(self.path):
            if not self.replace:
                raise OSError(errno.EEXIST, "%s already exists (set replace = true to remove it, "
                                            "or remove it if it is a stale socket file)" % self.path)
            os.unlink(self.path)
        previous = os.umask(self.umask) if self.umask is not None else None
        try:
            sock.bind(self.path)
        finally:
            if previous is not None:
                os.umask(previous)
        created = os.stat(self.path)
        self._path_id = (created.st_dev, created.st_ino)

    def bind_and_listen(self):
        """Bind (and listen, for stream sockets); OSError naming the socket on failure.

        so_reuseport sockets are only bound here: processes listen on their own copies.
        """
        if self._sock is not None:
            return
        self.bind_error = None
        inherited = inherited_sockets().take(self.name)
        if inherited is not None:
            self._adopt(inherited)
            return
        try:
            sock = self._new_socket(self.so_reuseport)
            try:
                if self.is_unix:
                    self._bind_unix(sock)
                else:
                    sock.bind(self._resolve())
                    self.host, self.port = sock.getsockname()[:2]
                    self._address = (self.host, self.port) + tuple(self._address[2:])
                if self.socktype in LISTENING_TYPES and not self.so_reuseport:
                    sock.listen(self.backlog)
            except BaseException:
                sock.close()
                raise
        except OSError as error:
            self.bind_error = "cannot bind %s: %s" % (self.address, error)
            raise socket_error(error.errno, "socket %s: %s" % (self.name, self.bind_error)) from error
        self._sock = sock

    def _adopt(self, sock):
        """Use the listening socket systemd passed under our name: never bind it again."""
        configured = self.address
        if sock.type != self.socktype:
            sock.close()
            self.bind_error = "the socket systemd passed is not a %s socket" % socket.SocketKind(self.socktype).name
            raise socket_error(errno.EPROTOTYPE, "socket %s: %s" % (self.name, self.bind_error))
        self.family, self.is_unix = sock.family, sock.family == socket.AF_UNIX
        if self.is_unix:
            self.path, self.host, self.port = sock.getsockname() or self.path, None, None
        else:
            self.host, self.port = sock.getsockname()[:2]
            self._address = sock.getsockname()
        if self.so_reuseport:
            # a socket per process means binding the address again: systemd's socket is shared instead
            logger.warning("socket %s: so_reuseport ignored, the processes share systemd's socket", self.name)
            self.so_reuseport = False
        if self.socktype in LISTENING_TYPES and not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            sock.listen(self.backlog)
        sock.setblocking(self.blocking)
        self.inherited = True
        self._sock = sock
        logger.info("socket %s: using the socket systemd passed (%s)%s", self.name, self.address,
                    "" if configured == self.address else "; the configured %s is not bound" % configured)

    def new_process_socket(self):
        """A fresh bound+listening OS socket on the same address (so_reuseport); caller closes it."""
        if self._sock is None:
            raise socket_error(errno.ENOTCONN, "socket %s is not bound (%s)"
                               % (self.name, self.bind_error or "not started"))
        sock = self._new_socket(True)
        try:
            sock.bind(self._address)
            if self.socktype in LISTENING_TYPES:
                sock.listen(self.backlog)
        except OSError as error:
            sock.close()
            raise socket_error(error.errno, "socket %s: cannot bind %s for a process: %s"
                               % (self.name, self.address, error)) from error
        return sock

    @property
    def bound(self):
        return self._sock is not None

    def fileno(self):
        """The fd, or -1 when not bound (like a closed socket)."""
        return self._sock.fileno() if self._sock is not None else -1

    def close(self):
        """Close the socket and remove the unix socket file it created (if still there)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self.host, self.port = self._configured
        self._address = None
        if self._path_id is not None:
            path_id, self._path_id = self._path_id, None
            try:
                current = os.stat(self.path)
                # another socket may have replaced ours (replace = true): leave its file alone
                if (current.st_dev, current.st_ino) == path_id:
                    os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __getattr__(self, name):
        # The rest of the socket API (getsockname, accept, setsockopt...) as Circus's
        # socket subclass offers it, once bound.
        sock = self.__dict__.get("_sock")
        if sock is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(sock, name)

    def __repr__(self):
        return "<CircusSocket %s %s fd=%s>" % (self.name, self.address, self.fileno())
