"""Helpers shared by the benchmarks: the comparison venv (Circus 0.19, Supervisor 4.3), process-tree CPU, cleanup
of every process a benchmark started, interleaved runs with median/min/max reporting, and the results files.

A benchmark is run alone (``python benchmarks/bench_<metric>.py``) with the interpreter that has gcircus installed;
the contenders run from ``benchmarks/.venv-compare``, created on first use with pip from PyPI. Everything is local:
temporary directories, unix sockets or loopback ports chosen at run time.
"""
import atexit
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS_DIR = os.path.join(HERE, "results")
COMPARE_VENV = os.path.join(HERE, ".venv-compare")
COMPARE_PACKAGES = ("circus==0.19.0", "supervisor==4.3.0", "psutil")
# The [supervisord] section every benchmark's supervisord.conf starts with (str.format field: workdir).
SUPERVISORD_SECTION = """\
[supervisord]
nodaemon = true
logfile = {workdir}/supervisord.log
pidfile = {workdir}/supervisord.pid
childlogdir = {workdir}
loglevel = warn
"""


# -- gcircusd as installed ------------------------------------------------------------------------------------------

_gcircus_compiled = False


def gcircusd_argv(*args):
    """The command line of this venv's gcircusd with args.

    Its modules are byte-compiled first (once per run), as pip compiles an installed package's and the contenders'
    were: this checkout is an editable install, and with PYTHONDONTWRITEBYTECODE set (as on this machine) every
    daemon started would otherwise compile its ~70 modules from source, ~60 ms of its start and memory no user's
    daemon spends."""
    global _gcircus_compiled
    if not _gcircus_compiled:
        import compileall
        import gcircus
        compileall.compile_dir(os.path.dirname(gcircus.__file__), quiet=1)
        _gcircus_compiled = True
    return [sys.executable, "-m", "gcircus.cli.gcircusd", *args]


# -- the comparison venv -----------------------------------------------------------------------------------------

def ensure_compare_venv(path=COMPARE_VENV, packages=COMPARE_PACKAGES):
    """Create (or reuse) the venv holding the contenders; returns its bin directory.

    The venv is reused when a marker file records the same package list; otherwise pip installs the packages
    (tornado and pyzmq come with circus).
    """
    bin_dir = os.path.join(path, "bin")
    marker = os.path.join(path, ".bench-packages")
    wanted = "\n".join(packages)
    if os.path.exists(marker):
        with open(marker) as handle:
            if handle.read() == wanted and os.path.exists(os.path.join(bin_dir, "python")):
                return bin_dir
    if not os.path.exists(os.path.join(bin_dir, "python")):
        base = getattr(sys, "_base_executable", None) or sys.executable
        print("creating %s ..." % path, file=sys.stderr)
        subprocess.run([base, "-m", "venv", path], check=True)
    print("installing %s ..." % ", ".join(packages), file=sys.stderr)
    subprocess.run([os.path.join(bin_dir, "python"), "-m", "pip", "install", "-q", *packages], check=True)
    with open(marker, "w") as handle:
        handle.write(wanted)
    return bin_dir


def package_version(bin_dir, distribution):
    """Version of an installed distribution in the venv of ``bin_dir`` (for the results)."""
    code = "import importlib.metadata as m; print(m.version(%r))" % distribution
    result = subprocess.run([os.path.join(bin_dir, "python"), "-c", code], capture_output=True, text=True)
    return result.stdout.strip() or None


# -- ports and processes -----------------------------------------------------------------------------------------

