"""Hypothesis-driven fuzz of the wire protocol against a real gcircusd: whatever the body
(random bytes, any JSON, any command with any properties), the daemon answers every
request, with "ok" or a clean error (never a traceback), and keeps serving.

Values are bounded where the protocol lets a client ask for unbounded work (process
counts, delays): those are requests, not malformed input."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcircus.client import CallError, CircusClient
from tests.e2e.daemon_support import READY, Daemon, write_config

EXAMPLES = 400
REPLY_TIMEOUT = 20          # generous: every fuzz request is cheap for the daemon
# quit and a bare restart end (or rebuild) the daemon under test: fuzzed separately they prove nothing
COMMANDS = ["add", "decr", "dstats", "get", "globaloptions", "incr", "ipython", "kill", "list", "listen",
            "listsockets", "numprocesses", "numwatchers", "options", "reload", "reloadconfig", "rm", "set",
            "signal", "start", "stats", "status", "stop"]
KEYS = ["name", "nb", "waiting", "signum", "pid", "childpid", "children", "recursive", "options", "keys",
        "match", "start", "cmd", "args", "graceful_timeout", "extended", "process", "option", "nostop",
        "sequential", "graceful"]
SAFE_CMDS = ["sleep 3600", "true", "", "  ", "sh -c 'exit 3'", "/nonexistent/program"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.floats(-1, 1),
                    st.text(max_size=20), st.sampled_from(["fuzz", "other", "*", "f*", "nope", "TERM", "9",
                                                            "numprocesses", "graceful_timeout", "env"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12) | st.sampled_from(KEYS), inner,
                                                 max_size=4)), max_leaves=12)


@st.composite
def properties(draw):
    props = draw(st.dictionaries(st.sampled_from(KEYS), values, max_size=5))
    if draw(st.booleans()):     # half the requests name a watcher that exists
        props["name"] = draw(st.sampled_from(["fuzz", "other", "f*", "FUZZ"]))
    if "cmd" in props:     # a random string must never name a real program
        props["cmd"] = draw(st.sampled_from(SAFE_CMDS) | st.text(max_size=10).map(
            lambda text: "/nonexistent/" + text))
    if "args" in props:
        props["args"] = draw(st.lists(st.text(max_size=8), max_size=3))
    return props


requests = st.builds(lambda command, props, mid: json.dumps(
    {"command": command, "properties": props, "id": mid}).encode(),
    st.sampled_from(COMMANDS), properties(), values)
messages = st.one_of(
    st.binary(max_size=200),
    values.map(lambda value: json.dumps(value).encode()),
    st.builds(lambda command, props: json.dumps({"command": command, "properties": props}).encode(),
              st.text(max_size=10), properties()),
    requests, requests, requests, requests,     # mostly real commands with fuzzed properties
)


def _is_cast(body):
    try:
        message = json.loads(body)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("msg_type") == "cast"


@pytest.fixture
def daemon(workdir):
    path, endpoint = write_config(workdir, "[watcher:fuzz]\ncmd = sleep 3600\nnumprocesses = 2\n"
                                           "graceful_timeout = 1\n[watcher:other]\ncmd = sleep 3601\n"
                                           "graceful_timeout = 1\n")
    started = Daemon(path)
    started.wait_for(READY)
    started.endpoint = endpoint
    yield started
    started.kill()


def test_every_fuzzed_request_gets_a_clean_reply(daemon):
    client = CircusClient(endpoint=daemon.endpoint, timeout=REPLY_TIMEOUT, green=False)
    socket = client._get_socket()
    seen = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(body=messages)
    def exchange(body):
        seen.append(body)
        socket.send(body)
        if _is_cast(body):
            return          # a cast asks for no reply (Circus's msg_type): nothing to wait for
        if not socket.poll(REPLY_TIMEOUT * 1000):
            pytest.fail("no reply within %ss to %r; daemon output:\n%s" % (REPLY_TIMEOUT, body, daemon.text()))
        reply = json.loads(socket.recv())
        if reply["status"] == "error":
            assert isinstance(reply["errno"], int) and reply["reason"], reply
        else:   # "ok", or (Circus's `status <name>` quirk) the watcher's status in its place
            assert "errno" not in reply and isinstance(reply["status"], str), reply
        assert reply.get("tb") is None, "traceback for %r: %s" % (body, reply)

    try:
        exchange()
        reply = client.call({"command": "numwatchers", "properties": {}})
        assert reply["status"] == "ok"          # and it serves on
    except CallError as error:
        pytest.fail("the daemon stopped answering after %d requests: %s" % (len(seen), error))
    finally:
        client.stop()
    assert daemon.proc.poll() is None
