"""bench_httpd: what the built-in dashboard costs — gcircusd with httpd off, on with nobody connected, and on with
a dashboard stream open; optionally the page itself in headless Chromium with 100 watchers and 1,000 processes.

    python benchmarks/bench_httpd.py [--processes 100] [--idle-seconds 10] [--kills 10] [--repeat 1]
                                     [--page] [--quick]

Each case runs one gcircusd on the same INI file (one watcher of N `sleep 3600` processes, `check_delay = 5`)
with `httpd` off or on. Once every process runs and a warm-up has passed it measures:

- idle CPU: user + system seconds of gcircusd (without its children) over the idle window, in percent;
- respawn latency: SIGKILL one original child at a time and time until its replacement has exec'd, as
  /proc shows it (benchmarks/_procscan.py), median and 90th percentile over the kills.

The "httpd+page" case keeps a reader on /api/events?dashboard=1 (what an open page receives: events, watcher
updates, CPU/memory samples every 2 s) during both measurements. With --page, Chromium (Debian's chromium and
chromium-driver, through Selenium) opens the dashboard of a daemon with 100 watchers of 10 processes, and the
page's own figures are reported: time to the first full render, and the longest main-thread task (PerformanceObserver
'longtask') while the page follows the live stream for the idle window.

Target (issue 14): httpd on with nobody connected costs no idle CPU and no respawn latency over httpd off.
Results: benchmarks/results/httpd.json and httpd.md.
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import _procscan  # noqa: E402

CASES = ("httpd-off", "httpd-on", "httpd+page")
METRICS = ("idle_cpu_percent", "respawn_median_ms", "respawn_p90_ms", "sse_bytes")
WARMUP = 2.0

INI = """\
[circus]
endpoint = tcp://127.0.0.1:{port}
pubsub_endpoint = tcp://127.0.0.1:{pubsub_port}
check_delay = 5
httpd = {httpd}
httpd_port = {http_port}
{watchers}
"""
WATCHER = "[watcher:{name}]\ncmd = sleep 3600\nnumprocesses = {processes}\nmin_uptime = 0\n"


def start_daemon(workdir, httpd, watchers):
    http_port = _common.free_port()
    config = os.path.join(workdir, "bench.ini")
    with open(config, "w") as handle:
        handle.write(INI.format(port=_common.free_port(), pubsub_port=_common.free_port(), http_port=http_port,
                                httpd="true" if httpd else "false", watchers="\n".join(watchers)))
    log = open(os.path.join(workdir, "daemon.log"), "wb")
    command = _common.gcircusd_argv("--log-level", "warning", config)
    process = _common.start_process(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    log.close()
    return process, http_port


class StreamReader(threading.Thread):
    """Reads an SSE stream and counts its bytes, as an open dashboard page would receive it."""

    def __init__(self, port, path="/api/events?dashboard=1"):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(b"GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % path.encode())
        self.received = 0

    def run(self):
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                self.received += len(chunk)
        except OSError:
            return

    def close(self):
        self.sock.close()


class DaemonRun:
    """One measured run of one case (a callable for _common.run_interleaved)."""

    def __init__(self, case, options):
        self.case = case
        self.options = options

    def __call__(self):
        workdir = tempfile.mkdtemp(prefix="bench-httpd-")
        process = None
        try:
            watchers = [WATCHER.format(name="sleepers", processes=self.options.processes)]
            process, port = start_daemon(workdir, self.case != "httpd-off", watchers)
            return self._measure(process, port)
        finally:
            if process is not None:
                _common.kill_tree(process.pid)
            _common.remove_tree(workdir)

    def _measure(self, process, port):
        scanner = _procscan.ChildScanner(process.pid)
        if not scanner.wait_for_count(self.options.processes, 60):
            raise RuntimeError("the processes did not all start")
        time.sleep(WARMUP)
        reader = None
        if self.case == "httpd+page":
            reader = StreamReader(port)
            reader.start()
        try:
            daemon = psutil.Process(process.pid)
            before, began = _cpu(daemon), time.monotonic()
            time.sleep(self.options.idle_seconds)
            idle = 100.0 * (_cpu(daemon) - before) / (time.monotonic() - began)
            latencies = self._respawns(scanner)
        finally:
            if reader is not None:
                reader.close()
        ordered = sorted(latencies)
        return {"idle_cpu_percent": idle, "respawn_median_ms": statistics.median(ordered),
                "respawn_p90_ms": ordered[int(0.9 * (len(ordered) - 1))],
                "sse_bytes": reader.received if reader is not None else None}

    def _respawns(self, scanner):
        latencies = []
        for victim in sorted(scanner.live_children())[:self.options.kills]:
            time.sleep(0.05)
            began = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            found = scanner.wait_new_child(5.0)
            if found is None:
                raise RuntimeError("no replacement for %d within 5 s" % victim)
            latencies.append((found[1] - began) * 1000.0)
        return latencies


def _cpu(process):
    times = process.cpu_times()
    return times.user + times.system


# -- the page --------------------------------------------------------------------------------------------------

PAGE_PROBE = """
window.__longest = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__longest = Math.max(window.__longest, entry.duration);
}).observe({entryTypes: ["longtask"]});
"""


def measure_page(options):
    """First render and longest main-thread task of the dashboard with 100 watchers x 10 processes."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait
    workdir = tempfile.mkdtemp(prefix="bench-httpd-page-")
    process = driver = None
    try:
        watchers = [WATCHER.format(name="w%03d" % n, processes=10) for n in range(100)]
        process, port = start_daemon(workdir, True, watchers)
        scanner = _procscan.ChildScanner(process.pid)
        if not scanner.wait_for_count(1000, 120):
            raise RuntimeError("the 1,000 processes did not all start")
        chrome = webdriver.ChromeOptions()
        chrome.binary_location = "/usr/bin/chromium"
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
            chrome.add_argument(argument)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=chrome)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PAGE_PROBE})
        began = time.monotonic()
        driver.get("http://127.0.0.1:%d/" % port)
        WebDriverWait(driver, 60).until(
            lambda d: d.execute_script("return document.querySelectorAll('.watcher').length") == 100 and
            d.execute_script("return document.getElementById('summary').textContent").endswith("1000 processes"))
        first_render = time.monotonic() - began
        loading = driver.execute_script("const l = window.__longest; window.__longest = 0; return l")
        time.sleep(options.idle_seconds)
        live = driver.execute_script("return window.__longest")
        return {"first_render_s": first_render, "longest_task_loading_ms": loading, "longest_task_live_ms": live,
                "dom_nodes": driver.execute_script("return document.getElementsByTagName('*').length")}
    finally:
        if driver is not None:
            driver.quit()
        if process is not None:
            _common.kill_tree(process.pid)
        _common.remove_tree(workdir)


