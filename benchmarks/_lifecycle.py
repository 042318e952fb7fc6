"""The suite's measured runs: one daemon lifecycle per (contender, N), and a crash loop per contender.

Each is a callable for _common.run_interleaved returning one sample (a dict); every process it starts is
killed by pid before it returns (_common.kill_tree), the temporary directory removed.

A lifecycle, with a watcher of N `sleep 3600` processes:

1. cold start: from just before the daemon's Popen to the N-th child seen exec'd (ppid == the daemon, comm ==
   "sleep" in /proc/<pid>/stat; _procscan.ChildScanner polled every 2 ms);
2. the daemon's RSS and USS (psutil memory_full_info) right then;
3. for N == ``rpc_n``: status round trips by 1 and by 8 concurrent client processes (_rpc_client.py), and the
   daemon's CPU meanwhile;
4. for N == ``respawn_n``: once the children are 2 s old, SIGKILL one original child at a time (after a random
   0–1 s pause, so that a daemon acting on a periodic tick is hit at a random phase of it), and time until a new
   child is seen exec'd (ChildScanner.wait_new_child, polling every 0.2 ms);
5. for N == ``idle_n``, in the first round only: the daemon's CPU over 3 idle sub-windows;
6. graceful stop, after a 0.3 s quiet time: SIGTERM to the daemon until it has exited (waitpid) and none of its
   children is alive (gone or a zombie).
"""
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import psutil

import _common
import _daemons
import _procscan

RPC_CLIENT = os.path.join(_common.HERE, "_rpc_client.py")
COLD_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
STOP_SETTLE = 0.3       # quiet time before the SIGTERM: Circus 0.19 loses a SIGTERM that arrives while its
                        # manage_watchers is still spawning (it logs "Got signal SIG_TERM" and runs on)
RESPAWN_TIMEOUT = 10.0
MIN_AGE = 2.0           # children killed younger get a backoff by design (gcircus min_uptime, Supervisor startsecs)
PHASE = 1.0             # pauses before each kill: uniform in [0, PHASE) s
IDLE_SETTLE = 1.0       # from the cold start to the idle windows (Supervisor's startsecs runs out)


def percentile(values, fraction):
    """Nearest-rank percentile of sorted ``values``."""
    if not values:
        return None
    return values[max(0, math.ceil(fraction * len(values)) - 1)]


def daemon_cpu_seconds(process):
    """User + system CPU seconds of the daemon process itself (psutil; 10 ms clock ticks)."""
    times = process.cpu_times()
    return times.user + times.system


