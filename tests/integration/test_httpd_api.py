"""The dashboard's JSON API and event/output streams against a live arbiter with real children."""
import os
import signal

import gevent

from gcircus.watcher import Watcher
from tests.conftest import child_cmd
from tests.fixtures.http_client import EventStream, http_request
from tests.support.wait import wait_until

def chatty(name="chatty", **kw):
    return Watcher(name, child_cmd("chatty"), stdout_stream={"class": "NullStream"}, stderr_stream={"class": "NullStream"}, **kw)


def test_default_bind_is_loopback(httpd_arbiter):
    arbiter, address = httpd_arbiter([Watcher("w", "sleep 120")], httpd_host="localhost")
    assert address[0] == "127.0.0.1"


def test_list_and_show_watchers(httpd_arbiter):
    arbiter, address = httpd_arbiter([Watcher("web", "sleep 120", numprocesses=2), Watcher("idle", "sleep 120",
                                                                                          autostart=False)])
    reply = http_request(address, "GET", "/api/watchers")
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    watchers = {w["name"]: w for w in reply.json()["watchers"]}
    assert set(watchers) == {"web", "idle"}
    web = watchers["web"]
    assert (web["state"], web["numprocesses"], web["running"], web["restarts"]) == ("active", 2, 2, 0)
    assert sorted(p["pid"] for p in web["processes"]) == sorted(arbiter.get_watcher("web").processes)
    assert sorted(p["wid"] for p in web["processes"]) == [1, 2]
    assert watchers["idle"]["state"] == "stopped" and watchers["idle"]["processes"] == []

    shown = http_request(address, "GET", "/api/watchers/web").json()["watcher"]
    assert shown["options"]["numprocesses"] == 2 and shown["options"]["cmd"] == "sleep 120"


def test_unknown_watcher_is_404_with_the_controllers_reason(httpd_arbiter):
    _, address = httpd_arbiter([Watcher("w", "sleep 120")])
    for method, path in (("GET", "/api/watchers/nope"), ("POST", "/api/watchers/nope/incr"),
                         ("GET", "/api/watchers/nope/output")):
        reply = http_request(address, method, path)
        assert (reply.status, reply.json()["reason"]) == (404, "program nope not found"), path


def test_actions_run_the_wire_commands(httpd_arbiter, events):
    arbiter, address = httpd_arbiter([Watcher("w", "sleep 120")])
    watcher = arbiter.get_watcher("w")
    reply = http_request(address, "POST", "/api/watchers/w/incr", body={"nb": 2})
    assert (reply.status, reply.json()["numprocesses"]) == (200, 3)
    wait_until(lambda: len(watcher.get_active_processes()) == 3, 10, "3 processes")
    assert http_request(address, "POST", "/api/watchers/w/decr").json()["numprocesses"] == 2

    reply = http_request(address, "POST", "/api/watchers/w/stop")
    assert reply.status == 200 and watcher.is_stopped() and not watcher.processes
    reply = http_request(address, "POST", "/api/watchers/w/start")
    assert reply.status == 200 and len(reply.json()["info"]["started"]) == 2
    old = set(watcher.processes)
    reply = http_request(address, "POST", "/api/watchers/w/reload", body={"graceful": True})
    assert reply.status == 200 and set(reply.json()["info"]["stopped"]) == old
    assert not old & set(watcher.processes) and len(watcher.processes) == 2
    reply = http_request(address, "POST", "/api/watchers/w/restart")
    assert reply.status == 200 and set(reply.json()["info"]["stopped"]) and watcher.is_active()

    pid = sorted(watcher.processes)[0]
    reply = http_request(address, "POST", "/api/watchers/w/signal", body={"signum": "KILL", "pid": pid})
    assert reply.status == 200
    events.wait_for(lambda evs: any(t == "watcher.w.reap" and m["process_pid"] == pid for t, m in evs))


