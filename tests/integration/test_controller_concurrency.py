"""No global lock: a slow command on one watcher never delays another watcher's
commands or read-only commands, and commands on one watcher wait their turn
instead of failing."""
import os
import signal

import gevent
import pytest

from gcircus.client import CircusClient
from gcircus.states import WatcherState
from gcircus.watcher import Watcher
from tests.conftest import child_cmd
from tests.support.wait import wait_until



@pytest.fixture
def clients(endpoints):
    """clients(n) -> n separate CircusClients (separate DEALER sockets, as separate users)."""
    made = []

    def make(n):
        made.extend(CircusClient(endpoint=endpoints.control, timeout=15) for _ in range(n))
        return made[-n:]
    yield make
    for client in made:
        client.stop()


def test_slow_stop_delays_nothing_else(served_arbiter, call, lines):
    slow = Watcher("slow", child_cmd("ready_then_sleep", "--ignore-term"), graceful_timeout=30,
                   stdout_stream={"stream": lines})
    fast = Watcher("fast", "sleep 120")
    served_arbiter([slow, fast])
    lines.wait_for("ready")
    stubborn = next(iter(slow.processes))
    assert call("stop", name="slow")["status"] == "ok"
    lines.wait_for("TERM")                       # the stop is under way and will take 30 s
    assert call("status", name="slow")["status"] == "stopping"
    for command, props in [("list", {}), ("status", {}), ("list", {"name": "slow"}),
                           ("status", {"name": "fast"}), ("incr", {"name": "fast"}),
                           ("numprocesses", {}), ("stats", {"name": "slow"}), ("options", {"name": "slow"}),
                           ("decr", {"name": "fast", "waiting": True}), ("numwatchers", {})]:
        reply = call(command, **props)
        assert reply["status"] != "error", reply
        # answered while the 30 s stop is still under way: it waited for nothing
        # (how fast: benchmarks/bench_hub_latency.py)
        assert slow.state is WatcherState.STOPPING, (command, slow.state)
    assert call("list", name="slow")["pids"] == [stubborn]
    os.kill(stubborn, signal.SIGKILL)             # end the 30 s wait now
    wait_until(lambda: slow.is_stopped(), what="the slow stop to end")


def test_concurrent_incr_on_one_watcher_both_count(served_arbiter, clients):
    watcher = Watcher("web", "sleep 120")
    served_arbiter([watcher])
    first, second = clients(2)
    jobs = [gevent.spawn(c.send_message, "incr", name="web", nb=1, waiting=True) for c in (first, second)]
    gevent.joinall(jobs, timeout=15, raise_error=True)
    replies = sorted(job.value["numprocesses"] for job in jobs)
    assert replies == [2, 3]
    assert watcher.numprocesses == 3 and len(watcher.processes) == 3


def test_commands_on_a_busy_watcher_wait_their_turn(served_arbiter, clients, lines):
    watcher = Watcher("web", child_cmd("ready_then_sleep", "--ignore-term"), numprocesses=2,
                      graceful_timeout=0.5, stdout_stream={"stream": lines})
    served_arbiter([watcher])
    lines.wait_for("ready", 2)
    decr_client, incr_a, incr_b, start_client = clients(4)

    def run(client, command, **props):
        return client.send_message(command, **props)

    decr = gevent.spawn(run, decr_client, "decr", name="web", waiting=True)   # holds the watcher ~0.5 s
    lines.wait_for("TERM")
    incrs = [gevent.spawn(run, c, "incr", name="web", waiting=True) for c in (incr_a, incr_b)]
    gevent.joinall([decr] + incrs, timeout=15, raise_error=True)
    # The incrs waited for the decr (their replies were built after its reply), and neither failed.
    assert all(job.value["time"] >= decr.value["time"] for job in incrs)
    assert decr.value["numprocesses"] == 1
    assert sorted(job.value["numprocesses"] for job in incrs) == [2, 3]
    assert len(watcher.processes) == 3

    stop = gevent.spawn(run, decr_client, "stop", name="web", waiting=True)
    lines.wait_for("TERM", 2)
    start = gevent.spawn(run, start_client, "start", name="web", waiting=True)
    gevent.joinall([stop, start], timeout=15, raise_error=True)
    assert start.value["status"] == "ok" and start.value["time"] >= stop.value["time"]
    assert len(start.value["info"]["started"]) == 3
    assert watcher.is_active() and len(watcher.processes) == 3


