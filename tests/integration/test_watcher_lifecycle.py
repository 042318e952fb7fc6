"""Watcher: event-driven respawn, crash-loop backoff, graceful stop, spawn failures, fds."""
import json
import logging
import os
import signal
import sys
import time

import gevent
import psutil

from gcircus.states import WatcherState
from gcircus.watcher import Watcher
from tests.conftest import child_cmd
from tests.fixtures import hooks as fixture_hooks
from tests.support.wait import wait_until


def test_killed_child_is_replaced_long_before_check_delay(run_arbiter, events):
    watcher = Watcher("sleepers", "sleep 120", numprocesses=3, min_uptime=0)
    run_arbiter([watcher], check_delay=60)
    assert len(watcher.processes) == 3
    victim = next(iter(watcher.processes))
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    events.wait_count("watcher.sleepers.spawn", 4, timeout=5)
    assert time.monotonic() - killed_at < 1.0  # check_delay is 60: only the exit event explains this
    reap = [m for t, m in events.events if t == "watcher.sleepers.reap"]
    assert reap == [{"process_pid": victim, "time": reap[0]["time"], "exit_code": -signal.SIGKILL}]
    assert len(watcher.processes) == 3 and victim not in watcher.processes
    assert sorted(p.wid for p in watcher.processes.values()) == [1, 2, 3]


def test_crash_loop_is_throttled_and_does_not_starve_others(run_arbiter, events):
    crasher = Watcher("crasher", "false", max_retry=-1, min_uptime=1, backoff_base=0.1)
    steady = Watcher("steady", "sleep 120", numprocesses=2, min_uptime=0)
    arbiter = run_arbiter([crasher, steady])
    window_start = time.monotonic()
    # Meanwhile the other watcher keeps respawning normally: kill its processes one by one.
    for round_number in range(5):
        os.kill(next(iter(steady.processes)), signal.SIGKILL)
        events.wait_count("watcher.steady.spawn", 3 + round_number, timeout=2)
    gevent.sleep(max(0.0, 3 - (time.monotonic() - window_start)))  # the 3 s observation window
    spawns = events.count("watcher.crasher.spawn")
    assert 3 <= spawns <= 20, spawns        # backed off: a hub-speed loop would make thousands
    # (the daemon's CPU meanwhile is a benchmark figure: benchmarks/bench_hub_latency.py)
    assert crasher.state is WatcherState.ACTIVE and arbiter.numwatchers() == 2
    assert len(steady.processes) == 2


def test_a_crash_loop_is_retried_for_ever_with_a_growing_backoff(run_arbiter, events, caplog):
    """Early deaths never stop the watcher, whatever max_retry says (it counts failed spawns):
    the watcher shows "backoff" with the next try, the log says how long it backs off."""
    caplog.set_level(logging.WARNING, logger="gcircus")
    crasher = Watcher("crasher", "false", max_retry=1, min_uptime=1, backoff_base=0.01, backoff_max=0.08)
    run_arbiter([crasher])
    events.wait_count("watcher.crasher.spawn", 8)       # far past max_retry + 1
    backoff = wait_until(crasher.backoff, what="a pending backoff")
    assert crasher.status() == "backoff" and crasher.state is WatcherState.ACTIVE
    assert backoff["crashes"] >= 2 and backoff["spawn_failures"] == 0
    assert 0 <= backoff["retry_in"] <= 0.08 and backoff["retry_at"] <= time.time() + 0.08
    warnings = [r.getMessage() for r in caplog.records if "crash" in r.getMessage()]
    assert warnings[0].endswith("crash 1 in a row, respawning at once")
    assert warnings[1].endswith("crash 2 in a row, backing off 0.01 s")
    assert any(w.endswith("crash 5 in a row, backing off 0.08 s") for w in warnings), warnings
    assert "stopping the watcher" not in caplog.text
    crasher.stop()
    assert crasher.status() == "stopped" and crasher.backoff() is None


