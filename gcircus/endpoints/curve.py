"""CurveZMQ protection of the control and event endpoints.

- CurveZMQ: the server's key pair comes from a zmq.auth-style secret certificate
  file (`curve_secret_key`), the admitted clients from public certificate files
  or Z85 keys (`curve_allowed_keys`). Admission is decided by a small ZAP handler
  greenlet on zmq.green (pyzmq's own authenticator is a real thread); refusals
  are logged, as are handshakes that fail before ZAP is asked (a client without
  CurveZMQ, or one holding the wrong server key).
- Refusals are logged once per peer per REFUSAL_LOG_INTERVAL: a refused client that
  retries (a new connection per call) would otherwise write a line per attempt. The
  next line after a quiet interval says how many refusals it stands for.
"""
import collections
import glob
import logging
import os
import struct
import time

import gevent
import zmq.green as zmq
from zmq.utils import z85

from gcircus.endpoints.binding import bind_endpoint


logger = logging.getLogger("gcircus")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
# How long a rebind waits for libzmq to release the address it just unbound.
REBIND_TIMEOUT = 3.0
# One log line per refused peer per this many seconds; at most REFUSAL_PEERS peers are remembered (the
# least recently refused are forgotten first), so a scan from many addresses cannot grow the table.
REFUSAL_LOG_INTERVAL = 60.0
REFUSAL_PEERS = 1024


# -- keys ----------------------------------------------------------------------------------

def _zmq_auth():
    """pyzmq's certificate helpers (imported here: a daemon without CurveZMQ never loads them)."""
    from zmq import auth
    return auth


def create_keypair(directory, name):
    """Write `<name>.key` (public) and `<name>.key_secret` in directory; returns both paths."""
    os.makedirs(directory, exist_ok=True)
    return _zmq_auth().create_certificates(directory, name)


def load_keypair(spec):
    """(public, secret) Z85 keys from a secret certificate file or a (public, secret) pair."""
    if isinstance(spec, (tuple, list)):
        public, secret = spec
        return _as_key(public), _as_key(secret)
    public, secret = _zmq_auth().load_certificate(os.fspath(spec))
    if not secret:
        raise ValueError("%s holds no secret key (give the .key_secret file)" % spec)
    return public, secret


def load_public_key(spec):
    """A Z85 public key from a 40-character key or a certificate file."""
    if isinstance(spec, bytes) and len(spec) == 40:
        return spec
    if isinstance(spec, str) and len(spec) == 40 and not os.path.exists(spec):
        return spec.encode("ascii")
    public, _secret = _zmq_auth().load_certificate(os.fspath(spec))
    return public


def load_public_keys(spec):
    """The set of Z85 public keys named by spec: a directory of certificates (*.key),
    a certificate file, a Z85 key, or a list (or comma/space-separated string) of those."""
    if spec is None:
        return None
    if isinstance(spec, (str, bytes)) and not os.path.exists(spec):
        text = spec.decode() if isinstance(spec, bytes) else spec
        items = [item for item in text.replace(",", " ").split() if item]
    elif isinstance(spec, (list, tuple, set, frozenset)):
        items = list(spec)
    else:
        items = [spec]
    keys = set()
    for item in items:
        if isinstance(item, (str, os.PathLike)) and os.path.isdir(item):
            for path in sorted(glob.glob(os.path.join(item, "*.key"))):
                keys.add(load_public_key(path))
        else:
            keys.add(load_public_key(item))
    return keys


def _as_key(value):
    return value.encode("ascii") if isinstance(value, str) else value


def configure_client(socket, server_key, client_key=None):
    """Make socket a CurveZMQ client of the server whose public key is server_key.

    client_key: a secret certificate file or (public, secret); a fresh key pair
    when None (enough for an encrypted channel, not for admission by key).
    """
    if client_key is None:
        public, secret = zmq.curve_keypair()
    else:
        public, secret = load_keypair(client_key)
    socket.curve_serverkey = load_public_key(server_key)
    socket.curve_publickey = public
    socket.curve_secretkey = secret


# -- server side ---------------------------------------------------------------------------

