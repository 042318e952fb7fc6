"""Circus 0.19's own tools drive a gcircus arbiter unchanged: its circusctl CLI,
its CircusClient and its CircusConsumer (installed from PyPI: the `test` extra).

Circus's client is blocking zmq; it runs in gevent's threadpool so the arbiter,
on this test's hub, keeps serving. Its circusctl runs as a subprocess.
"""
import json
import signal
import sys
import threading
import time

import gevent
import gevent.subprocess
import pytest

from gcircus.watcher import Watcher
from tests.support.wait import wait_until

circus = pytest.importorskip("circus", reason="Circus 0.19.0 is a test dependency (pip install '.[test]')")

pytestmark = pytest.mark.skipif(getattr(circus, "__version__", "") != "0.19.0",
                                reason="the compatibility target is Circus 0.19.0")


@pytest.fixture
def circusctl(endpoints):
    """circusctl(*args) -> (exit code, stdout, stderr) of Circus's own circusctl."""
    def run(*args):
        result = gevent.subprocess.run(
            [sys.executable, "-m", "circus.circusctl", "--endpoint", endpoints.control, "--timeout", "15"]
            + list(args), capture_output=True, text=True, timeout=60)
        return result.returncode, result.stdout.strip(), result.stderr.strip()
    return run


@pytest.fixture
def circus_call(endpoints):
    """circus_call(command, **props) -> the reply, through circus.client.CircusClient."""
    from circus.client import CircusClient

    def in_thread(command, props):
        client = CircusClient(endpoint=endpoints.control, timeout=15)
        try:
            return client.send_message(command, **props)
        finally:
            client.stop()

    def send(command, **props):
        return gevent.get_hub().threadpool.apply(in_thread, (command, props))
    return send


def test_circusctl_drives_gcircus(served_arbiter, circusctl):
    web = Watcher("web", "sleep 120", numprocesses=2)
    worker = Watcher("worker", "sleep 120")
    served_arbiter([web, worker])
    expectations = [
        (("numwatchers",), 0, "2"),
        (("list",), 0, "web,worker"),
        (("status",), 0, "web: active\nworker: active"),
        (("status", "web"), 0, "active"),
        (("numprocesses",), 0, "3"),
        (("numprocesses", "web"), 0, "2"),
        (("incr", "web", "--waiting"), 0, "3"),
        (("decr", "web", "2", "--waiting"), 0, "1"),
        (("add", "test2", "sleep 120"), 0, "ok"),
        (("status", "test2"), 0, "stopped"),
        (("add", "--start", "test3", "sleep 120"), 0, "ok"),
        (("status", "test3"), 0, "active"),
        (("start", "test2", "--waiting"), 0, "ok"),
        (("stop", "test2", "--waiting"), 0, "ok"),
        (("status", "test2"), 0, "stopped"),
        (("restart", "worker", "--waiting"), 0, "ok"),
        (("reload", "web", "--waiting"), 0, "ok"),
        (("signal", "web", "hup"), 0, "ok"),
        (("get", "web", "numprocesses", "send_hup"), 0, "numprocesses: 1\nsend_hup: False"),
        (("set", "web", "numprocesses", "2", "--waiting"), 0, "ok"),
        (("numprocesses", "web"), 0, "2"),
        (("rm", "test3"), 0, "ok"),
        (("listsockets",), 0, ""),
        (("reloadconfig",), 3, None),
        (("status", "nope"), 3, "error"),         # Circus's own client drops the reason here
        (("signal", "web", "bogus"), 3, None),
        (("kill", "worker"), 0, "ok"),
    ]
    for args, code, output in expectations:
        rc, out, err = circusctl(*args)
        assert rc == code, (args, rc, out, err)
        if output is not None:
            assert (out or err) == output, (args, out, err)
    assert "test3" not in circusctl("list")[1]
    rc, out, _ = circusctl("options", "web")
    assert rc == 0 and "numprocesses: 2" in out.splitlines() and "cmd: sleep 120" in out.splitlines()
    rc, out, _ = circusctl("globaloptions")
    assert rc == 0 and out.splitlines()[0].startswith("endpoint: tcp://127.0.0.1:")
    rc, out, _ = circusctl("stats", "web")
    lines = out.splitlines()
    assert rc == 0 and lines[0] == "web:" and len(lines) == 3 and " sleep " in lines[1]
    rc, out, _ = circusctl("dstats")
    assert rc == 0 and out.splitlines()[0] == "Main Process:"
    rc, out, _ = circusctl("--json", "numwatchers")
    assert rc == 0 and json.loads(out)["numwatchers"] == 3
    rc, out, err = circusctl("foo")
    assert rc == 2 and "unrecognized arguments: foo" in err


