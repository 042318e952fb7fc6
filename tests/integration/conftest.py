"""Control-plane fixtures: an arbiter serving its controller and events on loopback
ports chosen at run time, a client, a wire-level event subscriber."""
import json
import socket
import time
from types import SimpleNamespace

import gevent
import pytest

from gcircus.client import CircusClient, CircusConsumer
from gcircus.config import load_config
from gcircus.config.build import arbiter_from_config


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def loopback_endpoints():
    return SimpleNamespace(control="tcp://127.0.0.1:%d" % free_port(),
                           pubsub="tcp://127.0.0.1:%d" % free_port())


@pytest.fixture
def endpoints():
    return loopback_endpoints()


@pytest.fixture
def served_arbiter(run_arbiter, endpoints):
    """served_arbiter(watchers, **kw) -> an Arbiter answering on endpoints.control."""
    def start(watchers=(), **kw):
        kw.setdefault("endpoint", endpoints.control)
        kw.setdefault("pubsub_endpoint", endpoints.pubsub)
        return run_arbiter(list(watchers), **kw)
    return start


@pytest.fixture
def client(endpoints):
    """A CircusClient on the test's hub (green: the arbiter runs while it waits)."""
    circus_client = CircusClient(endpoint=endpoints.control, timeout=15)
    yield circus_client
    circus_client.stop()


@pytest.fixture
def call(client):
    """call(command, **props) -> the reply dict."""
    def send(command, **props):
        return client.call({"command": command, "properties": props})
    return send


class WireEvents:
    """Events as a remote subscriber gets them (topic and body bytes), with deadlines."""

    def __init__(self, endpoint):
        self.consumer = CircusConsumer([b"watcher."], endpoint=endpoint, timeout=0.2).connect()
        self.received = []

    def sync(self, publisher, timeout=10):
        """Wait until the subscription is live (zmq's slow joiner) by publishing probes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            publisher.publish("watcher.probe.sync", {"time": time.time()})
            message = self.consumer.recv(0.05)
            if message is not None:
                self.received.append(message)
                return
        pytest.fail("the event subscription never became live")

    def wait_for(self, topic, count=1, timeout=10):
        """The bodies (decoded) of the first `count` events with this topic."""
        deadline = time.monotonic() + timeout
        while True:
            found = [body for t, body in self.received if t == topic.encode()]
            if len(found) >= count:
                return [json.loads(body) for body in found[:count]]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail("no %d x %s within %ss; got %s" % (count, topic, timeout,
                                                              [t for t, _ in self.received][-20:]))
            message = self.consumer.recv(min(remaining, 0.5))
            if message is not None:
                self.received.append(message)

    def topics(self):
        return [t.decode() for t, _ in self.received if not t.startswith(b"watcher.probe.")]

    def close(self):
        self.consumer.stop()


@pytest.fixture
def wire_events(endpoints):
    subscriber = WireEvents(endpoints.pubsub)
    yield subscriber
    subscriber.close()


def timed(function, *args, **kw):
    """(result, seconds) of one call."""
    started = time.monotonic()
    result = function(*args, **kw)
    return result, time.monotonic() - started


@pytest.fixture
def httpd_arbiter(run_arbiter):
    """httpd_arbiter(watchers, **kw) -> (arbiter, (host, port)): a running arbiter serving its dashboard on a
    loopback port chosen by the kernel."""
    def start(watchers=(), **kw):
        kw.setdefault("httpd", True)
        kw.setdefault("httpd_port", 0)
        arbiter = run_arbiter(list(watchers), **kw)
        assert arbiter.http_server is not None, "the dashboard did not start"
        return arbiter, arbiter.http_server.address[:2]
    return start


@pytest.fixture
def from_file(tmp_path, events):
    """from_file(ini text) -> (a started arbiter built from that file, its path); the arbiter's
    events go to the `events` recorder; every arbiter is stopped at teardown."""
    started = []

    def start(text):
        path = tmp_path / "gcircus.ini"
        path.write_text(text)
        arbiter = arbiter_from_config(load_config(str(path)), config_file=str(path))
        arbiter.handle_signals = False
        arbiter.publisher.add_listener(events)
        greenlet = gevent.spawn(arbiter.start)
        started.append((arbiter, greenlet))
        assert arbiter.wait_started(15)
        return arbiter, path

    yield start
    for arbiter, greenlet in started:
        with gevent.Timeout(60, False):
            arbiter.stop()
        greenlet.join(10)
