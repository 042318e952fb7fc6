"""The suite's summary, its targets (checked on this run's medians) and the markdown report."""
import statistics

import _common
import _lifecycle
import bench_stream

LIFECYCLE_METRICS = ("cold_start_s", "rss_mib", "uss_mib", "stop_s")
RPC_METRICS = ("median_ms", "p99_ms", "calls_per_s", "daemon_cpu_percent", "daemon_cpu_us_per_call")
CRASH_METRICS = ("cpu_percent", "spawns_per_s", "spawns")
STORM_METRICS = ("cpu_percent", "spawns_per_s", "status_median_ms", "status_p99_ms")


def _good(samples):
    return [sample for sample in samples if "error" not in sample]


def _respawn_summary(runs):
    """Every latency of every round pooled: median, p90, min, max."""
    latencies = sorted(value for run in runs for value in run["latencies_ms"])
    if not latencies:
        return None
    return {"median": statistics.median(latencies), "p90": _lifecycle.percentile(latencies, 0.9),
            "min": latencies[0], "max": latencies[-1], "n": len(latencies),
            "missed": sum(run["missed"] for run in runs), "round_medians": [run["median_ms"] for run in runs]}


def summarize(data, lifecycle_case, stream_case, crash_case):
    options, samples, crash = data["options"], data["samples"], data["crash_samples"]
    summary = {"lifecycle": {}, "respawn": {}, "rpc": {}, "idle": {}, "crash": {}, "stream": {}, "errors": {}}
    for contender in options["contenders"]:
        per_n = summary["lifecycle"][contender] = {}
        for n in options["ns"]:
            runs = _good(samples.get(lifecycle_case(contender, n), []))
            per_n[str(n)] = _common.summarize_samples(runs, LIFECYCLE_METRICS)
            if n == options["respawn_n"]:
                summary["respawn"][contender] = _respawn_summary([run["respawn"] for run in runs])
            if n == options["rpc_n"]:
                summary["rpc"][contender] = {
                    str(clients): dict(
                        {metric: _common.summarize([run["rpc"][str(clients)][metric] for run in runs])
                         for metric in RPC_METRICS},
                        errors=sum(run["rpc"][str(clients)]["errors"] for run in runs))
                    for clients in options["rpc_clients"]}
            if n == options["idle_n"]:
                windows = next((run["idle_cpu_percent"] for run in runs if "idle_cpu_percent" in run), [])
                summary["idle"][contender] = dict(_common.summarize(windows), windows=windows) if windows else None
        summary["crash"][contender] = _common.summarize_samples(_good(crash.get(crash_case(contender), [])),
                                                                CRASH_METRICS)
    floor = _good(samples.get(_lifecycle.FLOOR_CASE, []))
    summary["respawn_floor"] = _respawn_summary([run["respawn"] for run in floor]) if floor else None
    for name, runs in samples.items():
        if name.startswith(stream_case("")):
            contender = name[len(stream_case("")):]
            intact = [run for run in _good(runs) if run["sha256_ok"] and not run["lost_bytes"]
                      and not run["extra_bytes"]]
            summary["stream"][contender] = dict(_common.summarize_samples(_good(runs), bench_stream.METRICS),
                                                sha256_ok="%d/%d" % (sum(1 for run in _good(runs)
                                                                         if run["sha256_ok"]), len(runs)),
                                                faulty_runs=len(runs) - len(intact))
    for name, runs in list(samples.items()) + list(crash.items()):
        errors = [run["error"] for run in runs if "error" in run]
        if errors:
            summary["errors"][name] = errors
    return summary


def summarize_scale(data, scale_case, storm_case):
    """The scale runs (one sample each: kept as measured) and the crash storms (median (min–max) over rounds)."""
    scale, storm = {}, {}
    for name, runs in data.get("scale_samples", {}).items():
        for run in _good(runs):
            contender = name.split()[1]
            scale.setdefault(contender, {})[str(run["n"])] = run
    for contender in data["options"]["contenders"]:
        runs = _good(data["crash_samples"].get(storm_case(contender), []))
        if runs:
            storm[contender] = _common.summarize_samples(runs, STORM_METRICS)
    errors = {name: [run["error"] for run in runs if "error" in run]
              for name, runs in data.get("scale_samples", {}).items()}
    return {"scale": scale, "storm": storm,
            "errors": dict(data_errors(data), **{name: found for name, found in errors.items() if found})}