def test_circusctl_set_values_are_read_by_our_converters(served_arbiter, circusctl):
    """circusctl converts `set` values itself (ints, floats, booleans, signal numbers, hooks objects); each
    key it knows goes through our option table's converters unchanged (its `env` crashes circusctl itself)."""
    web = Watcher("web", "sleep 120")
    served_arbiter([web])
    pairs = [("numprocesses", "2", 2), ("warmup_delay", "0.5", 0.5), ("working_dir", "/tmp", "/tmp"),
             ("send_hup", "true", True), ("stop_signal", "INT", signal.SIGINT), ("stop_children", "on", True),
             ("shell", "no", False), ("copy_env", "yes", True), ("args", "30", "30"), ("retry_in", "3", 3.0), ("max_retry", "-1", -1),
             ("graceful_timeout", "2", 2.0), ("max_age", "100", 100.0), ("max_age_variance", "5", 5.0),
             ("respawn", "1", True), ("singleton", "false", False), ("close_child_stdin", "0", False),
             ("close_child_stdout", "false", False), ("close_child_stderr", "off", False)]
    for key, text, expected in pairs:
        rc, out, err = circusctl("set", "web", key, text)
        assert (rc, out) == (0, "ok"), (key, rc, out, err)
        value = web.options[key] if key == "retry_in" else getattr(web, key)
        assert value == expected, (key, value)
    for key, text in [("rlimit_nofile", "512"), ("stdout_stream.class", "NullStream"), ("stdout_stream.max_bytes", "1000"),
                      ("hooks", "before_start:tests.fixtures.hooks.yes"),
                      ("hooks.after_stop", "tests.fixtures.hooks.yes")]:
        rc, out, err = circusctl("set", "web", key, text)
        assert (rc, out) == (0, "ok"), (key, rc, out, err)
    assert web.rlimits == {"nofile": 512} and "before_start" in web.hooks and "after_stop" in web.hooks
    assert web.streams.stdout_conf == {"class": "NullStream", "max_bytes": 1000}
    rc, out, err = circusctl("set", "web", "numprocesses", "-3")
    assert rc == 3 and "'numprocesses': invalid value -3 (must be >= 0)" in (out + err), (rc, out, err)


