"""CurveZMQ on the control and event endpoints, and ipc endpoint ownership and
mode: only admitted client keys get answers; refusals are logged."""
import contextlib
import logging
import os
import pwd
import stat
import tempfile

import gevent
import pytest
import zmq.green as zmq

from gcircus.endpoints import curve
from gcircus.client import CircusClient, CircusConsumer
from gcircus.exc import CallError
from gcircus.watcher import Watcher
from tests.support.wait import wait_until


@pytest.fixture
def keys(tmp_path):
    admitted = tmp_path / "admitted"
    server_public, server_secret = curve.create_keypair(str(tmp_path / "server"), "server")
    good_public, good_secret = curve.create_keypair(str(admitted), "good")
    _, bad_secret = curve.create_keypair(str(tmp_path / "others"), "bad")
    return dict(server_public=server_public, server_secret=server_secret, admitted=str(admitted),
                good=good_secret, bad=bad_secret)


@pytest.fixture
def secured(served_arbiter, keys):
    def start(**kw):
        return served_arbiter([Watcher("web", "sleep 120")], curve_secret_key=keys["server_secret"],
                              curve_allowed_keys=keys["admitted"], **kw)
    return start


def wait_for_log(caplog, text, timeout=5):
    # log records have no event to wait on: polled
    wait_until(lambda: text in caplog.text, timeout, "a log line with %r" % text, detail=lambda: caplog.text)


@contextlib.contextmanager
def unanswered(client, command):
    """Send command from client and keep it waiting while the body runs; then check it never got an answer.
    A client that gave up after a short timeout could close before its handshake reached the daemon (on a
    loaded machine), and never be refused or logged."""
    attempt = gevent.spawn(client.send_message, command)
    try:
        yield
    finally:
        client.stop()
        attempt.join(10)
    assert isinstance(attempt.exception, CallError), attempt.value


def test_admitted_key_is_served(secured, endpoints, keys):
    secured()
    with CircusClient(endpoint=endpoints.control, timeout=10, curve_server_key=keys["server_public"],
                      curve_client_key=keys["good"]) as client:
        assert client.send_message("list")["watchers"] == ["web"]


def test_unknown_key_gets_no_answer_and_is_logged(secured, endpoints, keys, caplog):
    caplog.set_level(logging.WARNING, logger="gcircus")
    secured()
    bad_public, _ = curve.load_keypair(keys["bad"])
    intruder = CircusClient(endpoint=endpoints.control, timeout=30, curve_server_key=keys["server_public"],
                            curve_client_key=keys["bad"])
    with unanswered(intruder, "quit"):
        wait_for_log(caplog, "key %s is not allowed" % bad_public.decode())
    assert "CurveZMQ: refused a CURVE client" in caplog.text


def test_client_without_curve_gets_no_answer_and_is_logged(secured, endpoints, keys, caplog):
    caplog.set_level(logging.WARNING, logger="gcircus")
    arbiter = secured()
    with unanswered(CircusClient(endpoint=endpoints.control, timeout=30), "quit"):
        wait_for_log(caplog, "CurveZMQ: refused a connection on %s" % endpoints.control)
    assert arbiter.watchers[0].is_active()


def test_events_are_protected_too(secured, endpoints, keys, caplog):
    caplog.set_level(logging.WARNING, logger="gcircus")
    arbiter = secured()
    admitted = CircusConsumer(["watcher."], endpoint=endpoints.pubsub, curve_server_key=keys["server_public"],
                              curve_client_key=keys["good"]).connect()
    intruder = CircusConsumer(["watcher."], endpoint=endpoints.pubsub, curve_server_key=keys["server_public"],
                              curve_client_key=keys["bad"]).connect()
    try:
        with gevent.Timeout(10):
            message = None
            while message is None:        # until the admitted subscription is live
                arbiter.publisher.publish("watcher.web.probe", {"n": 1})
                message = admitted.recv(0.05)
        assert message[0] == b"watcher.web.probe"
        assert intruder.recv(0.3) is None
        wait_for_log(caplog, "(events)")
    finally:
        admitted.stop()
        intruder.stop()