def data_errors(data):
    return data.get("summary", {}).get("errors", {})


def _median(found, *path):
    for key in path:
        if not isinstance(found, dict) or found.get(key) is None:
            return None
        found = found[key]
    return found["median"] if isinstance(found, dict) else found


def _check(name, ours, bound, unit, passes):
    met = None if ours is None or bound is None else passes(ours, bound)
    return {"target": name, "gcircus": ours, "bound": bound, "unit": unit, "met": met}


def verdicts(summary, options):
    """The issue's targets, on the medians of this run."""
    respawn, rpc, idle = summary["respawn"], summary["rpc"], summary["idle"]
    lower = lambda ours, bound: ours <= bound     # noqa: E731
    higher = lambda ours, bound: ours >= bound     # noqa: E731
    ours = _median(respawn, "gcircus")
    checks = [_check("respawn latency, median (N=100)", ours, 3.0, "ms", lambda a, b: a < b)]
    circus_fast = _median(respawn, "circus-cd0.1")
    checks.append(_check("respawn ≤ 1/10 of circus-cd0.1", ours, circus_fast and circus_fast / 10, "ms", lower))
    for name in ("supervisor", "supervisor-ss0"):
        theirs = _median(respawn, name)
        checks.append(_check("respawn ≤ 1/100 of %s" % name, ours, theirs and theirs / 100, "ms", lower))
    checks.append(_check("status round trip, 1 client, median ≤ circus", _median(rpc, "gcircus", "1", "median_ms"),
                         _median(rpc, "circus", "1", "median_ms"), "ms", lower))
    theirs = _median(rpc, "circus", "8", "calls_per_s")
    checks.append(_check("status calls/s, 8 clients ≥ 2× circus", _median(rpc, "gcircus", "8", "calls_per_s"),
                         theirs and 2 * theirs, "calls/s", higher))
    largest = str(options.idle_n)
    checks.append(_check("idle CPU, N=%s, ≤ circus" % largest, _median(idle, "gcircus"), _median(idle, "circus"),
                         "%", lower))
    checks.append(_check("RSS, N=%s, ≤ circus" % largest,
                         _median(summary["lifecycle"], "gcircus", largest, "rss_mib"),
                         _median(summary["lifecycle"], "circus", largest, "rss_mib"), "MiB", lower))
    stream = summary["stream"]
    ours = _median(stream, "gcircus", "mb_per_s")
    checks.append(_check("capture MB/s ≥ supervisor", ours, _median(stream, "supervisor", "mb_per_s"), "MB/s",
                         higher))
    direct = _median(stream, "direct", "mb_per_s")
    checks.append(_check("capture MB/s ≥ 50% of direct", ours, direct and direct / 2, "MB/s", higher))
    faulty = stream.get("gcircus", {}).get("faulty_runs")
    checks.append(_check("capture loses nothing: runs with bytes lost/added or another sha256", faulty, 0, "runs",
                         lower))
    return checks + physical_limit_checks(summary, options)


