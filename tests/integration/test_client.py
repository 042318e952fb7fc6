"""gcircus.client: CircusClient and CircusConsumer, inside a gevent hub (green) and
from plain Python (blocking), with Circus's timeout and reply-id semantics."""
import json
import subprocess
import sys
import textwrap
import time

import gevent
import gevent.subprocess
import pytest

from gcircus.client import CircusClient, CircusConsumer
from gcircus.exc import CallError
from gcircus.watcher import Watcher
from tests.conftest import child_cmd
from tests.integration.conftest import free_port


def test_call_send_message_and_error_replies(served_arbiter, client):
    served_arbiter([Watcher("web", "sleep 120")])
    assert client.send_message("numwatchers")["numwatchers"] == 1
    reply = client.call({"command": "list", "properties": {}, "id": "mine"})
    assert reply["id"] == "mine" and reply["watchers"] == ["web"]
    assert client.send_message("list", name="nope")["errno"] == 3     # errors are replies, not raised
    with pytest.raises(CallError):
        client.call('{"command": "list"}')


def test_timeout_raises_call_error():
    lonely = CircusClient(endpoint="tcp://127.0.0.1:%d" % free_port(), timeout=0.2)
    started = time.monotonic()
    with pytest.raises(CallError, match="Timed out."):
        lonely.send_message("list")
    assert time.monotonic() - started < 2
    lonely.stop()


def test_a_late_reply_is_not_taken_for_the_next_one(served_arbiter, endpoints, lines):
    slow = Watcher("slow", child_cmd("ready_then_sleep", "--ignore-term"), graceful_timeout=0.5,
                   stdout_stream={"stream": lines})
    served_arbiter([slow, Watcher("web", "sleep 120")])
    lines.wait_for("ready")
    impatient = CircusClient(endpoint=endpoints.control, timeout=0.1)
    with pytest.raises(CallError):
        impatient.send_message("stop", name="slow", waiting=True)     # its reply comes ~0.5 s later
    impatient.timeout = 10
    assert slow.is_stopped() is False
    reply = impatient.send_message("status", name="web")
    assert reply["status"] == "active"          # not the stale `stop` reply
    lines.wait_for("TERM")
    impatient.stop()


def test_cast_gets_no_reply_but_runs(served_arbiter, client, events):
    watcher = Watcher("web", "sleep 120")
    served_arbiter([watcher])
    client.cast("incr", name="web")
    events.wait_count("watcher.web.spawn", 2)
    assert watcher.numprocesses == 2


def test_green_client_lets_the_hub_run_while_it_waits(served_arbiter, client, lines):
    slow = Watcher("slow", child_cmd("ready_then_sleep", "--ignore-term"), graceful_timeout=0.3,
                   stdout_stream={"stream": lines})
    served_arbiter([slow])
    lines.wait_for("ready")
    ticks = []
    ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.01)) for _ in range(1000)])
    assert client.send_message("stop", name="slow", waiting=True)["status"] == "ok"
    ticker.kill()
    assert len(ticks) > 5       # other greenlets ran during the 0.3 s wait
    assert client._zmq.__name__ == "zmq.green"


def test_blocking_client_in_a_thread_without_hub(served_arbiter, endpoints):
    served_arbiter([Watcher("web", "sleep 120")])

    def in_thread():
        plain = CircusClient(endpoint=endpoints.control, timeout=10)
        try:
            return plain.send_message("numwatchers"), plain._zmq.__name__
        finally:
            plain.stop()
    reply, flavour = gevent.get_hub().threadpool.apply(in_thread)
    assert reply["numwatchers"] == 1 and flavour == "zmq"