def free_port(host="127.0.0.1"):
    """A loopback TCP port free right now (bind to port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


_started = []


def start_process(argv, **kw):
    """Popen in a new session, remembered so that cleanup() (also run at exit) kills it and its tree."""
    kw.setdefault("start_new_session", True)
    process = subprocess.Popen(argv, **kw)
    _started.append(process.pid)
    return process


def tree_cpu_seconds(pid, exclude=()):
    """User + system CPU seconds of ``pid`` and its live descendants, leaving out the pids in ``exclude``.

    Only live processes count (a reaped child's time moves into its parent's children_* fields, which are not
    added): take two readings around the measured work and subtract them.
    """
    try:
        root = psutil.Process(pid)
        members = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for member in members:
        if member.pid in exclude:
            continue
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def kill_tree(pid, timeout=5.0):
    """SIGTERM ``pid`` and every descendant, wait up to ``timeout``, SIGKILL what is left; by pid only.

    A pid that is already gone is forgotten too, so that cleanup() never signals a later process given the same
    pid (a suite can go through the whole pid range).
    """
    try:
        root = psutil.Process(pid)
        members = root.children(recursive=True) + [root]
    except psutil.NoSuchProcess:
        if pid in _started:
            _started.remove(pid)
        return
    for member in members:
        try:
            member.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _gone, alive = psutil.wait_procs(members, timeout)
    for member in alive:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout)
    if pid in _started:
        _started.remove(pid)
    try:    # our own child: collect it so no zombie is left
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def cleanup():
    """Kill every process started through start_process() that is still around."""
    for pid in list(_started):
        kill_tree(pid, timeout=2.0)


atexit.register(cleanup)


def wait_until(predicate, timeout, interval=0.005):
    """Poll ``predicate`` until it is true (returns True) or ``timeout`` seconds passed (returns False).

    Benchmarks may poll (what they watch often has no event: a file's size, another program's state); tests never.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)


# -- runs and statistics -----------------------------------------------------------------------------------------

def run_interleaved(cases, repeat, log=None):
    """Run ``cases`` (a list of ``(name, callable)``) A B C A B C ... ``repeat`` times; {name: [sample, ...]}.

    Interleaving spreads slow drifts (page cache, CPU frequency, another load) over every case instead of
    penalising whichever ran last. A callable returns a dict of numbers; one that raises gives a sample
    ``{'error': message}`` and the run goes on.
    """
    samples = {name: [] for name, _ in cases}
    for round_number in range(1, repeat + 1):
        for name, run in cases:
            try:
                sample = run()
            except Exception as error:     # a contender failing is a result too
                sample = {"error": "%s: %s" % (type(error).__name__, error)}
            samples[name].append(sample)
            if log is not None:
                log("[%d/%d] %-11s %s" % (round_number, repeat, name, _brief(sample)))
    return samples


def _brief(sample):
    return ", ".join("%s=%s" % (key, ("%.4g" % value) if isinstance(value, float) else value)
                     for key, value in sample.items())


def summarize(samples):
    """Median, min and max of a list of numbers (None values left out); None when there is none."""
    values = [value for value in samples if value is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def summarize_samples(samples, metrics):
    """{metric: summarize(...)} over a case's sample dicts, for the given metric names."""
    return {metric: summarize([s.get(metric) for s in samples if "error" not in s]) for metric in metrics}


def fmt_number(value, digits=3):
    """``value`` with about ``digits`` significant digits and never an exponent (1630, 0.0197, 13.1)."""
    if value is None:
        return "n/a"
    if value == 0 or not math.isfinite(value):
        return "%g" % value
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(value)))))
    return "%.*f" % (decimals, value)


def fmt_range(summary, digits=3, scale=1.0):
    """``median (min–max)`` of a summary, for markdown tables."""
    if summary is None:
        return "n/a"
    median, low, high = (fmt_number(summary[key] * scale, digits) for key in ("median", "min", "max"))
    return median if summary["n"] == 1 or low == high else "%s (%s–%s)" % (median, low, high)


def markdown_table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines.extend("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)


def machine_info():
    """Where the figures come from (they only compare within one run on one machine)."""
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2 ** 30, 1),
            "time": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def write_results(name, data, markdown):
    """Write results/<name>.json and results/<name>.md; returns their paths."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    json_path = os.path.join(RESULTS_DIR, name + ".json")
    md_path = os.path.join(RESULTS_DIR, name + ".md")
    with open(json_path, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    with open(md_path, "w") as handle:
        handle.write(markdown.rstrip() + "\n")
    return json_path, md_path
