"""Helpers for the shipped-plugin tests: a statsd server (UDP) collecting metric
lines, a free UDP port, and the running instance of a hosted plugin."""
import socket as stdlib_socket
import time

import gevent
import pytest
from gevent import socket
from gevent.event import Event

from tests.support.wait import wait_until


class StatsdListener:
    """A UDP statsd endpoint on loopback; `lines` are the metrics received, in order."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.lines = []
        self._changed = Event()
        self._reader = gevent.spawn(self._read_loop)

    def _read_loop(self):
        while True:
            data, _ = self.sock.recvfrom(65536)
            self.lines.extend(data.decode().splitlines())
            self._changed.set()

    def matching(self, prefix):
        return [line for line in self.lines if line.startswith(prefix)]

    def wait_for(self, prefix, count=1, timeout=10):
        """The first `count` metric lines starting with prefix."""
        wait_until(lambda: len(self.matching(prefix)) >= count, timeout, "statsd: %d x %r" % (count, prefix),
                   changed=self._changed, detail=lambda: "it got %s" % self.lines[-20:])
        return self.matching(prefix)[:count]

    def close(self):
        self._reader.kill()
        self.sock.close()


def statsd_fixture():
    """A `statsd` fixture for a test module: `statsd = statsd_fixture()`."""
    @pytest.fixture
    def statsd():
        listener = StatsdListener()
        yield listener
        listener.close()
    return statsd


def free_udp_port():
    with stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def plugin_instance(arbiter, name, timeout=10):
    """The running instance of the plugin `name` (once it has passed handle_init)."""
    runner = arbiter.get_watcher(name).runner
    deadline = time.monotonic() + timeout
    while runner.instance is None or not runner.instance.running:
        if time.monotonic() > deadline:
            pytest.fail("plugin %s never started" % name)
        gevent.sleep(0.01)
    return runner.instance


def statsd_options(listener, **options):
    return dict(options, host="127.0.0.1", port=str(listener.port))