def test_client_and_consumer_from_plain_python(served_arbiter, endpoints):
    """A separate interpreter that never imports gevent's hub: blocking zmq all the way."""
    arbiter = served_arbiter([Watcher("web", "sleep 120")])
    script = textwrap.dedent("""
        import json, sys
        from gcircus.client import CircusClient, CircusConsumer
        consumer = CircusConsumer(["watcher.web."], endpoint=sys.argv[2], timeout=0.1).connect()
        client = CircusClient(endpoint=sys.argv[1], timeout=10)
        print(json.dumps(client.send_message("list")), flush=True)
        sys.stdin.readline()          # the test publishes while we listen
        topic, body = next(iter(consumer))
        print(json.dumps([topic.decode(), json.loads(body)]), flush=True)
        import gevent._hub_local
        print(json.dumps(gevent._hub_local.get_hub_if_exists() is None), flush=True)
    """)
    proc = gevent.subprocess.Popen([sys.executable, "-c", script, endpoints.control, endpoints.pubsub],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert json.loads(proc.stdout.readline())["watchers"] == ["web"]
        proc.stdin.write("go\n")
        proc.stdin.flush()
        reader = gevent.spawn(proc.stdout.readline)
        with gevent.Timeout(10):
            while not reader.ready():     # zmq's slow joiner: publish until the consumer has one
                arbiter.publisher.publish("watcher.web.probe", {"n": 1})
                reader.join(0.05)
        topic, body = json.loads(reader.value)
        assert topic == "watcher.web.probe" and body == {"n": 1}
        assert json.loads(proc.stdout.readline()) is True       # no hub was ever created there
    finally:
        proc.kill()
        proc.wait()


def test_consumer_filters_topics_and_stops(served_arbiter, endpoints, call):
    arbiter = served_arbiter([Watcher("web", "sleep 120"), Watcher("db", "sleep 120")])
    consumer = CircusConsumer(["watcher.web.spawn", b"watcher.web.reap"], endpoint=endpoints.pubsub,
                              timeout=0.05).connect()
    received = []

    def consume():
        for topic, body in consumer:
            received.append((topic, json.loads(body)))
    reader = gevent.spawn(consume)
    with gevent.Timeout(10):
        while not received:               # the subscription becomes live after a while (slow joiner)
            arbiter.publisher.publish("watcher.web.spawn", {"probe": True})
            reader.join(0.05)
    received.clear()
    call("incr", name="db", waiting=True)
    call("incr", name="web", waiting=True)
    call("decr", name="web", waiting=True)
    with gevent.Timeout(10):
        while len(received) < 2:
            reader.join(0.05)
    consumer.stop()
    reader.join(5)
    assert reader.dead and not reader.exception
    assert [t for t, _ in received] == [b"watcher.web.spawn", b"watcher.web.reap"]
    assert received[1][1]["exit_code"] == -15 and set(received[0][1]) == {"process_pid", "time"}


STOP_UNDER_A_WAITER = textwrap.dedent("""
    import random, sys
    import gevent, zmq
    from gcircus.client import CircusClient, CircusConsumer
    from gcircus.exc import CallError
    context = zmq.Context.instance()
    pub = context.socket(zmq.PUB)
    pub_port = pub.bind_to_random_port("tcp://127.0.0.1")
    silent = context.socket(zmq.ROUTER)          # takes requests, never replies
    silent_port = silent.bind_to_random_port("tcp://127.0.0.1")
    rng = random.Random(int(sys.argv[1]))
    stopped_calls = 0
    for _ in range(int(sys.argv[2])):
        consumer = CircusConsumer(["x"], endpoint="tcp://127.0.0.1:%d" % pub_port, timeout=0.0005,
                                  green=True).connect()
        client = CircusClient(endpoint="tcp://127.0.0.1:%d" % silent_port, timeout=30, green=True)
        reader = gevent.spawn(lambda: list(consumer))
        caller = gevent.spawn(client.send_message, "status")
        for _ in range(rng.randint(1, 6)):       # stop at every point of the waiters' poll loops
            gevent.sleep(0)
        consumer.stop()
        client.stop()
        reader.join(5)
        caller.join(5)
        assert reader.dead and caller.dead, "a waiter outlived stop()"
        assert reader.successful(), reader.exception
        if isinstance(caller.exception, CallError):
            assert "stopped" in str(caller.exception), caller.exception
            stopped_calls += 1
    print("survived", stopped_calls)
""")


def test_stop_while_another_greenlet_waits_on_the_socket_does_not_abort():
    """stop() from one greenlet while another waits in the consumer's or client's poll: libzmq closes the
    descriptor from its own thread, and closing it under a green waiter made libev abort the whole
    process ("I/O watcher with invalid fd found in epoll_ctl"). The waiter now closes it as it wakes."""
    result = subprocess.run([sys.executable, "-c", STOP_UNDER_A_WAITER, "7", "800"],
                            capture_output=True, text=True, timeout=100)
    assert result.returncode == 0, result.stderr[-2000:]
    survived, stopped_calls = result.stdout.split()
    assert survived == "survived" and int(stopped_calls) > 0     # some calls really were waiting at stop()
