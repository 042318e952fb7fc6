"""The children record (gcircus.supervision.children_record) with real processes and files: what a restarted
daemon stops is exactly the recorded processes still running, never a process that reused a recorded pid."""
import os
import subprocess

import psutil

from gcircus.supervision.children_record import (ChildRecord, boot_clock, read_entries, start_time, start_window,
                                                  stop_leftovers)
from tests.support.wait import wait_in_thread


def sleeper():
    return subprocess.Popen(["sleep", "120"])


def exactly(pid):
    """The one-tick window of pid's start time, read from /proc."""
    started = start_time(pid)
    return started, started


def recorded_sleeper(record):
    """A sleeper added to record the way gcircusd adds its children: its fork bracketed by two clock reads."""
    before = boot_clock()
    child = sleeper()
    record.add(child.pid, before, boot_clock())
    return child


def test_the_window_recorded_around_a_fork_holds_the_kernels_start_time():
    """The record never reads /proc after a fork: two clock reads around it must bracket what /proc says."""
    children = []
    try:
        for _ in range(50):
            before = boot_clock()
            children.append(sleeper())
            after = boot_clock()
            earliest, latest = start_window(before, after)
            assert earliest <= start_time(children[-1].pid) <= latest, (before, after, earliest, latest)
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_only_a_recorded_process_with_its_recorded_start_time_is_stopped():
    recorded, reused = sleeper(), sleeper()
    try:
        started = start_time(reused.pid)
        entries = {recorded.pid: exactly(recorded.pid), reused.pid: (started - 3, started - 1)}
        assert stop_leftovers(entries) == [recorded.pid]
        recorded.wait(10)       # its status may be collected by the hub of an earlier test: the exit is what counts
        assert reused.poll() is None
    finally:
        reused.kill()
        reused.wait()


def test_the_descendants_of_a_leftover_are_stopped_with_it():
    tree = subprocess.Popen(["sh", "-c", "sleep 120 & wait"])
    try:
        def forked_sleep():             # the shell forks on its own schedule
            found = psutil.Process(tree.pid).children()
            return found[0] if found and found[0].name() == "sleep" else None
        grandchild = wait_in_thread(forked_sleep, 10, "the shell's sleep")
        assert stop_leftovers({tree.pid: exactly(tree.pid)}) == [tree.pid]
        tree.wait(10)
        grandchild.wait(10)
    finally:
        tree.kill()
        tree.wait()


def test_the_record_follows_spawns_and_exits_and_stays_short(tmp_path):
    path = str(tmp_path / "children")
    record = ChildRecord(path)
    assert record.claim()
    assert not ChildRecord(path).claim(), "a second claim while the first holds the record"
    alive = recorded_sleeper(record)
    window = record.live[alive.pid]
    try:
        for _ in range(3000):       # churn: exits of pids that are gone, each once spawned
            record.live[1] = (1, 2)
            record.remove(1)
        assert read_entries(path) == {alive.pid: window}
        with open(path, "rb") as handle:
            assert len(handle.read().splitlines()) < 1500      # rewritten with the live entries meanwhile
        with open(path, "ab") as handle:
            handle.write(b"+ 12")      # a line cut short by a crash
        assert read_entries(path) == {alive.pid: window}
        record.close()
        assert os.path.exists(path), "a process still runs: the record stays for the next daemon"
        taker = ChildRecord(path)
        assert taker.claim()            # the lock was released; the leftover is stopped
        alive.wait(10)
        taker.close()
        assert not os.path.exists(path)
    finally:
        alive.kill()
        alive.wait()


def test_a_failing_record_write_is_logged_once_per_streak(tmp_path, caplog):
    """A full disk (here /dev/full under the record's descriptor: the one way to get ENOSPC on demand) must not
    log an error for every spawn of a churning watcher; a working write again is said once too."""
    record = ChildRecord(str(tmp_path / "children"))
    assert record.claim()
    children = []
    try:
        working_fd, record._fd = record._fd, os.open("/dev/full", os.O_WRONLY)
        for _ in range(2):
            children.append(recorded_sleeper(record))
        os.close(record._fd)
        record._fd = working_fd
        children.append(recorded_sleeper(record))
        messages = [r.getMessage() for r in caplog.records if "children record" in r.getMessage()]
        assert len(messages) == 2, messages
        assert "cannot write" in messages[0] and "No space left" in messages[0]
        assert "written again" in messages[1]
        assert read_entries(record.path) == {children[2].pid: record.live[children[2].pid]}
    finally:
        for child in children:
            child.kill()
            child.wait()
        record.close()


def test_a_record_written_by_an_older_gcircusd_still_stops_its_leftovers(tmp_path):
    """Older daemons wrote `+ pid starttime` (read back from /proc): a daemon upgraded across a crash reads it."""
    path = str(tmp_path / "children")
    leftover = sleeper()
    try:
        with open(path, "wb") as handle:
            handle.write(b"+ %d %d\n" % (leftover.pid, start_time(leftover.pid)))
        assert read_entries(path) == {leftover.pid: exactly(leftover.pid)}
        record = ChildRecord(path)
        assert record.claim()
        leftover.wait(10)
        record.close()
    finally:
        leftover.kill()
        leftover.wait()


def test_an_exit_may_be_written_late_a_process_left_running_is_written_at_once(tmp_path):
    """Exits are written in batches (a stop of thousands writes no line per exit): a line left for a process that
    has exited is never acted on. A process that is no longer ours but runs on (`rm --nostop`) leaves the record
    at once: a crash of this daemon must not make the next one stop it."""
    path = str(tmp_path / "children")
    record = ChildRecord(path)
    assert record.claim()
    exiting, left, kept = recorded_sleeper(record), recorded_sleeper(record), recorded_sleeper(record)
    try:
        exiting.kill()
        exiting.wait()
        record.exited(exiting.pid)
        assert stop_leftovers({pid: window for pid, window in read_entries(path).items()
                               if pid == exiting.pid}) == []
        record.remove(left.pid)
        assert read_entries(path) == {kept.pid: record.live[kept.pid]}, "written with the removal"
        record.close()                   # kept still runs: the record stays, with it alone
        assert read_entries(path) == {kept.pid: record.live[kept.pid]}
        assert left.poll() is None
    finally:
        for child in (exiting, left, kept):
            child.kill()
            child.wait()
