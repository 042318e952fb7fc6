"""Critical watchers, health and sockets passed in by systemd, on an in-process arbiter."""
import os
import re
import socket

import pytest

from gcircus.hosting.health import health
from gcircus.sockets import CircusSocket, activation
from gcircus.sockets.activation import InheritedSockets
from gcircus.watcher import Watcher
from tests.conftest import child_cmd
from tests.fixtures.http_client import http_request
from tests.support.wait import wait_until

FLAPPING = {"use": "circus.plugins.flapping.Flapping", "name": "plugin:flapping",
            "attempts": "2", "window": "5", "max_retry": "0"}


def test_flapping_giving_up_on_a_critical_watcher_stops_the_arbiter(served_arbiter, events):
    web = Watcher("web", child_cmd("ready_then_sleep"))
    crasher = Watcher("crasher", "/bin/false", max_retry=-1, min_uptime=5, backoff_base=0.01, critical=True)
    arbiter = served_arbiter([web, crasher], plugins=[FLAPPING])
    wait_until(lambda: not arbiter.started.is_set(), 20, "the arbiter to stop")
    assert arbiter.critical_failure.startswith("critical watcher crasher gave up: flapping: 2 deaths within 5")
    assert web.is_stopped() and crasher.is_stopped() and not web.processes


def test_a_watcher_given_up_is_unhealthy_and_a_non_critical_one_leaves_the_arbiter_running(
        served_arbiter, call, events):
    web = Watcher("web", child_cmd("ready_then_sleep"))
    crasher = Watcher("crasher", "/bin/false", max_retry=-1, min_uptime=5, backoff_base=0.01)
    arbiter = served_arbiter([web, crasher], plugins=[FLAPPING])
    wait_until(lambda: crasher.gave_up, 20, "flapping to give up on crasher")
    reply = call("health")
    assert reply["healthy"] is False and reply["watchers"]["web"] == "ok"
    assert reply["problems"] == ["crasher: gave up: %s" % crasher.gave_up]
    assert arbiter.started.is_set() and web.is_active() and arbiter.critical_failure is None
    assert call("start", name="crasher", waiting=True)["status"] == "ok"
    assert crasher.gave_up is None               # a start forgets it


def test_health_of_a_crash_loop_and_of_a_stop_on_request(run_arbiter):
    looping = Watcher("looping", "/bin/false", max_retry=-1, backoff_base=1)
    arbiter = run_arbiter([looping])
    wait_until(looping.backoff, 10, "looping to back off")
    assert re.fullmatch(r"looping: backing off, next try in [0-9.e-]+ s \(0 of 1 processes running\)",
                        health(arbiter)["problems"][0])
    looping.stop()
    assert health(arbiter) == {"healthy": True, "problems": [], "watchers": {"looping": "ok"}}


def test_stop_with_gave_up_needs_a_name_and_a_string(served_arbiter, call):
    served_arbiter([Watcher("web", child_cmd("ready_then_sleep"))])
    assert call("stop", gave_up="why")["errno"] == 3
    assert call("stop", name="web", gave_up=5)["errno"] == 3


@pytest.fixture
def inherited(monkeypatch):
    """A listening socket as systemd would pass it, named web, in place of the environment's."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    sockets = InheritedSockets({"web": listener.fileno()})
    monkeypatch.setattr(activation, "_inherited", sockets)
    yield listener
    listener.close()


def test_a_socket_named_like_an_inherited_one_adopts_it(inherited):
    sock = CircusSocket("web", host="127.0.0.1", port=1)     # port 1 is never bound
    sock.bind_and_listen()
    try:
        assert sock.inherited and sock.port == inherited.getsockname()[1]
        assert os.fstat(sock.fileno()).st_ino == os.fstat(inherited.fileno()).st_ino
    finally:
        sock.close()
    sock.bind_and_listen()                       # reloadconfig or restart: adopted again
    try:
        assert os.fstat(sock.fileno()).st_ino == os.fstat(inherited.fileno()).st_ino
    finally:
        sock.close()
    assert activation.inherited_sockets().unused() == []


def test_an_inherited_socket_of_another_type_is_refused(monkeypatch):
    datagram = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    monkeypatch.setattr(activation, "_inherited", InheritedSockets({"web": datagram.fileno()}))
    try:
        with pytest.raises(OSError, match="socket web: the socket systemd passed is not a SOCK_STREAM socket"):
            CircusSocket("web", host="127.0.0.1", port=0).bind_and_listen()
    finally:
        datagram.close()


def test_listen_fds_of_another_process_are_ignored_and_removed():
    environ = {"LISTEN_FDS": "1", "LISTEN_PID": "1", "LISTEN_FDNAMES": "web", "HOME": "/root"}
    assert InheritedSockets.from_environ(environ, pid=os.getpid()).fds == {}
    assert environ == {"HOME": "/root"}


def test_dashboard_healthz_answers_like_gcircusctl_health(httpd_arbiter):
    looping = Watcher("looping", "/bin/false", max_retry=-1, backoff_base=1)
    arbiter, address = httpd_arbiter([looping], httpd_token="secret", httpd_metrics_token="probe")
    probe = {"Authorization": "Bearer probe"}
    assert http_request(address, "GET", "/healthz").status == 401
    wait_until(looping.backoff, 10, "looping to back off")
    reply = http_request(address, "GET", "/healthz", headers=probe)
    assert reply.status == 503 and reply.json()["healthy"] is False
    assert reply.json()["problems"][0].startswith("looping: backing off, next try in ")
    looping.stop()
    reply = http_request(address, "GET", "/healthz", headers=probe)
    assert reply.status == 200 and reply.json()["healthy"] is True
