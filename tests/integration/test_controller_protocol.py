"""The wire protocol of the controller: reply shapes, the errno table, framing,
cast, REQ clients, size limits, quit."""
import json

import gevent
import pytest
import zmq.green as zmq

from gcircus.states import WatcherState
from gcircus.watcher import Watcher
from tests.support.wait import wait_until


def boom_hook(watcher, arbiter, hook_name, **kw):
    raise RuntimeError("boom from %s" % hook_name)


@pytest.fixture
def raw(endpoints):
    """raw(frames, socket_type=DEALER) -> the reply frames (or None after 2 s)."""
    context = zmq.Context.instance()
    sockets = []

    def exchange(frames, socket_type=zmq.DEALER, timeout=5):
        sock = context.socket(socket_type)
        sock.linger = 0
        sock.connect(endpoints.control)
        sockets.append(sock)
        sock.send_multipart(frames)
        if not sock.poll(timeout * 1000):
            return None
        return sock.recv_multipart()

    yield exchange
    for sock in sockets:
        sock.close()


def reply_of(frames):
    return json.loads(frames[-1])


def test_ok_reply_keys_are_merged_in_circus_order(served_arbiter, raw):
    served_arbiter([Watcher("web", "sleep 120")])
    reply = reply_of(raw([b'{"id": "a1", "command": "numwatchers"}']))
    assert list(reply) == ["status", "time", "numwatchers", "id"]
    assert reply["status"] == "ok" and reply["numwatchers"] == 1 and reply["id"] == "a1"
    assert isinstance(reply["time"], float)


def test_error_reply_has_circus_keys_in_order(served_arbiter, raw):
    served_arbiter([])
    reply = reply_of(raw([b'{"id": 7, "command": "list", "properties": {"name": "nope"}}']))
    assert list(reply) == ["status", "reason", "tb", "time", "errno", "id"]
    assert reply == dict(reply, status="error", reason="program nope not found", tb=None, errno=3, id=7)


@pytest.mark.parametrize("body, errno, reason", [
    (b"{not json", 1, "json invalid"),
    (b"\xff\xfe", 1, "json invalid"),
    (b"", 1, "json invalid"),
    (b"   ", 1, "json invalid"),
    (b'["list"]', 3, "expected a JSON object"),
    (b'"list"', 3, "expected a JSON object"),
    (b"42", 3, "expected a JSON object"),
    (b'{"properties": {}}', 3, "'command' is missing"),
    (b'{"command": 5}', 3, "'command' must be a string"),
    (b'{"command": "list", "properties": [1]}', 3, "'properties' must be an object"),
    (b'{"command": "foo"}', 2, "unknown command: 'foo'"),
    (b'{"command": "incr", "properties": {}}', 3, "message invalid 'name' is missing"),
    (b'{"command": "incr", "properties": {"name": "web", "nb": "x"}}', 3, "'nb': invalid integer 'x'"),
    (b'{"command": "incr", "properties": {"name": 3}}', 3, "'name' must be a string"),
    (b'{"command": "get", "properties": {"name": "web", "keys": "numprocesses"}}', 3, "list of strings"),
    (b'{"command": "get", "properties": {"name": "web", "keys": ["bogus"]}}', 3, "'bogus' option not found"),
    (b'{"command": "stop", "properties": {"waiting": "perhaps"}}', 3, "'waiting': invalid boolean 'perhaps'"),
    (b'{"command": "stop", "properties": {"name": "web", "match": "fuzzy"}}', 3, "unknown match method fuzzy"),
    (b'{"command": "signal", "properties": {"name": "web", "signum": "bogus"}}', 3, "'signum': invalid signal 'bogus'"),
    (b'{"command": "signal", "properties": {"name": "web", "signum": 999}}', 3, "'signum': invalid signal 999"),
    (b'{"command": "set", "properties": {"name": "web", "options": {"nope": 1}}}', 3, "unknown key 'nope'"),
    (b'{"command": "set", "properties": {"name": "web", "options": {"env": {"a": 2}}}}', 3, "object of strings"),
    (b'{"command": "globaloptions", "properties": {"option": "x"}}', 3, "'x' not an existing option"),
    (b'{"command": "listen"}', 3, "invalid message. use a pub/sub socket"),
])
def test_malformed_requests_get_error_replies(served_arbiter, raw, body, errno, reason):
    served_arbiter([Watcher("web", "sleep 120")])
    reply = reply_of(raw([body]))
    assert reply["status"] == "error" and reply["errno"] == errno, reply
    assert reason in reply["reason"]


@pytest.mark.parametrize("body", [
    b"[" * 5000 + b"]" * 5000,                                  # past the parser's own recursion
    b'{"command": "list", "properties": {"x": ' + b"[" * 990 + b"]" * 990 + b"}}",
    b'{"command": "add", "properties": {"name": "n", "cmd": "c", "options": ' + b'{"a": ' * 150
    + b"1" + b"}" * 150 + b"}}",
])
def test_deeply_nested_json_gets_an_error_reply(served_arbiter, raw, call, body):
    served_arbiter([])
    reply = reply_of(raw([body]))
    assert reply["errno"] == 3 and "nested deeper than" in reply["reason"], reply
    assert call("numwatchers")["numwatchers"] == 0     # nothing was added, the daemon serves on


def test_moderately_nested_json_is_still_served(served_arbiter, raw):
    served_arbiter([])
    body = b'{"command": "numwatchers", "properties": {"x": ' + b"[" * 50 + b"]" * 50 + b"}}"
    assert reply_of(raw([body]))["numwatchers"] == 0


