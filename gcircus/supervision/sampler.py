"""Process figures for `stats` and the stats stream, sampled cheaply and without
holding the hub.

The fields are Circus's `get_info` fields; the cost is not. psutil's `children()`
rescans all of /proc once per process asked (2,000 processes: 146 s on the hub,
measured). Here one ProcTable scan reads every /proc/<pid>/stat once: that gives the
parent of every process (so children are a dict lookup) and every changing figure of
the processes we report. A ProcessSampler remembers, per tracked process, what never
changes (owner, command, start time, read once through psutil) and its previous cpu
reading, so `cpu` is the usage since the previous sample (psutil's
`cpu_percent(interval=0)`, first sample 0.0, as in Circus). Both yield to the hub
every few milliseconds through a Slicer.
"""
import os
import pwd
import time

import psutil

from gcircus.supervision.hub_guard import Slicer
from gcircus.supervision.pidfds import read_stat_fields
from gcircus.supervision.procinfo import bytes2human, format_cpu_time, get_info
from gcircus.supervision.spawner import program_argv

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


def _figures(fields):
    """(cpu seconds as psutil's cpu_times fields, nice, rss, vms) from stat fields."""
    # fields[n - 3] is field n of proc(5): utime 14, stime 15, cutime 16, cstime 17,
    # nice 19, vsize 23, rss 24, delayacct_blkio_ticks 42
    times = tuple(int(fields[i]) / _TICKS for i in (11, 12, 13, 14, 39))
    return times, int(fields[16]), int(fields[21]) * _PAGE_SIZE, int(fields[20])


def read_proc_stat(pid):
    """(cpu times, nice, rss, vms) of pid from one read of /proc/<pid>/stat, or None."""
    fields = read_stat_fields(pid)
    return _figures(fields) if fields is not None else None


class ProcTable:
    """One pass over /proc: every process's parent, and the stat fields of each.

    Built in slices (a Slicer given by the caller); without /proc (not Linux) it asks
    psutil for the parents and keeps no fields.
    """

    def __init__(self, slicer=None):
        self.children = {}     # ppid -> [pid]
        self.fields = {}       # pid -> stat fields
        slicer = slicer or Slicer()
        try:
            pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
        except OSError:
            pids = None
        if pids is None:
            for proc in psutil.process_iter(["ppid"]):
                self.children.setdefault(proc.info["ppid"], []).append(proc.pid)
                slicer.tick()
            return
        for pid in pids:
            fields = read_stat_fields(pid)
            if fields is not None:
                self.fields[pid] = fields
                self.children.setdefault(int(fields[1]), []).append(pid)
            slicer.tick()

    def children_of(self, pid):
        return self.children.get(pid, [])


class _Tracked:
    """One sampled process: what never changes, and the previous cpu reading.

    Read from /proc directly (start time from the stat fields, owner from /proc/<pid>/status,
    command from /proc/<pid>/cmdline: ~3 reads against psutil's ~8 per process, which made
    the first `stats` of 2,000 processes take a second); psutil where /proc is not there.
    The command is its program's, not its exec wrapper's; one caught in the middle of an exec
    shows none, and is read again at the next sample (cmdline None until then)."""

    __slots__ = ("pid", "proc", "username", "cmdline", "create_time", "last_cpu", "last_time")

    def __init__(self, pid, fields=None):
        self.pid = pid
        self.proc = None
        self.last_cpu = self.last_time = None
        if fields is not None and _read_identity(self, pid, fields):
            return
        self.proc = psutil.Process(pid)
        self.create_time = self.proc.create_time()
        self.username = _field(self.proc.username)
        self.cmdline = _command(_field(self.proc.cmdline, []))

    def command(self):
        """Its command's first word (None while none can be read)."""
        if self.cmdline is None:
            self.cmdline = _command(_read_argv(self.pid) if self.proc is None else _field(self.proc.cmdline, []))
        return self.cmdline

    def psutil_process(self):
        if self.proc is None:
            self.proc = psutil.Process(self.pid)
        return self.proc


def _read_identity(tracked, pid, fields):
    """Fill create_time, username and cmdline from /proc; False if they cannot be read."""
    try:
        with open("/proc/%d/status" % pid, "rb") as handle:
            status = handle.read()
    except OSError:
        return False
    uid = None
    for line in status.splitlines():
        if line.startswith(b"Uid:"):
            uid = int(line.split()[1])       # the real uid, as psutil's username()
            break
    if uid is None:
        return False
    tracked.create_time = _boot_time() + int(fields[19]) / _TICKS      # field 22: starttime
    tracked.username = _user_name(uid)
    tracked.cmdline = _command(_read_argv(pid))
    return True


def _read_argv(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return [arg.decode("utf-8", "replace") for arg in handle.read().split(b"\0") if arg]
    except OSError:
        return []


def _command(argv):
    """The first word of the program's command line (not its exec wrapper's); None when there is none
    (gone, or caught in the middle of an exec)."""
    argv = program_argv(argv)
    words = argv[0].split() if argv else []
    return os.path.basename(words[0]) if words else None


_BOOT_TIME = []
_USER_NAMES = {}


def _boot_time():
    if not _BOOT_TIME:
        _BOOT_TIME.append(psutil.boot_time())
    return _BOOT_TIME[0]


def _user_name(uid):
    name = _USER_NAMES.get(uid)
    if name is None:
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)        # as psutil: a uid without a name is shown as the number
        _USER_NAMES[uid] = name
    return name


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

    def sample(self, key, pid, table=None, program=None):
        """Circus's info dict for pid (`children` empty), or None when it is gone.
        With a ProcTable, its fields are used instead of reading /proc again. `program` is the
        command reported while the process's own cannot be read (caught in the middle of an exec)."""
        try:
            fields = table.fields.get(pid) if table is not None else read_stat_fields(pid)
            tracked = self._tracked.get(key)
            if tracked is None or tracked.pid != pid:
                tracked = self._tracked[key] = _Tracked(pid, fields)
            stat = _figures(fields) if fields is not None else None
            if stat is None:
                stat = self._read_with_psutil(tracked)
            info = self._info(tracked, *stat)
            info["cmdline"] = info["cmdline"] or program or "N/A"
            return info
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
        proc = tracked.psutil_process()
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
            "cmdline": tracked.command(),
            "children": [],
        }

    def retain(self, keys):
        """Forget every process whose key is not in keys (they were reaped)."""
        for key in set(self._tracked) - set(keys):
            del self._tracked[key]

    def __len__(self):
        return len(self._tracked)


NO_SUCH_PROCESS = "No such process (stopped?)"


def processes_info(processes, sampler, slicer=None, table=None):
    """{pid: info} for gcircus Process objects, as Process.info() gives it one at a time
    (age, started, wid, and the direct children's infos), from one /proc scan, in slices."""
    slicer = slicer or Slicer()
    table = table or ProcTable(slicer)
    infos = {}
    keys = []
    for process in processes:
        pid = process.pid
        info = sampler.sample(process, pid, table, process.program()) if process.is_alive() else None
        if info is None:
            infos[pid] = NO_SUCH_PROCESS
            continue
        keys.append(process)
        info["age"] = process.age()
        info["started"] = process.started
        for child_pid in table.children_of(pid):
            child = sampler.sample(("child", child_pid), child_pid, table)
            if child is not None:
                keys.append(("child", child_pid))
                info["children"].append(child)
        info["wid"] = process.wid
        infos[pid] = info
        slicer.tick()
    return infos, keys
