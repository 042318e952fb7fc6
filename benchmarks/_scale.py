"""The suite's scale runs: one daemon with thousands of children, and fifty crash loops at once.

Each is a callable for _common.run_interleaved returning one sample (a dict); every process it starts is killed
by pid before it returns, the temporary directory removed. Both run in the first round only (their length).

ScaleRun, a watcher of N `sleep 3600` processes (gcircus at N = 5,000 and 10,000; Circus and Supervisor capped,
see SCALE_CAP):

1. cold start: daemon Popen to the N-th child seen exec'd (the /proc scan every 20 ms: listing 10,000 pids every
   2 ms would take a CPU from the daemon it measures);
2. RSS of the daemon, then its CPU over an idle window, from 1 s after the cold start;
3. `status` of w, then `list` of w (Supervisor: getProcessInfo, then getAllProcessInfo, having no per-group
   list), one client each for the status window: median and p99 latency;
4. graceful stop: SIGTERM until the daemon has exited and none of its children is alive.

StormRun: watcher w of 10 `sleep 3600` processes plus STORM watchers whose command appends a line to a shared
counter and exits 1 at once, retried forever (Supervisor: programs, startretries = 1000000). Once the loops run
(1 s after w's children), the daemon's CPU and the spawns over the crash-loop window, then `status` of w by one
client meanwhile (the loops still run): median and p99 latency.
"""
import os
import tempfile
import time

import psutil

import _common
import _daemons
import _lifecycle
import _procscan

SCALE_TIMEOUT = 300.0
SCAN_INTERVAL = 0.02
STORM = 50
STORM_SETTLE = 1.0
# Children per contender in the scale runs: gcircus gets the figures, Circus 0.19 and Supervisor 4.3 a
# cap, to keep the suite near ten minutes (at the start rate their N=1,000 row shows, 10,000 would take minutes).
SCALE_CAP = 1000
LAUNCH_ATTEMPTS = 3
SCALE_CONTENDERS = ("gcircus", "circus", "supervisor")


def scale_ns(contender, ns):
    """The N of the scale runs of contender: ns for gcircus, the cap (once) for the others."""
    if contender == "gcircus":
        return list(ns)
    return [min(SCALE_CAP, max(ns))]


class ScaleRun:
    def __init__(self, contender, n, options, compare_bin):
        self.contender, self.n, self.options, self.compare_bin = contender, n, options, compare_bin

    def __call__(self):
        workdir = tempfile.mkdtemp(prefix="bench-scale-")
        daemon = None
        try:
            daemon, scanner, ready = launch(lambda: _daemons.Daemon(self.contender, workdir, "sleep 3600", self.n,
                                                                   self.compare_bin), self.n, SCALE_TIMEOUT)
            return self._measure(daemon, scanner, ready)
        finally:
            if daemon is not None:
                daemon.kill(timeout=10.0)
            _common.remove_tree(workdir)

    def _measure(self, daemon, scanner, ready):
        sample = {"n": self.n, "cold_start_s": ready - daemon.started}
        process = psutil.Process(daemon.pid)
        sample["rss_mib"] = process.memory_info().rss / 2.0 ** 20
        time.sleep(max(0.0, ready + _lifecycle.IDLE_SETTLE - time.monotonic()))
        cpu, began = _lifecycle.daemon_cpu_seconds(process), time.monotonic()
        time.sleep(self.options.idle_window_s)
        sample["idle_cpu_percent"] = 100.0 * (_lifecycle.daemon_cpu_seconds(process) - cpu) / (
            time.monotonic() - began)
        for command in ("status", "list"):
            found = _lifecycle.run_clients(daemon, 1, self.options.rpc_seconds, command)
            sample[command] = {key: found[key] for key in ("median_ms", "p99_ms", "calls", "errors",
                                                           "first_error", "daemon_cpu_percent")}
        if daemon.exited():
            raise RuntimeError("the daemon exited during the run; %s" % daemon.tail())
        sample["stop_s"] = self._stop(daemon, scanner)
        return sample

    def _stop(self, daemon, scanner):
        """SIGTERM; done once the daemon has exited and no child is alive (children checked once it has: reading
        10,000 stat files every few ms would slow the stop it measures)."""
        children = dict((pid, starttime) for pid, (starttime, _seen) in scanner.children.items())
        time.sleep(_lifecycle.STOP_SETTLE)
        began = time.monotonic()
        daemon.terminate()

        def stopped():
            if not daemon.exited():
                return False
            for pid in [pid for pid, starttime in children.items() if not _procscan.is_alive(pid, starttime)]:
                del children[pid]
            return not children

        if not _common.wait_until(stopped, _lifecycle.STOP_TIMEOUT * 2, 0.002):
            raise RuntimeError("after SIGTERM: daemon exited %s, %d children alive; %s" % (
                daemon.exited(), len(children), daemon.tail()))
        return time.monotonic() - began