class LifecycleRun:
    def __init__(self, contender, n, options, compare_bin):
        self.contender, self.n, self.options, self.compare_bin = contender, n, options, compare_bin
        self.calls = 0

    def __call__(self):
        self.calls += 1
        workdir = tempfile.mkdtemp(prefix="bench-suite-")
        daemon = None
        try:
            daemon = _daemons.Daemon(self.contender, workdir, "sleep 3600", self.n, self.compare_bin)
            return self._measure(daemon)
        finally:
            if daemon is not None:
                daemon.kill()
            _common.remove_tree(workdir)

    def _measure(self, daemon):
        options = self.options
        scanner = _procscan.ChildScanner(daemon.pid)
        ready = scanner.wait_for_count(self.n, COLD_TIMEOUT)
        if ready is None:
            raise RuntimeError("%d of %d children exec'd after %ss; %s" % (
                len(scanner.children), self.n, COLD_TIMEOUT, daemon.tail()))
        sample = {"cold_start_s": ready - daemon.started}
        memory = psutil.Process(daemon.pid).memory_full_info()
        sample.update(rss_mib=memory.rss / 2.0 ** 20, uss_mib=memory.uss / 2.0 ** 20)
        if self.n == options.rpc_n:
            sample["rpc"] = {str(clients): run_clients(daemon, clients, options.rpc_seconds)
                             for clients in options.rpc_clients}
        if self.n == options.respawn_n:
            sample["respawn"] = self._respawn(scanner, ready)
        if self.n == options.idle_n and self.calls == 1:
            sample["idle_cpu_percent"] = self._idle(daemon, ready)
        if daemon.exited():
            raise RuntimeError("the daemon exited during the run; %s" % daemon.tail())
        sample["stop_s"] = self._stop(daemon, scanner)
        return sample

    def _respawn(self, scanner, ready):
        return measure_respawn(scanner, ready, self.options.respawn_samples, "pauses/%d" % self.calls)

    def _idle(self, daemon, ready):
        time.sleep(max(0.0, ready + IDLE_SETTLE - time.monotonic()))
        process = psutil.Process(daemon.pid)
        percents = []
        for _ in range(self.options.idle_windows):
            cpu, began = daemon_cpu_seconds(process), time.monotonic()
            time.sleep(self.options.idle_window_s)
            percents.append(100.0 * (daemon_cpu_seconds(process) - cpu) / (time.monotonic() - began))
        return percents

    def _stop(self, daemon, scanner):
        alive = {pid: starttime for pid, (starttime, _seen) in scanner.children.items()}

        def stopped():
            for pid in [pid for pid, starttime in alive.items() if not _procscan.is_alive(pid, starttime)]:
                del alive[pid]
            return not alive and daemon.exited()

        time.sleep(STOP_SETTLE)
        began = time.monotonic()
        daemon.terminate()
        if not _common.wait_until(stopped, STOP_TIMEOUT, 0.002):
            raise RuntimeError("after SIGTERM and %ss: daemon exited %s, %d children alive; %s" % (
                STOP_TIMEOUT, daemon.exited(), len(alive), daemon.tail()))
        return time.monotonic() - began


def measure_respawn(scanner, ready, kills, seed):
    """Once the children are MIN_AGE old, SIGKILL ``kills`` original children one at a time, each after a pause
    drawn from random.Random(seed) (the same pauses for every daemon given the same seed), and time each until
    a new child is seen exec'd: {latencies_ms, missed, median_ms, p90_ms}."""
    time.sleep(max(0.0, ready + MIN_AGE - time.monotonic()))
    originals = sorted(scanner.children.items())
    pauses = random.Random(seed)
    latencies, missed = [], 0
    for victim, (starttime, _seen) in originals[:kills]:
        time.sleep(pauses.uniform(0.0, PHASE))
        if not _procscan.is_alive(victim, starttime):
            raise RuntimeError("original child %d died before it was killed" % victim)
        began = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        found = scanner.wait_new_child(RESPAWN_TIMEOUT)
        if found is None:
            missed += 1
            continue
        latencies.append((found[1] - began) * 1000.0)
    ordered = sorted(latencies)
    return {"latencies_ms": latencies, "missed": missed, "median_ms": statistics.median(ordered) if ordered
            else None, "p90_ms": percentile(ordered, 0.9)}


FLOOR_CASE = "respawn floor"     # its case name in the suite


