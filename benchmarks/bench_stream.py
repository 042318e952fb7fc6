"""bench_stream: capture a child's stdout to a file — gcircus beside Circus 0.19, Supervisor 4.3 and a direct write.

    python benchmarks/bench_stream.py [--mb 256 | --quick] [--repeat 3] [--contenders direct,gcircus,...]

A writer child (benchmarks/_stream_writer.py) builds N MiB of seeded data, announces itself and waits for a go
signal, so the daemons' start-up is not measured; then it writes the data to stdout in 64 KiB writes and exits.
Contenders:

- direct: the writer writes to the file itself (the reference: what the disk and page cache allow);
- gcircus: gcircusd with an INI file (stdout_stream.class = FileStream);
- circus: circusd 0.19 with the same INI file;
- supervisor: supervisord 4.3, stdout_logfile with stdout_logfile_maxbytes = 0 (no rotation).

Measured per run: wall time from the go signal to the capture file holding every byte (its size polled every
2 ms), MB/s, the daemon's CPU seconds per MB (psutil, the daemon's process tree without the writer), bytes lost or
added, and whether the file's sha256 equals the writer's. Runs are interleaved (A B C D A B C D ...); the report
gives the median and min–max. Results: benchmarks/results/stream.json and stream.md.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

WRITER = os.path.join(_common.HERE, "_stream_writer.py")
CONTENDERS = ("direct", "gcircus", "circus", "supervisor")
METRICS = ("wall_s", "mb_per_s", "cpu_s_per_mb", "lost_bytes", "extra_bytes", "writer_s")
STALL_SECONDS = 5.0     # the writer is done and the file has not grown for this long: what is missing is lost

CIRCUS_INI = """\
[circus]
endpoint = tcp://127.0.0.1:{port}
pubsub_endpoint = tcp://127.0.0.1:{pubsub_port}
statsd = false

[watcher:writer]
cmd = {writer}
respawn = false
copy_env = true
stdout_stream.class = FileStream
stdout_stream.filename = {capture}
stderr_stream.class = FileStream
stderr_stream.filename = {errors}
"""

SUPERVISOR_CONF = _common.SUPERVISORD_SECTION + """\

