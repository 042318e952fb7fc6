"""What the dashboard shows live: the recent events, each watcher's recent output, and CPU/memory samples.

Three sources feed it, all on the arbiter's hub: the publisher's in-process listener (every event), each
watcher's output tap (every chunk its pumps read) and a sampler greenlet. Their cost is kept off the paths that
matter: with nobody connected, an event costs one deque append and an output chunk one line split into a
bounded buffer; the sampler runs only while a dashboard page is open; a watcher's new state is sent to the pages
at most every FLUSH_DELAY seconds however many events it publishes.
"""
import logging
import time
from collections import deque

import gevent

from gcircus.httpd.sse import Channel, encode
from gcircus.supervision.hub_guard import Slicer
from gcircus.supervision.sampler import read_proc_stat

logger = logging.getLogger("gcircus")

#: Events kept for a page opened later.
EVENT_BACKLOG = 200
#: Output lines kept per watcher for a page opened later.
OUTPUT_BACKLOG = 500
#: Of a chunk larger than this only the end is kept: a child writing a MiB at once costs a bounded split.
OUTPUT_TAIL_BYTES = 64 << 10
#: A line longer than this is cut (the rest still reaches the watcher's own stream).
MAX_LINE = 4096
#: CPU/memory samples kept per watcher for the graphs (at the default 2 s interval: 10 minutes).
HISTORY = 300
DEFAULT_INTERVAL = 2.0
#: Events are coalesced into one watcher update per this many seconds.
FLUSH_DELAY = 0.1


class OutputBuffer:
    """One watcher's last lines and the pages following them (``lines`` messages keyed by (pid, stream))."""

    def __init__(self):
        self.lines = deque(maxlen=OUTPUT_BACKLOG)
        self.channel = Channel()
        self._partial = {}

    def feed(self, pid, name, data):
        """The watcher's OutputTap listener: a chunk read from a pipe, or b"" at its EOF."""
        key = (pid, name)
        if not data:
            rest = self._partial.pop(key, None)
            complete = [rest] if rest else []
        else:
            if len(data) > OUTPUT_TAIL_BYTES:
                self._partial.pop(key, None)
                data = data[-OUTPUT_TAIL_BYTES:]
            *complete, rest = (self._partial.pop(key, b"") + data).split(b"\n")
            if len(rest) > MAX_LINE:
                complete.append(rest)
            elif rest:
                self._partial[key] = rest
        if not complete:
            return
        now = time.time()
        batch = [[now, pid, name, line[:MAX_LINE].decode("utf-8", "replace")]
                 for line in complete[-OUTPUT_BACKLOG:]]
        self.lines.extend(batch)
        if self.channel:
            self.channel.publish(encode("lines", batch), key)

    def backlog(self, pid=None, stream=None):
        return [line for line in self.lines
                if (pid is None or line[1] == pid) and (stream is None or line[2] == stream)]


