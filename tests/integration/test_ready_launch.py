"""A respawn forks a launch prepared after the previous spawn (and, when nothing else is going on, right in the
hub's callback for the exit). These pin down that the shortcut never starts a stale command: options changed
in place, a new environment, a change of the daemon's directory and a program gone since the launch was made
are all seen by the very next replacement, and the reap event still precedes the spawn event."""
import os
import shutil
import signal

from gcircus.commands.watcher_options import set_option
from gcircus.watcher import Watcher
from tests.support.wait import wait_until


def _replace(watcher, events):
    """SIGKILL the watcher's one process; returns its replacement's pid once that runs its own program."""
    (victim,) = list(watcher.processes)
    spawns = events.count("watcher.%s.spawn" % watcher.name)
    os.kill(victim, signal.SIGKILL)
    events.wait_count("watcher.%s.spawn" % watcher.name, spawns + 1)
    (pid,) = list(watcher.processes)
    assert pid != victim
    wait_until(lambda: _comm(pid) == "sleep", what="the replacement to exec sleep")
    return pid


def _comm(pid):
    with open("/proc/%d/comm" % pid) as handle:
        return handle.read().strip()


def _started_watcher(run_arbiter, events, **options):
    watcher = Watcher("ready", "sleep", args="120", min_uptime=0, **options)
    run_arbiter([watcher])
    _replace(watcher, events)       # the first replacement prepares the launch the next ones use
    return watcher


def test_a_replacement_sees_rlimits_changed_in_place(run_arbiter, events):
    watcher = _started_watcher(run_arbiter, events, rlimits={"nofile": 200})
    watcher.rlimits["nofile"] = 100          # as `set rlimit_nofile` does: the same dict, changed
    pid = _replace(watcher, events)
    with open("/proc/%d/limits" % pid) as handle:
        limits = [line.split() for line in handle if line.startswith("Max open files")]
    assert limits[0][3:5] == ["100", "100"]


def test_a_replacement_gets_a_new_environment(run_arbiter, events):
    watcher = _started_watcher(run_arbiter, events, env={"GC_MARK": "one"})
    set_option(watcher, "env", {"GC_MARK": "two"})
    pid = _replace(watcher, events)
    with open("/proc/%d/environ" % pid, "rb") as handle:
        assert b"GC_MARK=two" in handle.read().split(b"\0")


def test_a_replacement_follows_the_daemons_directory(run_arbiter, events, tmp_path):
    watcher = _started_watcher(run_arbiter, events)
    before = os.getcwd()
    os.chdir(str(tmp_path))
    try:
        pid = _replace(watcher, events)
        assert os.readlink("/proc/%d/cwd" % pid) == str(tmp_path)
    finally:
        os.chdir(before)


def test_a_program_gone_since_the_launch_was_made_is_a_spawn_failure(run_arbiter, events, tmp_path):
    """The prepared launch exec's a path that no longer exists: a counted spawn failure, retried after the
    backoff, and a replacement again once the program is back."""
    program = tmp_path / "sleep"
    shutil.copy(shutil.which("sleep"), program)
    watcher = Watcher("ready", str(program), args="120", min_uptime=0, max_retry=-1)
    run_arbiter([watcher])
    _replace(watcher, events)
    os.rename(program, tmp_path / "away")
    (victim,) = list(watcher.processes)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: watcher.spawn_failures >= 1, what="the spawn failure")
    assert not watcher.processes and watcher.is_active()
    os.rename(tmp_path / "away", program)
    wait_until(lambda: len(watcher.processes) == 1, what="a replacement once the program is back")


def test_the_reap_event_precedes_the_spawn_event(run_arbiter, events):
    watcher = _started_watcher(run_arbiter, events)
    (victim,) = list(watcher.processes)
    first = len(events.topics())
    replacement = _replace(watcher, events)
    after = [(topic, message.get("process_pid")) for topic, message in events.events[first:]
             if topic in ("watcher.ready.reap", "watcher.ready.spawn")]
    assert after == [("watcher.ready.reap", victim), ("watcher.ready.spawn", replacement)]
