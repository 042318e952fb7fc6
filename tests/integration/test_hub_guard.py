"""The hub guard: a turn of the hub longer than the threshold is counted and logged once,
naming what held the hub (a blocking plugin, a blocking hook) with its stack."""
import logging
import time

import pytest

from gcircus.plugin import CircusPlugin
from gcircus.watcher import Watcher
from tests.support.wait import wait_until

HERE = "tests.integration.test_hub_guard"


class BlockingPlugin(CircusPlugin):
    """A plugin written the wrong way: it blocks the hub for 0.5 s on every event."""

    def handle_recv(self, data):
        time.sleep(0.5)


def blocking_hook(watcher, arbiter, hook_name, **kw):
    time.sleep(0.3)
    return True


def stall_records(caplog):
    return [r.getMessage() for r in caplog.records if "hub stalled" in r.getMessage()]


@pytest.mark.stalls_hub
def test_blocking_plugin_is_named_and_counted(served_arbiter, call, caplog):
    caplog.set_level(logging.WARNING, logger="gcircus")
    arbiter = served_arbiter([Watcher("web", "sleep 120")],
                             plugins=[{"name": "sleepy", "use": HERE + ".BlockingPlugin"}],
                             hub_stall_threshold=0.1)
    assert arbiter.hub_stalls() == 0
    call("incr", name="web")                   # spawn events reach the plugin: it blocks
    wait_until(lambda: arbiter.hub_stalls() >= 1, 15, "a stall counted")
    wait_until(lambda: stall_records(caplog), 5, "the stall logged")
    message = stall_records(caplog)[0]
    assert "by plugin sleepy" in message and "time.sleep(0.5)" in message, message
    reply = call("dstats")
    assert reply["hub"]["stalls"] >= 1 and reply["hub"]["last_stall"]["culprit"].startswith("plugin sleepy")
    assert reply["hub"]["longest_stall"] >= 0.4


@pytest.mark.stalls_hub
def test_blocking_hook_is_named(served_arbiter, call, caplog):
    caplog.set_level(logging.WARNING, logger="gcircus")
    arbiter = served_arbiter([Watcher("web", "sleep 120", hooks={"after_spawn": HERE + ".blocking_hook"},
                                      autostart=False)], hub_stall_threshold=0.1)
    call("start", name="web")
    wait_until(lambda: stall_records(caplog), 15, "the stall logged")
    assert "hook after_spawn of watcher web" in stall_records(caplog)[0]
    assert arbiter.hub_stalls() >= 1


def test_threshold_zero_turns_the_guard_off(served_arbiter, call):
    arbiter = served_arbiter([Watcher("web", "sleep 120", hooks={"after_spawn": HERE + ".blocking_hook"},
                                      autostart=False)], hub_stall_threshold=0)
    call("start", name="web", waiting=True)
    assert arbiter.hub_stalls() == 0 and call("dstats")["hub"]["stalls"] == 0
