"""GET /metrics: the daemon, its watchers and their processes in Prometheus's text exposition format (0.0.4).

Written by hand (no runtime dependency); tests parse it with prometheus_client's own parser. Names follow
Prometheus's conventions: a ``gcircus_`` prefix, ``_total`` on counters, seconds and bytes as units. Process
figures come from one read of /proc/<pid>/stat each, in slices that let the hub run between them.
"""
import gc
import math
import os
import time

from greenlet import greenlet as Greenlet

from gcircus.supervision.sampler import read_proc_stat
from gcircus.states import WatcherState
from gcircus.supervision.hub_guard import Slicer

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Counting greenlets walks every object the garbage collector tracks (greenlets have no registry): ~40 ms of
#: hub time with 1,000 processes here, so it is done at most once a minute and the count cached in between.
GREENLET_COUNT_TTL = 60.0


class Family:
    """One metric family: name (with _total for a counter), type, help, and (labels, value) samples."""

    def __init__(self, name, kind, help_text):
        self.name = name
        self.kind = kind
        self.help = help_text
        self.samples = []

    def add(self, value, **labels):
        self.samples.append((labels, value))
        return self


def escape_label(value):
    value = str(value)
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def format_value(value):
    if value is None:
        return "NaN"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render(families, slicer=None):
    """The exposition text of families (a family without samples is left out); with a Slicer, the hub gets a
    turn every few milliseconds (thousands of processes are thousands of lines)."""
    out = []
    for family in families:
        if not family.samples:
            continue
        out.append("# HELP %s %s\n" % (family.name, family.help.replace("\\", "\\\\").replace("\n", "\\n")))
        out.append("# TYPE %s %s\n" % (family.name, family.kind))
        for labels, value in family.samples:
            if labels:
                text = ",".join(['%s="%s"' % (key, escape_label(val)) for key, val in labels.items()])
                out.append("%s{%s} %s\n" % (family.name, text, format_value(value)))
            else:
                out.append("%s %s\n" % (family.name, format_value(value)))
            if slicer is not None:
                slicer.tick()
    return "".join(out)


class MetricsCollector:
    """Builds the families for one arbiter; the greenlet count is cached (see GREENLET_COUNT_TTL)."""

    def __init__(self, arbiter, started=None, live=None):
        self.arbiter = arbiter
        self.started = started if started is not None else time.time()
        self.live = live
        self._greenlets = None      # (monotonic time, count)

    def collect(self):
        families = self._daemon_families()
        families.extend(self._watcher_families())
        return render(families, Slicer())

    def _daemon_families(self):
        now = time.time()
        stat = read_proc_stat(os.getpid())
        cpu = stat[0][0] + stat[0][1] if stat else None
        rss = stat[2] if stat else None
        families = [
            Family("gcircus_daemon_start_time_seconds", "gauge", "When the arbiter started (unix time).")
            .add(self.started),
            Family("gcircus_daemon_uptime_seconds", "gauge", "Seconds since the arbiter started.")
            .add(now - self.started),
            Family("gcircus_daemon_cpu_seconds_total", "counter", "CPU time (user + system) of the daemon.")
            .add(cpu),
            Family("gcircus_daemon_resident_memory_bytes", "gauge", "Resident memory of the daemon.").add(rss),
            Family("gcircus_daemon_greenlets", "gauge", "Greenlets alive in the daemon.")
            .add(self._greenlet_count()),
            Family("gcircus_watchers", "gauge", "Watchers the arbiter has.").add(len(self.arbiter.watchers)),
            Family("gcircus_hub_stalls_total", "counter", "Turns of the daemon's event loop that held it longer "
                   "than hub_stall_threshold.").add(self.arbiter.hub_stalls()),
        ]
        if self.live is not None:
            families.append(Family("gcircus_httpd_sse_clients", "gauge", "Browsers and API clients following "
                                   "an event or output stream.").add(self.live.sse_clients()))
            families.append(Family("gcircus_httpd_sse_dropped_messages_total", "counter", "Stream messages "
                                   "dropped because a client did not read them in time.")
                            .add(self.live.sse_dropped_total()))
        return families

    def _greenlet_count(self):
        now = time.monotonic()
        if self._greenlets is None or now - self._greenlets[0] > GREENLET_COUNT_TTL:
            count = sum(1 for obj in gc.get_objects() if isinstance(obj, Greenlet) and not obj.dead)
            self._greenlets = (now, count)
        return self._greenlets[1]

    def _watcher_families(self):
        state = Family("gcircus_watcher_state", "gauge", "1 for the state the watcher is in, 0 for the others.")
        configured = Family("gcircus_watcher_processes_configured", "gauge", "Processes the watcher should run "
                            "(numprocesses).")
        running = Family("gcircus_watcher_processes_running", "gauge", "Processes of the watcher running now.")
        restarts = Family("gcircus_watcher_restarts_total", "counter", "Processes that ended on their own and "
                          "were replaced.")
        failures = Family("gcircus_watcher_spawn_failures_total", "counter", "Spawns that failed (the command "
                          "could not be started).")
        exit_code = Family("gcircus_watcher_last_exit_code", "gauge", "Exit code of the process reaped last "
                           "(minus the signal number if killed by one; NaN before the first).")
        last_start = Family("gcircus_watcher_last_start_time_seconds", "gauge", "When the watcher last started "
                            "(unix time; NaN if never).")
        backoff = Family("gcircus_watcher_backoff", "gauge", "1 while the watcher waits to respawn a crash loop "
                         "(or failed spawns), else 0.")
        retry_in = Family("gcircus_watcher_backoff_retry_in_seconds", "gauge", "Seconds until the next respawn "
                          "of a watcher in backoff (0 when none waits).")
        crashes = Family("gcircus_watcher_backoff_crashes", "gauge", "Processes in a row that died younger than "
                         "min_uptime, for a watcher in backoff (0 when none waits).")
        cpu = Family("gcircus_process_cpu_seconds_total", "counter", "CPU time (user + system) of a process.")
        rss = Family("gcircus_process_resident_memory_bytes", "gauge", "Resident memory of a process.")
        started = Family("gcircus_process_start_time_seconds", "gauge", "When a process was spawned (unix time).")
        slicer = Slicer()
        for watcher in self.arbiter.iter_watchers():
            name = watcher.name
            for value in WatcherState:
                state.add(1 if watcher.state is value else 0, watcher=name, state=str(value))
            configured.add(watcher.numprocesses, watcher=name)
            running.add(len(watcher.get_active_processes()), watcher=name)
            restarts.add(watcher.restarts, watcher=name)
            failures.add(watcher.spawn_failures, watcher=name)
            exit_code.add(watcher.last_exit_code, watcher=name)
            last_start.add(watcher.last_start_time, watcher=name)
            waiting = watcher.backoff() or {}
            backoff.add(1 if waiting else 0, watcher=name)
            retry_in.add(waiting.get("retry_in", 0.0), watcher=name)
            crashes.add(waiting.get("crashes", 0), watcher=name)
            for process in list(watcher.processes.values()):
                stat = read_proc_stat(process.pid)
                labels = {"watcher": name, "pid": str(process.pid), "wid": str(process.wid)}
                if stat is not None:
                    cpu.add(stat[0][0] + stat[0][1], **labels)
                    rss.add(stat[2], **labels)
                if process.started:
                    started.add(process.started, **labels)
                slicer.tick()
        return [state, configured, running, restarts, failures, exit_code, last_start, backoff, retry_in, crashes,
                cpu, rss, started]
