"""The record of the processes gcircusd runs, so that a daemon restarted after a crash stops the leftovers.

A SIGKILLed daemon (or one the OOM killer took) cannot stop its processes: they run on, re-parented, holding the
ports and files a restarted daemon needs, and it would start a second set beside them. gcircusd therefore appends
one line per spawn (`+ pid earliest latest`) and one per exit (`- pid`) to a file of its configuration; the next
gcircusd of that configuration reads it before it binds or starts anything, and SIGKILLs the recorded processes
still running, with their descendants. Each is identified by its pid *and* the kernel's start time of that pid, so
a process that merely reused a recorded pid is never touched.

The start time is not read back from /proc/<pid>/stat after the fork: that read waits for the child's exec to
finish and cost ~0.2 ms of every spawn, on the hub. The kernel stamps a child with the boot-time clock at its fork
and /proc shows that stamp in clock ticks, so the same clock read just before and just after the fork brackets it:
the record keeps that window of ticks (`earliest latest`), a tick wider on each side so that no rounding of the
two clock reads can leave the true stamp outside. An append is one write() of a few bytes; exits are written in
batches, with the next spawn's line (a line left for a process that has exited is harmless: no process running
started in its window under its pid); the file is rewritten with the live entries only once it holds many more
lines than processes. A lock held for the daemon's lifetime (the kernel releases it when the daemon dies, however
it dies) keeps a second daemon of the same configuration from stopping the first one's processes.
"""
import fcntl
import logging
import os
import signal
import time
import zlib

from gcircus.supervision.pidfds import ProcessHandles, descendants, read_stat_fields

logger = logging.getLogger("gcircus")

# the rewrite keeps the file near the live entries: at most this many stale lines, plus one per live process
_SLACK_LINES = 1024
_EXITS_BATCH = 256      # exits written together at most (an idle daemon writes them with its next spawn)
LEFTOVER_WAIT = 10.0    # seconds for SIGKILLed leftovers to be gone (their ports free) before watchers start
# /proc/<pid>/stat's start time is in these units (USER_HZ) of the boot-time clock
_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")

# The record of this daemon, when it keeps one: gcircus.process tells it every spawn and exit.
current = None


def default_path(config_path):
    """The record file of the daemon started from config_path, in a directory only our uid can write:
    /run/gcircus as root, else $XDG_RUNTIME_DIR/gcircus, else /tmp/gcircus-<uid>. OSError when the
    directory cannot be made or is not safely ours."""
    uid = os.geteuid()
    if uid == 0:
        directory = "/run/gcircus"
    elif os.environ.get("XDG_RUNTIME_DIR"):
        directory = os.path.join(os.environ["XDG_RUNTIME_DIR"], "gcircus")
    else:
        directory = "/tmp/gcircus-%d" % uid
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(directory)
    if not os.path.isdir(directory) or os.path.islink(directory) or info.st_uid != uid or info.st_mode & 0o022:
        raise OSError("%s is not a directory owned by uid %d and writable by it alone" % (directory, uid))
    # the configuration's path, escaped into one file name (no hashlib: OpenSSL would cost the daemon ~4 MiB)
    name = os.path.realpath(config_path).replace("%", "%25").replace("/", "%2F")
    if len(name) > 200:
        name = "%s-%08x" % (name[-160:], zlib.crc32(name.encode()))
    return os.path.join(directory, "children-" + name)


def start_time(pid):
    """The kernel's start time of pid (clock ticks since boot), or None when it is gone."""
    fields = read_stat_fields(pid)
    return None if fields is None else int(fields[19])