class LiveFeeds:
    """The live state of one arbiter as the pages see it; start() hooks it up, stop() unhooks it."""

    def __init__(self, arbiter, interval=DEFAULT_INTERVAL):
        self.arbiter = arbiter
        self.interval = float(interval)
        self.events = deque(maxlen=EVENT_BACKLOG)      # (topic, message) as published
        self.dashboard = Channel()      # pages: events, watcher updates, samples
        self.event_stream = Channel()   # /api/events: events only
        self.outputs = {}               # watcher topic name -> OutputBuffer
        self.history = {}               # watcher topic name -> deque of [time, cpu %, rss bytes]
        self.figures = {}               # pid -> [cpu %, rss bytes] of the last round
        self._cpu_seen = {}             # pid -> (cpu seconds, monotonic time) of the last round
        self._dirty = set()
        self._flusher = None
        self._sampler = None
        self._watchers_tapped = []

    # -- hooking up ----------------------------------------------------------------------------------------------

    def start(self):
        self.arbiter.publisher.add_listener(self._on_event)
        for watcher in list(self.arbiter.watchers):
            self._tap(watcher)
        return self

    def stop(self):
        self.arbiter.publisher.remove_listener(self._on_event)
        for watcher in self._watchers_tapped:
            watcher.streams.tap.listener = None
        self._watchers_tapped = []
        for greenlet in (self._flusher, self._sampler):
            if greenlet is not None:
                greenlet.kill(block=False)
        self._flusher = self._sampler = None
        self.dashboard.close()
        self.event_stream.close()
        for buffer in self.outputs.values():
            buffer.channel.close()

    def _tap(self, watcher):
        watcher.streams.tap.listener = self.output_of(watcher).feed
        self._watchers_tapped.append(watcher)

    def output_of(self, watcher):
        return self.outputs.setdefault(watcher.res_name, OutputBuffer())

    def sse_dropped_total(self):
        channels = [self.dashboard, self.event_stream] + [b.channel for b in self.outputs.values()]
        return sum(channel.dropped_total for channel in channels)

    def sse_clients(self):
        channels = [self.dashboard, self.event_stream] + [b.channel for b in self.outputs.values()]
        return sum(len(channel.clients) for channel in channels)

    # -- events --------------------------------------------------------------------------------------------------

    def _on_event(self, topic, message):
        """Publisher listener: runs in whichever greenlet published (a respawn's, often): keep it short."""
        self.events.append((topic, message))
        if topic.endswith((".add", ".remove")):
            self._watchers_changed(topic)
        if self.event_stream or self.dashboard:
            encoded = encode("event", event_entry(topic, message))
            self.event_stream.publish(encoded)
            if self.dashboard:
                self.dashboard.publish(encoded)
                self._mark_dirty(topic)

    def _watchers_changed(self, topic):
        name = watcher_of_topic(topic)
        watcher = self.find_watcher(name)
        if topic.endswith(".add") and watcher is not None:
            self._tap(watcher)
        elif topic.endswith(".remove") and watcher is None:
            for gone in [w for w in self._watchers_tapped if w.res_name == name]:
                gone.streams.tap.listener = None
                self._watchers_tapped.remove(gone)
            buffer = self.outputs.pop(name, None)
            if buffer is not None:
                buffer.channel.close()
            self.history.pop(name, None)

    def find_watcher(self, res_name):
        for watcher in list(self.arbiter.watchers):
            if watcher.res_name == res_name:
                return watcher
        return None

    def _mark_dirty(self, topic):
        self._dirty.add(watcher_of_topic(topic))
        if self._flusher is None:
            self._flusher = gevent.spawn_later(FLUSH_DELAY, self._flush)
            self._flusher.name = "httpd[flush]"

    def _flush(self):
        self._flusher = None
        dirty, self._dirty = self._dirty, set()
        if not self.dashboard:
            return
        updates, removed = [], []
        for name in sorted(dirty):
            watcher = self.find_watcher(name)
            if watcher is None:
                removed.append(name)
            else:
                updates.append(watcher_summary(watcher, self.figures))
        self.dashboard.publish(encode("watchers", {"watchers": updates, "removed": removed}))

    # -- the page's stream ---------------------------------------------------------------------------------------

    def snapshot(self):
        """Everything a page shows, for a page that just connected (or missed messages)."""
        watchers = [watcher_summary(w, self.figures) for w in self.arbiter.iter_watchers()]
        return encode("snapshot", {
            "time": time.time(), "interval": self.interval, "watchers": watchers,
            "events": [event_entry(topic, message) for topic, message in self.events],
            "history": {name: list(points) for name, points in self.history.items()},
        })

    def page_opened(self):
        """A dashboard page connected: make sure samples are being taken."""
        if self._sampler is None or self._sampler.dead:
            self._sampler = gevent.spawn(self._sample_loop)
            self._sampler.name = "httpd[sampler]"

    def _sample_loop(self):
        """Owned by LiveFeeds; lives while at least one dashboard page is connected, or until stop()."""
        deadline = time.monotonic()
        while self.dashboard:
            try:
                self._sample_round()
            except Exception:
                logger.exception("httpd: a sampling round failed")
            deadline = max(deadline + self.interval, time.monotonic())
            gevent.sleep(deadline - time.monotonic())
        self._cpu_seen.clear()
        self.figures.clear()
        self._sampler = None

    def _sample_round(self):
        began = time.monotonic()
        slicer = Slicer()
        now = time.time()
        figures, samples = {}, {}
        for watcher in list(self.arbiter.watchers):
            total_cpu = total_rss = 0.0
            processes = {}
            for process in list(watcher.processes.values()):
                figure = self._sample(process.pid)
                if figure is not None:
                    figures[process.pid] = processes[process.pid] = figure
                    total_cpu += figure[0]
                    total_rss += figure[1]
                slicer.tick()
            point = [round(now, 3), round(total_cpu, 1), int(total_rss)]
            self.history.setdefault(watcher.res_name, deque(maxlen=HISTORY)).append(point)
            samples[watcher.res_name] = {"cpu": point[1], "rss": point[2], "processes": processes}
        for pid in set(self._cpu_seen) - set(figures):
            del self._cpu_seen[pid]
        self.figures = figures
        self.dashboard.publish(encode("stats", {"time": now, "watchers": samples,
                                                "round_seconds": round(time.monotonic() - began, 4)}))

    def _sample(self, pid):
        stat = read_proc_stat(pid)
        if stat is None:
            return None
        times, _nice, rss, _vms = stat
        used, now = times[0] + times[1], time.monotonic()
        seen = self._cpu_seen.get(pid)
        self._cpu_seen[pid] = (used, now)
        cpu = 0.0
        if seen is not None and now > seen[1]:
            cpu = max(0.0, used - seen[0]) / (now - seen[1]) * 100
        return [round(cpu, 1), rss]


def watcher_of_topic(topic):
    """'watcher.<name>.<event>' -> <name> (the topic spelling: lower case, spaces as underscores)."""
    return topic[len("watcher."):].rsplit(".", 1)[0] if topic.startswith("watcher.") else topic


def event_entry(topic, message):
    """An event as the pages and /api/events show it."""
    entry = dict(message) if isinstance(message, dict) else {"message": message}
    entry["topic"] = topic
    entry["watcher"] = watcher_of_topic(topic)
    entry["event"] = topic.rsplit(".", 1)[-1]
    return entry


def watcher_summary(watcher, figures):
    """A watcher as the API and the pages show it; cpu/rss of each process from the last sample (or None)."""
    processes = []
    now = time.time()
    for process in list(watcher.processes.values()):
        figure = figures.get(process.pid)
        processes.append({
            "pid": process.pid, "wid": process.wid, "started": process.started,
            "age": round(now - process.started, 3) if process.started else None,
            "stopping": bool(process.stopping),
            "cpu": figure[0] if figure else None, "rss": figure[1] if figure else None,
        })
    return {
        "name": watcher.name, "topic_name": watcher.res_name, "state": watcher.status(),
        "backoff": watcher.backoff(),       # while it waits to respawn a crash loop: why, and until when
        "numprocesses": watcher.numprocesses, "running": len(watcher.get_active_processes()),
        "restarts": watcher.restarts, "spawn_failures": watcher.spawn_failures,
        "last_exit_code": watcher.last_exit_code, "last_start_time": watcher.last_start_time,
        "singleton": bool(watcher.singleton), "priority": watcher.priority,
        "output": {"stdout": watcher.streams.stdout is not None, "stderr": watcher.streams.stderr is not None},
        "processes": processes,
    }
