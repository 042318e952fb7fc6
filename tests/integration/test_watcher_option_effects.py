"""Watcher options that change what a child gets or when it is replaced, seen from real children:
shell (the command goes to /bin/sh as written), close_child_stdout/stderr (the child writes to
/dev/null whatever stream is configured), respawn = false (nothing refills the dead, the
check_delay sweep included) and len(watcher)."""
import os
import signal
import sys

from gcircus.watcher import Watcher
from tests.support.wait import wait_until


def test_shell_gets_the_command_as_written(run_arbiter, lines):
    """Metacharacters work: `;` runs two commands, $((..)) is arithmetic, > redirects; the
    $(circus.*) variables are substituted first."""
    command = "echo first; echo wid=$(circus.wid) sum=$((40+2)); echo hidden > /dev/null"
    watcher = Watcher("shelled", command, shell=True, respawn=False, stdout_stream={"stream": lines})
    run_arbiter([watcher])
    wait_until(watcher.is_stopped, what="the shell command to end")
    lines.wait_for("wid=1")
    assert [line for _, line in lines.lines] == ["first", "wid=1 sum=42"]


def test_shell_appends_args_to_the_command(run_arbiter, lines):
    watcher = Watcher("shelled", "echo", args="'a  b' | tr a-z A-Z", shell=True, respawn=False,
                      stdout_stream={"stream": lines})
    run_arbiter([watcher])
    wait_until(watcher.is_stopped, what="the shell command to end")
    assert [line for _, line in lines.lines] == ["A  B"]


def test_close_child_stdout_wins_over_a_stream(run_arbiter, lines, tmp_path):
    """As Circus: close_child_stdout sends the child's stdout to /dev/null even with a stream."""
    stdout_file = tmp_path / "stdout.log"
    command = _child_reporting(1, 2)
    watcher = Watcher("quiet", command, respawn=False, close_child_stdout=True,
                      stdout_stream={"class": "FileStream", "filename": str(stdout_file)},
                      stderr_stream={"stream": lines})
    run_arbiter([watcher])
    lines.wait_for("done")
    assert lines.lines[0][1].endswith("-> /dev/null"), lines.lines
    wait_until(watcher.is_stopped, what="the child to end")
    assert not stdout_file.exists() or stdout_file.read_text() == ""


def test_close_child_stderr_wins_over_a_stream(run_arbiter, lines):
    command = _child_reporting(2, 1)
    watcher = Watcher("quiet", command, respawn=False, close_child_stderr=True,
                      stdout_stream={"stream": lines}, stderr_stream={"stream": lines})
    run_arbiter([watcher])
    lines.wait_for("done")
    assert [line for _, line in lines.lines if "written" in line] == []
    assert lines.lines[0][1].endswith("-> /dev/null"), lines.lines


def test_respawn_false_is_kept_by_the_safety_net_sweep(run_arbiter, events):
    """With numprocesses > 1 a dead process is not replaced, not even by the check_delay sweep."""
    watcher = Watcher("once", "sleep 120", numprocesses=2, respawn=False)
    arbiter = run_arbiter([watcher], check_delay=0.05)
    victim, survivor = list(watcher.processes)
    os.kill(victim, signal.SIGKILL)
    events.wait_count("watcher.once.reap", 1)
    ticks = _count_ticks(arbiter, 3)
    assert ticks == 3
    assert list(watcher.processes) == [survivor] and events.count("watcher.once.spawn") == 2
    assert watcher.is_active()


def test_respawn_false_still_spawns_what_incr_asks_for(run_arbiter, events):
    watcher = Watcher("once", "sleep 120", numprocesses=1, respawn=False)
    run_arbiter([watcher])
    assert watcher.incr() == 2
    assert len(watcher.processes) == 2


def test_len_of_a_watcher_is_its_process_count(run_arbiter):
    """Circus's Watcher.__len__: the number of processes."""
    watcher = Watcher("counted", "sleep 120", numprocesses=3)
    assert len(watcher) == 0
    run_arbiter([watcher])
    assert len(watcher) == 3
    watcher.decr(2, wait=True)
    assert len(watcher) == 1


def _child_reporting(closed_fd, open_fd):
    """A child that writes to closed_fd, then tells on open_fd where closed_fd leads, then 'done'."""
    code = ("import os; os.write({closed}, b'written\\n'); "
            "os.write({open}, b'fd {closed} -> ' + os.readlink('/proc/self/fd/{closed}').encode() + b'\\n'); "
            "os.write({open}, b'done\\n')").format(closed=closed_fd, open=open_fd)
    return '%s -c "%s"' % (sys.executable, code)


def _count_ticks(arbiter, count):
    """Wait for `count` more runs of the arbiter's check_delay sweep; returns how many ran."""
    seen = []
    original = arbiter.watchers[0].reap_and_manage_processes

    def counting(*args):
        seen.append(1)
        original(*args)
    arbiter.watchers[0].reap_and_manage_processes = counting
    try:
        wait_until(lambda: len(seen) >= count, what="%d sweeps" % count)
    finally:
        del arbiter.watchers[0].reap_and_manage_processes
    return len(seen)
