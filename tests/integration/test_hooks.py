"""Hooks: every hook in True, False and raising
variants ends the watcher in the state Circus gives and publishes hook_success
or hook_failure; hooks get Circus's arguments; a raising or exiting hook crashes
nothing; a hook blocking the hub for more than a second is reported by name."""
import logging
import os
import re
import signal

import gevent
import psutil
import pytest

from gcircus.supervision.hooks import call_extended_stats
from gcircus.process import UNEXISTING
from gcircus.watcher import Watcher
from tests.fixtures import hooks as hook_functions
from tests.support.wait import wait_until

HOOKS = "tests.fixtures.hooks."
START_HOOKS = ("before_start", "after_start", "before_spawn", "after_spawn")
STOP_HOOKS = ("before_stop", "after_stop", "before_signal", "after_signal", "before_reap",
              "after_reap")


@pytest.fixture(autouse=True)
def clear_calls():
    hook_functions.CALLS.clear()


def hooked(hook, target, **options):
    options.setdefault("numprocesses", 2)
    options.setdefault("graceful_timeout", 0.5)
    return Watcher("hooked", "sleep 120", hooks={hook: target}, **options)


def alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def hook_events(events):
    return [(topic.rsplit(".", 1)[1], message["name"]) for topic, message in events.events
            if topic.startswith("watcher.hooked.hook_")]


def assert_announced(events, hook, variant):
    outcome = "hook_failure" if variant == "boom" else "hook_success"
    assert (outcome, hook) in hook_events(events)
    if variant == "boom":
        failure = [m for t, m in events.events if t == "watcher.hooked.hook_failure"][0]
        assert failure["error"] == "boom from %s" % hook


@pytest.mark.parametrize("variant, state", [("yes", "active"), ("no", "stopped"), ("boom", "stopped")])
@pytest.mark.parametrize("hook", START_HOOKS)
def test_start_side_hooks(run_arbiter, events, hook, variant, state):
    watcher = hooked(hook, HOOKS + variant)
    arbiter = run_arbiter([watcher])
    assert watcher.status() == state
    assert_announced(events, hook, variant)
    if state == "active":
        assert len(watcher.processes) == 2 and events.count("watcher.hooked.start") == 1
        return
    assert not watcher.processes and events.count("watcher.hooked.start") == 0
    assert arbiter.numwatchers() == 1
    if hook in ("before_start", "before_spawn"):
        assert events.count("watcher.hooked.spawn") == 0
    if hook == "after_spawn":
        # the refused process is killed and dropped, never announced
        assert events.count("watcher.hooked.spawn") == 0
        pid = dict(hook_functions.CALLS)["after_spawn"]["pid"]
        wait_until(lambda: not alive(pid), what="the refused process %d to die" % pid)


@pytest.mark.parametrize("hook", START_HOOKS)
def test_a_start_side_hook_that_may_fail(run_arbiter, events, hook):
    # hooks.NAME = dotted.name, true: its failure is ignored
    watcher = hooked(hook, HOOKS + "boom, true")
    run_arbiter([watcher])
    assert watcher.status() == "active" and len(watcher.processes) == 2
    assert_announced(events, hook, "boom")


@pytest.mark.parametrize("variant", ["yes", "no", "boom"])
@pytest.mark.parametrize("hook", STOP_HOOKS)
def test_stop_side_hooks_never_prevent_the_stop(run_arbiter, events, hook, variant):
    watcher = hooked(hook, HOOKS + variant)
    run_arbiter([watcher])
    pids = set(watcher.processes)
    assert watcher.status() == "active"
    watcher.stop()
    assert watcher.status() == "stopped" and not watcher.processes
    assert_announced(events, hook, variant)
    reaped = {m["process_pid"]: m["exit_code"] for t, m in events.events if t == "watcher.hooked.reap"}
    assert set(reaped) == pids
    # before_signal saying no keeps the stop signal from being sent: SIGKILL ends them
    # after graceful_timeout. A raising before_signal is in the ignore-failure set.
    expected = -signal.SIGKILL if (hook, variant) == ("before_signal", "no") else -signal.SIGTERM
    assert set(reaped.values()) == {expected}


