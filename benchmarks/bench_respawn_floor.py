"""bench_respawn_floor: gcircusd's respawn latency beside the floor of this machine, measured the same way.

    python benchmarks/bench_respawn_floor.py [--kills 30] [--repeat 3] [--quick]

The floor (_daemons.FLOOR_SCRIPT) is the least a respawn can cost here: a gevent hub with one libev child watcher
per child that, on an exit, calls the C `_posixsubprocess.fork_exec` of `sleep` at once (no process object, no
hooks, no events, no log); the full suite measures it too, among its lifecycles. gcircusd runs one watcher of 100
`sleep 3600` with its defaults. Both are measured exactly as the suite's respawn (_lifecycle.measure_respawn):
once the children are 2 s old, one original child at a time is SIGKILLed after a random 0-1 s pause and the
latency runs to the first new `sleep` child of the daemon seen in /proc (_procscan, 0.2 ms polls). Rounds
alternate floor, gcircus, floor, gcircus... so that the machine's load hits both: the difference between the two
is what gcircus adds. Results: results/respawn_floor.json and .md.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import _daemons  # noqa: E402
import _lifecycle  # noqa: E402
import _procscan  # noqa: E402

N = 100

GCIRCUS_INI = """\
[circus]
endpoint = ipc://{workdir}/control
pubsub_endpoint = ipc://{workdir}/events

[watcher:w]
cmd = sleep 3600
numprocesses = {n}
warmup_delay = 0
"""


def launch(kind, workdir):
    if kind == "floor":
        argv = _daemons.floor_argv(N)
    else:
        path = os.path.join(workdir, "gcircus.ini")
        with open(path, "w") as handle:
            handle.write(GCIRCUS_INI.format(workdir=workdir, n=N))
        argv = _common.gcircusd_argv(path)
    return _common.start_process(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def one_round(kind, kills, seed):
    workdir = tempfile.mkdtemp(prefix="bench-floor-")
    daemon = launch(kind, workdir)
    try:
        scanner = _procscan.ChildScanner(daemon.pid)
        ready = scanner.wait_for_count(N, 60)
        if ready is None:
            raise RuntimeError("%s: %d of %d children after 60 s" % (kind, len(scanner.children), N))
        return _lifecycle.measure_respawn(scanner, ready, kills, seed)["latencies_ms"]
    finally:
        daemon.terminate()          # both stop their children on SIGTERM (and respawn none meanwhile)
        try:
            daemon.wait(30)
        finally:
            _common.kill_tree(daemon.pid)
            _common.remove_tree(workdir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30, help="SIGKILLs per round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each")
    parser.add_argument("--quick", action="store_true", help="1 round of 10 kills")
    args = parser.parse_args()
    if args.quick:
        args.kills, args.repeat = 10, 1
    load_before = os.getloadavg()
    samples = {"floor": [], "gcircus": []}
    for index in range(args.repeat):
        for kind in ("floor", "gcircus"):
            samples[kind].extend(one_round(kind, args.kills, "pauses/%d" % index))
            print("round %d %s done" % (index + 1, kind), file=sys.stderr)
    load_after = os.getloadavg()
    summary = {}
    for kind, values in samples.items():
        ordered = sorted(values)
        summary[kind] = {"median_ms": statistics.median(ordered), "p90_ms": _lifecycle.percentile(ordered, 0.9),
                         "min_ms": ordered[0], "max_ms": ordered[-1], "samples": len(ordered)}
    rows = [[kind] + ["%.2f" % summary[kind][key] for key in ("median_ms", "p90_ms", "min_ms", "max_ms")]
            + [str(summary[kind]["samples"])] for kind in samples]
    added = summary["gcircus"]["median_ms"] - summary["floor"]["median_ms"]
    markdown = "\n".join([
        "# Respawn latency: gcircusd beside this machine's floor (N=%d, ms)" % N, "",
        "- date: %s; %s" % (time.strftime("%Y-%m-%d %H:%M:%S %z"), _common.machine_info()["platform"]),
        "- %d round(s) of %d kills each, alternating; load average before %s, after %s" % (
            args.repeat, args.kills, ", ".join("%.2f" % x for x in load_before),
            ", ".join("%.2f" % x for x in load_after)), "",
        _common.markdown_table(["daemon", "median", "p90", "min", "max", "samples"], rows), "",
        "gcircus adds %.2f ms to the floor's median (a hub with a child watcher calling fork_exec of `sleep` on "
        "each exit, nothing else)." % added])
    data = {"benchmark": "respawn_floor", "machine": _common.machine_info(), "options": vars(args),
            "load_before": load_before, "load_after": load_after, "samples_ms": samples, "summary": summary}
    print(markdown)
    _common.write_results("respawn_floor", data, markdown)


if __name__ == "__main__":
    main()
