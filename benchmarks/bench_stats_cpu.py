"""bench_stats_cpu: the daemon's CPU while it streams stats for 100 processes — gcircus beside Circus 0.19.

    python benchmarks/bench_stats_cpu.py [--processes 100] [--seconds 30] [--repeat 1] [--quick]

Each contender runs the same INI file: one watcher of N `sleep 3600` processes, `check_delay = 5`, and (for the
"+stats" cases) `statsd = true` with a stats endpoint. gcircus streams stats from a greenlet inside gcircusd;
Circus 0.19 runs circusd plus its circusd-stats process. Once every process runs and a warm-up has passed, the
benchmark subscribes to the stats endpoint (as circus-top would; it counts the messages, proving the stream
works) and measures the CPU seconds of the daemon's process tree without the N children over the measured
period: gcircusd alone, or circusd + circusd-stats. The cases without stats give the baseline of supervising
alone.

Target (issue #7): gcircus with stats uses at most half the CPU of circusd + circusd-stats, in the same run.
Results: benchmarks/results/stats_cpu.json and stats_cpu.md.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import psutil
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

CASES = ("gcircus+stats", "circus+stats", "gcircus", "circus")
METRICS = ("cpu_s", "cpu_percent", "stat_messages_per_s", "start_s")

INI = """\
[circus]
endpoint = tcp://127.0.0.1:{port}
pubsub_endpoint = tcp://127.0.0.1:{pubsub_port}
check_delay = 5
{stats}
[watcher:sleepers]
cmd = sleep 3600
numprocesses = {processes}
"""
STATS = "statsd = true\nstats_endpoint = tcp://127.0.0.1:{stats_port}\n"


def _sleepers(pid):
    """Pids of the `sleep` processes under pid."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if child.name() == "sleep":
                found.append(child.pid)
        except psutil.NoSuchProcess:
            continue
    return found