def test_listing_admitted_keys_as_files_and_z85(keys):
    good_public, _ = curve.load_keypair(keys["good"])
    from_dir = curve.load_public_keys(keys["admitted"])
    from_list = curve.load_public_keys([os.path.join(keys["admitted"], "good.key"), good_public])
    from_text = curve.load_public_keys("%s, %s" % (good_public.decode(), good_public.decode()))
    assert from_dir == from_list == from_text == {good_public}


def test_ipc_endpoint_owner_and_mode(served_arbiter, call):
    directory = tempfile.mkdtemp(prefix="gc-", dir="/tmp")
    control, events = "ipc://%s/ctl.sock" % directory, "ipc://%s/pub.sock" % directory
    nobody = pwd.getpwnam("nobody")
    try:
        served_arbiter([], endpoint=control, pubsub_endpoint=events, endpoint_owner="nobody",
                       endpoint_mode="0660")
        for path in (control[6:], events[6:]):
            info = os.stat(path)
            assert stat.S_IMODE(info.st_mode) == 0o660, oct(info.st_mode)
            assert info.st_uid == nobody.pw_uid
        with CircusClient(endpoint=control, timeout=10) as client:
            refused = client.send_message("add", name="mine", cmd="sleep 1")
            assert refused["errno"] == 3 and "endpoint_owner" in refused["reason"]
            assert client.send_message("add", name="theirs", cmd="sleep 1",
                                       options={"uid": "nobody"})["status"] == "ok"
    finally:
        for name in ("ctl.sock", "pub.sock"):
            if os.path.exists(os.path.join(directory, name)):
                os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


def test_curve_on_ipc_endpoints_keeps_their_mode(served_arbiter, keys):
    directory = tempfile.mkdtemp(prefix="gc-", dir="/tmp")
    control, events = "ipc://%s/ctl.sock" % directory, "ipc://%s/pub.sock" % directory
    try:
        served_arbiter([], endpoint=control, pubsub_endpoint=events, endpoint_mode=0o600,
                       curve_secret_key=keys["server_secret"], curve_allowed_keys=keys["admitted"])
        for path in (control[6:], events[6:]):      # the event socket was bound again, for CurveZMQ
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with CircusClient(endpoint=control, timeout=10, curve_server_key=keys["server_public"],
                          curve_client_key=keys["good"]) as client:
            assert client.send_message("numwatchers")["numwatchers"] == 0
    finally:
        for name in ("ctl.sock", "pub.sock"):
            if os.path.exists(os.path.join(directory, name)):
                os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


def test_moved_event_endpoint_keeps_the_ipc_mode(served_arbiter):
    directory = tempfile.mkdtemp(prefix="gc-", dir="/tmp")
    events, moved = "ipc://%s/pub.sock" % directory, "ipc://%s/pub2.sock" % directory
    try:
        arbiter = served_arbiter([], pubsub_endpoint=events, endpoint_mode="0600")
        arbiter.rebind("pubsub_endpoint", moved)
        assert stat.S_IMODE(os.stat(moved[6:]).st_mode) == 0o600
    finally:
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


def test_unreadable_key_files_are_named_in_the_error(keys):
    with pytest.raises(ValueError, match="curve_secret_key /nonexistent"):
        curve.ServerSecurity.from_options({"curve_secret_key": "/nonexistent"})
    with pytest.raises(ValueError, match="curve_allowed_keys"):
        curve.ServerSecurity.from_options({"curve_secret_key": keys["server_secret"],
                                           "curve_allowed_keys": "/nonexistent/admins"})


# -- refusals are logged once per peer, not once per attempt (issue 13 item 9) -------------------------------------

ATTEMPTS = 8


def _refused_attempts(arbiter, connect, attempts=ATTEMPTS):
    """Connect ``attempts`` times (a new socket each, as a client retrying calls does) and wait until the
    daemon refused every one (each client stays until its refusal is counted)."""
    refusals = arbiter.controller.security.refusals
    before = refusals.count
    for number in range(attempts):
        wanted = before + number + 1
        with unanswered(connect(), "list"):
            wait_until(lambda: refusals.count >= wanted, 10, "refusal %d" % (number + 1))  # noqa: B023 (used at once)


