"""bench_hub_latency: how long the shared hub keeps others waiting — the figures the test suite
used to assert and no longer does (timing claims live here, behaviour in tests/).

    python benchmarks/bench_hub_latency.py [--rounds 20]

Each scenario runs an in-process arbiter on this hub with real children and prints its figure:
- command latency (status/list/incr/decr...) while another watcher takes 30 s to stop;
- respawn delay of a killed process while a chatty child floods a framing stream;
- the longest hub stall seen by a 1 ms ticker while a stats round samples 500 processes;
- the arbiter's CPU share during a crash loop of `false` (retried with backoff).
gcircus only: Circus and Supervisor run these on other architectures (a tick loop, a select loop);
their comparable figures are in run.py's respawn / status / crash-loop scenarios.
Results: benchmarks/results/hub_latency.json.
"""
import argparse
import json
import os
import signal
import sys
import tempfile
import time

import gevent
import psutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from gcircus.arbiter import Arbiter  # noqa: E402
from gcircus.client import CircusClient  # noqa: E402
from gcircus.watcher import Watcher  # noqa: E402
from tests.support.streams import FramedCounter  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "hub_latency.json")
IGNORE_TERM = "%s -c \"import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)\"" % sys.executable  # noqa: E501


class Events:
    def __init__(self):
        self.spawns = {}
        self.changed = gevent.event.Event()

    def __call__(self, topic, message):
        if topic.endswith(".spawn"):
            name = topic.split(".")[1]
            self.spawns[name] = self.spawns.get(name, 0) + 1
            self.changed.set()

    def wait_spawns(self, name, count, timeout=10):
        deadline = time.monotonic() + timeout
        while self.spawns.get(name, 0) < count:
            self.changed.clear()
            if not self.changed.wait(max(0.0, deadline - time.monotonic())):
                raise RuntimeError("no spawn %d of %s" % (count, name))


def running(watchers, endpoint=None, **kw):
    events = Events()
    arbiter = Arbiter(watchers, endpoint, None, check_delay=60, handle_signals=False, **kw)
    arbiter.publisher.add_listener(events)
    gevent.spawn(arbiter.start)
    arbiter.wait_started(30)
    return arbiter, events


def command_latency_during_slow_stop():
    endpoint = "ipc://%s/c.sock" % tempfile.mkdtemp(prefix="gcb-", dir="/tmp")
    slow = Watcher("slow", IGNORE_TERM, graceful_timeout=30)
    arbiter, _ = running([slow, Watcher("fast", "sleep 120")], endpoint)
    client = CircusClient(endpoint=endpoint, timeout=15)
    try:
        client.send_message("stop", name="slow")
        latencies = []
        for command, props in [("list", {}), ("status", {}), ("status", {"name": "fast"}),
                               ("incr", {"name": "fast"}), ("stats", {"name": "slow"}),
                               ("decr", {"name": "fast", "waiting": True})] * 5:
            began = time.monotonic()
            client.send_message(command, **props)
            latencies.append(time.monotonic() - began)
        return {"max_ms": round(max(latencies) * 1000, 2), "median_ms": round(sorted(latencies)[len(latencies) // 2] * 1000, 2)}
    finally:
        client.stop()
        for pid in list(slow.processes):
            os.kill(pid, signal.SIGKILL)
        arbiter.stop()


def respawn_under_output_flood(rounds):
    counter = FramedCounter(os.path.join(tempfile.mkdtemp(prefix="gcb-"), "chatty.log"), 8 << 20)
    other = Watcher("other", "sleep 120", min_uptime=0)
    arbiter, events = running([Watcher("chatty", "yes 0123456789abcdef", stdout_stream={"stream": counter}), other])
    try:
        counter.reached.wait(30)
        delays = []
        for number in range(1, rounds + 1):
            began = time.monotonic()
            os.kill(next(iter(other.processes)), signal.SIGKILL)
            events.wait_spawns("other", number + 1)
            delays.append(time.monotonic() - began)
        return {"max_ms": round(max(delays) * 1000, 2), "median_ms": round(sorted(delays)[len(delays) // 2] * 1000, 2)}
    finally:
        arbiter.stop()


def hub_stall_during_stats_round():
    endpoint = "ipc://%s/s.sock" % tempfile.mkdtemp(prefix="gcb-", dir="/tmp")
    arbiter, _ = running([Watcher("many", "sleep 120", numprocesses=500)], stats_endpoint=endpoint, stats_interval=60)
    try:
        gaps = []

        def ticker():
            last = time.monotonic()
            while True:
                gevent.sleep(0.001)
                now = time.monotonic()
                gaps.append(now - last)
                last = now
        arbiter.stats_streamer.publish_round()
        ticking = gevent.spawn(ticker)
        gevent.sleep(0.01)
        del gaps[:]
        began = time.monotonic()
        arbiter.stats_streamer.publish_round()
        took = time.monotonic() - began
        ticking.kill()
        return {"longest_stall_ms": round(max(gaps) * 1000, 2), "round_ms": round(took * 1000, 2)}
    finally:
        arbiter.stop()


def cpu_during_crash_loop(seconds=5):
    arbiter, events = running([Watcher("crasher", "false", max_retry=-1, min_uptime=1, backoff_base=0.1)])
    try:
        before, began = psutil.Process().cpu_times(), time.monotonic()
        gevent.sleep(seconds)      # the measurement window itself
        after, elapsed = psutil.Process().cpu_times(), time.monotonic() - began
        cpu = (after.user - before.user) + (after.system - before.system)
        return {"cpu_percent": round(100 * cpu / elapsed, 2), "spawns": events.spawns.get("crasher", 0)}
    finally:
        arbiter.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    results = {
        "command_latency_during_slow_stop": command_latency_during_slow_stop(),
        "respawn_under_output_flood": respawn_under_output_flood(args.rounds),
        "hub_stall_during_stats_round_500": hub_stall_during_stats_round(),
        "cpu_during_crash_loop": cpu_during_crash_loop(),
    }
    for name, figures in results.items():
        print("%-36s %s" % (name, "  ".join("%s=%s" % item for item in figures.items())))
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as handle:
        json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