def test_changes_are_refused_while_the_arbiter_stops(served_arbiter, call, lines):
    # graceful_timeout is long and the stop is ended by a SIGKILL from here: on a loaded machine a
    # 1 s timeout could run out (and the arbiter stop) between two of these calls
    slow = Watcher("slow", child_cmd("ready_then_sleep", "--ignore-term"), graceful_timeout=30,
                   stdout_stream={"stream": lines})
    arbiter = served_arbiter([slow, Watcher("web", "sleep 120")])
    lines.wait_for("ready")
    stubborn = next(iter(slow.processes))
    stopper = gevent.spawn(arbiter.stop)
    lines.wait_for("TERM")
    refused = call("incr", name="web")
    assert refused["errno"] == 5 and refused["reason"] == "arbiter is stopping"
    assert call("status", name="slow")["status"] == "stopping"      # reading still works
    os.kill(stubborn, signal.SIGKILL)
    stopper.join(10)
    assert stopper.successful()


def test_request_waiting_past_max_request_wait_is_refused_not_run(served_arbiter, call, lines):
    slow = Watcher("slow", child_cmd("ready_then_sleep", "--ignore-term"), graceful_timeout=30,
                   stdout_stream={"stream": lines})
    served_arbiter([slow], max_request_wait=0.5)
    lines.wait_for("ready")
    stubborn = next(iter(slow.processes))
    assert call("stop", name="slow")["status"] == "ok"     # holds the watcher for 30 s
    lines.wait_for("TERM")
    reply = call("incr", name="slow", nb=3)
    assert reply["errno"] == 5 and "stayed busy" in reply["reason"] and "not executed" in reply["reason"]
    assert slow.numprocesses == 1                      # dropped, never applied
    os.kill(stubborn, signal.SIGKILL)
    wait_until(lambda: call("status", name="slow")["status"] == "stopped", 10, "the stop to end")
    assert call("incr", name="slow")["numprocesses"] == 2    # a fresh request runs as usual



@pytest.mark.parametrize("how", ["quit", "sigterm"])
def test_requests_queued_before_a_stop_are_refused_not_run(served_arbiter, clients, lines, how):
    slow = Watcher("slow", child_cmd("ready_then_sleep", "--ignore-term"), graceful_timeout=30,
                   stdout_stream={"stream": lines})
    # with sigterm, the arbiter handles this (the test's) process's signals, as gcircusd does
    arbiter = served_arbiter([slow, Watcher("web", "sleep 120")], handle_signals=(how == "sigterm"))
    lines.wait_for("ready")
    stubborn = next(iter(slow.processes))
    stopper, queued, quitter = clients(3)
    stop = gevent.spawn(stopper.send_message, "stop", name="slow", waiting=True)
    lines.wait_for("TERM")                          # the stop holds watcher slow for up to 30 s
    incr = gevent.spawn(queued.send_message, "incr", name="slow", nb=2)
    # the incr waits its turn behind the stop (the controller holds both requests)
    wait_until(lambda: len(arbiter.controller._pending) == 2, 10, "the incr queued behind the stop")
    if how == "quit":
        assert quitter.send_message("quit")["status"] == "ok"   # answered while the incr still waits
    else:
        os.kill(os.getpid(), signal.SIGTERM)
        wait_until(lambda: arbiter.stopping, 10, "the arbiter to take SIGTERM")
    os.kill(stubborn, signal.SIGKILL)                # the stop ends; the queued incr's turn comes
    gevent.joinall([stop, incr], timeout=15, raise_error=True)
    assert incr.value["status"] == "error" and incr.value["reason"] == "arbiter is stopping", incr.value
    assert slow.numprocesses == 1                    # never applied
    wait_until(lambda: not any(w.processes for w in arbiter.watchers), 30, "the arbiter to stop every process")


def test_a_request_arriving_as_the_controller_stops_is_answered(served_arbiter, clients, lines):
    """Stopping, the controller stops reading, gives the requests in flight STOP_GRACE to finish, then
    closes: a request that arrived in between was never read, and its client waited in vain."""
    slow = Watcher("slow", child_cmd("ready_then_sleep", "--ignore-term"), graceful_timeout=30,
                   stdout_stream={"stream": lines})
    arbiter = served_arbiter([slow])
    lines.wait_for("ready")
    stubborn = next(iter(slow.processes))
    holder, late = clients(2)
    try:
        held = gevent.spawn(holder.send_message, "stop", name="slow", waiting=True)     # in flight for 30 s
        lines.wait_for("TERM")
        controller = arbiter.controller
        closer = gevent.spawn(controller.stop)         # how every stop of the arbiter ends
        wait_until(lambda: controller._receiver is None, 10, "the controller to stop reading")
        reply = late.send_message("status")            # arrives while the held stop has its grace
        assert reply["status"] == "error" and reply["reason"] == "arbiter is stopping", reply
        closer.join(15)
        held.join(15)
        assert held.value["reason"] == "the arbiter stopped before this command finished"
    finally:
        os.kill(stubborn, signal.SIGKILL)
