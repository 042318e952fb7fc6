"""1,000 malformed requests: each one gets an error reply, the daemon keeps
serving, and its memory stays bounded."""
import json
import random

import psutil
import zmq.green as zmq

from gcircus.watcher import Watcher

MESSAGES = 1000
BATCH = 50
HUGE = 10 * 1024 * 1024
REQUIRED = {"add": ("name", "cmd"), "rm": ("name",), "incr": ("name",), "decr": ("name",),
            "get": ("name", "keys"), "set": ("name", "options"), "options": ("name",),
            "signal": ("name", "signum"), "kill": ("name",)}
JUNK_VALUES = [None, 1, -5, 2.5, True, [], [1, 2], {}, {"a": 1}, "", "x" * 300]


def bad_json(rng):
    choice = rng.randrange(3)
    if choice == 0:
        return b"\xff" + rng.randbytes(rng.randrange(0, 200))       # not even UTF-8
    if choice == 1:
        return json.dumps({"command": "list"}).encode()[:-rng.randrange(1, 5)]   # truncated
    return rng.choice([b"{", b"}", b"[1,", b"nul", b"{'command': 'list'}", b"\x00\x01", b"  "])


def not_an_object(rng):
    return json.dumps(rng.choice([[], [1, "list"], "list", 42, None, True, 3.5])).encode()


def bad_envelope(rng):
    message = rng.choice([{}, {"properties": {}}, {"command": rng.choice([1, None, [], {}, True])},
                          {"command": "list", "properties": rng.choice([[], "x", 3, True])},
                          {"command": "zz-%d" % rng.randrange(10 ** 6)}])
    return json.dumps(message).encode()


def bad_properties(rng):
    command = rng.choice(sorted(REQUIRED))
    props = {key: rng.choice(JUNK_VALUES) for key in REQUIRED[command]}
    missing = rng.choice(REQUIRED[command])
    if rng.random() < 0.5:
        del props[missing]
    else:
        # a type no command accepts for a name; other keys keep their junk
        props[REQUIRED[command][0]] = rng.choice([None, 1, [], {}, True])
    return json.dumps({"command": command, "properties": props}).encode()


GENERATORS = [bad_json, not_an_object, bad_envelope, bad_properties]


def make_frames(rng, index):
    """One malformed request as DEALER frames; 1 in 100 is a 10 MB body, 1 in 10 multi-frame."""
    if index % 200 == 7:
        return [b"{" + b"x" * HUGE]
    body = rng.choice(GENERATORS)(rng)
    if index % 10 == 3:
        return [body] + [rng.randbytes(rng.randrange(0, 20)) for _ in range(rng.choice((2, 4)))]
    return [body]


def test_every_malformed_message_is_answered_and_the_daemon_survives(served_arbiter, endpoints, call):
    watcher = Watcher("web", "sleep 120")
    arbiter = served_arbiter([watcher])
    pid = next(iter(watcher.processes))
    rng = random.Random(20240601)
    context = zmq.Context.instance()
    sockets = [context.socket(zmq.DEALER) for _ in range(4)]
    for sock in sockets:
        sock.linger = 0
        sock.connect(endpoints.control)
    me = psutil.Process()
    rss = []
    replies = []
    try:
        for start in range(0, MESSAGES, BATCH):
            sock = sockets[(start // BATCH) % len(sockets)]
            for index in range(start, start + BATCH):
                sock.send_multipart(make_frames(rng, index))
            for _ in range(BATCH):
                assert sock.poll(10000), "a malformed message went unanswered"
                replies.append(json.loads(sock.recv_multipart()[-1]))   # after any envelope
            rss.append(me.memory_info().rss)
    finally:
        for sock in sockets:
            sock.close()
    assert len(replies) == MESSAGES
    assert all(reply["status"] == "error" for reply in replies)
    errnos = {reply["errno"] for reply in replies}
    assert errnos <= {1, 2, 3} and {1, 2, 3} <= errnos
    assert sum("message too large" in reply["reason"] for reply in replies) == MESSAGES // 200
    # the daemon serves on, untouched
    assert call("numwatchers")["numwatchers"] == 1
    assert call("list", name="web")["pids"] == [pid]
    assert not arbiter.controller._pending and not len(arbiter.controller._requests)
    # memory: after the first batches, growth stays far below what was sent (> 50 MB)
    assert rss[-1] - rss[2] < 40 * 1024 * 1024, "rss grew from %d to %d" % (rss[2], rss[-1])
