"""Process information in Circus's `info()` / `stats` format, from psutil."""
import datetime
import os
import time

import psutil

from gcircus.converters import bytes2human  # noqa: F401  (re-exported: Circus has it in circus.util)
from gcircus.supervision.spawner import program_argv


def format_cpu_time(cpu_times):
    """Circus's `ctime`: M:SS.cc from the sum of all cpu_times fields (minutes modulo 60).

    Kept as Circus prints it (clients parse it); the hours are dropped there too.
    """
    # timedelta rounds to the nearest microsecond (1.13 stays 1.13, not 1.129999...)
    total = datetime.timedelta(seconds=sum(cpu_times))
    minutes = total.seconds // 60 % 60
    seconds = total.seconds % 60
    return "%d:%02d.%s" % (minutes, seconds, str(total.microseconds)[:2])


def _field(getter, default="N/A"):
    try:
        return getter()
    except (psutil.AccessDenied, psutil.ZombieProcess):
        return default


def get_info(proc, interval=0.0, with_children=False):
    """Circus's base info dict for a psutil.Process; raises psutil.NoSuchProcess if gone."""
    info = {}
    mem = _field(proc.memory_info, None)
    info["mem_info1"] = bytes2human(mem.rss) if mem else "N/A"
    info["mem_info2"] = bytes2human(mem.vms) if mem else "N/A"
    info["cpu"] = _field(lambda: proc.cpu_percent(interval=interval))
    info["mem"] = _field(lambda: round(proc.memory_percent(), 3))
    info["ctime"] = _field(lambda: format_cpu_time(proc.cpu_times()))
    info["pid"] = proc.pid
    info["username"] = _field(proc.username)
    try:
        info["nice"] = proc.nice()
    except psutil.AccessDenied:
        info["nice"] = "N/A"
    except psutil.NoSuchProcess:
        info["nice"] = "Zombie"
    info["create_time"] = _field(proc.create_time)
    info["age"] = time.time() - info["create_time"] if isinstance(info["create_time"], float) else "N/A"
    cmdline = program_argv(_field(proc.cmdline, []))     # its program's, even while its exec wrapper runs
    info["cmdline"] = os.path.basename(cmdline[0].split()[0]) if cmdline and cmdline[0].split() else "N/A"
    info["children"] = []
    if with_children:
        for child in _field(proc.children, []):
            try:
                info["children"].append(get_info(child, interval))
            except psutil.NoSuchProcess:
                continue
    return info