class DaemonExited(RuntimeError):
    pass


def launch(make_daemon, n, timeout):
    """(daemon, scanner, time the n-th child was seen) for a daemon from make_daemon(); another try with new ports
    when one exits because its port was taken: a loopback port chosen free can be bound by someone else before the
    daemon binds it on a shared machine."""
    for attempt in range(1, LAUNCH_ATTEMPTS + 1):
        daemon = make_daemon()
        scanner = _procscan.ChildScanner(daemon.pid)
        try:
            return daemon, scanner, wait_children(daemon, scanner, n, timeout)
        except DaemonExited:
            daemon.kill()
            if attempt == LAUNCH_ATTEMPTS or "Address already in use" not in daemon.tail():
                raise
    raise AssertionError("unreachable")


def wait_children(daemon, scanner, n, timeout):
    """The monotonic time the n-th child was seen exec'd; DaemonExited at once if the daemon is gone."""
    deadline = time.monotonic() + timeout
    while True:
        ready = scanner.wait_for_count(n, min(1.0, max(0.0, deadline - time.monotonic())), interval=SCAN_INTERVAL)
        if ready is not None:
            return ready
        if daemon.exited():
            raise DaemonExited("the daemon exited with %d of %d children; %s" % (
                len(scanner.children), n, daemon.tail()))
        if time.monotonic() >= deadline:
            raise RuntimeError("%d of %d children exec'd after %ss; %s" % (
                len(scanner.children), n, timeout, daemon.tail()))


def storm_sections(counter):
    """extra_sections for _daemons.Daemon: STORM crash-looping watchers/programs c0 ... c49."""
    command = "sh -c 'echo x >> %s; exit 1'" % counter

    def sections(kind):
        if kind == _daemons.SUPERVISOR:
            template = ("[program:c{i}]\ncommand = {cmd}\nautorestart = true\nstartretries = 1000000\n"
                        "stdout_logfile = NONE\nstderr_logfile = NONE\n")
        else:
            template = "[watcher:c{i}]\ncmd = {cmd}\nnumprocesses = 1\nwarmup_delay = 0\nmax_retry = -1\n"
        return "\n".join(template.format(i=i, cmd=command) for i in range(STORM))
    return sections


class StormRun:
    def __init__(self, contender, options, compare_bin):
        self.contender, self.options, self.compare_bin = contender, options, compare_bin

    def __call__(self):
        workdir = tempfile.mkdtemp(prefix="bench-storm-")
        counter = os.path.join(workdir, "counter")
        daemon = None
        try:
            daemon, _scanner, _ready = launch(lambda: _daemons.Daemon(
                self.contender, workdir, "sleep 3600", 10, self.compare_bin, extra_sections=storm_sections(counter)),
                10, _lifecycle.COLD_TIMEOUT)
            time.sleep(STORM_SETTLE)
            process = psutil.Process(daemon.pid)
            cpu, spawns, began = _lifecycle.daemon_cpu_seconds(process), _lifecycle.counter_lines(counter), \
                time.monotonic()
            time.sleep(self.options.crash_seconds)
            cpu = _lifecycle.daemon_cpu_seconds(process) - cpu
            spawns, elapsed = _lifecycle.counter_lines(counter) - spawns, time.monotonic() - began
            status = _lifecycle.run_clients(daemon, 1, self.options.rpc_seconds, "status")
            if daemon.exited():
                raise RuntimeError("the daemon exited during the crash loops; %s" % daemon.tail())
            return {"cpu_percent": 100.0 * cpu / elapsed, "spawns_per_s": spawns / elapsed,
                    "status_median_ms": status["median_ms"], "status_p99_ms": status["p99_ms"],
                    "status_errors": status["errors"]}
        finally:
            if daemon is not None:
                daemon.kill(timeout=2.0)
            _common.remove_tree(workdir)