def physical_limit_checks(summary, options):
    """Issue 16's targets: the machine's limit rather than the peers."""
    lower = lambda ours, bound: ours <= bound     # noqa: E731
    higher = lambda ours, bound: ours >= bound     # noqa: E731
    respawn, lifecycle, rpc, stream = summary["respawn"], summary["lifecycle"], summary["rpc"], summary["stream"]
    checks = [_check("respawn median ≤ 1.2 ms (N=100)", _median(respawn, "gcircus"), 1.2, "ms", lower),
              _check("respawn p90 ≤ 1.6 ms (N=100)", (respawn.get("gcircus") or {}).get("p90"), 1.6, "ms", lower),
              _check("cold start, N=500, ≤ 0.55 s", _median(lifecycle, "gcircus", "500", "cold_start_s"), 0.55, "s",
                     lower),
              _check("graceful stop, N=500, ≤ 0.08 s", _median(lifecycle, "gcircus", "500", "stop_s"), 0.08, "s",
                     lower),
              _check("RSS, N=500, ≤ supervisor", _median(lifecycle, "gcircus", "500", "rss_mib"),
                     _median(lifecycle, "supervisor", "500", "rss_mib"), "MiB", lower),
              _check("status round trip, 1 client, ≤ 0.20 ms", _median(rpc, "gcircus", "1", "median_ms"), 0.20, "ms",
                     lower)]
    direct = _median(stream, "direct", "mb_per_s")
    checks.append(_check("capture ≥ 90% of direct", _median(stream, "gcircus", "mb_per_s"), direct and 0.9 * direct,
                         "MB/s", higher))
    checks.append(_check("capture CPU/MB ≤ supervisor", _scaled(_median(stream, "gcircus", "cpu_s_per_mb")),
                         _scaled(_median(stream, "supervisor", "cpu_s_per_mb")), "ms/MB", lower))
    big = (summary.get("scale", {}).get("gcircus") or {}).get("10000")
    bounds = [("start", "cold_start_s", 12.0, "s"), ("idle CPU", "idle_cpu_percent", 0.0, "%"),
              ("status", ("status", "median_ms"), 1.0, "ms"), ("list w", ("list", "median_ms"), 20.0, "ms"),
              ("stop", "stop_s", 2.0, "s")]
    for label, key, bound, unit in bounds:
        checks.append(_check("10,000 children: %s ≤ %g %s" % (label, bound, unit), _field(big, key), bound, unit,
                             lower))
    five = (summary.get("scale", {}).get("gcircus") or {}).get("5000")
    checks.append(_check("list w of 5,000 processes ≤ 5 ms", _field(five, ("list", "median_ms")), 5.0, "ms", lower))
    storm = summary.get("storm", {}).get("gcircus")
    checks.append(_check("50 crash loops: daemon CPU ≤ 2 %", _median(storm, "cpu_percent"), 2.0, "%", lower))
    checks.append(_check("50 crash loops: status ≤ 1 ms", _median(storm, "status_median_ms"), 1.0, "ms", lower))
    return checks


def _scaled(value):
    return None if value is None else value * 1000.0


def _field(sample, key):
    if sample is None:
        return None
    for part in (key if isinstance(key, tuple) else (key,)):
        sample = sample.get(part) if isinstance(sample, dict) else None
    return sample


# -- markdown ------------------------------------------------------------------------------------------------------

def _rng(summary, *path, scale=1.0):
    for key in path:
        summary = summary.get(key) if isinstance(summary, dict) else None
    return _common.fmt_range(summary, scale=scale) if summary else "n/a"


def _num(value):
    return _common.fmt_number(value) if value is not None else "n/a"


