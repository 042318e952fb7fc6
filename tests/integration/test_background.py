"""background=True in an unpatched program: the arbiter runs in a real thread with its own
hub. Exits are handled there at once (not at the next check_delay tick), and every public
Arbiter/Watcher method called from the test's thread runs on the arbiter's hub."""
import logging
import os
import signal

import pytest

import gcircus
from gcircus.client import CircusClient
from gcircus.exc import ConflictError
from tests.conftest import child_cmd
from tests.integration.conftest import loopback_endpoints
from tests.support.wait import wait_in_thread

# No tick can be what replaces a child within a test's deadline.
NO_TICK = 3600


@pytest.fixture
def background():
    """background(watchers, **kw) -> a started ThreadedArbiter, stopped at teardown."""
    started = []

    def start(watchers, **kw):
        kw.setdefault("controller", None)
        kw.setdefault("pubsub_endpoint", None)
        kw.setdefault("check_delay", NO_TICK)
        arbiter = gcircus.get_arbiter(watchers, background=True, **kw)
        started.append(arbiter)
        arbiter.start()
        return arbiter

    yield start
    for arbiter in started:
        arbiter.stop()


def _replaced(watcher, victim, count):
    pids = watcher.get_processes_pids()
    return victim not in pids and len(pids) == count


def test_a_killed_child_is_replaced_by_its_exit_not_by_the_tick(background):
    arbiter = background([{"name": "bg", "cmd": "sleep 120", "numprocesses": 2, "min_uptime": 0}])
    watcher = arbiter.get_watcher("bg")
    for _ in range(3):
        victim = watcher.get_processes_pids()[0]
        os.kill(victim, signal.SIGKILL)
        wait_in_thread(lambda victim=victim: _replaced(watcher, victim, 2), 20, "replacement of %s" % victim)


def test_a_client_in_the_main_thread_talks_to_a_background_arbiter(background, capfd):
    endpoints = loopback_endpoints()
    arbiter = background([{"name": "bg", "cmd": "sleep 120", "min_uptime": 0}], controller=endpoints.control,
                         pubsub_endpoint=endpoints.pubsub)
    client = CircusClient(endpoint=endpoints.control, timeout=15)
    try:
        for _ in range(3):
            victim = arbiter.get_watcher("bg").get_processes_pids()[0]
            os.kill(victim, signal.SIGKILL)     # the exit is handled while this thread uses zmq
            assert client.send_message("status", name="bg")["status"] == "active"
            pids = wait_in_thread(lambda victim=victim: [pid for pid in client.send_message("list", name="bg")["pids"]
                                                         if pid != victim], 20, "a replacement in `list`")
            assert len(pids) == 1
    finally:
        client.stop()
    assert "Waiter.switch" not in capfd.readouterr().err


def test_watcher_commands_from_the_main_thread_run_on_the_arbiter_hub(background, caplog):
    """incr/restart/decr called here run on the arbiter's hub: the processes they start are
    supervised there, so the stop that follows needs no SIGKILL."""
    caplog.set_level(logging.INFO, logger="gcircus")
    arbiter = background([{"name": "bg", "cmd": child_cmd("ready_then_sleep"), "graceful_timeout": 5,
                           "min_uptime": 0}])
    watcher = arbiter.get_watcher("bg")
    assert watcher.incr(2) == 3
    assert len(watcher.get_processes_pids()) == 3
    result = watcher.restart()
    assert len(result["stopped"]) == 3 and len(result["started"]) == 3
    assert watcher.decr() == 2
    wait_in_thread(lambda: len(watcher.get_processes_pids()) == 2, 20, "the decr to apply")
    victim = watcher.get_processes_pids()[0]
    os.kill(victim, signal.SIGKILL)      # a process started by a call from this thread is supervised too
    wait_in_thread(lambda: _replaced(watcher, victim, 2), 20, "replacement of %s" % victim)
    arbiter.stop()
    assert not watcher.get_processes_pids()
    assert "did not stop within" not in caplog.text and "Traceback" not in caplog.text


def test_arbiter_methods_from_the_main_thread_run_on_the_arbiter_hub(background):
    arbiter = background([])
    late = arbiter.add_watcher("late", "sleep 120", numprocesses=2)
    assert late.start()["started"] and arbiter.numprocesses() == 2
    assert [w.name for w in arbiter.iter_watchers()] == ["late"]
    arbiter.set_check_delay(NO_TICK)
    assert arbiter.rm_watcher("late") is late
    assert arbiter.numwatchers() == 0 and not late.get_processes_pids()


def test_exceptions_come_back_to_the_calling_thread(background):
    arbiter = background([{"name": "single", "cmd": "sleep 120", "singleton": True}])
    with pytest.raises(KeyError):
        arbiter.get_watcher("nope")
    with pytest.raises(ValueError, match="singleton"):
        arbiter.get_watcher("single").incr(2)


def test_a_stopped_background_arbiter_spawns_nothing_and_stops_again_cleanly(background):
    arbiter = background([{"name": "bg", "cmd": "sleep 120", "numprocesses": 2}])
    watcher = arbiter.get_watcher("bg")
    arbiter.stop()
    with pytest.raises(ConflictError, match="arbiter is stopped"):
        watcher.restart()
    with pytest.raises(ConflictError, match="arbiter is stopped"):
        watcher.start()
    assert watcher.incr() == 3 and not watcher.get_processes_pids()
    arbiter.stop()
    assert not watcher.get_processes_pids() and watcher.is_stopped()


def test_a_background_arbiter_starts_again_after_a_stop(background):
    arbiter = background([{"name": "bg", "cmd": "sleep 120", "min_uptime": 0}])
    watcher = arbiter.get_watcher("bg")
    arbiter.stop()
    arbiter.start()
    victim = watcher.get_processes_pids()[0]
    os.kill(victim, signal.SIGKILL)
    wait_in_thread(lambda: _replaced(watcher, victim, 1), 20, "replacement of %s" % victim)