[program:writer]
command = {writer}
autostart = true
autorestart = false
startsecs = 0
stdout_logfile = {capture}
stdout_logfile_maxbytes = 0
stderr_logfile = {errors}
stderr_logfile_maxbytes = 0
"""


class StreamRun:
    """One measured run of one contender (a callable for _common.run_interleaved)."""

    def __init__(self, contender, options, compare_bin):
        self.contender = contender
        self.options = options
        self.compare_bin = compare_bin

    def __call__(self):
        os.sync()   # the previous run's dirty pages written back now, not in the middle of this one
        workdir = tempfile.mkdtemp(prefix="bench-stream-")
        try:
            return self._run(workdir)
        finally:
            _common.remove_tree(workdir)

    def _run(self, workdir):
        paths = {name: os.path.join(workdir, name) for name in
                 ("ready", "go", "report", "capture.log", "errors.log", "daemon.log", "config")}
        os.mkfifo(paths["go"])
        expected = self.options.mb << 20
        writer = [sys.executable, WRITER, "--mb", str(self.options.mb), "--seed", str(self.options.seed),
                  "--data", self.options.data, "--write-size", str(self.options.write_size),
                  "--ready", paths["ready"], "--go", paths["go"], "--report", paths["report"]]
        if self.contender == "direct":
            writer += ["--out", paths["capture.log"]]
        with open(paths["daemon.log"], "wb") as daemon_log:
            process = _common.start_process(self._command(writer, paths, workdir), stdout=daemon_log,
                                            stderr=subprocess.STDOUT, cwd=_common.ROOT)
        try:
            if not _common.wait_until(lambda: os.path.exists(paths["ready"]), 90, 0.01):
                raise RuntimeError("the writer never started; daemon log: %s" % _tail(paths["daemon.log"]))
            with open(paths["ready"]) as handle:
                writer_pid = int(handle.read())
            daemon_pid = None if self.contender == "direct" else process.pid
            cpu_before = _common.tree_cpu_seconds(daemon_pid, {writer_pid}) if daemon_pid else 0.0
            started = time.monotonic()
            with open(paths["go"], "wb") as go:
                go.write(b"g")
            size = _wait_for_size(paths["capture.log"], expected, paths["report"], self.options.timeout)
            wall = time.monotonic() - started
            cpu_after = _common.tree_cpu_seconds(daemon_pid, {writer_pid}) if daemon_pid else 0.0
            _common.wait_until(lambda: os.path.exists(paths["report"]), 10, 0.01)
        finally:
            _common.kill_tree(process.pid)
        with open(paths["report"]) as handle:
            report = json.load(handle)
        digest, size = _sha256(paths["capture.log"])
        megabytes = expected / float(1 << 20)
        return {
            "wall_s": wall,
            "mb_per_s": megabytes / wall,
            "cpu_s_per_mb": (cpu_after - cpu_before) / megabytes if self.contender != "direct" else None,
            "captured_bytes": size,
            "lost_bytes": max(0, expected - size),
            "extra_bytes": max(0, size - expected),
            "sha256_ok": digest == report["sha256"],
            "writer_s": report["seconds"],
        }

    def _command(self, writer, paths, workdir):
        if self.contender == "direct":
            return writer
        fields = dict(writer=" ".join(writer), capture=paths["capture.log"], errors=paths["errors.log"],
                      workdir=workdir, port=_common.free_port(), pubsub_port=_common.free_port())
        if self.contender == "supervisor":
            _write(paths["config"], SUPERVISOR_CONF.format(**fields))
            return [os.path.join(self.compare_bin, "supervisord"), "-c", paths["config"]]
        _write(paths["config"], CIRCUS_INI.format(**fields))
        log_options = ["--log-level", "warning", "--log-output", paths["daemon.log"] + ".own"]
        if self.contender == "circus":
            return [os.path.join(self.compare_bin, "circusd")] + log_options + [paths["config"]]
        return _common.gcircusd_argv(*log_options, paths["config"])


def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def _tail(path, size=2000):
    try:
        with open(path, "rb") as handle:
            return handle.read()[-size:].decode("utf-8", "replace")
    except OSError:
        return "(none)"


def _file_size(path):
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _wait_for_size(path, expected, report, timeout):
    """Poll the capture file until it holds ``expected`` bytes; stop early once the writer is done and the file
    stopped growing (then the rest was lost). Returns the last size seen."""
    deadline = time.monotonic() + timeout
    last_size, last_growth = -1, time.monotonic()
    while True:
        size = _file_size(path)
        now = time.monotonic()
        if size >= expected or now >= deadline:
            return size
        if size != last_size:
            last_size, last_growth = size, now
        elif now - last_growth > STALL_SECONDS and os.path.exists(report):
            return size
        time.sleep(0.002)


def _sha256(path):
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    except FileNotFoundError:
        pass
    return digest.hexdigest(), size


# -- report --------------------------------------------------------------------------------------------------------

def verdicts(summary):
    """The issue's targets, checked on the medians of this run (None when a figure is missing)."""
    def median(contender, metric):
        found = summary.get(contender, {}).get(metric)
        return found["median"] if found else None

    checks = []
    ours, direct = median("gcircus", "wall_s"), median("direct", "wall_s")
    checks.append(("gcircus wall time <= 2x direct write", ours, direct and 2 * direct,
                   None if ours is None or direct is None else ours <= 2 * direct))
    ours, theirs = median("gcircus", "mb_per_s"), median("supervisor", "mb_per_s")
    checks.append(("gcircus MB/s >= Supervisor's", ours, theirs,
                   None if ours is None or theirs is None else ours >= theirs))
    ours, theirs = median("gcircus", "cpu_s_per_mb"), median("circus", "cpu_s_per_mb")
    checks.append(("gcircus CPU s/MB <= half of Circus's", ours, theirs and theirs / 2,
                   None if ours is None or theirs is None else ours <= theirs / 2))
    return checks