def boot_clock():
    """Now on the clock the kernel stamps forks with (ns since boot): read before and after a fork."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def start_window(forked_after_ns, forked_before_ns):
    """(earliest, latest) start time in clock ticks of a process forked between two boot_clock() reads."""
    return forked_after_ns // _TICK_NS - 1, forked_before_ns // _TICK_NS + 1


def _started_within(pid, window):
    started = start_time(pid)
    return started is not None and window[0] <= started <= window[1]


def read_entries(path):
    """{pid: (earliest, latest) start time} of the processes the file says are running (a line of an older
    gcircusd, `+ pid starttime`, is a window of one tick)."""
    entries = {}
    try:
        with open(path, "rb") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return entries
    for line in lines:
        parts = line.split()
        try:
            if len(parts) == 4 and parts[0] == b"+":
                entries[int(parts[1])] = (int(parts[2]), int(parts[3]))
            elif len(parts) == 3 and parts[0] == b"+":
                entries[int(parts[1])] = (int(parts[2]), int(parts[2]))
            elif len(parts) == 2 and parts[0] == b"-":
                entries.pop(int(parts[1]), None)
        except ValueError:
            continue        # a line cut short by the crash: nothing to stop for it
    return entries


def stop_leftovers(entries, timeout=LEFTOVER_WAIT):
    """SIGKILL every recorded process still running (same pid, start time within its window) and its
    descendants; wait until they are gone. Returns the recorded pids that were stopped."""
    stopped = [pid for pid, window in sorted(entries.items()) if _started_within(pid, window)]
    targets = []
    for pid in stopped:
        targets.append(pid)
        targets.extend(descendants(pid))
    handles = ProcessHandles(targets)
    # the pidfds now pin these processes: one that changed between the check and the open is not ours
    for pid in stopped:
        if not _started_within(pid, entries[pid]):
            handles.forget(pid)
    handles.signal(signal.SIGKILL)
    alive = handles.wait(timeout)
    handles.close()
    if alive:
        logger.error("processes left by a previous gcircusd still run after SIGKILL: %s",
                     ", ".join(map(str, alive)))
    return [pid for pid in stopped if pid not in alive]


class ChildRecord:
    """The record file of one daemon. claim() once before anything spawns; add/remove on every spawn/exit."""

    def __init__(self, path):
        self.path = path
        self.live = {}          # pid -> (earliest, latest) start time, as written
        self._lines = 0         # lines in the file now
        self._fd = None
        self._lock_fd = None
        self._write_failed = False  # the last write failed: said once, not again for every spawn
        self._exits = []        # pids that exited, not written yet (see exited())

    def claim(self):
        """Take the record: stop what a crashed predecessor left, then start an empty file. False (nothing
        done) when a running daemon holds it."""
        lock_fd = os.open(self.path + ".lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            return False
        self._lock_fd = lock_fd
        stopped = stop_leftovers(read_entries(self.path))
        if stopped:
            logger.warning("SIGKILLed %d process(es) a previous gcircusd of this configuration left running "
                           "(it was killed or crashed): %s", len(stopped), ", ".join(map(str, stopped)))
        self._rewrite()
        return True

    def add(self, pid, forked_after_ns, forked_before_ns):
        """pid was forked between these two boot_clock() reads."""
        if self._fd is None:
            return
        window = self.live[pid] = start_window(forked_after_ns, forked_before_ns)
        self._write(self._take_exits() + b"+ %d %d %d\n" % (pid, window[0], window[1]))

    def exited(self, pid):
        """pid has exited: its line is written later, with the next spawn's or at close(). A line left for a dead
        process costs nothing (a restarted daemon checks its start time first, so a reused pid is never taken
        for it), and a stop of thousands of processes then writes no line per exit."""
        if self.live.pop(pid, None) is None or self._fd is None:
            return
        self._exits.append(pid)
        if len(self._exits) >= _EXITS_BATCH:
            self._write(self._take_exits())

    def remove(self, pid):
        """pid, still running, is no longer ours (`rm --nostop`): written now, so that a crash of this daemon
        never makes the next one stop a process it was told to leave running."""
        if self.live.pop(pid, None) is None or self._fd is None:
            return
        self._write(self._take_exits() + b"- %d\n" % pid)

    def _take_exits(self):
        lines = b"".join(b"- %d\n" % pid for pid in self._exits)
        self._exits.clear()
        return lines

    def _write(self, lines):
        try:
            os.write(self._fd, lines)
        except OSError as error:        # a full disk must not stop supervision: the record is a safety net
            if not self._write_failed:  # once per failing streak: a churning watcher would repeat it per spawn
                logger.error("cannot write the children record %s: %s (said once until it works again)",
                             self.path, error)
            self._write_failed = True
        else:
            if self._write_failed:
                logger.warning("the children record %s is written again", self.path)
            self._write_failed = False
        self._lines += lines.count(b"\n")
        if self._lines > 2 * len(self.live) + _SLACK_LINES:
            try:
                self._rewrite()
            except OSError as error:
                logger.error("cannot rewrite the children record %s: %s", self.path, error)

    def _rewrite(self):
        """The live entries alone, replacing the file at once (a crash mid-way leaves the old one whole)."""
        fresh = self.path + ".new"
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._exits.clear()     # the live entries alone say it all
        os.write(fd, b"".join(b"+ %d %d %d\n" % (pid, earliest, latest)
                              for pid, (earliest, latest) in self.live.items()))
        os.replace(fresh, self.path)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self._lines = len(self.live)

    def close(self):
        """The daemon exits: the file goes when nothing is left running, and the lock is released."""
        if self._fd is not None:
            if self.live and self._exits:
                self._write(self._take_exits())
            os.close(self._fd)
            self._fd = None
            if not self.live:
                os.unlink(self.path)
        if self._lock_fd is not None:
            os.close(self._lock_fd)     # the lock file stays: removing it would race a daemon taking it
            self._lock_fd = None