def test_a_process_that_lived_min_uptime_ends_the_crash_loop(run_arbiter, events, tmp_path, caplog):
    """Even when we end it ourselves (reload): the next quick death is crash 1 again, replaced at once."""
    caplog.set_level(logging.WARNING, logger="gcircus")
    flag = tmp_path / "healthy"
    command = "sh -c 'test -e %s || exit 1; exec sleep 120'" % flag
    watcher = Watcher("flaky", command, min_uptime=0.3, backoff_base=0.2)
    run_arbiter([watcher])
    events.wait_count("watcher.flaky.reap", 2)       # two quick deaths; the third try waits 0.2 s
    assert watcher.status() == "backoff"
    flag.touch()
    events.wait_count("watcher.flaky.spawn", 3)
    assert watcher.status() == "active" and watcher.backoff() is None
    (healthy,) = watcher.processes.values()
    wait_until(lambda: healthy.age() >= 0.3, what="the process to live min_uptime")
    flag.unlink()
    reaps = events.count("watcher.flaky.reap")
    watcher.reload()                                  # the new process dies at once; the old is reaped
    events.wait_count("watcher.flaky.reap", reaps + 2)
    crashes = [r.getMessage().rsplit(": ", 1)[1] for r in caplog.records if "in a row" in r.getMessage()]
    assert crashes[:3] == ["crash 1 in a row, respawning at once", "crash 2 in a row, backing off 0.2 s",
                           "crash 1 in a row, respawning at once"], crashes


def test_max_retry_counts_failed_spawns(run_arbiter, events, caplog):
    """A binary that cannot be executed: max_retry failed spawns after the first stop the watcher."""
    caplog.set_level(logging.WARNING, logger="gcircus")
    broken = Watcher("broken", "/nonexistent/bin/tool", max_retry=3, backoff_base=0.01)
    run_arbiter([broken])
    events.wait_count("watcher.broken.stop", 1)
    assert caplog.text.count("error in 'broken'") == 4
    assert "giving up after 4 failed spawns in a row (max_retry 3)" in caplog.text


def test_max_retry_minus_one_retries_failed_spawns_for_ever(run_arbiter, events, caplog, tmp_path):
    """-1 never stops: the spawn succeeds once the binary appears."""
    caplog.set_level(logging.WARNING, logger="gcircus")
    program = tmp_path / "late"
    broken = Watcher("late", str(program), max_retry=-1, backoff_base=0.01, backoff_max=0.05)
    run_arbiter([broken])
    wait_until(lambda: caplog.text.count("error in 'late'") >= 10, what="10 failed spawns")
    assert broken.status() in ("active", "backoff") and broken.backoff()["spawn_failures"] >= 2
    program.write_text("#!/bin/sh\nexec sleep 120\n")
    program.chmod(0o755)
    events.wait_count("watcher.late.spawn", 1)
    wait_until(lambda: broken.status() == "active", what="the backoff to end")
    assert broken.backoff() is None and len(broken) == 1


def test_missing_binary_stops_watcher_and_arbiter_lives(run_arbiter, events, caplog):
    caplog.set_level(logging.WARNING, logger="gcircus")
    broken = Watcher("broken", "/nonexistent/bin/tool --serve", max_retry=2, backoff_base=0.01)
    healthy = Watcher("healthy", "sleep 120")
    arbiter = run_arbiter([broken, healthy])
    events.wait_count("watcher.broken.stop", 1, timeout=10)
    assert broken.state is WatcherState.STOPPED
    assert "error in 'broken'" in caplog.text and "/nonexistent/bin/tool" in caplog.text
    assert caplog.text.count("error in 'broken'") == 3
    assert healthy.state is WatcherState.ACTIVE and arbiter.numprocesses() == 1
    assert healthy.start()["kept"]  # the arbiter still serves commands


def test_term_ignoring_child_is_killed_after_graceful_timeout(run_arbiter, events, lines):
    watcher = Watcher("stubborn", child_cmd("ready_then_sleep", "--ignore-term"),
                      graceful_timeout=0.5, stdout_stream={"stream": lines})
    run_arbiter([watcher])
    lines.wait_for("ready")
    pid = next(iter(watcher.processes))
    started = time.monotonic()
    assert watcher.stop() == [pid]
    assert 0.4 < time.monotonic() - started < 5
    lines.wait_for("TERM")
    assert lines.pids("TERM") == [pid]
    reap = [m for t, m in events.events if t == "watcher.stubborn.reap"]
    assert reap[0]["exit_code"] == -signal.SIGKILL
    assert events.count("watcher.stubborn.kill") == 2  # stop signal, then SIGKILL escalation


