"""Watcher commands: start/stop/restart/reload results, wids, counts, options that shape spawning."""
import json
import os
import signal
import sys

import gevent
import pytest

from gcircus.states import WatcherState
from gcircus.watcher import Watcher
from tests.conftest import child_cmd


def _wids(watcher):
    return sorted(p.wid for p in watcher.processes.values())


def test_start_stop_restart_return_circus_dicts(run_arbiter, events):
    watcher = Watcher("w", "sleep 120", numprocesses=2, autostart=False)
    run_arbiter([watcher])
    assert watcher.state is WatcherState.STOPPED and not watcher.processes
    result = watcher.start()
    assert len(result["started"]) == 2 and result["kept"] == []
    assert watcher.start() == {"started": [], "kept": sorted(result["started"], key=result["started"].index)}
    restarted = watcher.restart()
    assert sorted(restarted["stopped"]) == sorted(result["started"])
    assert len(restarted["started"]) == 2 and not set(restarted["started"]) & set(result["started"])
    assert sorted(watcher.stop()) == sorted(restarted["started"])
    assert watcher.stop() == []
    assert events.topics("watcher.w.") == (
        ["watcher.w.spawn"] * 2 + ["watcher.w.start"] + ["watcher.w.kill"] * 2 + ["watcher.w.reap"] * 2
        + ["watcher.w.stop"] + ["watcher.w.spawn"] * 2 + ["watcher.w.start"] + ["watcher.w.kill"] * 2
        + ["watcher.w.reap"] * 2 + ["watcher.w.stop"])


def test_graceful_reload_starts_new_generation_before_stopping_old(run_arbiter, events):
    watcher = Watcher("web", "sleep 120", numprocesses=4)
    run_arbiter([watcher])
    assert _wids(watcher) == [1, 2, 3, 4]
    old = set(watcher.processes)
    events.events.clear()
    result = watcher.reload()
    assert set(result["stopped"]) == old and len(result["started"]) == 4
    assert _wids(watcher) == [5, 6, 7, 8]  # Circus's wid policy: the old ones were still there
    topics = events.topics("watcher.web.")
    assert topics.index("watcher.web.kill") > max(i for i, t in enumerate(topics) if t.endswith(".spawn"))
    assert topics[-1] == "watcher.web.reload"
    watcher.reload()
    assert _wids(watcher) == [1, 2, 3, 4]


def test_sequential_reload_replaces_one_at_a_time(run_arbiter, events):
    watcher = Watcher("seq", "sleep 120", numprocesses=3)
    run_arbiter([watcher])
    old = set(watcher.processes)
    events.events.clear()
    result = watcher.reload(sequential=True)
    assert set(result["stopped"]) == old and len(set(watcher.processes) - old) == 3
    kinds = [t.rsplit(".", 1)[1] for t in events.topics("watcher.seq.")]
    assert kinds == ["kill", "reap", "spawn"] * 3 + ["reload"]


def test_send_hup_reload_keeps_processes(run_arbiter, lines):
    code = ("import signal,sys,time,os;"
            # os.write: the HUP may arrive while print('ready') still holds stdout's buffer (a print
            # in the handler would then raise 'reentrant call' and kill the child)
            "signal.signal(signal.SIGHUP, lambda *a: os.write(1, b'HUP %d\\n' % os.getpid()));"
            "print('ready', os.getpid(), flush=True);"
            "[time.sleep(1) for _ in iter(int, 1)]")
    watcher = Watcher("hup", "%s -c \"%s\"" % (sys.executable, code), send_hup=True,
                      stdout_stream={"stream": lines})
    run_arbiter([watcher])
    lines.wait_for("ready")
    pids = set(watcher.processes)
    assert watcher.reload() == {"stopped": [], "started": [], "kept": list(pids)}
    lines.wait_for("HUP")
    assert set(watcher.processes) == pids


def test_non_graceful_reload_is_a_restart(run_arbiter, events):
    watcher = Watcher("ng", "sleep 120")
    run_arbiter([watcher])
    old = set(watcher.processes)
    result = watcher.reload(graceful=False)
    assert set(result["stopped"]) == old and not set(watcher.processes) & old