def test_bad_input_is_400(httpd_arbiter):
    arbiter, address = httpd_arbiter([Watcher("w", "sleep 120")])
    reply = http_request(address, "POST", "/api/watchers/w/signal", body={"signum": "BOGUS"})
    wire_reason = "message invalid: 'signum': invalid signal 'BOGUS'"
    assert (reply.status, reply.json()["reason"], reply.json()["errno"]) == (400, wire_reason, 3)
    reply = http_request(address, "POST", "/api/watchers/w/incr", body={"nb": "many"})
    assert reply.status == 400 and "'nb': invalid integer 'many'" in reply.json()["reason"]
    reply = http_request(address, "POST", "/api/watchers/w/incr", body={"bogus": 1})
    assert reply.status == 400 and "incr takes no parameter bogus" in reply.json()["reason"]
    reply = http_request(address, "POST", "/api/watchers/w/incr", body=b"{not json",
                         headers={"Content-Type": "application/json"})
    assert reply.status == 400 and "JSON object" in reply.json()["reason"]
    assert http_request(address, "POST", "/api/watchers/w/explode").status == 404
    # query parameters are read by the same converters as config files and commands
    reply = http_request(address, "GET", "/api/events?dashboard=maybe")
    assert (reply.status, reply.json()["reason"]) == (400, "dashboard: invalid boolean 'maybe' (expected yes/no, "
                                                           "true/false, on/off or 1/0)")
    reply = http_request(address, "GET", "/api/watchers/w/output?pid=%D9%A1")
    assert (reply.status, reply.json()["reason"]) == (400, "pid: invalid integer '\u0661'")
    assert http_request(address, "GET", "/api/watchers/w/incr").status == 405
    assert http_request(address, "DELETE", "/api/watchers/w").status == 405
    assert http_request(address, "GET", "/nowhere").status == 404
    assert arbiter.get_watcher("w").numprocesses == 1


def test_same_reason_text_as_the_controller(served_arbiter, call, endpoints):
    arbiter = served_arbiter([Watcher("w", "sleep 120")], httpd=True, httpd_port=0)
    address = arbiter.http_server.address[:2]
    for props in ({"signum": "BOGUS"}, {"signum": 9, "childpid": 3}):
        wire = call("signal", name="w", **props)
        http = http_request(address, "POST", "/api/watchers/w/signal", body=props).json()
        assert (http["reason"], http["errno"]) == (wire["reason"], wire["errno"])
    wire = call("incr", name="nope")
    assert http_request(address, "POST", "/api/watchers/nope/incr").json()["reason"] == wire["reason"]


def test_conflict_while_the_arbiter_stops_is_409(httpd_arbiter):
    # SIGCHLD is ignored by `sleep`: the stop waits graceful_timeout, long enough to ask for a start meanwhile
    arbiter, address = httpd_arbiter([Watcher("w", "sleep 120", stop_signal=signal.SIGCHLD, graceful_timeout=3)])
    stopping = gevent.spawn(arbiter.stop)
    wait_until(lambda: arbiter.stopping, 5, "the arbiter stopping")
    reply = http_request(address, "POST", "/api/watchers/w/start")
    assert (reply.status, reply.json()["reason"]) == (409, "arbiter is stopping")
    stopping.join(15)


def test_event_stream_shows_a_process_killed_from_outside(httpd_arbiter):
    arbiter, address = httpd_arbiter([Watcher("w", "sleep 120")])
    stream = EventStream(address, "/api/events")
    try:
        assert stream.status == 200 and stream.headers["content-type"] == "text/event-stream"
        pid = next(iter(arbiter.get_watcher("w").processes))
        os.kill(pid, signal.SIGKILL)
        kind, data = stream.wait_for(lambda kind, data: kind == "event" and data["event"] == "reap", 10, "reap")
        assert (data["watcher"], data["process_pid"], data["exit_code"]) == ("w", pid, -9)
        stream.wait_for(lambda kind, data: kind == "event" and data["event"] == "spawn", 10, "the respawn")
    finally:
        stream.close()


def test_dashboard_stream_starts_with_a_snapshot_then_follows_changes(httpd_arbiter):
    arbiter, address = httpd_arbiter([Watcher("w", "sleep 120")], stats_interval=0.2)
    stream = EventStream(address, "/api/events?dashboard=1")
    try:
        kind, snapshot = stream.next_event()
        assert kind == "snapshot" and [w["name"] for w in snapshot["watchers"]] == ["w"]
        assert [e["event"] for e in snapshot["events"]][-2:] == ["spawn", "start"]
        http_request(address, "POST", "/api/watchers/w/incr")
        stream.wait_for(lambda kind, data: kind == "watchers" and data["watchers"][0]["running"] == 2, 10,
                        "a watcher update with 2 running")
        kind, stats = stream.wait_for(lambda kind, data: kind == "stats" and len(data["watchers"]["w"]["processes"])
                                      == 2, 10, "a sample of both processes")
        assert all(rss > 0 for _cpu, rss in stats["watchers"]["w"]["processes"].values())
    finally:
        stream.close()
    wait_until(lambda: not arbiter.http_server.live.dashboard, 10, "the page's stream forgotten")


