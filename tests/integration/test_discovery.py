"""Circus's multicast discovery: with [circus] multicast_endpoint = udp://GROUP:PORT the daemon joins GROUP and
answers any datagram sent there with {"endpoint": <control endpoint>}; without it nothing listens."""
import json
import logging
import socket

import psutil
from gevent import socket as green_socket

from tests.integration.plugin_support import free_udp_port

GROUP = "239.255.71.23"     # administratively scoped: never leaves the site


def udp_sockets_on(port):
    return [c.laddr for c in psutil.Process().net_connections(kind="udp") if c.laddr and c.laddr.port == port]


def discover(group, port, timeout=10):
    """What a discovering client gets back: the reply to one datagram sent to the group."""
    probe = green_socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        probe.settimeout(timeout)
        probe.sendto(b"where is circusd?", (group, port))
        data, _ = probe.recvfrom(65536)
        return json.loads(data)
    finally:
        probe.close()


def test_discovery_answers_with_the_control_endpoint(served_arbiter, endpoints):
    port = free_udp_port()
    served_arbiter(multicast_endpoint="udp://%s:%d" % (GROUP, port))
    assert discover(GROUP, port) == {"endpoint": endpoints.control}
    assert [tuple(address) for address in udp_sockets_on(port)] == [(GROUP, port)]   # the group only


def test_discovery_is_off_unless_configured(served_arbiter):
    arbiter = served_arbiter()
    assert arbiter.options.get("multicast_endpoint") is None
    assert udp_sockets_on(12027) == []        # Circus's default port


def test_a_bad_multicast_endpoint_is_a_warning(served_arbiter, caplog, call):
    caplog.set_level(logging.WARNING, logger="gcircus")
    served_arbiter(multicast_endpoint="udp://10.0.0.1:%d" % free_udp_port())
    assert "multicast_endpoint 'udp://10.0.0.1:" in caplog.text and "not a multicast group" in caplog.text
    assert call("status")["status"] == "ok"