def test_stop_sends_the_watchers_stop_signal(run_arbiter, events, lines):
    code = ("import os,signal,sys,time;"
            "signal.signal(signal.SIGINT, lambda *a: (os.write(1, b'INT\\n'), sys.exit(0)));"
            "os.write(1, b'ready\\n');"
            "[time.sleep(1) for _ in iter(int, 1)]")
    watcher = Watcher("polite", "%s -c \"%s\"" % (sys.executable, code), stop_signal=signal.SIGINT,
                      graceful_timeout=10, stdout_stream={"stream": lines})
    run_arbiter([watcher])
    lines.wait_for("ready")
    started = time.monotonic()
    watcher.stop()
    lines.wait_for("INT")
    assert time.monotonic() - started < 5       # it obeyed SIGINT; no SIGKILL after graceful_timeout
    reap = [m for t, m in events.events if t == "watcher.polite.reap"]
    assert reap[0]["exit_code"] == 0


def test_stop_children_reaches_grandchildren(run_arbiter, events, lines):
    cmd = child_cmd("ready_then_sleep", "--grandchild", "--ignore-term")
    watcher = Watcher("family", cmd, graceful_timeout=0.5, stop_children=True,
                      stdout_stream={"stream": lines})
    run_arbiter([watcher])
    lines.wait_for("ready", 2)
    pids = lines.pids("ready")
    watcher.stop()
    assert sorted(lines.pids("TERM")) == sorted(pids)  # both got the stop signal
    gone, alive = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)], 5)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def test_stop_children_kills_children_that_outlive_their_parent(run_arbiter, events, lines):
    """The parent obeys SIGTERM at once; its two children ignore it: each gets the stop signal once,
    then SIGKILL when graceful_timeout runs out, though their parent is long gone."""
    cmd = child_cmd("ready_then_sleep", "--grandchild", "--grandchild", "--grandchild-ignores-term")
    watcher = Watcher("family", cmd, graceful_timeout=0.5, stop_children=True,
                      stdout_stream={"stream": lines})
    run_arbiter([watcher])
    lines.wait_for("ready", 3)
    (parent,) = watcher.processes
    children = [psutil.Process(pid) for pid in lines.pids("ready") if pid != parent]
    started = time.monotonic()
    watcher.stop()
    gone, alive = psutil.wait_procs(children, 5)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert time.monotonic() - started >= 0.4                     # they had their graceful_timeout
    assert sorted(lines.pids("TERM")) == sorted([parent] + [c.pid for c in children])   # once each


def test_spawn_kill_cycles_leak_no_fds(run_arbiter, events):
    watcher = Watcher("cycler", "sleep 120", min_uptime=0,
                      stdout_stream={"class": "NullStream"}, stderr_stream={"class": "NullStream"})
    run_arbiter([watcher])
    me = psutil.Process()
    baseline = me.num_fds()
    for cycle in range(200):
        os.kill(next(iter(watcher.processes)), signal.SIGKILL)
        events.wait_count("watcher.cycler.spawn", cycle + 2, timeout=5)
    watcher.stop()
    watcher.start()
    assert me.num_fds() <= baseline


def test_safety_net_tick_respects_the_backoff(run_arbiter, events):
    """A fast check_delay tick must not turn a crash loop's backoff back into a tight loop."""
    crasher = Watcher("crasher", "false", max_retry=-1, min_uptime=1, backoff_base=0.4)
    run_arbiter([crasher], check_delay=0.05)
    events.wait_count("watcher.crasher.spawn", 3, timeout=5)
    first = events.count("watcher.crasher.spawn")
    gevent.sleep(0.3)  # observation window: ~6 ticks, shorter than the pending 0.4-0.8 s backoff
    assert events.count("watcher.crasher.spawn") <= first + 1


def test_missed_exit_is_collected_by_the_safety_net(run_arbiter, events):
    """If the hub never reported an exit, the check_delay sweep still reaps and replaces it."""
    watcher = Watcher("blind", "sleep 120", min_uptime=0)
    run_arbiter([watcher], check_delay=0.1)
    process = next(iter(watcher.processes.values()))
    process._exit_watch.stop()  # simulate the lost SIGCHLD: the child watcher stops listening
    os.kill(process.pid, signal.SIGKILL)
    events.wait_count("watcher.blind.spawn", 2, timeout=5)
    reap = [m for t, m in events.events if t == "watcher.blind.reap"]
    assert reap[0]["process_pid"] == process.pid  # its status was lost with the SIGCHLD