def test_output_stream_backlog_live_lines_and_filters(httpd_arbiter):
    arbiter, address = httpd_arbiter([chatty(numprocesses=2)])
    watcher = arbiter.get_watcher("chatty")
    buffer = arbiter.http_server.live.output_of(watcher)
    wait_until(lambda: len(buffer.lines) == 8, 10, "both children's output")
    pid = sorted(watcher.processes)[0]
    stream = EventStream(address, "/api/watchers/chatty/output?pid=%d&stream=stdout" % pid)
    every = EventStream(address, "/api/watchers/chatty/output")
    try:
        kind, hello = stream.next_event()
        assert kind == "hello" and hello["captured"] == {"stdout": True, "stderr": True}
        kind, lines = stream.next_event()
        assert kind == "lines" and [(p, s, text) for _, p, s, text in lines] == [
            (pid, "stdout", "hello %d <script>alert(1)</script>" % n) for n in range(3)]
        every.next_event()
        assert sorted(line[3] for line in every.next_event()[1]).count("oops") == 2

        before = set(watcher.processes)
        http_request(address, "POST", "/api/watchers/chatty/incr")
        (new_pid,) = set(watcher.processes) - before
        every.wait_for(lambda kind, data: kind == "lines" and data[0][1] == new_pid, 10, "the new process's lines")
        # published to both streams at once: the filtered one skipped them, so its next lines are these
        os.kill(pid, signal.SIGUSR1)
        kind, lines = stream.wait_for(lambda kind, data: kind == "lines", 10, "the usr1 line")
        assert [(p, text) for _, p, _, text in lines] == [(pid, "usr1 %d" % pid)]
    finally:
        stream.close()
        every.close()


def test_stopping_the_arbiter_ends_open_streams(httpd_arbiter):
    arbiter, address = httpd_arbiter([chatty()])
    streams = [EventStream(address, "/api/events?dashboard=1"), EventStream(address, "/api/watchers/chatty/output")]
    try:
        for stream in streams:
            stream.next_event()
        arbiter.stop()
        for stream in streams:
            while stream.next_event(10) is not None:
                pass
    finally:
        for stream in streams:
            stream.close()


def test_a_stalled_browser_neither_blocks_the_hub_nor_grows_memory(httpd_arbiter, monkeypatch):
    from gevent import socket

    from gcircus.httpd import sse
    monkeypatch.setattr(sse, "MAX_QUEUED_BYTES", 256 << 10)
    # `yes` writes as fast as the pump reads: far more than the socket buffers and the queue hold
    arbiter, address = httpd_arbiter([Watcher("yes", "yes", autostart=False, stdout_stream={"class": "NullStream"})])
    watcher = arbiter.get_watcher("yes")
    live = arbiter.http_server.live
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(address)
    stalled.sendall(b"GET /api/watchers/yes/output HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    try:
        wait_until(lambda: live.sse_clients() == 1, 10, "the stalled stream to connect")
        (client,) = live.output_of(watcher).channel.clients
        watcher.start()
        wait_until(lambda: client.dropped > 0, 30, "messages dropped for the stalled browser")
        (pump,) = watcher.streams.pumps
        read_so_far = pump.bytes_read
        assert client.queued_bytes <= 256 << 10 and live.sse_dropped_total() >= client.dropped
        assert http_request(address, "GET", "/api/watchers").status == 200     # the hub serves on
        assert pump.bytes_read > read_so_far                                   # and the pump reads on
        assert http_request(address, "POST", "/api/watchers/yes/stop").status == 200
        # the browser reads again: it is told it missed messages
        stalled.settimeout(10)
        received = b""
        while b"event: missed" not in received:
            chunk = stalled.recv(1 << 20)
            assert chunk, "the stream ended without a missed notice"
            received = received[-100:] + chunk
    finally:
        stalled.close()


def test_head_requests_answer_without_a_body_and_leave_no_stream_behind(httpd_arbiter):
    arbiter, address = httpd_arbiter([Watcher("w", "sleep 120")])
    for path in ("/", "/api/watchers", "/api/events?dashboard=1", "/api/watchers/w/output", "/metrics"):
        reply = http_request(address, "HEAD", path)
        assert reply.status == 200 and reply.body == b"", path
    assert arbiter.http_server.live.sse_clients() == 0
