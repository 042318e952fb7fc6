"""Where the time of a respawn and of a stop goes, for the suite's missed targets (results/suite.md).

    python benchmarks/profile_paths.py [--samples 200] [--stop-n 2000]

1. exec wrapper: spawner.fork_exec of `sleep` until /proc/<pid>/comm says `sleep`, plain and through the parent-death wrapper
   (`setpriv --pdeathsig KILL --`) a `die_with_daemon` child gets, interleaved;
2. respawn, in-process arbiter with a watcher of 100 `sleep`: SIGKILL one child, and the time of each step until
   the replacement's `spawn` event (the exit callback, the watcher's handling, the C fork_exec the spawner's
   Launch calls, the Launch's return after its hand-over of the CPU and status-pipe read, the events);
3. stop of a watcher of --stop-n processes: wall time and the top of a cProfile by internal time.

Medians and 10th percentiles; numbers of one machine, for the ratios between the steps.
"""
import argparse
import cProfile
import os
import pstats
import signal
import statistics
import subprocess
import tempfile
import time

import gevent
from gevent.event import Event

from gcircus import process as process_module
from gcircus import watcher as watcher_module
from gcircus.arbiter import Arbiter
from gcircus.supervision import spawner
from gcircus.watcher import Watcher


def exec_wrapper_cost(samples):
    def once(argv):
        began = time.perf_counter()
        child = spawner.fork_exec(argv, stdin=subprocess.DEVNULL, env={"PATH": os.defpath}, cwd="/tmp")
        returned = time.perf_counter()
        path = "/proc/%d/comm" % child.pid
        while True:                 # polled: a benchmark watches another program's state
            with open(path) as handle:
                if handle.read() == "sleep\n":
                    break
        execd = time.perf_counter()
        os.kill(child.pid, signal.SIGKILL)
        os.waitpid(child.pid, 0)
        return (returned - began) * 1e3, (execd - began) * 1e3

    runs = {"plain": [], "setpriv": []}
    for _ in range(samples):
        runs["plain"].append(once(["sleep", "100"]))
        runs["setpriv"].append(once([spawner.SETPRIV, "--pdeathsig", "KILL", "--", "sleep", "100"]))
    for name, values in runs.items():
        report("exec wrapper %-8s fork_exec returned" % name, [a for a, _ in values])
        report("exec wrapper %-8s sleep exec'd" % name, [b for _, b in values])


def report(label, values):
    values = sorted(values)
    print("%-42s median %7.3f ms  p10 %7.3f ms" % (label, statistics.median(values), values[len(values) // 10]))


class Marks:
    """Timestamps of the respawn's steps, by wrapping the functions that take them (this script only)."""

    def __init__(self):
        self.at = {}
        self._wrap(process_module.Process, "_on_child_event", "exit callback")
        # an exit is handled by one or the other (the hub's callback forks the replacement itself when it can)
        self._wrap(watcher_module.Watcher, "_handle_exit", "watcher handles it")
        self._wrap(watcher_module.Watcher, "_replace_inline", "watcher handles it")
        self._wrap(watcher_module.Watcher, "spawn_process", "spawn_process")
        # every spawn, prepared or not, goes through Launch.start and the C fork_exec it calls
        self._wrap_around(spawner, "_fork_exec", "fork_exec", "fork_exec returned")
        self._wrap_around(spawner.Launch, "start", None, "Launch.start returned")

    def _wrap_around(self, owner, name, before, after):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            if before is not None:
                self.at[before] = time.perf_counter()
            result = original(*args, **kwargs)
            self.at[after] = time.perf_counter()
            return result
        setattr(owner, name, timed)

    def _wrap(self, owner, name, label):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            self.at[label] = time.perf_counter()
            return original(*args, **kwargs)
        setattr(owner, name, timed)


def respawn_steps(samples, workdir):
    marks = Marks()
    watcher = Watcher("w", "sleep", args="3600", numprocesses=100, warmup_delay=0)
    arbiter = Arbiter([watcher], "ipc://%s/control" % workdir, "ipc://%s/events" % workdir, check_delay=1.0)
    spawned = Event()

    def on_event(topic, _message):
        if topic == "watcher.w.spawn":
            marks.at["spawn event"] = time.perf_counter()
            spawned.set()
    arbiter.publisher.add_listener(on_event)
    runner = gevent.spawn(arbiter.start)
    rows = []
    try:
        arbiter.wait_started(30)
        while len(watcher.processes) < 100:
            gevent.sleep(0.05)
        gevent.sleep(watcher.min_uptime + 0.2)
        for _ in range(samples):
            victim = min(watcher.processes.values(), key=lambda process: process.started)
            spawned.clear()
            marks.at.clear()
            marks.at["SIGKILL"] = time.perf_counter()
            os.kill(victim.pid, signal.SIGKILL)
            if spawned.wait(5):
                rows.append(dict(marks.at))
            gevent.sleep(0.01)
    finally:
        arbiter.stop()          # its children too, whatever failed above
        runner.join(30)
    steps = ["exit callback", "watcher handles it", "spawn_process", "fork_exec", "fork_exec returned",
             "Launch.start returned", "spawn event"]
    previous = "SIGKILL"
    for step in steps:
        report("respawn: %s -> %s" % (previous, step), [(row[step] - row[previous]) * 1e3 for row in rows])
        previous = step
    report("respawn: SIGKILL -> spawn event", [(row["spawn event"] - row["SIGKILL"]) * 1e3 for row in rows])


def stop_profile(n, workdir):
    watcher = Watcher("w", "sleep", args="3600", numprocesses=n, warmup_delay=0)
    arbiter = Arbiter([watcher], "ipc://%s/control2" % workdir, None, check_delay=1.0)
    runner = gevent.spawn(arbiter.start)
    try:
        arbiter.wait_started(120)
        while len(watcher.processes) < n:
            gevent.sleep(0.05)
    except BaseException:
        arbiter.stop()
        runner.join(120)
        raise
    profile = cProfile.Profile()
    began = time.perf_counter()
    profile.enable()
    arbiter.stop()
    runner.join(120)
    profile.disable()
    print("stop of %d processes: %.3f s (%.3f ms each)" % (n, time.perf_counter() - began,
                                                       (time.perf_counter() - began) * 1e3 / n))
    pstats.Stats(profile).sort_stats("tottime").print_stats(12)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--stop-n", type=int, default=2000)
    args = parser.parse_args()
    print("load average before: %.2f %.2f %.2f" % os.getloadavg())
    exec_wrapper_cost(args.samples)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as workdir:
        respawn_steps(min(args.samples, 90), workdir)
        stop_profile(args.stop_n, workdir)


if __name__ == "__main__":
    main()