# -- report ----------------------------------------------------------------------------------------------------

def render_markdown(data):
    options = data["options"]
    rows = []
    for case, samples in data["samples"].items():
        summary = data["summary"][case]
        errors = sorted({s["error"] for s in samples if "error" in s})
        rows.append([case, _common.fmt_range(summary["idle_cpu_percent"]),
                     _common.fmt_range(summary["respawn_median_ms"]), _common.fmt_range(summary["respawn_p90_ms"]),
                     _common.fmt_range(summary["sse_bytes"]), "; ".join(errors)])
    lines = [
        "# The dashboard's cost: %d processes, %g s idle window, %d kills" % (
            options["processes"], options["idle_seconds"], options["kills"]),
        "",
        "%s, %d run(s) per case interleaved; median (min–max). Machine: %s, %d CPUs, Python %s." % (
            data["mode"], options["repeat"], data["machine"]["platform"], data["machine"]["cpus"],
            data["machine"]["python"]),
        "",
        _common.markdown_table(["case", "idle CPU %", "respawn median ms", "respawn p90 ms", "SSE bytes read",
                                "errors"], rows),
        "",
        "- httpd-off: `httpd = false`; httpd-on: `httpd = true`, nobody connected; httpd+page: a reader follows "
        "/api/events?dashboard=1 (an open page's stream) during both measurements.",
        "- idle CPU: gcircusd's own user + system time over the idle window, children excluded.",
        "- respawn: SIGKILL of an original child until its replacement has exec'd, as /proc shows it.",
    ]
    page = data.get("page")
    if page:
        lines += ["", "## The page with 100 watchers and 1,000 processes (headless Chromium)", ""]
        if "error" in page:
            lines.append("error: %s" % page["error"])
        else:
            lines.append(_common.markdown_table(
                ["first full render s", "longest task while loading ms", "longest task while live ms", "DOM nodes"],
                [[_common.fmt_number(page["first_render_s"]), _common.fmt_number(page["longest_task_loading_ms"]),
                  _common.fmt_number(page["longest_task_live_ms"]), page["dom_nodes"]]]))
            lines += ["", "- longest task: PerformanceObserver 'longtask' entries (main-thread tasks over 50 ms; 0 = "
                      "none), until the first full render, then over %g s of live updates (samples every 2 s)."
                      % options["idle_seconds"]]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--page", action="store_true", help="also measure the page in headless Chromium")
    parser.add_argument("--quick", action="store_true", help="3 s windows, 5 kills: a smoke test, not the target")
    options = parser.parse_args(argv)
    if options.quick:
        options.idle_seconds, options.kills = 3.0, 5
    cases = [case for case in options.cases.split(",") if case]
    runs = [(case, DaemonRun(case, options)) for case in cases]
    samples = _common.run_interleaved(runs, options.repeat, log=lambda line: print(line, file=sys.stderr))
    data = {"mode": "quick" if options.quick else "full", "options": vars(options), "samples": samples,
            "summary": {case: _common.summarize_samples(samples[case], METRICS) for case in cases},
            "machine": _common.machine_info()}
    if options.page:
        try:
            data["page"] = measure_page(options)
        except Exception as error:
            data["page"] = {"error": "%s: %s" % (type(error).__name__, error)}
    markdown = render_markdown(data)
    if not options.quick:
        paths = _common.write_results("httpd", data, markdown)
        print("\nwritten: %s, %s" % paths, file=sys.stderr)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