def render_markdown(data):
    rows = []
    for contender, samples in data["samples"].items():
        summary = data["summary"][contender]
        good = [s for s in samples if "error" not in s]
        errors = [s["error"] for s in samples if "error" in s]
        rows.append([
            contender, _common.fmt_range(summary["wall_s"]), _common.fmt_range(summary["mb_per_s"]),
            _common.fmt_range(summary["cpu_s_per_mb"], scale=1000.0),
            _common.fmt_range(summary["lost_bytes"]), _common.fmt_range(summary["extra_bytes"]),
            "%d/%d" % (sum(1 for s in good if s["sha256_ok"]), len(samples)),
            "; ".join(sorted(set(errors))) or "",
        ])
    options = data["options"]
    lines = [
        "# Output capture: %d MiB of %s data written to stdout in %d KiB writes" % (
            options["mb"], options["data"], options["write_size"] // 1024),
        "",
        "%s, %d runs per contender interleaved; median (min–max). Machine: %s, %d CPUs, Python %s. "
        "Versions: %s." % (data["mode"], options["repeat"], data["machine"]["platform"], data["machine"]["cpus"],
                           data["machine"]["python"], ", ".join("%s %s" % item for item in data["versions"].items())),
        "",
        _common.markdown_table(
            ["contender", "wall s", "MB/s", "daemon CPU ms/MB", "bytes lost", "bytes added", "sha256 equal",
             "errors"], rows),
        "",
        "Targets (issue #3), on the medians:",
        "",
        _common.markdown_table(["target", "gcircus", "bound", "met"], [
            [name, _num(ours), _num(bound), {True: "yes", False: "**no**", None: "n/a"}[met]]
            for name, ours, bound, met in data["verdicts"]]),
        "",
        "- wall: from the go signal to the capture file holding every byte (size polled every 2 ms); the daemons'"
        " start-up and the writer's data generation are not included.",
        "- daemon CPU: user+system seconds of the daemon's process tree, the writer excluded, per MiB captured"
        " (psutil, in 10 ms clock ticks: coarse for short runs such as --quick).",
        "- direct: the writer writes the file itself; its CPU is the writer's, not a daemon's (n/a).",
        "- Circus reads 1024 bytes per event-loop wake-up and writes through a text file object (decoding UTF-8,"
        " falling back to latin-1); Supervisor reads 128 KiB per poll; gcircus reads up to 1 MiB per wake-up and"
        " writes raw bytes with one write() per chunk.",
    ]
    return "\n".join(lines)


def _num(value):
    return _common.fmt_number(value, 4)


# -- main ------------------------------------------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, help="MiB written per run (default 256; 32 with --quick)")
    parser.add_argument("--quick", action="store_true", help="32 MiB per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (default 3)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help="comma-separated subset of %s" % ", ".join(CONTENDERS))
    parser.add_argument("--data", choices=("text", "binary"), default="text",
                        help="printable lines (default) or raw random bytes")
    parser.add_argument("--write-size", type=int, default=64 * 1024, help="bytes per write() of the child")
    parser.add_argument("--seed", type=int, default=20240519)
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per run")
    args = parser.parse_args(argv)
    args.mb = args.mb or (32 if args.quick else 256)
    args.timeout = args.timeout or max(60.0, args.mb / 2.0)
    args.contenders = [name.strip() for name in args.contenders.split(",") if name.strip()]
    unknown = set(args.contenders) - set(CONTENDERS)
    if unknown:
        parser.error("unknown contender(s): %s" % ", ".join(sorted(unknown)))
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    needs_venv = {"circus", "supervisor"} & set(args.contenders)
    compare_bin = _common.ensure_compare_venv() if needs_venv else None
    versions = {"gcircus": __import__("gcircus").__version__}
    if compare_bin:
        versions.update(circus=_common.package_version(compare_bin, "circus"),
                        supervisor=_common.package_version(compare_bin, "supervisor"))
    cases = [(name, StreamRun(name, args, compare_bin)) for name in args.contenders]
    try:
        samples = _common.run_interleaved(cases, args.repeat, log=lambda line: print(line, file=sys.stderr))
    finally:
        _common.cleanup()
    summary = {name: _common.summarize_samples(runs, METRICS) for name, runs in samples.items()}
    data = {
        "benchmark": "stream", "mode": "quick" if args.quick else "full",
        "options": {"mb": args.mb, "repeat": args.repeat, "data": args.data, "write_size": args.write_size,
                    "seed": args.seed, "contenders": args.contenders},
        "machine": _common.machine_info(), "versions": versions,
        "samples": samples, "summary": summary,
    }
    data["verdicts"] = verdicts(summary)
    markdown = render_markdown(data)
    paths = _common.write_results("stream", data, markdown)
    print(markdown)
    print("\nwritten: %s" % ", ".join(paths), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