def render_markdown(data):
    options, summary, machine = data["options"], data["summary"], data["machine"]
    contenders, ns = options["contenders"], options["ns"]
    lifecycle = summary["lifecycle"]
    out = ["# gcircus benchmark suite: gcircus beside Circus %s and Supervisor %s" % (
        data["versions"]["circus"], data["versions"]["supervisor"]), ""]
    source = data["gcircus_source"]
    out += [
        "- date: %s; machine: %s, %d CPUs, %s GiB, Python %s" % (
            machine["time"], machine["platform"], machine["cpus"], machine["memory_gib"], machine["python"]),
        "- versions: gcircus %s (%s%s), circus %s, supervisor %s" % (
            data["versions"]["gcircus"], source["path"],
            ", commit %s%s" % (source["commit"][:10], " + local changes" if source.get("dirty") else "")
            if source.get("commit") else "", data["versions"]["circus"], data["versions"]["supervisor"]),
        "- mode: %s; %d round(s) interleaved (A B C D E, A B C D E, ...), crash loop %d round(s); "
        "cells are median (min–max) over the rounds unless said otherwise; whole run %.0f s" % (
            data["mode"], options["repeat"], options["crash_repeat"], data["wall_s"]),
        "- load average (1, 5, 15 min) before: %s, after: %s (other work on the machine shows here)" % (
            ", ".join("%.2f" % v for v in data["load_average"]["before"]),
            ", ".join("%.2f" % v for v in data["load_average"]["after"])),
        "",
    ]

    def per_n_table(title, metric, unit, digits_scale=1.0):
        rows = [[c] + [_rng(lifecycle, c, str(n), metric, scale=digits_scale) for n in ns] for c in contenders]
        return ["## %s" % title, "", _common.markdown_table(["contender"] + ["N=%d (%s)" % (n, unit) for n in ns],
                                                               rows), ""]

    out += per_n_table("Cold start: daemon Popen → N children exec'd", "cold_start_s", "s")
    out += ["## Daemon memory once the N children run (psutil memory_full_info)", "",
            _common.markdown_table(["contender"] + ["RSS N=%d (MiB)" % n for n in ns] + ["USS N=%d (MiB)" % n
                                                                                         for n in ns],
                                   [[c] + [_rng(lifecycle, c, str(n), "rss_mib") for n in ns]
                                    + [_rng(lifecycle, c, str(n), "uss_mib") for n in ns] for c in contenders]), ""]
    out += per_n_table("Graceful stop: SIGTERM → daemon exited and no child left", "stop_s", "s")
    if options.get("respawn_n"):
        rows = []
        for c in contenders:
            found = summary["respawn"].get(c)
            rows.append([c] + ([_num(found[k]) for k in ("median", "p90", "min", "max")]
                               + ["%d" % found["n"], "%d" % found["missed"],
                                  ", ".join(_num(v) for v in found["round_medians"])]
                               if found else ["n/a"] * 7))
        floor, ours = summary.get("respawn_floor"), summary["respawn"].get("gcircus")
        if floor:
            rows.append(["floor (reference)"] + [_num(floor[k]) for k in ("median", "p90", "min", "max")]
                        + ["%d" % floor["n"], "%d" % floor["missed"],
                           ", ".join(_num(v) for v in floor["round_medians"])])
        out += ["## Respawn latency after SIGKILL of one child, N=%d (ms, all samples pooled)"
                % options["respawn_n"], "",
                _common.markdown_table(["contender", "median", "p90", "min", "max", "samples", "missed",
                                        "round medians"], rows), ""]
        if floor:
            out += ["The floor is this machine's least respawn, measured in the same rounds with the same pauses: a "
                    "gevent hub with a libev child watcher per child calling `_posixsubprocess.fork_exec` of `sleep` "
                    "on each exit, nothing else (benchmarks/_daemons.py FLOOR_SCRIPT)%s." % (
                        "; gcircus adds %s ms to its median and %s ms to its p90" % (
                            _num(ours["median"] - floor["median"]), _num(ours["p90"] - floor["p90"]))
                        if ours else ""), ""]
    if options.get("rpc_n"):
        rows = []
        for c in contenders:
            row = [c]
            for clients in options["rpc_clients"]:
                found = summary["rpc"].get(c, {}).get(str(clients), {})
                row += [_rng(found, "median_ms"), _rng(found, "p99_ms"), _rng(found, "calls_per_s"),
                        _rng(found, "daemon_cpu_us_per_call"), _rng(found, "daemon_cpu_percent"),
                        str(found.get("errors", "n/a"))]
            rows.append(row)
        headers = ["contender"]
        for clients in options["rpc_clients"]:
            headers += ["%d client%s: median ms" % (clients, "s" if clients > 1 else ""), "p99 ms", "calls/s",
                        "daemon CPU µs/call", "daemon CPU %", "errors"]
        out += ["## Control round trip: `status` of watcher w (N=%d), %g s window per round"
                % (options["rpc_n"], options["rpc_seconds"]), "", _common.markdown_table(headers, rows), ""]
    out += ["## Idle daemon CPU, N=%d, first round (%%, median (min–max) over %d × %g s sub-windows)" % (
        options["idle_n"], options["idle_windows"], options["idle_window_s"]), "",
        _common.markdown_table(["contender", "CPU %", "sub-windows"],
                               [[c, _rng(summary["idle"], c), ", ".join(
                                   _num(v) for v in (summary["idle"].get(c) or {}).get("windows", []))]
                                for c in contenders]), ""]
    if data["crash_samples"]:
        out += ["## Crash loop: `sh -c 'echo x >> COUNTER; exit 1'` retried forever, %g s measured" % (
            options["crash_seconds"]), "",
            _common.markdown_table(["contender", "daemon CPU %", "spawns/s"],
                                   [[c, _rng(summary["crash"], c, "cpu_percent"),
                                     _rng(summary["crash"], c, "spawns_per_s")] for c in contenders]), ""]
    if summary["stream"]:
        out += ["## Output capture: %d MiB written to stdout in 64 KiB writes (bench_stream.StreamRun)"
                % options["stream_mb"], "",
                _common.markdown_table(
                    ["contender", "wall s", "MB/s", "daemon CPU ms/MB", "bytes lost", "sha256 equal"],
                    [[c, _rng(s, "wall_s"), _rng(s, "mb_per_s"), _rng(s, "cpu_s_per_mb", scale=1000.0),
                      _rng(s, "lost_bytes"), s["sha256_ok"]] for c, s in summary["stream"].items()]), ""]
    out += scale_sections(data)
    out += ["## Targets (on the medians of this run)", "", _common.markdown_table(
        ["target", "gcircus", "bound", "met"],
        [[v["target"], "%s %s" % (_num(v["gcircus"]), v["unit"]), "%s %s" % (_num(v["bound"]), v["unit"]),
          {True: "yes", False: "**no**", None: "n/a"}[v["met"]]] for v in data["verdicts"]]), ""]
    if summary["errors"]:
        out += ["## Errors", ""] + ["- %s: %s" % (name, "; ".join(errors)[:600])
                                    for name, errors in summary["errors"].items()] + [""]
    out += ["## Method", ""] + ["- " + note for note in NOTES]
    return "\n".join(out)