def test_hooks_get_circus_arguments(run_arbiter):
    hooks = {name: HOOKS + "yes" for name in START_HOOKS + STOP_HOOKS}
    watcher = Watcher("hooked", "sleep 120", hooks=hooks)
    arbiter = run_arbiter([watcher])
    pid = next(iter(watcher.processes))
    watcher.stop()
    calls = hook_functions.CALLS
    assert [name for name, _ in calls] == [
        "before_start", "before_spawn", "after_spawn", "after_start", "before_stop",
        "before_signal", "after_signal", "before_reap", "after_reap", "after_stop"]
    for _name, kwargs in calls:
        assert kwargs["watcher"] is watcher and kwargs["arbiter"] is arbiter
    given = {name: {k: v for k, v in kwargs.items() if k not in ("watcher", "arbiter", "hook_name")}
             for name, kwargs in calls}
    assert given["after_spawn"] == {"pid": pid}
    assert given["before_signal"] == given["after_signal"] == {"pid": pid, "signum": signal.SIGTERM}
    assert set(given["before_reap"]) == {"process_pid", "time"}
    assert given["before_reap"]["process_pid"] == pid
    after_reap = given["after_reap"]
    assert (after_reap["process_pid"], after_reap["exit_code"], after_reap["process_status"]) == (
        pid, -signal.SIGTERM, None)
    for name in ("before_start", "after_start", "before_spawn", "before_stop", "after_stop"):
        assert given[name] == {}


def test_after_reap_of_a_process_that_died_on_its_own(run_arbiter, events):
    watcher = Watcher("hooked", "sleep 120", hooks={"after_reap": HOOKS + "yes"}, min_uptime=0)
    run_arbiter([watcher])
    pid = next(iter(watcher.processes))
    os.kill(pid, signal.SIGKILL)
    events.wait_count("watcher.hooked.hook_success", 1)
    after_reap = dict(hook_functions.CALLS)["after_reap"]
    assert (after_reap["exit_code"], after_reap["process_status"]) == (-signal.SIGKILL, UNEXISTING)


def test_signal_command_goes_through_the_signal_hooks(run_arbiter):
    watcher = hooked("before_signal", HOOKS + "no", numprocesses=1)
    run_arbiter([watcher])
    pid = next(iter(watcher.processes))
    watcher.send_signal(pid, signal.SIGTERM)        # vetoed: the process lives on
    assert dict(hook_functions.CALLS)["before_signal"]["signum"] == signal.SIGTERM
    os.kill(pid, 0)
    assert watcher.status() == "active"


@pytest.mark.parametrize("target", [HOOKS + "yes", "tests.fixtures.hooks:yes", hook_functions.yes,
                                    (hook_functions.yes, False)])
def test_hooks_by_dotted_name_module_colon_name_or_callable(run_arbiter, events, target):
    run_arbiter([hooked("before_start", target)])
    assert ("hook_success", "before_start") in hook_events(events)
    assert hook_functions.CALLS[0][0] == "before_start"


def test_a_missing_hook_is_an_import_error_at_construction():
    with pytest.raises(ImportError, match="tests.fixtures.nowhere"):
        Watcher("hooked", "sleep 1", hooks={"before_start": "tests.fixtures.nowhere.yes"})
    with pytest.raises(ImportError, match="nope"):
        Watcher("hooked", "sleep 1", hooks={"before_start": HOOKS + "nope"})
    with pytest.raises(ValueError, match="unknown hook"):
        Watcher("hooked", "sleep 1", hooks={"before_lunch": HOOKS + "yes"})


def test_a_hook_calling_sys_exit_crashes_nothing(run_arbiter, events):
    watcher = hooked("before_start", HOOKS + "bye")
    other = Watcher("other", "sleep 120")
    arbiter = run_arbiter([watcher, other])
    assert watcher.status() == "stopped" and other.status() == "active"
    failure = [m for t, m in events.events if t == "watcher.hooked.hook_failure"]
    assert failure and failure[0]["name"] == "before_start"
    assert arbiter.started.is_set()
    assert watcher.start() == {"started": [], "kept": []}   # still refused, still no crash