class FloorRespawnRun:
    """The respawn of this machine's floor daemon (_daemons.FLOOR_SCRIPT) measured exactly as a lifecycle's,
    with the same pauses: run among the lifecycles, it meets the same machine state, so the gap between the
    two is what gcircus adds, whatever the load of the moment."""

    def __init__(self, n, options):
        self.n, self.options = n, options
        self.calls = 0

    def __call__(self):
        self.calls += 1
        process = _common.start_process(_daemons.floor_argv(self.n), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        try:
            scanner = _procscan.ChildScanner(process.pid)
            ready = scanner.wait_for_count(self.n, COLD_TIMEOUT)
            if ready is None:
                raise RuntimeError("floor: %d of %d children exec'd after %ss" % (
                    len(scanner.children), self.n, COLD_TIMEOUT))
            sample = {"respawn": measure_respawn(scanner, ready, self.options.respawn_samples,
                                                 "pauses/%d" % self.calls)}
            process.terminate()         # it stops its children itself, respawning none meanwhile
            process.wait(STOP_TIMEOUT)
            return sample
        finally:
            _common.kill_tree(process.pid)


def run_clients(daemon, clients, seconds, command="status"):
    """``clients`` _rpc_client.py processes calling ``command`` (status or list) for ``seconds`` from a shared
    start time; the daemon's CPU seconds over that window are read here."""
    kind, address = daemon.rpc
    workdir = tempfile.mkdtemp(prefix="bench-rpc-")
    start_at = time.time() + 0.3 + 0.08 * clients       # time for the workers to start and connect
    workers, outputs = [], []
    try:
        for index in range(clients):
            outputs.append(os.path.join(workdir, "client-%d.json" % index))
            workers.append(_common.start_process(
                [sys.executable, RPC_CLIENT, "--kind", kind, "--address", address, "--start-at", repr(start_at),
                 "--seconds", str(seconds), "--out", outputs[-1], "--command", command], stdin=open(os.devnull)))
        process = psutil.Process(daemon.pid)
        time.sleep(max(0.0, start_at - time.time()))
        cpu, began = daemon_cpu_seconds(process), time.monotonic()
        time.sleep(seconds)
        cpu, elapsed = daemon_cpu_seconds(process) - cpu, time.monotonic() - began
        for worker in workers:
            worker.wait(timeout=30)
        results = []
        for path in outputs:
            with open(path) as handle:
                results.append(json.load(handle))
    finally:
        for worker in workers:
            _common.kill_tree(worker.pid)
        _common.remove_tree(workdir)
    latencies = sorted(value for result in results for value in result["latencies_ms"])
    calls = len(latencies)
    errors = sum(result["errors"] for result in results)
    if not calls:
        raise RuntimeError("no successful call; first error: %s" % next(
            (result["first_error"] for result in results if result["first_error"]), None))
    return {"clients": clients, "seconds": seconds, "calls": calls, "errors": errors,
            "first_error": next((result["first_error"] for result in results if result["first_error"]), None),
            "calls_per_s": calls / seconds, "daemon_cpu_percent": 100.0 * cpu / elapsed,
            "daemon_cpu_us_per_call": 1e6 * cpu / calls, "median_ms": statistics.median(latencies),
            "p90_ms": percentile(latencies, 0.9), "p99_ms": percentile(latencies, 0.99),
            "max_ms": latencies[-1], "min_ms": latencies[0],
            "calls_per_client": [result["calls"] for result in results],
            "late_s": max(result["late_s"] for result in results)}


class CrashLoopRun:
    """A watcher whose command appends a line to a counter file and exits 1 at once, retried forever."""

    def __init__(self, contender, options, compare_bin):
        self.contender, self.options, self.compare_bin = contender, options, compare_bin

    def __call__(self):
        workdir = tempfile.mkdtemp(prefix="bench-crash-")
        counter = os.path.join(workdir, "counter")
        daemon = None
        try:
            command = "sh -c 'echo x >> %s; exit 1'" % counter
            daemon = _daemons.Daemon(self.contender, workdir, command, 1, self.compare_bin, crash=True)
            if not _common.wait_until(lambda: counter_lines(counter) > 0, COLD_TIMEOUT, 0.002):
                raise RuntimeError("the command never ran; %s" % daemon.tail())
            process = psutil.Process(daemon.pid)
            cpu, spawns, began = daemon_cpu_seconds(process), counter_lines(counter), time.monotonic()
            time.sleep(self.options.crash_seconds)
            cpu = daemon_cpu_seconds(process) - cpu
            spawns, elapsed = counter_lines(counter) - spawns, time.monotonic() - began
            if daemon.exited():
                raise RuntimeError("the daemon exited during the crash loop; %s" % daemon.tail())
            return {"cpu_percent": 100.0 * cpu / elapsed, "cpu_s": cpu, "spawns": spawns,
                    "spawns_per_s": spawns / elapsed, "seconds": elapsed}
        finally:
            if daemon is not None:
                daemon.kill(timeout=1.0)    # not a measured stop: a daemon that ignores SIGTERM is not waited for
            _common.remove_tree(workdir)


def counter_lines(path):
    """Lines of "x\\n" in the counter file (2 bytes each)."""
    try:
        return os.stat(path).st_size // 2
    except FileNotFoundError:
        return 0