def scale_sections(data):
    summary, options = data["summary"], data["options"]
    out = []
    if summary.get("scale"):
        rows = []
        for contender, per_n in summary["scale"].items():
            for n, run in sorted(per_n.items(), key=lambda item: int(item[0])):
                rows.append([contender, n, _num(run["cold_start_s"]), _num(run["rss_mib"]),
                             _num(run["idle_cpu_percent"]), _num(run["status"]["median_ms"]),
                             _num(run["status"]["p99_ms"]), _num(run["list"]["median_ms"]),
                             _num(run["list"]["p99_ms"]), _num(run["stop_s"])])
        out += ["## Scale: one watcher of N `sleep 3600`, first round only (one sample each)", "",
                "gcircus at its N; Circus 0.19 and Supervisor 4.3 capped at 1,000 (see the method).", "",
                _common.markdown_table(["contender", "N", "start s", "RSS MiB", "idle CPU %% (%g s)"
                                        % options["idle_window_s"], "status median ms", "status p99 ms",
                                        "list w median ms", "list w p99 ms", "stop s"], rows), ""]
    if summary.get("storm"):
        rows = [[c, _rng(found, "cpu_percent"), _rng(found, "spawns_per_s"), _rng(found, "status_median_ms"),
                 _rng(found, "status_p99_ms")] for c, found in summary["storm"].items()]
        out += ["## Fifty crash loops at once beside a watcher of 10: daemon CPU over %g s, then `status` of w "
                "meanwhile" % options["crash_seconds"], "",
                _common.markdown_table(["contender", "daemon CPU %", "spawns/s", "status median ms",
                                        "status p99 ms"], rows), ""]
    return out


