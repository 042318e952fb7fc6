"""Flapping against real crash loops: the watcher is stopped, started again after
retry_in, stopped for good after max_retry; stops the operator asks for are no
crashes."""
import os
import signal
import time

from gcircus.watcher import Watcher
from tests.conftest import child_cmd
from tests.support.wait import wait_until
from tests.integration.plugin_support import plugin_instance


def test_a_crash_loop_is_stopped_then_retried_after_retry_in(served_arbiter, events):
    crasher = Watcher("crasher", "/bin/false", max_retry=-1)
    arbiter = served_arbiter([crasher], plugins=[{
        "use": "circus.plugins.flapping.Flapping", "name": "plugin:flapping",
        "attempts": "2", "window": "1", "retry_in": "0.5", "max_retry": "1"}])
    events.wait_count("watcher.crasher.stop", 1)
    stopped_at = time.monotonic()
    events.wait_count("watcher.crasher.start", 2)                  # the arbiter's start, then the retry
    assert time.monotonic() - stopped_at >= 0.45
    events.wait_count("watcher.crasher.stop", 2)                   # flapping again: max_retry reached
    plugin = plugin_instance(arbiter, "plugin:flapping")
    wait_until(lambda: plugin.tries.get("crasher") == 0, what="the retries to be reset")
    assert not plugin.timers and crasher.is_stopped()              # no further start is planned
    assert events.count("watcher.crasher.start") == 2


def test_per_watcher_options_override_the_plugin_ones(served_arbiter, events):
    crasher = Watcher("crasher", "/bin/false", max_retry=-1, **{"flapping.max_retry": "0"})
    arbiter = served_arbiter([crasher], plugins=[{
        "use": "gcircus.plugins.flapping.Flapping", "name": "plugin:flapping", "retry_in": "0.2"}])
    events.wait_count("watcher.crasher.stop", 1)
    plugin = plugin_instance(arbiter, "plugin:flapping")
    assert plugin.configs["crasher"]["max_retry"] == 0 and not plugin.timers


def test_stops_the_operator_asked_for_are_not_crashes(served_arbiter, call, lines, events):
    healthy = Watcher("healthy", child_cmd("ready_then_sleep"), numprocesses=3, stdout_stream={"stream": lines})
    arbiter = served_arbiter([healthy], plugins=[{
        "use": "circus.plugins.flapping.Flapping", "name": "plugin:flapping", "attempts": "2", "window": "5"}])
    lines.wait_for("ready", 3)
    assert call("restart", name="healthy", waiting=True)["status"] == "ok"     # 3 reaps in a few ms
    assert call("decr", name="healthy", nb=1, waiting=True)["numprocesses"] == 2
    lines.wait_for("ready", 5)                     # the decr may retire one before it says ready
    victim = sorted(healthy.processes)[0]
    os.kill(victim, signal.SIGKILL)                                # a real crash, the only one
    plugin = plugin_instance(arbiter, "plugin:flapping")
    wait_until(lambda: len(plugin.timelines.get("healthy", [])) == 1, what="the crash to be counted")
    assert healthy.is_active() and events.count("watcher.healthy.stop") == 1   # the operator's restart