@pytest.mark.stalls_hub
def test_a_hook_blocking_the_hub_is_reported_by_name(run_arbiter, caplog):
    watcher = hooked("before_start", HOOKS + "slow", numprocesses=1)
    with caplog.at_level(logging.INFO, logger="gcircus"):
        run_arbiter([watcher])
    assert watcher.status() == "active"
    reports = [r for r in caplog.records if "hub stalled" in r.getMessage()]
    assert len(reports) == 1 and reports[0].levelno == logging.WARNING     # once: by the hub guard alone
    assert re.match(r"hub stalled for \d+ ms by hook before_start of watcher hooked ",
                    reports[0].getMessage()), reports[0].getMessage()


def test_a_slow_hook_that_yields_is_not_reported_as_blocking(run_arbiter, caplog):
    def patient(**kwargs):
        gevent.sleep(1.1)       # a cooperative wait: the hub keeps running meanwhile
        return True

    with caplog.at_level(logging.INFO, logger="gcircus"):
        run_arbiter([hooked("before_start", patient, numprocesses=1)])
    assert "hub stalled" not in caplog.text
    assert "hook before_start of watcher hooked took 1.1" in caplog.text


def test_stats_extended_runs_the_hook_through_the_command(served_arbiter, call):
    watcher = Watcher("hooked", "sleep 120", hooks={"extended_stats": HOOKS + "extended"})
    served_arbiter([watcher])
    (pid,) = watcher.processes
    named = call("stats", name="hooked", extended=True)
    assert named["info"][str(pid)]["extended"] == {"pid": pid, "watcher": "hooked"}
    one = call("stats", name="hooked", process=pid, extended=True)
    assert one["info"]["extended"] == {"pid": pid, "watcher": "hooked"}
    assert "extended" not in call("stats", name="hooked")["info"][str(pid)]


def test_extended_stats_is_called_positionally_and_unwrapped(run_arbiter, events):
    watcher = Watcher("hooked", "sleep 120", hooks={"extended_stats": HOOKS + "extended"})
    arbiter = run_arbiter([watcher])
    pid = next(iter(watcher.processes))
    stats = {"pid": pid}
    assert call_extended_stats(watcher, pid, stats) is stats
    assert stats["extended"] == {"pid": pid, "watcher": "hooked"}
    assert hook_functions.CALLS == [("extended_stats", {"watcher": watcher, "arbiter": arbiter,
                                                        "pid": pid})]
    assert hook_events(events) == []        # no hook events for extended_stats
    # not wrapped: its exception reaches the caller (the stats command fails)
    watcher.hooks.set("extended_stats", HOOKS + "extended_boom")
    with pytest.raises(RuntimeError, match="extended stats failed"):
        call_extended_stats(watcher, pid, {})
    # no hook configured: the stats are returned untouched
    plain = Watcher("plain", "sleep 1")
    assert call_extended_stats(plain, 1, {"a": 1}) == {"a": 1}


@pytest.mark.parametrize("reap_hooks", [False, True])
def test_respawn_keeps_the_order_hooks_and_events_are_told(run_arbiter, events, reap_hooks):
    names = ("before_spawn", "after_spawn") + (("before_reap", "after_reap") if reap_hooks else ())
    watcher = Watcher("hooked", "sleep 120", min_uptime=0, hooks={name: HOOKS + "yes" for name in names})
    run_arbiter([watcher])
    pid = next(iter(watcher.processes))
    hook_functions.CALLS.clear()
    events.events.clear()
    os.kill(pid, signal.SIGKILL)
    events.wait_count("watcher.hooked.spawn", 1)
    # before_spawn precedes the spawn; reap hooks, when set, run before it as they always did
    expected = (["before_reap", "after_reap"] if reap_hooks else []) + ["before_spawn", "after_spawn"]
    assert [name for name, _ in hook_functions.CALLS] == expected
    told = [topic.rsplit(".", 1)[1] for topic, _ in events.events if not topic.startswith("watcher.hooked.hook_")]
    assert told == ["reap", "spawn"]
