"""Churn: many exits arriving at once are replaced in slices, the hub getting a turn
every few milliseconds, so commands keep being answered (no turn of the hub becomes
a stall) however many processes die together."""
import os
import signal
import time

from gcircus.watcher import Watcher
from tests.support.wait import wait_until

HERE = "tests.integration.test_churn"
COUNT = 250


def slow_reap(watcher, arbiter, hook_name, **kw):
    """Makes each exit's handling cost a few ms of hub time, as a loaded machine would:
    250 of them back to back held the hub for about a second."""
    time.sleep(0.003)
    return True


def test_mass_exit_is_replaced_without_stalling_the_hub(served_arbiter, call):
    watcher = Watcher("crowd", "sleep 120", numprocesses=COUNT, min_uptime=0,
                      hooks={"before_reap": HERE + ".slow_reap"})
    arbiter = served_arbiter([watcher], hub_stall_threshold=0.3)
    assert len(watcher.processes) == COUNT
    stalls = arbiter.hub_stalls()
    old = set(watcher.processes)
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not old & set(watcher.processes) and len(watcher.processes) == COUNT, 60,
               "every killed process replaced", detail=lambda: "%d processes" % len(watcher.processes))
    assert call("status", name="crowd")["status"] == "active"
    assert arbiter.hub_stalls() == stalls, arbiter.hub_guard.last_stall.as_dict()