def test_the_safety_net_checks_a_slice_per_tick_and_reaches_every_process(run_arbiter, events):
    """A tick's sweep checks a bounded slice (its cost does not grow with the children); the next ticks go on."""
    watcher = Watcher("sliced", "sleep 120", numprocesses=4, min_uptime=0)
    run_arbiter([watcher], check_delay=60)
    victim = list(watcher.processes.values())[-1]
    victim._exit_watch.stop()       # the hub will not report its exit
    os.kill(victim.pid, signal.SIGKILL)
    wait_until(lambda: not os.path.exists("/proc/%d" % victim.pid), timeout=5)    # collected, status lost
    for _ in range(3):
        watcher.reap_processes(limit=1)
    assert victim.pid in watcher.processes          # the first three slices held the others
    watcher.reap_processes(limit=1)
    assert victim.pid not in watcher.processes
    events.wait_count("watcher.sliced.spawn", 5, timeout=5)
    assert len(watcher.processes) == 4


def test_reap_precedes_the_replacements_spawn_on_the_wire(served_arbiter, wire_events, events):
    watcher = Watcher("order", "sleep 120", numprocesses=2, min_uptime=0)
    arbiter = served_arbiter([watcher], check_delay=60)
    wire_events.sync(arbiter.publisher)
    wire_events.wait_for("watcher.probe.sync")      # one PUB socket keeps order: the start's events are in
    before = len(wire_events.received)
    for kill in range(1, 4):
        os.kill(next(iter(watcher.processes)), signal.SIGKILL)
        events.wait_count("watcher.order.spawn", 2 + kill)     # (the wire subscriber's waits hold the hub)
    arbiter.publisher.publish("watcher.order.marker", {})     # everything published before it is on the wire
    wire_events.wait_for("watcher.order.marker")
    after = [(t.decode().rsplit(".", 1)[1], json.loads(body)) for t, body in wire_events.received[before:]
             if t in (b"watcher.order.reap", b"watcher.order.spawn")]
    assert [kind for kind, _ in after] == ["reap", "spawn"] * 3
    assert [m["exit_code"] for kind, m in after if kind == "reap"] == [-signal.SIGKILL] * 3


def test_a_stop_of_many_gives_each_process_its_own_treatment(run_arbiter, events, lines, caplog):
    """One stop of processes that behave differently: the obedient ones exit on the stop signal, the stubborn
    one gets SIGKILL at graceful_timeout, the orphan a process leaves gets the stop signal once its parent has
    exited, then SIGKILL; every one of them is reaped (`kill` then `reap`) before the watcher's `stop`."""
    caplog.set_level(logging.WARNING, logger="gcircus")
    hooks = {name: "tests.fixtures.hooks.yes" for name in ("before_stop", "after_stop", "before_reap", "after_reap")}
    watcher = Watcher("mixed", child_cmd("by_wid", "$(circus.wid)"), numprocesses=5,
                      graceful_timeout=0.5, stdout_stream={"stream": lines}, hooks=hooks)
    run_arbiter([watcher])
    lines.wait_for("ready", 6)
    by_wid = {p.wid: p.pid for p in watcher.processes.values()}
    orphan, = set(lines.pids("ready")) - set(by_wid.values())
    fixture_hooks.CALLS.clear()
    assert sorted(watcher.stop()) == sorted(by_wid.values())
    assert not watcher.processes
    assert sorted(lines.pids("TERM")) == sorted(list(by_wid.values()) + [orphan])   # the stop signal, once each
    assert not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == psutil.STATUS_ZOMBIE
    topics = [(t.rsplit(".", 1)[1], m.get("process_pid")) for t, m in events.events if t.startswith("watcher.mixed.")]
    stop_at = topics.index(("stop", None))
    codes = {m["process_pid"]: m["exit_code"] for t, m in events.events if t == "watcher.mixed.reap"}
    assert codes == {pid: -signal.SIGKILL if wid == 1 else 0 for wid, pid in by_wid.items()}
    for pid in by_wid.values():
        kill, reap = topics.index(("kill", pid)), topics.index(("reap", pid))
        assert kill < reap < stop_at
    kills = [pid for kind, pid in topics if kind == "kill"]
    assert sorted(kills) == sorted(list(by_wid.values()) + [by_wid[1]])     # the stop signal; SIGKILL for wid 1
    assert caplog.text.count("did not stop within 0.5s") == 1
    assert "process %d did not stop within 0.5s" % by_wid[1] in caplog.text
    assert "descendants [%d] of process %d did not stop" % (orphan, by_wid[3]) in caplog.text
    hooks_seen = [(name, kwargs.get("process_pid")) for name, kwargs in fixture_hooks.CALLS]
    assert hooks_seen[0] == ("before_stop", None) and hooks_seen[-1] == ("after_stop", None)
    for pid in by_wid.values():
        assert hooks_seen.index(("before_reap", pid)) < hooks_seen.index(("after_reap", pid))