NOTES = [
    "Contenders: gcircus = gcircusd with its defaults; circus = circusd 0.19 with `check_delay = 1` written "
    "explicitly (Circus's INI default is 5 s; it reaps and respawns only in that periodic check, so with the "
    "default its respawn would be up to 5 s and its idle CPU lower); circus-cd0.1 = `check_delay = 0.1`; "
    "supervisor = supervisord 4.3 (startsecs = 1); supervisor-ss0 = `startsecs = 0`. Watcher/program `w`: "
    "`sleep 3600`, warmup_delay = 0 (circus/gcircus), numprocs with process_name %(program_name)s_%(process_num)s "
    "and autorestart = true (Supervisor, whose control is the inet_http_server XML-RPC on loopback). Output is "
    "discarded alike: no stream for circus/gcircus, stdout_logfile/stderr_logfile = NONE for Supervisor.",
    "Children are found in /proc (benchmarks/_procscan.py): a child counts once /proc/<pid>/stat shows ppid == "
    "the daemon and comm == `sleep` (comm changes at exec). Cold start polls every 2 ms (listing /proc, reading "
    "only unclassified pids) and starts just before the daemon's Popen, so it includes the interpreter's start.",
    "Respawn: once the children are ≥ 2 s old (so neither gcircus's min_uptime backoff nor Supervisor's startsecs "
    "applies), one original child at a time is SIGKILLed after a random 0–1 s pause (the same pause sequence for "
    "every contender; it puts the kill at a random phase of Circus's check_delay tick and Supervisor's 1 s loop), "
    "and the latency runs to the first new `sleep` child seen. The poll reads /proc/sys/kernel/ns_last_pid and the "
    "stat files of the pids allocated since the last poll, sleeping 0.2 ms between polls: resolution well under "
    "1 ms (the scanner shares the 2 CPUs with the daemon).",
    "Status round trip: _rpc_client.py processes (1, then 8 at once) call `status` of `w` (Circus JSON over a zmq "
    "DEALER, one request outstanding) or `supervisor.getProcessInfo('w:w_0')` (XML-RPC) as fast as they can from "
    "a shared start time for the window; the clients run on the same 2 CPUs as the daemon. Median/p99 over every "
    "call of a round, then median (min–max) over rounds; per-call latencies are not stored (size), per-round "
    "figures are. Daemon CPU µs/call and %: the daemon's CPU seconds over the window, per call and per second "
    "(a daemon well under 100 % while 8 clients run is not what limits the calls/s: the clients are, on 2 CPUs).",
    "Memory: RSS and USS of the daemon process only, right after the N-th child exec'd. Idle CPU: user+system of "
    "the daemon process (psutil, counted in 10 ms clock ticks), from 1 s after the cold start on.",
    "Graceful stop: after 0.3 s of quiet, SIGTERM to the daemon; done when waitpid says it exited and every child "
    "it had is gone or a zombie (polled every 2 ms). The quiet time is needed: Circus 0.19 loses a SIGTERM that "
    "arrives while its manage_watchers is still respawning (it logs `Got signal SIG_TERM` and keeps running).",
    "Crash loop: one process, `max_retry = -1` (circus/gcircus), `startretries = 1000000` (Supervisor); daemon "
    "CPU and lines appended to the counter over the window, from the first spawn on. gcircus backs off after "
    "repeated deaths younger than min_uptime (0.1 s doubling up to 30 s), Supervisor after deaths within "
    "startsecs, Circus respawns at each check_delay: the spawn rates are policies, the CPU is the cost.",
    "Output capture: bench_stream.StreamRun unchanged (direct write, gcircus, circus, supervisor); the "
    "check_delay/startsecs variants do not touch the output path and are not run there.",
    "Left out to stay under 10 minutes on 2 CPUs: idle CPU and the crash loop run in the first round only, and "
    "the full-mode windows are 8 s (idle sub-windows, crash loop) and 1.5 s (status clients) rather than 10 s "
    "and 2 s; respawn keeps 10 kills per round. Not measured: Circus with its INI default check_delay of 5 s.",
    "Scale (benchmarks/_scale.py, first round only, one sample per cell): one watcher of N `sleep 3600`; the /proc "
    "scan polls every 20 ms there (listing 10,000 pids every 2 ms would take CPU from the daemon it measures); "
    "idle CPU over one window from 1 s after the start; `status` then `list w` by one client for the status "
    "window (Supervisor: getProcessInfo, then getAllProcessInfo: it has no per-group list); the stop as above, "
    "children checked once the daemon has exited. Circus 0.19 and Supervisor 4.3 run it capped at 1,000 children "
    "to keep the suite near ten minutes (at the start rate their N=1,000 row shows, 10,000 would take minutes).",
    "Fifty crash loops (first round only): watcher w of 10 `sleep 3600` plus 50 watchers/programs running "
    "`sh -c 'echo x >> COUNTER; exit 1'` retried forever; from 1 s after w's children run, the daemon's CPU and "
    "the spawns over the crash-loop window, then one client's `status` of w for the status window (the loops "
    "still running).",
    "Figures are from one run on one machine, to be read as ratios between contenders in the same run.",
]
