"""The benchmark suite: gcircus beside Circus 0.19 and Supervisor 4.3, one command, one report.

    python benchmarks/run.py [--quick] [--repeat N] [--contenders gcircus,circus,...] [--skip stream,crash]

Contenders (benchmarks/_daemons.py): gcircus, circus (check_delay = 1), circus-cd0.1 (check_delay = 0.1),
supervisor (startsecs = 1, its default), supervisor-ss0 (startsecs = 0). Measured (benchmarks/_lifecycle.py):

- per (contender, N) for N in 10, 100, 500 (quick: 10, 100), one daemon lifecycle each: cold start to N children
  exec'd, the daemon's RSS/USS, graceful stop; at N = 100 also the respawn latency after a SIGKILL and the status
  round trip by 1 and 8 clients; at the largest N, in the first round, the idle daemon's CPU;
- the respawn latency of this machine's floor (_daemons.FLOOR_SCRIPT: a bare hub calling fork_exec on each exit),
  measured like the lifecycles' in the same rounds, as the reference of what a respawn cannot go below here;
- a crash loop per contender (a command that exits at once, retried forever): daemon CPU and spawns per second;
- output capture, with bench_stream.StreamRun (direct write, gcircus, circus, supervisor);
- scale (benchmarks/_scale.py, first round only): gcircus with 5,000 and 10,000 children (quick: 1,000), Circus
  and Supervisor capped at 1,000: start, idle CPU, `status`, `list w`, stop;
- fifty crash-looping watchers at once beside a watcher of 10: the daemon's CPU, then `status` latency meanwhile.

Runs are interleaved (A B C D E A B C D E ...), ``--repeat`` rounds (3; quick 1); the report gives the median
and min–max. Results: benchmarks/results/suite.json (every sample) and suite.md. Full mode takes about 12
minutes on 2 cores, --quick under 3.
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _common  # noqa: E402
import _daemons  # noqa: E402
import _lifecycle  # noqa: E402
import _report  # noqa: E402
import _scale  # noqa: E402
import bench_stream  # noqa: E402

CONTENDERS = tuple(_daemons.CONTENDERS)
STREAM_CONTENDERS = ("direct", "gcircus", "circus", "supervisor")   # the variants share the output path
PARTS = ("lifecycle", "stream", "crash", "scale", "storm")

# full / quick
DEFAULTS = {
    "repeat": (3, 1), "ns": ("10,100,500", "10,100"), "respawn_samples": (10, 5), "rpc_seconds": (1.5, 1.0),
    "idle_window_s": (8.0, 1.5), "crash_seconds": (8.0, 3.0), "crash_repeat": (1, 1), "stream_mb": (256, 32),
    "scale_ns": ("5000,10000", "1000"),
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller N, shorter windows, 1 round (< 2 min)")
    parser.add_argument("--repeat", type=int, help="rounds (default 3; quick 1)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help="subset of %s" % ", ".join(CONTENDERS))
    parser.add_argument("--ns", help="numbers of children (default 10,100,500; quick 10,100)")
    parser.add_argument("--respawn-samples", type=int, help="SIGKILLs per N=100 lifecycle (default 10; quick 5)")
    parser.add_argument("--rpc-seconds", type=float, help="window of the status clients (default 1.5; quick 1)")
    parser.add_argument("--idle-window-s", type=float, help="each of the 3 idle sub-windows (default 8; quick 1.5)")
    parser.add_argument("--crash-seconds", type=float, help="measured crash loop (default 8; quick 3)")
    parser.add_argument("--crash-repeat", type=int, help="crash-loop rounds (default 1)")
    parser.add_argument("--stream-mb", type=int, help="MiB captured per stream run (default 256; quick 32)")
    parser.add_argument("--scale-ns", help="children of gcircus's scale runs (default 5000,10000; quick 1000)")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: %s" % ", ".join(PARTS))
    parser.add_argument("--name", default="suite", help="results/<name>.json and .md (default suite)")
    args = parser.parse_args(argv)
    for key, (full, quick) in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    args.contenders = [name.strip() for name in args.contenders.split(",") if name.strip()]
    args.ns = sorted(int(n) for n in args.ns.split(","))
    args.scale_ns = sorted(int(n) for n in args.scale_ns.split(","))
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    for problem in (set(args.contenders) - set(CONTENDERS), args.skip - set(PARTS)):
        if problem:
            parser.error("unknown: %s" % ", ".join(sorted(problem)))
    args.rpc_clients = (1, 8)
    args.idle_windows = 3
    args.rpc_n = args.respawn_n = 100 if 100 in args.ns else None
    args.idle_n = max(args.ns)
    return args


def lifecycle_case(contender, n):
    return "%s N=%d" % (contender, n)


def stream_case(contender):
    return "stream %s" % contender


def crash_case(contender):
    return "crash %s" % contender


def scale_case(contender, n):
    return "scale %s N=%d" % (contender, n)


def storm_case(contender):
    return "storm %s" % contender


def gcircus_source():
    """Where the measured gcircus comes from (PYTHONPATH may point at a snapshot), and its git state."""
    import gcircus
    path = os.path.dirname(os.path.abspath(gcircus.__file__))
    info = {"version": gcircus.__version__, "path": path}
    try:
        info["commit"] = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True,
                                        check=True).stdout.strip()
        info["dirty"] = bool(subprocess.run(["git", "-C", path, "status", "--porcelain", "--", "."],
                                            capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        info["commit"] = None       # not a git checkout (e.g. a `git archive` snapshot)
    return info


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    began = time.monotonic()

    def log(line):
        print("[%6.1fs] %s" % (time.monotonic() - began, line if len(line) < 220 else line[:217] + "..."),
              file=sys.stderr, flush=True)

    compare_bin = _common.ensure_compare_venv()
    versions = {"gcircus": __import__("gcircus").__version__,
                "circus": _common.package_version(compare_bin, "circus"),
                "supervisor": _common.package_version(compare_bin, "supervisor")}
    load_before = os.getloadavg()
    log("suite %s: contenders %s, N %s, %d round(s)" % (
        "quick" if args.quick else "full", ", ".join(args.contenders), args.ns, args.repeat))
    cases = []
    if "lifecycle" not in args.skip:
        for n in args.ns:
            if n == args.respawn_n:     # the machine's floor, just before the lifecycles that measure respawns
                cases.append((_lifecycle.FLOOR_CASE, _lifecycle.FloorRespawnRun(n, args)))
            cases += [(lifecycle_case(c, n), _lifecycle.LifecycleRun(c, n, args, compare_bin))
                      for c in args.contenders]
    if "stream" not in args.skip:
        stream_options = bench_stream.parse_args(["--mb", str(args.stream_mb), "--repeat", str(args.repeat)])
        cases += [(stream_case(c), bench_stream.StreamRun(c, stream_options, compare_bin))
                  for c in STREAM_CONTENDERS if c == "direct" or c in args.contenders]
    crash_cases = [] if "crash" in args.skip else [
        (crash_case(c), _lifecycle.CrashLoopRun(c, args, compare_bin)) for c in args.contenders]
    scale_cases = [] if "scale" in args.skip else [
        (scale_case(c, n), _scale.ScaleRun(c, n, args, compare_bin)) for c in args.contenders
        if c in _scale.SCALE_CONTENDERS for n in _scale.scale_ns(c, args.scale_ns)]
    crash_cases += [] if "storm" in args.skip else [
        (storm_case(c), _scale.StormRun(c, args, compare_bin)) for c in args.contenders]
    try:
        samples = _common.run_interleaved(cases, args.repeat, log=log)
        crash_samples = _common.run_interleaved(crash_cases, args.crash_repeat, log=log)
        scale_samples = _common.run_interleaved(scale_cases, 1, log=log)
    finally:
        _common.cleanup()
    wall = time.monotonic() - began
    options = {key: value for key, value in vars(args).items() if key != "skip"}
    options["skip"] = sorted(args.skip)
    data = {
        "benchmark": "suite", "mode": "quick" if args.quick else "full", "options": options,
        "machine": _common.machine_info(), "versions": versions, "gcircus_source": gcircus_source(),
        "load_average": {"before": load_before, "after": os.getloadavg()}, "wall_s": wall,
        "samples": samples, "crash_samples": crash_samples, "scale_samples": scale_samples,
    }
    data["summary"] = _report.summarize(data, lifecycle_case, stream_case, crash_case)
    data["summary"].update(_report.summarize_scale(data, scale_case, storm_case))
    data["verdicts"] = _report.verdicts(data["summary"], args)
    markdown = _report.render_markdown(data)
    paths = _common.write_results(args.name, data, markdown)
    print(markdown)
    log("done in %.0f s; written: %s" % (time.monotonic() - began, ", ".join(paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