def test_properties_null_means_none_and_command_is_case_insensitive(served_arbiter, raw):
    served_arbiter([Watcher("Web", "sleep 120")])
    reply = reply_of(raw([b'{"command": "LIST", "properties": null}']))
    assert reply["status"] == "ok" and reply["watchers"] == ["web"] and reply["id"] is None


def test_duplicate_add_is_a_command_error(served_arbiter, call):
    served_arbiter([Watcher("web", "sleep 120")])
    reply = call("add", name="WEB", cmd="sleep 1")
    assert reply["errno"] == 5 and "'WEB' already exist" in reply["reason"] and reply["tb"] is None


def test_unexpected_exception_is_errno_5_with_traceback(served_arbiter, call):
    hook = "%s.boom_hook" % __name__
    served_arbiter([Watcher("web", "sleep 120", hooks={"extended_stats": hook})])
    reply = call("stats", name="web", extended=True)
    assert reply["errno"] == 5 and "boom from extended_stats" in reply["reason"]
    assert reply["reason"].startswith("command b'{") and "RuntimeError" in reply["tb"]
    assert call("numwatchers")["numwatchers"] == 1   # and the daemon serves on


def test_req_clients_are_answered_in_kind(served_arbiter, raw):
    served_arbiter([Watcher("web", "sleep 120")])
    reply = reply_of(raw([b'{"command": "numwatchers"}'], zmq.REQ))
    assert reply["numwatchers"] == 1
    assert reply_of(raw([b"garbage"], zmq.REQ))["errno"] == 1


@pytest.mark.parametrize("frames, expected", [
    ([b'{"command": "list"}', b"extra"], "got 2"),
    ([b"", b'{"command": "list"}', b"extra"], "got 2"),
    ([b"a", b"b", b"c", b"d"], "got 4"),
])
def test_wrong_frame_counts_get_error_replies(served_arbiter, raw, frames, expected):
    served_arbiter([])
    reply = reply_of(raw(frames))
    assert reply["errno"] == 3 and expected in reply["reason"]


def test_oversized_message_is_refused_with_an_error(served_arbiter, raw, call):
    served_arbiter([], max_message_size=4096)
    body = json.dumps({"command": "list", "properties": {"pad": "x" * 10000}}).encode()
    reply = reply_of(raw([body]))
    assert reply["errno"] == 3 and "message too large" in reply["reason"]
    assert call("numwatchers")["status"] == "ok"


def test_cast_runs_the_command_without_a_reply(served_arbiter, raw, endpoints):
    watcher = Watcher("web", "sleep 120")
    served_arbiter([watcher])
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(endpoints.control)
    try:
        sock.send_json({"command": "incr", "msg_type": "cast", "properties": {"name": "web"}})
        sock.send_json({"command": "list", "properties": {"name": "nope"}, "msg_type": "cast"})
        sock.send_json({"command": "numwatchers", "id": "after"})
        assert sock.poll(5000)
        assert sock.recv_json()["id"] == "after"   # the casts sent nothing back, not even an error
        wait_until(lambda: len(watcher.processes) == 2, what="the cast incr")
        assert not sock.poll(200)
    finally:
        sock.close()


def test_quit_replies_before_the_arbiter_closes(served_arbiter, call):
    watcher = Watcher("web", "sleep 120", numprocesses=2)
    arbiter = served_arbiter([watcher])
    reply = call("quit", waiting=True)
    assert reply["status"] == "ok"
    assert watcher.state is WatcherState.STOPPED and not watcher.processes   # waiting: stopped first
    with gevent.Timeout(10):
        arbiter._stopped.wait()
    assert arbiter.controller is None


def test_quit_without_waiting_replies_at_once(served_arbiter, call):
    arbiter = served_arbiter([Watcher("web", "sleep 120")])
    assert call("quit")["status"] == "ok"
    with gevent.Timeout(10):
        arbiter._stopped.wait()


BAD_VALUES = [
    ("add", dict(name="s", cmd="sleep 120", options={"singleton": True, "numprocesses": 3})),
    ("add", dict(name="u", cmd="sleep 120", options={"uid": "no-such-user-here"})),
    ("add", dict(name="c", cmd="sleep 120", options={"stdout_stream": {"class": "no.such.Stream"}})),
    ("add", dict(name="h", cmd="sleep 120", options={"hooks": {"before_start": "no.such.hook"}})),
    ("add", dict(name="r", cmd="sleep 120", options={"rlimit_nosuchlimit": 5})),
    ("set", dict(name="web", options={"stdout_stream.class": "no.such.Stream"})),
    ("signal", dict(name="web", pid=1, signum="TERM")),
]


@pytest.mark.parametrize("command,props", BAD_VALUES, ids=["%s-%d" % (c, i) for i, (c, _) in enumerate(BAD_VALUES)])
def test_a_bad_value_is_the_senders_error_not_an_internal_one(served_arbiter, call, caplog, command, props):
    """Only gcircus's own errors and OSError become wire errors; a bad value a user sent must be one of
    them (errno 3 or 4, no traceback), never reported (and logged) as a bug in the daemon."""
    served_arbiter([Watcher("web", "sleep 120"), Watcher("one", "sleep 120", singleton=True)])
    reply = call(command, **props)
    assert reply["status"] == "error" and reply["errno"] in (3, 4), reply
    assert not reply.get("tb") and "internal error" not in caplog.text, reply