def test_incr_decr_and_clamping(run_arbiter):
    watcher = Watcher("count", "sleep 120", numprocesses=1)
    run_arbiter([watcher])
    assert watcher.incr(2) == 3 and len(watcher.get_active_processes()) == 3
    oldest = min(watcher.processes.values(), key=lambda p: p.started)
    assert watcher.decr(wait=True) == 2
    assert oldest.pid not in watcher.processes  # the oldest surplus process goes first
    assert watcher.set_numprocesses(-5, wait=True) == 0 and not watcher.processes


def test_concurrent_commands_on_one_watcher_wait_for_each_other(run_arbiter):
    watcher = Watcher("busy", "sleep 120", numprocesses=1)
    run_arbiter([watcher])
    jobs = [gevent.spawn(watcher.incr) for _ in range(2)] + [gevent.spawn(watcher.reload)]
    gevent.joinall(jobs, timeout=20, raise_error=True)
    assert watcher.numprocesses == 3
    assert len(watcher.get_active_processes()) == 3


def test_singleton_refuses_more_than_one(run_arbiter):
    with pytest.raises(ValueError):
        Watcher("one", "sleep 1", numprocesses=2, singleton=True)
    watcher = Watcher("one", "sleep 120", singleton=True)
    run_arbiter([watcher])
    with pytest.raises(ValueError):
        watcher.incr()
    assert len(watcher.processes) == 1


def test_respawn_false_stops_when_last_process_exits(run_arbiter, events):
    watcher = Watcher("once", "sleep 120", numprocesses=2, respawn=False)
    run_arbiter([watcher])
    for pid in list(watcher.processes):
        os.kill(pid, signal.SIGTERM)
    events.wait_count("watcher.once.stop", 1)
    assert events.count("watcher.once.spawn") == 2 and watcher.state is WatcherState.STOPPED
    assert len(watcher.start()["started"]) == 2


def test_max_age_replaces_processes(run_arbiter, events):
    watcher = Watcher("aging", "sleep 120", numprocesses=2, max_age=0.3, max_age_variance=0)
    run_arbiter([watcher])
    first = set(watcher.processes)
    events.wait_count("watcher.aging.reap", 2, timeout=10)
    events.wait_count("watcher.aging.spawn", 4, timeout=10)
    assert not first & set(watcher.processes)
    assert len(watcher.processes) >= 2


def test_priority_orders_start(run_arbiter, events):
    low = Watcher("low", "sleep 120", priority=1)
    high = Watcher("high", "sleep 120", priority=10)
    run_arbiter([low, high])
    starts = [t for t in events.topics() if t.endswith(".start")]
    assert starts == ["watcher.high.start", "watcher.low.start"]


def test_warmup_delay_spaces_spawns(run_arbiter, events):
    watcher = Watcher("warm", "sleep 120", numprocesses=3, warmup_delay=0.2)
    run_arbiter([watcher])
    times = sorted(p.started for p in watcher.processes.values())
    assert times[1] - times[0] >= 0.19 and times[2] - times[1] >= 0.19


def test_copy_env_copy_path_and_virtualenv(run_arbiter, events, tmp_path, monkeypatch):
    venv = tmp_path / "venv"
    site = venv / "lib" / ("python%d.%d" % sys.version_info[:2]) / "site-packages"
    site.mkdir(parents=True)
    (site / "extra.pth").write_text("extra_dir\n")
    monkeypatch.setenv("GCIRCUS_TEST_MARK", "yes")
    out = tmp_path / "out.json"
    watcher = Watcher("envy", child_cmd("print_env", out), copy_env=True, copy_path=True,
                      virtualenv=str(venv), env={"OWN": "1"}, respawn=False)
    run_arbiter([watcher])
    events.wait_count("watcher.envy.stop", 1)  # respawn=False: stops once the child wrote and exited
    env = json.loads(out.read_text())["env"]
    assert env["GCIRCUS_TEST_MARK"] == "yes" and env["OWN"] == "1"
    assert env["PATH"].split(os.pathsep)[0] == str(venv / "bin")
    paths = env["PYTHONPATH"].split(os.pathsep)
    # Circus's order: the PYTHONPATH already there (copy_path: the daemon's sys.path), then the virtualenv's
    assert paths == [p for p in sys.path if p] + [str(site / "extra_dir"), str(site)]


def test_virtualenv_must_exist():
    with pytest.raises(ValueError, match="not a directory"):
        Watcher("bad", "true", virtualenv="/nonexistent/venv", copy_env=True)
