"""graceful_timeout is measured from the moment the stop signal was sent, and a process that
exited within it is never SIGKILLed — even when the hub was too busy to hear of the exit in
time (issue 13: under load the daemon logged false "did not stop within 2.0s, sending
SIGKILL" for processes that had only been reaped late)."""
import logging
import os
import select
import time

import gevent
import pytest

from gcircus.watcher import Watcher
from tests.conftest import child_cmd

GRACE = 0.5


def hold_the_hub_until_exited_and_past(pid, seconds):
    """Block the hub (no greenlet runs, no child watcher fires) until the child pid has exited,
    then for `seconds` more: a hub this busy hears of the exit only after graceful_timeout has
    run out. A pidfd becomes readable at the exit and collects nothing: the child stays a zombie
    for the hub's child watcher."""
    handle = os.pidfd_open(pid)
    try:
        exited, _, _ = select.select([handle], [], [], 30)     # the plain, blocking select
    finally:
        os.close(handle)
    assert exited, "the child did not exit on SIGTERM"
    time.sleep(seconds)         # the injected fault: the hub held past graceful_timeout


@pytest.mark.stalls_hub
def test_exit_heard_late_by_a_busy_hub_is_not_taken_for_a_refusal(run_arbiter, events, lines, caplog):
    caplog.set_level(logging.WARNING, logger="gcircus")
    watcher = Watcher("prompt", child_cmd("ready_then_sleep"), graceful_timeout=GRACE,
                      stdout_stream={"stream": lines})
    run_arbiter([watcher])
    lines.wait_for("ready")
    pid = next(iter(watcher.processes))
    stopper = gevent.spawn(watcher.stop)
    lines.wait_for("TERM")          # the signal is sent: the killer waits up to GRACE for the exit
    # the child exits at once (it was told to), but the hub hears of it only after GRACE
    hold_the_hub_until_exited_and_past(pid, GRACE)
    stopper.join(30)
    assert stopper.successful() and stopper.value == [pid]
    assert "did not stop within" not in caplog.text
    assert events.count("watcher.prompt.kill") == 1             # the stop signal, no SIGKILL
    reap = [m for t, m in events.events if t == "watcher.prompt.reap"]
    assert [m["exit_code"] for m in reap] == [0]                # it exited by itself, on TERM


CLEANUP = 0.2       # each process of the tree takes this long to stop gracefully
TREE_GRACE = 3      # generous: the parent's and the orphan's cleanups, one after the other, take 0.4 s
DRAIN = TREE_GRACE + 0.5


def draining_hook(watcher, arbiter, hook_name, pid, signum, **kw):
    """A before_signal hook that takes its time (it takes the process out of a load balancer
    and lets it drain), cooperatively: longer than graceful_timeout."""
    gevent.sleep(DRAIN)
    return True


def test_orphans_get_graceful_timeout_from_the_signal_not_from_a_slow_hook(run_arbiter, lines, caplog):
    caplog.set_level(logging.WARNING, logger="gcircus")
    # a careless parent: it exits on TERM and leaves its child for us to stop
    watcher = Watcher("drained", child_cmd("process_tree", 1, "--cleanup-takes", CLEANUP), graceful_timeout=TREE_GRACE,
                      hooks={"before_signal": __name__ + ".draining_hook"}, stdout_stream={"stream": lines})
    run_arbiter([watcher])
    lines.wait_for("ready", 2)
    parent = next(iter(watcher.processes))
    watcher.stop()
    orphan, = set(lines.pids("ready")) - {parent}
    # the orphan got TERM once its parent had gone, with what was left of graceful_timeout counted
    # from the signal (not from before the hook): it finished its cleanup, nothing needed SIGKILL
    assert sorted(lines.pids("TERM")) == sorted([parent, orphan])
    assert sorted(lines.pids("bye")) == sorted([parent, orphan])
    assert "did not stop within" not in caplog.text
