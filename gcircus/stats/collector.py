"""The bodies of the stats stream's messages: per-watcher aggregates, socket counts,
the daemon's own info. Per-process figures come from gcircus.supervision.sampler
(ProcessSampler, re-exported here): each round reads one file per process,
/proc/<pid>/stat, which holds every changing figure (psutil's oneshot() path
measured ~165 us per process on a busy host, this ~25 us), cut into slices of at
most ~6 ms of hub time by the stats greenlet (gcircus.stats.publisher).
"""
import os

import psutil

from gcircus.supervision.procinfo import get_info
from gcircus.supervision.sampler import ProcessSampler, read_proc_stat

__all__ = ["ProcessSampler", "read_proc_stat", "aggregate", "socket_messages", "daemon_info"]


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
