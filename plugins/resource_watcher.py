"""ResourceWatcher: restarts a watcher (or signals one of its processes' children)
that uses too much, or too little, CPU or memory (Circus's plugin of
the same name).

Options: watcher (required; `service` is its deprecated name), loop_rate (60 s),
max_cpu (90 %), min_cpu (none), max_mem (90 %), min_mem (none),
health_threshold (75 %), max_count (3), process_children (false),
child_signal (SIGTERM), and the statsd options.

max_mem / min_mem: a plain number is a percentage of the host's memory; a
number with a unit (`200M`, `1.5G`, `512K`, `100B`) is a size in bytes.

Every loop_rate seconds the plugin reads `stats name=<watcher>`. For the
watcher's processes (the highest figures among them) and, with
process_children, for each child of each process, it counts consecutive
loops over max_cpu / under min_cpu / over max_mem / under min_mem / over
health_threshold (mean of max cpu and max mem %). Past max_count loops:
the watcher is restarted, or the child gets child_signal. Each event is also a
statsd counter `_resource_watcher.<watcher>.<over_cpu|under_cpu|over_memory|
under_memory|over_health|restarting|error>`.

Fixed from Circus's plugin: the child signal reaches that child (Circus sent
`child_pid`, a key the signal command ignores, so every process of the watcher
got it), and an absolute min_mem is compared in bytes (Circus compared it as a
percentage).
"""
import logging
import re
import signal
import warnings

from gcircus.plugin import human2bytes, to_bool, to_signum
from gcircus.plugins.statsd import BaseObserver

logger = logging.getLogger("gcircus")

PARENT = "parent"
_CHECKS = ("over_cpu", "under_cpu", "over_memory", "under_memory", "over_health")


def parse_memory_limit(value):
    """(limit, is_percent): '90' / 90 -> (90.0, True); '200M' -> (209715200, False); None -> (None, None)."""
    if value is None or value == "":
        return None, None
    if isinstance(value, (int, float)) or re.fullmatch(r"\s*[0-9]*\.?[0-9]+\s*%?\s*", str(value)):
        return float(str(value).strip().rstrip("%")), True
    return human2bytes(value), False


class ResourceWatcher(BaseObserver):
    name = "resource_watcher"

    def __init__(self, *args, **config):
        super().__init__(*args, **config)
        self.watcher = config.get("watcher")
        self.service = config.get("service")
        if self.service is not None:
            warnings.warn("ResourceWatcher.service is deprecated, use ResourceWatcher.watcher instead",
                          category=DeprecationWarning, stacklevel=2)
            if self.watcher is None:
                self.watcher = self.service
        if self.watcher is None:
            self.statsd.stop()
            raise NotImplementedError("watcher is mandatory for now.")
        self.max_cpu = float(config.get("max_cpu", 90))
        self.min_cpu = float(config["min_cpu"]) if config.get("min_cpu") not in (None, "") else None
        self.max_mem, self._max_percent = parse_memory_limit(config.get("max_mem", 90))
        self.min_mem, self._min_percent = parse_memory_limit(config.get("min_mem"))
        self.health_threshold = float(config.get("health_threshold", 75))
        self.max_count = int(config.get("max_count", 3))
        self.process_children = to_bool(config.get("process_children", False))
        self.child_signal = to_signum(config.get("child_signal", signal.SIGTERM))
        self.counts = {}        # index (PARENT or (pid, child pid)) -> {check: consecutive loops}

    def _count(self, check):
        self.statsd.increment("_resource_watcher.%s.%s" % (self.watcher, check))

    def look_after(self):
        reply = self.call("stats", name=self.watcher)
        if reply.get("status") == "error":
            self._count("error")
            return
        processes = {pid: info for pid, info in (reply.get("info") or {}).items() if isinstance(info, dict)}
        seen = {PARENT}
        self._process_index(PARENT, self._collect_data(processes.values()))
        if self.process_children:
            for pid, info in processes.items():
                for child in info.get("children") or []:
                    index = (int(pid), child["pid"])
                    seen.add(index)
                    self._process_index(index, self._collect_data([child]))
        for index in set(self.counts) - seen:
            del self.counts[index]     # a process or child that is gone

    @staticmethod
    def _collect_data(infos):
        """Highest and lowest cpu %, mem % and mem bytes among infos (0 when there are none).
        An unreadable figure ("N/A") counts as 100 % for the maxima, as in Circus."""
        cpus = [100.0 if info.get("cpu") == "N/A" else float(info.get("cpu", 0)) for info in infos]
        mems = [100.0 if info.get("mem") == "N/A" else float(info.get("mem", 0)) for info in infos]
        sizes = [0 if info.get("mem_info1") in (None, "N/A") else human2bytes(info["mem_info1"])
                 for info in infos]
        data = {}
        for key, values in (("cpu", cpus), ("mem", mems), ("mem_abs", sizes)):
            data["max_" + key] = max(values) if values else 0
            data["min_" + key] = min(values) if values else 0
        return data

    def _breaches(self, stats):
        """{check: True/False} for one index's figures."""
        over_mem = under_mem = False
        if self.max_mem is not None:
            over_mem = stats["max_mem" if self._max_percent else "max_mem_abs"] > self.max_mem
        if self.min_mem is not None:
            under_mem = stats["min_mem" if self._min_percent else "min_mem_abs"] < self.min_mem
        return {
            "over_cpu": bool(self.max_cpu) and stats["max_cpu"] > self.max_cpu,
            "under_cpu": self.min_cpu is not None and stats["min_cpu"] <= self.min_cpu,
            "over_memory": over_mem,
            "under_memory": under_mem,
            "over_health": bool(self.health_threshold) and
            (stats["max_cpu"] + stats["max_mem"]) / 2.0 > self.health_threshold,
        }

    def _process_index(self, index, stats):
        counts = self.counts.setdefault(index, dict.fromkeys(_CHECKS, 0))
        for check, breached in self._breaches(stats).items():
            if breached:
                self._count(check)
                counts[check] += 1
            else:
                counts[check] = 0
        if max(counts.values()) <= self.max_count:
            return
        self._count("restarting")
        if index == PARENT:
            logger.info("resource_watcher: restarting watcher %s (%s)", self.watcher,
                        ", ".join(c for c in _CHECKS if counts[c] > self.max_count))
            self.cast("restart", name=self.watcher)
            self.counts[index] = dict.fromkeys(_CHECKS, 0)
        else:
            pid, child = index
            logger.info("resource_watcher: signalling child %s of process %s of watcher %s with %s",
                        child, pid, self.watcher, self.child_signal)
            self.cast("signal", name=self.watcher, pid=pid, childpid=child, signum=self.child_signal)
            del self.counts[index]
