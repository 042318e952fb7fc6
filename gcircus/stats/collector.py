"""Process figures for the stats stream and the `stats` command, sampled cheaply.

The fields are Circus's `get_info` fields; the cost is not. A ProcessSampler
remembers, per tracked process, what never changes (owner, command, start
time, read once through psutil) and its previous cpu reading, so `cpu` is the
usage since the previous round (psutil's `cpu_percent(interval=0)`, first
sample 0.0, as in Circus). Each round then reads one file per process,
/proc/<pid>/stat, which holds every changing figure: psutil's oneshot() path
measured ~165 µs per process on a busy host, this ~25 µs. With 500 processes a
whole round (sampling and publishing) takes ~19 ms of hub time, cut into slices
of at most ~6 ms by the stats greenlet (gcircus.stats.publisher).
"""
import os
import time

import psutil

from gcircus.supervision.procinfo import bytes2human, format_cpu_time, get_info

__all__ = ["ProcessSampler", "aggregate", "socket_messages", "daemon_info"]


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


def read_proc_stat(pid):
    """(cpu seconds as psutil's cpu_times fields, nice, rss, vms) from one read of
    /proc/<pid>/stat; None when the file cannot be read (gone, or not Linux)."""
    try:
        fd = os.open("/proc/%d/stat" % pid, os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 2048)
    except OSError:
        return None
    finally:
        os.close(fd)
    fields = data[data.rfind(b")") + 2:].split()   # the command may hold spaces and parens
    if len(fields) < 40:
        return None
    # fields[n - 3] is field n of proc(5): utime 14, stime 15, cutime 16, cstime 17,
    # nice 19, vsize 23, rss 24, delayacct_blkio_ticks 42
    times = tuple(int(fields[i]) / _TICKS for i in (11, 12, 13, 14, 39))
    return times, int(fields[16]), int(fields[21]) * _PAGE_SIZE, int(fields[20])


class _Tracked:
    """One sampled process: what never changes, and the previous cpu reading."""

    __slots__ = ("pid", "proc", "username", "cmdline", "create_time", "last_cpu", "last_time")

    def __init__(self, pid):
        self.pid = pid
        self.proc = psutil.Process(pid)
        self.create_time = self.proc.create_time()
        self.username = _field(self.proc.username)
        cmdline = _field(self.proc.cmdline, [])
        words = cmdline[0].split() if cmdline else []
        self.cmdline = os.path.basename(words[0]) if words else "N/A"
        self.last_cpu = self.last_time = None


def _field(getter, default="N/A"):
    try:
        return getter()
    except (psutil.AccessDenied, psutil.ZombieProcess):
        return default


class ProcessSampler:
    """Samples tracked processes round after round (keys: any hashable naming a process,
    e.g. the gcircus Process object, so a reused pid starts afresh)."""

    def __init__(self):
        self._tracked = {}
        self._total_memory = psutil.virtual_memory().total

    def sample(self, key, pid):
        """Circus's info dict for pid (`children` empty), or None when it is gone."""
        try:
            tracked = self._tracked.get(key)
            if tracked is None or tracked.pid != pid:
                tracked = self._tracked[key] = _Tracked(pid)
            stat = read_proc_stat(pid)
            if stat is None:
                stat = self._read_with_psutil(tracked)
            return self._info(tracked, *stat)
        except psutil.NoSuchProcess:
            self._tracked.pop(key, None)
            return None
        except psutil.AccessDenied:
            # another user's process we may not read in full: the slow path knows the N/As
            try:
                return get_info(psutil.Process(pid))
            except psutil.NoSuchProcess:
                return None

    @staticmethod
    def _read_with_psutil(tracked):
        """The same figures through psutil (no /proc/<pid>/stat: not Linux)."""
        proc = tracked.proc
        with proc.oneshot():
            memory = proc.memory_info()
            return tuple(proc.cpu_times()), proc.nice(), memory.rss, memory.vms

    def _info(self, tracked, times, nice, rss, vms):
        # cpu as psutil's cpu_percent(interval=0): usage since the previous reading,
        # in percent of one CPU; 0.0 the first time (as Circus's first sample)
        now = time.monotonic()
        used = times[0] + times[1]
        cpu = 0.0
        if tracked.last_time is not None and now > tracked.last_time:
            cpu = round(max(0.0, used - tracked.last_cpu) / (now - tracked.last_time) * 100, 1)
        tracked.last_cpu, tracked.last_time = used, now
        return {
            "mem_info1": bytes2human(rss),
            "mem_info2": bytes2human(vms),
            "cpu": cpu,
            "mem": round(rss * 100.0 / self._total_memory, 3),
            "ctime": format_cpu_time(times),
            "pid": tracked.pid,
            "username": tracked.username,
            "nice": nice,
            "create_time": tracked.create_time,
            "age": time.time() - tracked.create_time,
            "cmdline": tracked.cmdline,
            "children": [],
        }

    def retain(self, keys):
        """Forget every process whose key is not in keys (they were reaped)."""
        for key in set(self._tracked) - set(keys):
            del self._tracked[key]

    def __len__(self):
        return len(self._tracked)


def aggregate(infos):
    """The `stat.<watcher>` body from {pid: info}: pids, mean cpu, summed mem, oldest age.

    As Circus: a single "N/A" makes cpu (or mem) "N/A"; no process gives cpu 0.0, mem 0.
    """
    stats = list(infos.values())
    result = {"pid": list(infos)}
    cpus = [stat["cpu"] for stat in stats]
    if "N/A" in cpus:
        result["cpu"] = "N/A"
    else:
        result["cpu"] = sum(cpus) / len(cpus) if cpus else 0.0
    mems = [stat["mem"] for stat in stats]
    result["mem"] = "N/A" if "N/A" in mems else sum(mems)
    ages = [stat["age"] for stat in stats if stat["age"] != "N/A"]
    result["age"] = max(ages) if ages else "N/A"
    return result


def socket_messages(counts):
    """The bodies of `stat.sockets.<fd>` (one per socket, with `subtopic`) then of
    `stat.sockets` (the total), from [(fd, address, reads)]."""
    messages = []
    total = {"addresses": [], "reads": 0}
    for fd, address, reads in counts:
        messages.append({"fd": fd, "subtopic": fd, "reads": reads, "address": address})
        total["addresses"].append(address)
        total["reads"] += reads
    messages.append(total)
    return messages


def daemon_info(interval=None):
    """The daemon's own info dict (`dstats`): cpu over `interval` seconds when given,
    sampled with a green sleep (psutil's own interval would block the hub)."""
    import gevent
    proc = psutil.Process(os.getpid())
    if interval:
        proc.cpu_percent(None)
        gevent.sleep(interval)
    info = get_info(proc, interval=None)
    info["children"] = []
    return info