class StatsCpuRun:
    """One measured run of one case (a callable for _common.run_interleaved)."""

    def __init__(self, case, options, compare_bin):
        self.case = case
        self.options = options
        self.compare_bin = compare_bin
        self.with_stats = case.endswith("+stats")

    def __call__(self):
        workdir = tempfile.mkdtemp(prefix="bench-stats-")
        try:
            return self._run(workdir)
        finally:
            _common.remove_tree(workdir)

    def _run(self, workdir):
        stats_port = _common.free_port()
        stats = STATS.format(stats_port=stats_port) if self.with_stats else "statsd = false\n"
        config = os.path.join(workdir, "bench.ini")
        with open(config, "w") as handle:
            handle.write(INI.format(port=_common.free_port(), pubsub_port=_common.free_port(), stats=stats,
                                    processes=self.options.processes))
        log_path = os.path.join(workdir, "daemon.log")
        log_options = ["--log-level", "warning", "--log-output", log_path + ".own"]
        if self.case.startswith("circus"):
            command = [os.path.join(self.compare_bin, "circusd")] + log_options + [config]
        else:
            command = _common.gcircusd_argv(*log_options, config)
        started = time.monotonic()
        with open(log_path, "wb") as log:
            process = _common.start_process(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        try:
            return self._measure(process, started, stats_port, log_path)
        finally:
            _common.kill_tree(process.pid)

    def _measure(self, process, started, stats_port, log_path):
        wanted = self.options.processes
        if not _common.wait_until(lambda: len(_sleepers(process.pid)) >= wanted, 120, 0.05):
            raise RuntimeError("%d of %d processes started; log: %s" % (
                len(_sleepers(process.pid)), wanted, _tail(log_path)))
        start_s = time.monotonic() - started
        time.sleep(self.options.warmup)       # the start-up's work is not what we measure
        sleepers = set(_sleepers(process.pid))
        subscriber = None
        if self.with_stats:
            subscriber = zmq.Context.instance().socket(zmq.SUB)
            subscriber.linger = 0
            subscriber.setsockopt(zmq.SUBSCRIBE, b"stat.")
            subscriber.connect("tcp://127.0.0.1:%d" % stats_port)
        try:
            cpu_before = _common.tree_cpu_seconds(process.pid, sleepers)
            began = time.monotonic()
            messages = _count_messages(subscriber, self.options.seconds)
            elapsed = time.monotonic() - began
            cpu = _common.tree_cpu_seconds(process.pid, sleepers) - cpu_before
        finally:
            if subscriber is not None:
                subscriber.close()
        if process.poll() is not None:
            raise RuntimeError("the daemon exited during the run; log: %s" % _tail(log_path))
        if self.with_stats and messages == 0:
            raise RuntimeError("no stat.* message in %ss; log: %s" % (elapsed, _tail(log_path)))
        return {"cpu_s": cpu, "cpu_percent": 100.0 * cpu / elapsed, "start_s": start_s,
                "stat_messages_per_s": messages / elapsed if self.with_stats else None,
                "daemon_processes": 1 + len(psutil.Process(process.pid).children(recursive=True)) - len(sleepers)}


def _count_messages(subscriber, seconds):
    deadline = time.monotonic() + seconds
    count = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return count
        if subscriber is None:
            time.sleep(remaining)
            continue
        if subscriber.poll(remaining * 1000):
            while True:
                try:
                    subscriber.recv_multipart(zmq.NOBLOCK)
                    count += 1
                except zmq.Again:
                    break


def _tail(path, size=2000):
    text = ""
    for candidate in (path, path + ".own"):
        try:
            with open(candidate, "rb") as handle:
                text += handle.read()[-size:].decode("utf-8", "replace")
        except OSError:
            pass
    return text or "(none)"


# -- report --------------------------------------------------------------------------------------------------------

def verdicts(summary):
    def median(case, metric):
        found = summary.get(case, {}).get(metric)
        return found["median"] if found else None

    ours, theirs = median("gcircus+stats", "cpu_s"), median("circus+stats", "cpu_s")
    return [("gcircusd CPU with stats <= half of circusd + circusd-stats", ours, theirs and theirs / 2,
             None if ours is None or theirs is None else ours <= theirs / 2)]


def _num(value):
    return "n/a" if value is None else _common.fmt_number(value)


def render_markdown(data):
    options = data["options"]
    rows = []
    for case, samples in data["samples"].items():
        summary = data["summary"][case]
        errors = sorted({s["error"] for s in samples if "error" in s})
        processes = sorted({s["daemon_processes"] for s in samples if "daemon_processes" in s})
        rows.append([case, ", ".join(str(p) for p in processes) or "n/a",
                     _common.fmt_range(summary["cpu_s"]), _common.fmt_range(summary["cpu_percent"]),
                     _common.fmt_range(summary["stat_messages_per_s"]), _common.fmt_range(summary["start_s"]),
                     "; ".join(errors)])
    lines = [
        "# Daemon CPU with the stats stream on: %d processes, %g s measured" % (
            options["processes"], options["seconds"]),
        "",
        "%s, %d run(s) per case interleaved; median (min–max). Machine: %s, %d CPUs, Python %s. Versions: %s." % (
            data["mode"], options["repeat"], data["machine"]["platform"], data["machine"]["cpus"],
            data["machine"]["python"], ", ".join("%s %s" % item for item in data["versions"].items())),
        "",
        _common.markdown_table(["case", "daemon processes", "CPU s", "CPU %", "stat msgs/s", "start s",
                                "errors"], rows),
        "",
        "Target (issue #7), on the medians:",
        "",
        _common.markdown_table(["target", "gcircus", "bound", "met"], [
            [name, _num(ours), _num(bound), {True: "yes", False: "**no**", None: "n/a"}[met]]
            for name, ours, bound, met in data["verdicts"]]),
        "",
        "- CPU: user + system seconds of the daemon's process tree minus the %d `sleep` children, over the "
        "measured period (after all processes run and a %g s warm-up). Circus's tree is circusd and its "
        "circusd-stats process; gcircus's is gcircusd alone." % (options["processes"], options["warmup"]),
        "- stat msgs/s: `stat.*` messages a SUB on the stats endpoint received (per process, per watcher, the "
        "daemon, sockets), as circus-top would.",
        "- start s: from launching the daemon to all %d processes running." % options["processes"],
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured period per run (default 30)")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--quick", action="store_true", help="5 s runs, for a smoke test (not the target)")
    options = parser.parse_args(argv)
    if options.quick:
        options.seconds, options.warmup = 5.0, 1.0
    cases = [case for case in options.cases.split(",") if case]
    compare_bin = _common.ensure_compare_venv() if any(c.startswith("circus") for c in cases) else None
    runs = [(case, StatsCpuRun(case, options, compare_bin)) for case in cases]
    samples = _common.run_interleaved(runs, options.repeat, log=lambda line: print(line, file=sys.stderr))
    summary = {case: _common.summarize_samples(samples[case], METRICS) for case in cases}
    versions = {"gcircus": __import__("gcircus").__version__}
    if compare_bin is not None:
        versions["circus"] = _common.package_version(compare_bin, "circus")
    data = {"mode": "quick" if options.quick else "full", "options": vars(options), "samples": samples,
            "summary": summary, "machine": _common.machine_info(), "versions": versions}
    data["verdicts"] = verdicts(summary)
    markdown = render_markdown(data)
    if options.quick:
        print(markdown)
        return 0
    json_path, md_path = _common.write_results("stats_cpu", data, markdown)
    print(markdown)
    print("\nwritten: %s, %s" % (json_path, md_path), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