class ServerSecurity:
    """The CurveZMQ configuration of an arbiter's endpoints."""

    def __init__(self, keypair, allowed_keys=None):
        self.public_key, self.secret_key = keypair
        self.allowed_keys = allowed_keys
        self.refusals = RefusalLog()    # every refusal on the endpoints this protects

    @classmethod
    def from_options(cls, options):
        """From arbiter options curve_secret_key / curve_allowed_keys; None when Curve is off."""
        secret_file = (options or {}).get("curve_secret_key")
        if not secret_file:
            return None
        try:
            keypair = load_keypair(secret_file)
        except (OSError, ValueError) as error:
            raise ValueError("curve_secret_key %s: %s" % (secret_file, error)) from error
        try:
            allowed = load_public_keys(options.get("curve_allowed_keys"))
        except (OSError, ValueError) as error:
            raise ValueError("curve_allowed_keys %s: %s" % (options.get("curve_allowed_keys"), error)) from error
        if allowed is None:
            logger.warning("CurveZMQ without curve_allowed_keys: traffic is encrypted, but any client "
                           "that knows the server's public key is admitted")
        return cls(keypair, allowed)

    def configure(self, socket, domain):
        socket.curve_server = True
        socket.curve_publickey = self.public_key
        socket.curve_secretkey = self.secret_key
        socket.zap_domain = domain.encode("utf-8")

    def protect(self, socket, endpoint, label):
        """Configure socket (before its bind) and start its guards; returns them (each has stop())."""
        domain = "gcircus.%s.%x" % (label, id(socket))
        self.configure(socket, domain)
        registration = ZapHandler.register(socket.context, domain, self.allowed_keys, label, endpoint,
                                           self.refusals)
        try:
            monitor = HandshakeMonitor(socket, label, endpoint, self.refusals).start()
        except Exception:
            registration.stop()
            raise
        return [registration, monitor]

    def rebind(self, publisher, label, options):
        """Bind an already bound PUB socket again, this time as a CurveZMQ server."""
        socket = publisher.socket
        endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT) or publisher.endpoint
        socket.unbind(endpoint)
        guards = self.protect(socket, publisher.endpoint, label)
        deadline = time.monotonic() + REBIND_TIMEOUT
        while True:
            try:
                bind_endpoint(socket, endpoint, options)
                break
            except OSError:
                # libzmq releases an unbound address in its I/O thread; give it a moment.
                if time.monotonic() > deadline:
                    for guard in guards:
                        guard.stop()
                    raise
                gevent.sleep(0.01)
        return guards


def monitor_event_id(frames):
    """The event number of a libzmq socket-monitor message (first frame: uint16 event, int32
    value). pyzmq's own parser lives in a module that imports asyncio (and ssl with it):
    megabytes of memory for a daemon that never uses them."""
    return struct.unpack("=hi", frames[0][:6])[0]


class RefusalLog:
    """Logs refusals at most once per peer per ``interval`` seconds and counts them all."""

    def __init__(self, interval=REFUSAL_LOG_INTERVAL, max_peers=REFUSAL_PEERS, clock=time.monotonic):
        self.interval = interval
        self.max_peers = max_peers
        self.clock = clock
        self.count = 0              # every refusal, logged or not
        self._peers = collections.OrderedDict()     # peer -> [when last logged, refusals not logged since]

    def refused(self, peer, message, *args):
        """Record one refusal of ``peer`` (any hashable); log ``message % args`` unless it was logged lately."""
        self.count += 1
        now = self.clock()
        entry = self._peers.get(peer)
        if entry is not None and now - entry[0] < self.interval:
            entry[1] += 1
            return
        if entry is not None and entry[1]:
            message += " (and %d more refusals of this peer in the %ds before, not logged)"
            args += (entry[1], round(now - entry[0]))
        self._peers[peer] = [now, 0]
        self._peers.move_to_end(peer)
        while len(self._peers) > self.max_peers:
            self._peers.popitem(last=False)
        logger.warning(message, *args)


