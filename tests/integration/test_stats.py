"""The stats stream: a greenlet of the arbiter publishing stat.* messages
that a raw zmq SUB, our StatsClient and Circus 0.19's own circus-top read."""
import json
import os
import signal
import socket
import sys
import time

import gevent
import pytest
import zmq.green as zmq

from gcircus.sockets import CircusSocket
from gcircus.stats.collector import ProcessSampler, aggregate
from gcircus.process import Process
from gcircus.supervision.sampler import processes_info
from gcircus.watcher import Watcher
from tests.conftest import child_cmd
from tests.integration.conftest import free_port

PER_PID_FIELDS = {"mem_info1", "mem_info2", "cpu", "mem", "ctime", "pid", "username", "nice",
                  "create_time", "age", "cmdline", "children", "subtopic", "name"}


class StatStream:
    """A raw zmq SUB on the stats endpoint, collecting (topic, body) with deadlines."""

    def __init__(self, endpoint):
        self.socket = zmq.Context.instance().socket(zmq.SUB)
        self.socket.linger = 0
        self.socket.setsockopt(zmq.SUBSCRIBE, b"stat.")
        self.socket.connect(endpoint)
        self.received = []

    def wait_for(self, predicate, timeout=10, what="stats"):
        deadline = time.monotonic() + timeout
        while not predicate(self.received):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail("no %s within %ss; topics: %s" % (
                    what, timeout, sorted({t for t, _ in self.received})))
            if self.socket.poll(min(remaining, 0.5) * 1000):
                topic, body = self.socket.recv_multipart()
                self.received.append((topic.decode(), json.loads(body)))
        return self.received

    def bodies(self, topic):
        return [body for t, body in self.received if t == topic]

    def close(self):
        self.socket.close()


@pytest.fixture
def stats_endpoint():
    return "tcp://127.0.0.1:%d" % free_port()


@pytest.fixture
def stat_stream(stats_endpoint):
    stream = StatStream(stats_endpoint)
    yield stream
    stream.close()


def test_raw_sub_gets_per_pid_and_aggregate_messages(run_arbiter, lines, stats_endpoint, stat_stream):
    watcher = Watcher("Web Workers", child_cmd("ready_then_sleep"), numprocesses=3,
                      stdout_stream={"stream": lines})
    run_arbiter([watcher], stats_endpoint=stats_endpoint, stats_interval=0.2)
    lines.wait_for("ready", 3)
    pids = sorted(watcher.processes)
    per_pid = ["stat.web_workers.%d" % pid for pid in pids]

    def complete(received):
        topics = {t for t, _ in received}
        return all(t in topics for t in per_pid) and "stat.web_workers" in topics and \
            any(t == "stat.circus" for t in topics)
    stat_stream.wait_for(complete, what="per-pid + aggregate messages of 3 processes")

    for pid, topic in zip(pids, per_pid):
        body = stat_stream.bodies(topic)[-1]
        assert set(body) == PER_PID_FIELDS
        assert body["pid"] == body["subtopic"] == pid and body["name"] is None
        assert body["cmdline"].startswith("python") and body["children"] == []
        assert isinstance(body["cpu"], float) and 0 < body["mem"] < 100
        assert body["mem_info1"][-1] in "BKMG" and body["ctime"].count(":") == 1
        assert 0 <= body["age"] < 60 and body["create_time"] <= time.time()
    aggregates = [b for b in stat_stream.bodies("stat.web_workers") if len(b["pid"]) == 3]
    assert aggregates, stat_stream.bodies("stat.web_workers")
    total = aggregates[-1]
    assert sorted(total["pid"]) == pids and set(total) == {"pid", "cpu", "mem", "age"}
    assert total["mem"] > 0 and total["age"] > 0
    daemon = [b for t, b in stat_stream.received if t == "stat.circus.%d" % os.getpid()]
    assert daemon and daemon[-1]["name"] == "circusd"
    assert stat_stream.bodies("stat.circus")[-1]["pid"] == [os.getpid()]


def test_stopped_and_reaped_processes_leave_the_stream(run_arbiter, lines, stats_endpoint, stat_stream):
    watcher = Watcher("one", child_cmd("ready_then_sleep"), stdout_stream={"stream": lines})
    arbiter = run_arbiter([watcher], stats_endpoint=stats_endpoint, stats_interval=0.1)
    lines.wait_for("ready")
    (old_pid,) = watcher.processes
    stat_stream.wait_for(lambda r: any(t == "stat.one.%d" % old_pid for t, _ in r))
    watcher.kill_process(watcher.processes[old_pid])
    watcher.manage_processes()
    lines.wait_for("ready", 2)
    (new_pid,) = watcher.processes
    mark = len(stat_stream.received)
    stat_stream.wait_for(lambda r: sum(1 for t, _ in r[mark:] if t == "stat.one") >= 2)
    later = stat_stream.received[mark:]
    assert ("stat.one.%d" % new_pid) in {t for t, _ in later}
    assert [b["pid"] for t, b in later if t == "stat.one"][-1] == [new_pid]
    streamer = arbiter.stats_streamer
    assert len(streamer.sampler) == 2   # the daemon and the new process; the old one is forgotten


