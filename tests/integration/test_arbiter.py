"""Arbiter and get_arbiter: watcher registry, embedding in a gevent app, background mode."""
import os
import signal

import gevent
import pytest
from gevent.pywsgi import WSGIServer

import gcircus
from gcircus.arbiter import Arbiter
from gcircus.background import ThreadedArbiter
from gcircus.exc import ConflictError
from gcircus.watcher import Watcher
from tests.fixtures.http_client import http_request
from tests.support.wait import wait_in_thread


def test_get_arbiter_accepts_a_command_string_and_dicts():
    arbiter = gcircus.get_arbiter("sleep 5", numprocesses=3, controller=None, pubsub_endpoint=None)
    assert isinstance(arbiter, Arbiter) and arbiter.numwatchers() == 1
    watcher = arbiter.get_watcher("SLEEP")
    assert (watcher.name, watcher.numprocesses, watcher.cmd) == ("sleep", 3, "sleep 5")
    arbiter = gcircus.get_arbiter([{"name": "a", "cmd": "sleep 1"}, {"cmd": "/bin/true"}],
                                  controller=None, pubsub_endpoint=None, background=True)
    assert isinstance(arbiter, ThreadedArbiter)
    assert [w.name for w in arbiter.watchers] == ["a", "true"]


def test_get_arbiter_with_a_command_string_keeps_arbiter_options_off_the_watcher():
    arbiter = gcircus.get_arbiter("sleep 5", controller=None, pubsub_endpoint=None, max_message_size=2048,
                                  stats_interval=0.5, endpoint_mode="0600", graceful_timeout=3)
    options = arbiter.options
    assert (options["max_message_size"], options["stats_interval"], options["endpoint_mode"]) == (2048, 0.5, "0600")
    watcher = arbiter.get_watcher("sleep")
    assert watcher.graceful_timeout == 3
    assert not {"max_message_size", "stats_interval", "endpoint_mode"} & set(watcher.options)


def test_circus_only_options_are_accepted(run_arbiter):
    watcher = Watcher("w", "sleep 120", loop=None)          # Circus's tornado loop: meaningless here
    assert "loop" not in watcher.options
    run_arbiter([watcher])
    assert len(watcher.processes) == 1


def test_add_get_remove_watchers(run_arbiter, events):
    arbiter = run_arbiter([])
    watcher = arbiter.add_watcher("extra", "sleep 120", numprocesses=2)
    with pytest.raises(ConflictError):
        arbiter.add_watcher("EXTRA", "sleep 1")
    watcher.start()
    assert arbiter.numwatchers() == 1 and arbiter.numprocesses() == 2
    assert arbiter.get_watcher("Extra") is watcher
    arbiter.rm_watcher("extra")
    assert arbiter.numwatchers() == 0 and not watcher.processes
    kinds = [t.rsplit(".", 1)[1] for t in events.topics("watcher.extra.")]
    assert kinds[0] == "add" and kinds[-1] == "stop"
    removal = kinds[kinds.index("remove"):]
    assert sorted(removal) == ["kill", "kill", "reap", "reap", "remove", "stop"]
    with pytest.raises(KeyError):
        arbiter.get_watcher("extra")


def test_a_stopped_arbiter_spawns_nothing_and_a_second_stop_is_complete(run_arbiter):
    watcher = Watcher("w", "sleep 120", numprocesses=2)
    arbiter = run_arbiter([watcher])
    arbiter.stop()
    for command in (watcher.restart, watcher.start, watcher.reload):
        with pytest.raises(ConflictError, match="arbiter is stopped"):
            command()
    assert watcher.incr() == 3 and not watcher.processes and watcher.is_stopped()
    arbiter.stop()
    assert not watcher.processes and watcher.is_stopped()


def test_arbiter_reload_reloads_every_watcher(run_arbiter, events):
    calls = []
    arbiter = run_arbiter([Watcher("a", "sleep 120"), Watcher("b", "sleep 120")],
                          prereload_fn=calls.append)
    before = {w.name: set(w.processes) for w in arbiter.watchers}
    arbiter.reload()
    assert calls == [arbiter]
    for watcher in arbiter.watchers:
        assert not before[watcher.name] & set(watcher.processes) and len(watcher.processes) == 1
    assert events.count("watcher.a.reload") == events.count("watcher.b.reload") == 1


def test_events_reach_a_zmq_subscriber(run_arbiter, tmp_path):
    import json
    import zmq.green as zmq
    endpoint = "ipc://%s/pub.sock" % tmp_path
    arbiter = run_arbiter([], pubsub_endpoint=endpoint)
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"watcher.")
    sub.connect(endpoint)
    try:
        # A SUB socket joins asynchronously: publish until one message arrives (slow-joiner).
        watcher = arbiter.add_watcher("My Watcher", "sleep 120")
        with gevent.Timeout(10):
            while not sub.poll(50):
                watcher._event("add")
            topic, body = sub.recv_multipart()
        assert topic == b"watcher.my_watcher.add" and set(json.loads(body)) == {"time"}
        watcher.start()
        with gevent.Timeout(10):
            topics = set()
            while b"watcher.my_watcher.start" not in topics:
                topics.add(sub.recv_multipart()[0])
        assert b"watcher.my_watcher.spawn" in topics
    finally:
        sub.close()