class ZapHandler:
    """Answers libzmq's ZAP requests for one zmq context (inproc://zeromq.zap.01).

    Several sockets (and arbiters) may share a context: each registers its own ZAP
    domain with its own admitted keys; the handler lives while any is registered.
    """

    _by_context = {}

    def __init__(self, context):
        self.context = context
        self.domains = {}            # domain -> (allowed keys or None, label, endpoint, RefusalLog)
        self.unknown_domain = (set(), "?", "?", RefusalLog())   # a socket that is being closed
        self.socket = None
        self.greenlet = None

    @classmethod
    def register(cls, context, domain, allowed_keys, label, endpoint, refusals):
        handler = cls._by_context.get(id(context))
        if handler is None:
            handler = cls(context)
            handler.start()
            cls._by_context[id(context)] = handler
        handler.domains[domain] = (allowed_keys, label, endpoint, refusals)
        return _Registration(handler, domain)

    def start(self):
        socket = zmq.Socket(self.context, zmq.ROUTER)
        socket.linger = 0
        try:
            socket.bind(ZAP_ENDPOINT)
        except zmq.ZMQError as error:
            socket.close()
            raise OSError("cannot start the CurveZMQ authenticator: %s (is another ZAP handler "
                          "running on this zmq context?)" % error) from error
        self.socket = socket
        self.greenlet = gevent.spawn(self._serve_loop)
        self.greenlet.name = "zap"

    def unregister(self, domain):
        self.domains.pop(domain, None)
        if not self.domains:
            self.stop()

    def stop(self):
        if self._by_context.get(id(self.context)) is self:
            del self._by_context[id(self.context)]
        if self.greenlet is not None:
            self.greenlet.kill()
            self.greenlet = None
        if self.socket is not None:
            # unbound first: that releases the inproc address at once, where a close releases it once libzmq's
            # reaper gets to it, and the next handler (the next arbiter, or a restart) would find it taken
            try:
                self.socket.unbind(ZAP_ENDPOINT)
            except zmq.ZMQError:
                pass
            self.socket.close()
            self.socket = None

    def _serve_loop(self):
        """Owned by the ZapHandler; lives while any socket of its context uses CurveZMQ;
        answers each ZAP request at once."""
        while True:
            frames = self.socket.recv_multipart()
            try:
                reply = self._decide(frames)
            except Exception:
                logger.exception("CurveZMQ: bad ZAP request")
                continue
            if reply is not None:
                self.socket.send_multipart(reply, zmq.NOBLOCK)

    def _decide(self, frames):
        if b"" not in frames:
            return None
        split = frames.index(b"")
        envelope, request = frames[:split + 1], frames[split + 1:]
        if len(request) < 6:
            return None
        version, request_id, domain, address, _identity, mechanism = request[:6]
        credentials = request[6:]
        allowed, label, endpoint, refusals = self.domains.get(domain.decode("utf-8", "replace"),
                                                              self.unknown_domain)
        key = z85.encode(credentials[0]) if mechanism == b"CURVE" and credentials else None
        if key is not None and (allowed is None or key in allowed):
            status, text = b"200", b"OK"
        else:
            status, text = b"400", b"client key not allowed"
            refusals.refused((address, key, domain), "CurveZMQ: refused a %s client from %s on %s (%s): %s",
                                  mechanism.decode("ascii", "replace"), address.decode("utf-8", "replace"),
                                  endpoint, label, "key %s is not allowed" % key.decode() if key else
                                  "no client key")
        user = key or b""
        return envelope + [version, request_id, status, text, user, b""]


class _Registration:
    def __init__(self, handler, domain):
        self.handler = handler
        self.domain = domain

    def stop(self):
        self.handler.unregister(self.domain)


HANDSHAKE_EVENTS = {
    getattr(zmq, "EVENT_HANDSHAKE_FAILED_NO_DETAIL", 0x800): "handshake failed",
    getattr(zmq, "EVENT_HANDSHAKE_FAILED_PROTOCOL", 0x2000): "protocol error (no CurveZMQ, or the wrong server key?)",
}


class HandshakeMonitor:
    """Logs connections refused before ZAP is consulted (the ZAP handler logs the rest).

    libzmq's monitor events name our endpoint, not the peer: these are rate-limited per reason."""

    def __init__(self, socket, label, endpoint, refusals):
        self.socket = socket
        self.label = label
        self.endpoint = endpoint
        self.refusals = refusals
        self.address = "inproc://gcircus-monitor-%x" % id(socket)
        self.pair = None
        self.greenlet = None

    def start(self):
        mask = 0
        for event in HANDSHAKE_EVENTS:
            mask |= event
        self.socket.monitor(self.address, mask)
        self.pair = zmq.Socket(self.socket.context, zmq.PAIR)
        self.pair.linger = 0
        self.pair.connect(self.address)
        self.greenlet = gevent.spawn(self._watch_loop)
        self.greenlet.name = "monitor[%s]" % self.label
        return self

    def _watch_loop(self):
        """Owned by the HandshakeMonitor; lives as long as its socket; logs failed handshakes."""
        while True:
            reason = HANDSHAKE_EVENTS.get(monitor_event_id(self.pair.recv_multipart()))
            if reason is not None:
                self.refusals.refused((self.endpoint, reason), "CurveZMQ: refused a connection on %s (%s): %s",
                                      self.endpoint, self.label, reason)

    def stop(self):
        if self.greenlet is not None:
            self.greenlet.kill()
            self.greenlet = None
        try:
            self.socket.disable_monitor()
        except zmq.ZMQError:
            pass  # the socket is already closed
        if self.pair is not None:
            self.pair.close()
            self.pair = None