SPAWNS = 10


def test_a_process_sampled_inside_its_exec_wrapper_shows_its_own_program():
    """A child runs its program one exec after the spawn (through setpriv): sampled in between, `stats` and the
    stats stream reported "setpriv" (or "N/A", in the middle of the exec) as its command, and kept it for the
    process's life (the command is read once)."""
    sampler = ProcessSampler()
    program = os.path.basename(sys.executable)
    processes = []
    try:
        for wid in range(SPAWNS):
            process = Process(wid, child_cmd("ready_then_sleep"), die_with_daemon=True)
            processes.append(process)
            # sampled the moment the spawn returns: most often the wrapper still runs
            infos, _ = processes_info([process], sampler)
            assert infos[process.pid]["cmdline"] == program
            assert process.info()["cmdline"] == program
        for process in processes:
            assert process.stdout.readline().startswith(b"ready")        # it runs its program now
            assert sampler.sample(process, process.pid)["cmdline"] == program
    finally:
        for process in processes:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            process.close_output_channels()


def test_socket_reads_are_counted(run_arbiter, stats_endpoint, stat_stream):
    sock = CircusSocket("web", host="127.0.0.1", port=0)
    run_arbiter([], stats_endpoint=stats_endpoint, stats_interval=0.2, sockets=[sock])
    stat_stream.wait_for(lambda r: any(t == "stat.sockets" for t, _ in r))
    fd = sock.fileno()
    clients = [socket.create_connection(("127.0.0.1", sock.port)) for _ in range(2)]
    try:
        stat_stream.wait_for(lambda r: any(t == "stat.sockets" and b["reads"] > 0 for t, b in r),
                             what="a read on the listening socket")
    finally:
        for client in clients:
            client.close()
    body = [b for b in stat_stream.bodies("stat.sockets.%d" % fd) if b["reads"]][-1]
    assert body == {"fd": fd, "subtopic": fd, "reads": body["reads"], "address": "127.0.0.1:%d" % sock.port}
    total = stat_stream.bodies("stat.sockets")[-1]
    assert total == {"addresses": ["127.0.0.1:%d" % sock.port], "reads": body["reads"]}


def test_aggregate_follows_circus_arithmetic():
    assert aggregate({}) == {"pid": [], "cpu": 0.0, "mem": 0, "age": "N/A"}
    infos = {1: {"cpu": 0.5, "mem": 1.0, "age": 3.0}, 2: {"cpu": 0.4, "mem": 2.0, "age": "N/A"}}
    assert aggregate(infos) == {"pid": [1, 2], "cpu": pytest.approx(0.45), "mem": 3.0, "age": 3.0}
    infos[2]["cpu"] = "N/A"
    assert aggregate(infos)["cpu"] == "N/A"


def test_sampling_500_processes_never_stalls_the_hub(run_arbiter, stats_endpoint):
    """A round over 500 processes gives the hub turns while it samples (another greenlet runs
    meanwhile) and the hub guard sees no stall. (How long its turns are:
    benchmarks/bench_hub_latency.py.)"""
    watcher = Watcher("many", "sleep 120", numprocesses=500)
    arbiter = run_arbiter([watcher], stats_endpoint=stats_endpoint, stats_interval=60,
                          hub_stall_threshold=0.5)
    streamer = arbiter.stats_streamer
    ticks = []

    def ticker():
        while True:
            gevent.sleep(0.001)
            ticks.append(None)

    streamer.publish_round()       # first round: builds the psutil handles
    ticking = gevent.spawn(ticker)
    gevent.sleep(0)
    before = len(ticks)
    streamer.publish_round()
    during = len(ticks) - before
    ticking.kill()
    assert len(streamer.sampler) == 501
    assert during > 0                  # the round was cut: the hub ran the ticker meanwhile
    assert arbiter.hub_stalls() == 0, arbiter.hub_guard.last_stall.as_dict()


def test_stats_command_of_many_processes_never_stalls_the_hub(served_arbiter, call, lines):
    """One /proc scan per stats call, sampled in slices: psutil's children() rescanned /proc
    per process, holding the hub for seconds (the guard counts such a turn as a stall)."""
    many = Watcher("many", "sleep 120", numprocesses=150)
    family = Watcher("family", child_cmd("ready_then_sleep", "--grandchild"), stop_children=True,
                     stdout_stream={"stream": lines})
    arbiter = served_arbiter([many, family], hub_stall_threshold=0.5)
    lines.wait_for("ready", 2)
    for _ in range(2):
        reply = call("stats", name="many")
        assert sorted(int(pid) for pid in reply["info"]) == sorted(many.processes)
        everything = call("stats")["infos"]
    assert sorted(int(pid) for pid in everything["many"]) == sorted(many.processes)
    (parent, info), = everything["family"].items()
    grandchild = [pid for pid in lines.pids("ready") if pid != int(parent)]
    assert [child["pid"] for child in info["children"]] == grandchild
    assert info["wid"] == 1 and info["cmdline"] and isinstance(info["age"], float)
    assert arbiter.hub_stalls() == 0, arbiter.hub_guard.last_stall.as_dict()