def test_circus_client_gets_circus_reply_shapes(served_arbiter, circus_call):
    web = Watcher("web", "sleep 120", numprocesses=2)
    served_arbiter([web])
    replies = {}

    def check(command, expected_keys, **props):
        reply = circus_call(command, **props)
        replies[command] = reply
        assert reply["status"] in ("ok", "active", "stopped"), (command, reply)
        assert set(expected_keys) <= set(reply), (command, reply)
        return reply

    reply = check("add", ["started", "kept"], name="Added", cmd="sleep 120", start=True, waiting=True)
    assert len(reply["started"]) == 1 and reply["kept"] == []
    assert check("list", ["watchers"])["watchers"] == ["added", "web"]
    assert len(check("list", ["pids"], name="web")["pids"]) == 2
    assert check("status", ["statuses"])["statuses"] == {"Added": "active", "web": "active"}
    assert circus_call("status", name="web")["status"] == "active"
    assert check("numwatchers", ["numwatchers"])["numwatchers"] == 2
    assert check("numprocesses", ["numprocesses"])["numprocesses"] == 3
    assert check("numprocesses", ["watcher_name"], name="web")["watcher_name"] == "web"
    assert check("incr", ["numprocesses"], name="web", nb=2, waiting=True)["numprocesses"] == 4
    assert check("decr", ["numprocesses"], name="web", nb=3, waiting=True)["numprocesses"] == 1
    assert check("stop", ["info"], name="added", waiting=True)["info"] is None
    assert set(check("start", ["info"], name="added", waiting=True)["info"]) == {"started", "kept"}
    assert set(check("restart", ["info"], name="added", waiting=True)["info"]) == {"stopped", "started", "kept"}
    assert set(check("reload", ["info"], name="web", waiting=True)["info"]) == {"stopped", "started", "kept"}
    signalled = set(web.processes)
    check("signal", [], name="web", signum="USR1")      # kills `sleep`: the watcher replaces it
    check("kill", [], name="added", signum="TERM", waiting=True)
    wait_until(lambda: len(web.processes) == 1 and not set(web.processes) & signalled, 20,
               "the replacement of the process killed by USR1")
    pid = str(next(iter(web.processes)))
    assert pid in check("stats", ["infos"])["infos"]["web"]
    assert check("stats", ["name", "info"], name="web")["name"] == "web"
    assert check("stats", ["process", "info"], name="web", process=int(pid))["info"]["pid"] == int(pid)
    assert "pid" in check("dstats", ["info"])["info"]
    assert check("get", ["options"], name="web", keys=["numprocesses"])["options"] == {"numprocesses": 1}
    check("set", [], name="web", options={"graceful_timeout": 5}, waiting=True)
    assert check("options", ["options"], name="web")["options"]["graceful_timeout"] == 5.0
    assert set(check("globaloptions", ["options"])["options"]) >= {"endpoint", "pubsub_endpoint", "check_delay"}
    assert check("listsockets", ["sockets"])["sockets"] == []
    assert check("ipython", ["shell", "msg"])["shell"] is False
    check("rm", [], name="added", waiting=True)
    listen = circus_call("listen")
    assert listen["errno"] == 3 and listen["reason"] == "invalid message. use a pub/sub socket"
    unknown = circus_call("foo")
    assert unknown["errno"] == 2 and unknown["reason"] == "unknown command: 'foo'"
    assert len(replies) >= 20
    assert check("quit", [], waiting=True)["status"] == "ok"


def test_circus_consumer_receives_events(served_arbiter, endpoints, circus_call):
    from circus.consumer import CircusConsumer
    arbiter = served_arbiter([])
    live = threading.Event()

    def consume():
        received = []
        consumer = CircusConsumer([b"watcher."], endpoint=endpoints.pubsub, timeout=0.1)
        try:
            for topic, body in consumer.iter_messages():
                if topic.startswith(b"watcher.probe."):
                    live.set()
                    continue
                received.append((topic.decode(), json.loads(body)))
                if topic == b"watcher.sentinel.end":
                    return received
        finally:
            consumer.stop()

    job = gevent.get_hub().threadpool.spawn(consume)
    deadline = time.monotonic() + 10
    while not live.is_set():                 # zmq's slow joiner: probe until subscribed
        assert time.monotonic() < deadline, "Circus's consumer never subscribed"
        arbiter.publisher.publish("watcher.probe.sync", {})
        gevent.sleep(0.05)
    try:
        pid = circus_call("add", name="ev", cmd="sleep 120", start=True, waiting=True)["started"][0]
        circus_call("kill", name="ev", waiting=True)
        circus_call("stop", name="ev", waiting=True)
        circus_call("start", name="ev", waiting=True)
    finally:
        arbiter.publisher.publish("watcher.sentinel.end", {})
    received = job.get(timeout=20)
    topics = [topic for topic, _ in received]
    assert topics[:3] == ["watcher.ev.add", "watcher.ev.spawn", "watcher.ev.start"]
    bodies = {}
    for topic, body in received:
        bodies.setdefault(topic, []).append(body)
    assert bodies["watcher.ev.spawn"][0]["process_pid"] == pid
    assert set(bodies["watcher.ev.spawn"][0]) == {"process_pid", "time"}
    assert bodies["watcher.ev.kill"][0]["process_pid"] == pid
    assert bodies["watcher.ev.reap"][0] == {"process_pid": pid, "time": bodies["watcher.ev.reap"][0]["time"],
                                            "exit_code": -signal.SIGTERM}
    assert set(bodies["watcher.ev.stop"][0]) == {"time"} and set(bodies["watcher.ev.start"][1]) == {"time"}
    assert topics.index("watcher.ev.stop") > topics.index("watcher.ev.reap")