def test_a_refused_key_retrying_is_logged_once(secured, endpoints, keys, caplog):
    caplog.set_level(logging.WARNING, logger="gcircus")
    arbiter = secured()
    _refused_attempts(arbiter, lambda: CircusClient(endpoint=endpoints.control, timeout=30,
                                                    curve_server_key=keys["server_public"],
                                                    curve_client_key=keys["bad"]))
    logged = [r.getMessage() for r in caplog.records if "refused a CURVE client" in r.getMessage()]
    bad_public, _ = curve.load_keypair(keys["bad"])
    assert len(logged) == 1 and "key %s is not allowed" % bad_public.decode() in logged[0], logged


def test_a_client_without_curve_retrying_is_logged_once(secured, endpoints, caplog):
    caplog.set_level(logging.WARNING, logger="gcircus")
    arbiter = secured()
    _refused_attempts(arbiter, lambda: CircusClient(endpoint=endpoints.control, timeout=30))
    logged = [r.getMessage() for r in caplog.records if "refused a connection on" in r.getMessage()]
    # libzmq may report one failed handshake under two reasons: each reason is logged once
    assert 1 <= len(logged) == len(set(logged)) <= len(curve.HANDSHAKE_EVENTS), logged


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_refusal_log_reports_what_it_held_back_once_the_interval_passed(caplog):
    caplog.set_level(logging.WARNING, logger="gcircus")
    clock = Clock()
    refusals = curve.RefusalLog(interval=60, max_peers=2, clock=clock)
    for _ in range(5):
        refusals.refused("peer-a", "refused %s", "a")
    refusals.refused("peer-b", "refused %s", "b")
    clock.now += 61
    refusals.refused("peer-a", "refused %s", "a")
    assert [r.getMessage() for r in caplog.records] == [
        "refused a", "refused b", "refused a (and 4 more refusals of this peer in the 61s before, not logged)"]
    assert refusals.count == 7
    refusals.refused("peer-c", "refused %s", "c")       # a third peer: the least recently logged is forgotten
    refusals.refused("peer-b", "refused %s", "b")
    assert [r.getMessage() for r in caplog.records][-2:] == ["refused c", "refused b"]


# -- a root daemon on an open endpoint warns at start (issue 13 item 14) ------------------------------------------

EXPOSED = "the daemon runs as root and its control endpoint"


@pytest.mark.skipif(os.geteuid() != 0, reason="the warning is for root daemons only")
def test_root_daemon_on_tcp_without_curve_warns_at_start(served_arbiter, endpoints, caplog):
    caplog.set_level(logging.WARNING, logger="gcircus")
    served_arbiter([Watcher("web", "sleep 120")])
    warnings = [r.getMessage() for r in caplog.records if EXPOSED in r.getMessage()]
    assert warnings == ["%s %s is a TCP endpoint without CurveZMQ: every local user can connect and run "
                        "commands as root. Use an ipc:// endpoint with endpoint_mode = 0600 (and endpoint_owner), "
                        "or CurveZMQ keys (curve_secret_key, curve_allowed_keys)" % (EXPOSED, endpoints.control)]


def test_curve_keys_are_a_safe_setup(secured, caplog):
    caplog.set_level(logging.WARNING, logger="gcircus")
    secured()
    assert not [r for r in caplog.records if EXPOSED in r.getMessage()]


def test_an_ipc_endpoint_of_mode_0600_is_a_safe_setup(served_arbiter, caplog):
    caplog.set_level(logging.WARNING, logger="gcircus")
    directory = tempfile.mkdtemp(prefix="gc-", dir="/tmp")
    try:
        served_arbiter([], endpoint="ipc://%s/ctl.sock" % directory, pubsub_endpoint="ipc://%s/pub.sock" % directory,
                       endpoint_mode="0600")
        assert not [r for r in caplog.records if EXPOSED in r.getMessage()]
    finally:
        for name in ("ctl.sock", "pub.sock"):
            if os.path.exists(os.path.join(directory, name)):
                os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


RESTARTS = 500


def test_the_authenticator_starts_again_at_once():
    """An arbiter with CurveZMQ stopped and another started at once (a restart, the next test): the first one's
    ZAP handler freed its inproc address only once libzmq's reaper thread closed the socket, and about one
    start in a hundred found it still taken ("cannot start the CurveZMQ authenticator")."""
    context = zmq.Context.instance()
    for _ in range(RESTARTS):
        curve.ZapHandler.register(context, "restarted", None, "control", "tcp://127.0.0.1:1", curve.RefusalLog()).stop()
