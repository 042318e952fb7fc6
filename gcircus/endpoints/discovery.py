"""Circus's multicast discovery: with `[circus] multicast_endpoint = udp://GROUP:PORT` the daemon joins the
multicast GROUP and answers any datagram sent to GROUP:PORT (its content is ignored) with
`{"endpoint": "<control endpoint>"}` in JSON, so that tools on the network can find it.

Off unless configured: Circus listens on a default group, bound on every interface, and tells its control
endpoint to whoever asks. Here the socket is bound to the group address itself, so only datagrams sent to the
group reach it. As in Circus, a group outside 224.0.0.0/4 or a socket that cannot be set up is a warning and
discovery stays off; the daemon runs on.
"""
import ipaddress
import json
import logging
import socket
import struct
from urllib.parse import urlparse

import gevent
from gevent import socket as green_socket

logger = logging.getLogger("gcircus")

MAX_DATAGRAM = 65536
TTL = 255       # Circus's: the reply may cross routers, as far as the request came


def parse_multicast_endpoint(endpoint):
    """(group, port) of `udp://GROUP:PORT`; ValueError saying what is wrong."""
    url = urlparse(endpoint)
    try:
        group, port = url.hostname, url.port
    except ValueError as error:     # a port that is not a number
        raise ValueError("multicast_endpoint %r: %s" % (endpoint, error)) from None
    if url.scheme != "udp" or not group or port is None:
        raise ValueError("multicast_endpoint %r: expected udp://GROUP:PORT" % endpoint)
    try:
        is_multicast = ipaddress.IPv4Address(group).is_multicast
    except ValueError:
        is_multicast = False
    if not is_multicast:
        raise ValueError("multicast_endpoint %r: %s is not a multicast group (224.0.0.0 to 239.255.255.255)"
                         % (endpoint, group))
    return group, port


class DiscoveryResponder:
    """An arbiter service: start() binds and joins the group, stop() leaves it."""

    def __init__(self, multicast_endpoint, control_endpoint):
        self.multicast_endpoint = multicast_endpoint
        self.control_endpoint = control_endpoint    # a callable: the controller may be moved (reloadconfig)
        self.address = None         # (group, port) once listening
        self._socket = None
        self._greenlet = None

    def start(self):
        try:
            group, port = parse_multicast_endpoint(self.multicast_endpoint)
            self._socket = _group_socket(group, port)
        except (ValueError, OSError) as error:
            logger.warning("multicast discovery is off: %s", error)
            return self
        self.address = (group, port)
        self._greenlet = gevent.spawn(self._reply_loop)
        self._greenlet.name = "discovery[%s:%d]" % self.address
        logger.info("multicast discovery: answering on %s:%d", group, port)
        return self

    def stop(self):
        if self._greenlet is not None:
            self._greenlet.kill()
            self._greenlet = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _reply_loop(self):
        """Owned by the DiscoveryResponder; lives from start() to stop(); one reply per datagram."""
        while True:
            _request, peer = self._socket.recvfrom(MAX_DATAGRAM)
            reply = json.dumps({"endpoint": self.control_endpoint()}).encode("utf-8")
            try:
                self._socket.sendto(reply, peer)
            except OSError as error:     # that peer is unreachable: the next one may not be
                logger.debug("multicast discovery: cannot answer %s: %s", peer, error)


def _group_socket(group, port):
    sock = green_socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, TTL)
        sock.bind((group, port))
        membership = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("0.0.0.0"))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    except OSError:
        sock.close()
        raise
    return sock