def test_embedded_next_to_a_pywsgi_server(run_arbiter, events):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"pong"]

    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    try:
        watcher = Watcher("workers", "sleep 120", numprocesses=2, min_uptime=0)
        run_arbiter([watcher])
        for round_number in range(3):
            os.kill(next(iter(watcher.processes)), signal.SIGKILL)
            client = gevent.spawn(lambda: http_request(("127.0.0.1", server.server_port)).body)
            events.wait_count("watcher.workers.spawn", 3 + round_number)
            assert client.get(timeout=10) == b"pong"
        assert len(watcher.processes) == 2
    finally:
        server.stop()


def test_background_arbiter_runs_in_a_thread(tmp_path):
    """background=True: start() returns while the arbiter supervises (its own hub, polled exits)."""
    arbiter = gcircus.get_arbiter([{"name": "bg", "cmd": "sleep 120", "numprocesses": 2, "min_uptime": 0}],
                                  controller=None, pubsub_endpoint=None, background=True)
    arbiter.start()
    try:
        watcher = arbiter.get_watcher("bg")
        assert len(watcher.processes) == 2
        victim = next(iter(watcher.processes))
        os.kill(victim, signal.SIGKILL)
        replaced = wait_in_thread(lambda: victim not in watcher.processes and len(watcher.processes) == 2)
        assert replaced
    finally:
        arbiter.stop()
    assert not watcher.processes


def test_background_arbiter_stops_cleanly_from_a_thread_and_from_its_own_hub(caplog):
    """stop() from the caller's thread, and a stop on the arbiter's own hub (as `quit` does): no error."""
    for own_hub in (False, True):
        arbiter = gcircus.get_arbiter([{"name": "bg", "cmd": "sleep 120"}], controller=None,
                                      pubsub_endpoint=None, background=True)
        arbiter.start()
        thread = arbiter._thread
        if own_hub:
            arbiter._hub.loop.run_callback_threadsafe(gevent.spawn, arbiter.stop)
            thread.join(30)
        else:
            arbiter.stop()
        assert not thread.is_alive() and not arbiter.get_watcher("bg").processes
        arbiter.stop()                                   # again: a no-op
    assert "Traceback" not in caplog.text and "cannot join" not in caplog.text


MONKEY_PATCHED_APP = """
from gevent import monkey; monkey.patch_all()
import gevent, gcircus
arbiter = gcircus.get_arbiter([{"name": "w", "cmd": "sleep 120"}], controller=None, pubsub_endpoint=None,
                              background=True)
arbiter.start()
pids = list(arbiter.get_watcher("w").processes)
gevent.spawn(arbiter.stop).join(30)      # another greenlet: in a patched program, another "thread"
print("stopped", pids, list(arbiter.get_watcher("w").processes), flush=True)
"""


def test_background_arbiter_in_a_monkey_patched_program_stops_from_any_greenlet():
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-c", MONKEY_PATCHED_APP], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("stopped [") and result.stdout.rstrip().endswith("[]"), result.stdout
    assert "Traceback" not in result.stderr, result.stderr


def test_arbiter_embedded_in_a_monkey_patched_web_app():
    """The usual gevent web app is monkey-patched: spawning, streams, respawn and stop all work there."""
    import json
    import subprocess
    import sys
    app = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "patched_app.py")
    result = subprocess.run([sys.executable, app], capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"hello": 3, "answer": "up", "left": 0, "version": gcircus.__version__}
    assert "Traceback" not in result.stderr, result.stderr




def test_an_embedded_arbiter_leaves_the_signals_to_its_application():
    """Started in a greenlet (not as the program), the arbiter installs no handler: SIGTERM
    remains the application's to handle; handle_signals=True installs them there too."""
    before = _catches(signal.SIGTERM)
    for handle_signals, installs in ((None, False), (True, True)):
        arbiter = Arbiter([Watcher("w", "sleep 120")], None, None, check_delay=60,
                          handle_signals=handle_signals)
        greenlet = gevent.spawn(arbiter.start)
        try:
            assert arbiter.wait_started(15)
            assert _catches(signal.SIGTERM) is (installs or before)
        finally:
            arbiter.stop()
            greenlet.join(10)


def _catches(signum):
    """Whether this process catches signum, as the kernel sees it (gevent's handlers are libev's,
    invisible to signal.getsignal)."""
    with open("/proc/self/status") as status:
        caught = next(int(line.split()[1], 16) for line in status if line.startswith("SigCgt:"))
    return bool(caught & (1 << (signum - 1)))
