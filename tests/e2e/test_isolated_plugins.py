"""`isolate = true`: a plugin that blocks (time.sleep per event) runs in its own gcircus-plugin
process under gcircusd, as the watcher `plugin:NAME`. The daemon keeps answering while the
plugin sleeps; the plugin gets events and calls the daemon; a killed plugin process is
respawned; `quit` leaves none behind.

The same plugin without isolate holds the daemon's hub, which the hub guard names:
tests/integration/test_hub_guard.py::test_blocking_plugin_is_named_and_counted.
"""
import json
import os
import signal
import time

import psutil

from tests.e2e.daemon_support import call, wait_for_file
from tests.support.wait import wait_in_thread

PLUGIN = "tests.fixtures.blocking_plugin.Sleeper"
# How often the test publishes an event until the plugin has one: its subscription becomes live
# some time after it connects (zmq's slow joiner), and an event published before is not for it.
TRIGGER_EVERY = 0.2


def config(workdir, extra=""):
    return ("[watcher:web]\ncmd = sleep 120\n"
            "[plugin:slow]\nuse = %s\nisolate = true\nrecord = %s/record\nsleeping = %s/sleeping\n%s"
            % (PLUGIN, workdir, workdir, extra))


def records(workdir):
    try:
        with open(os.path.join(workdir, "record")) as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except FileNotFoundError:
        return []


def plugin_pid(daemon):
    pids = call(daemon.endpoint, "list", name="plugin:slow")["pids"]
    return pids[0] if len(pids) == 1 else None


def publish_an_event(daemon):
    """`set` publishes watcher.web.updated (the value is web's own: nothing else changes)."""
    assert call(daemon.endpoint, "set", name="web", options={"warmup_delay": 0})["status"] == "ok"


def wait_for_events(daemon, workdir):
    """Publish `updated` events on web until the plugin has recorded one; its records then."""
    last = [0.0]

    def got_one():
        if any("event" in entry for entry in records(workdir)):
            return records(workdir)
        if time.monotonic() - last[0] >= TRIGGER_EVERY:
            last[0] = time.monotonic()
            publish_an_event(daemon)
        return None

    return wait_in_thread(got_one, 30, "the isolated plugin to record an event",
                          detail=lambda: "records: %s" % records(workdir))


def test_a_blocking_isolated_plugin_leaves_the_daemon_answering(gcircusd, workdir):
    daemon = gcircusd(config(workdir, "incr = web\n"))
    assert call(daemon.endpoint, "list")["watchers"] == ["plugin:slow", "web"]
    init = wait_for_file(os.path.join(workdir, "record"), lambda text: '"init"' in text)
    assert json.loads(init.splitlines()[0])["init"]["statuses"] == {"web": "active", "plugin:slow": "active"}
    wait_for_events(daemon, workdir)
    # the plugin's call from inside handle_recv reached the daemon and got its reply
    incr = wait_in_thread(lambda: [e["incr"] for e in records(workdir) if "incr" in e], 30, "the plugin's incr")
    assert incr[0]["status"] == "ok" and incr[0]["numprocesses"] == 2, incr
    # status and list answer while the plugin is inside a sleep: the marker names sleep n, and no
    # "woke n" is recorded once the replies are in (else the sleep ended first: try the next one)
    proven = []

    def answered_during_a_sleep():
        try:
            with open(os.path.join(workdir, "sleeping")) as handle:
                pid, sleep = (int(word) for word in handle.read().split())
        except (FileNotFoundError, ValueError):
            return None
        if {"woke": sleep} in records(workdir):
            publish_an_event(daemon)
            return None
        status = call(daemon.endpoint, "status")
        listed = call(daemon.endpoint, "list", name="plugin:slow")
        if {"woke": sleep} in records(workdir):
            return None
        proven.append((status, listed, pid))
        return True

    wait_in_thread(answered_during_a_sleep, 60, "a reply while the plugin sleeps",
                   detail=lambda: "records: %s" % records(workdir))
    status, listed, pid = proven[0]
    assert status["statuses"] == {"web": "active", "plugin:slow": "active"}
    assert listed["pids"] == [pid]
    # the plugin's process is plugin:slow's, and the daemon is not its sleeper
    assert pid != daemon.proc.pid and psutil.Process(pid).ppid() == daemon.proc.pid


def test_a_killed_plugin_process_is_respawned_and_quit_leaves_none(gcircusd, workdir):
    daemon = gcircusd(config(workdir))
    first = wait_in_thread(lambda: plugin_pid(daemon), 20, "plugin:slow's process")
    wait_for_file(os.path.join(workdir, "record"), lambda text: text.count('"init"') == 1)
    os.kill(first, signal.SIGKILL)
    second = wait_in_thread(lambda: plugin_pid(daemon) not in (None, first) and plugin_pid(daemon), 30,
                            "plugin:slow respawned")
    # the new process is a working plugin: it connected and called the daemon again
    wait_for_file(os.path.join(workdir, "record"), lambda text: text.count('"init"') == 2)
    assert [e["pid"] for e in records(workdir) if "init" in e] == [first, second]
    wait_for_events(daemon, workdir)        # and it is busy sleeping when the daemon quits
    assert call(daemon.endpoint, "quit")["status"] == "ok"
    assert daemon.proc.wait(60) == 0, daemon.drain()
    assert not psutil.pid_exists(second) or psutil.Process(second).status() == psutil.STATUS_ZOMBIE


def test_plugin_commands_on_an_isolated_plugin(gcircusd, gcircusctl, workdir):
    daemon = gcircusd(config(workdir))
    pid = wait_in_thread(lambda: plugin_pid(daemon), 20, "plugin:slow's process")
    incr = gcircusctl("incr", "plugin:slow", endpoint=daemon.endpoint)
    assert incr.code != 0 and "plugin:slow is a plugin running as one process (isolate = true)" in incr.err + incr.out
    assert gcircusctl("stop", "plugin:slow", "--waiting", endpoint=daemon.endpoint).code == 0
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert call(daemon.endpoint, "status", name="plugin:slow")["status"] == "stopped"
    assert gcircusctl("start", "plugin:slow", endpoint=daemon.endpoint).code == 0
    restarted = wait_in_thread(lambda: plugin_pid(daemon), 20, "plugin:slow started again")
    assert restarted != pid
    assert gcircusctl("restart", "plugin:slow", endpoint=daemon.endpoint).code == 0
    assert wait_in_thread(lambda: plugin_pid(daemon) not in (None, restarted), 20, "plugin:slow restarted")


def test_a_stopped_isolated_plugin_drops_its_backlog_and_runs_handle_stop(gcircusd, workdir):
    """SIGTERM ends the plugin after the event it handles: a backlog of sleeps (10 s here) would
    outlast the 5 s it gets before SIGKILL, and handle_stop() would never run."""
    daemon = gcircusd(config(workdir))
    seen = sum("event" in entry for entry in wait_for_events(daemon, workdir))
    for _ in range(5):
        publish_an_event(daemon)
    # once it handles one of these five, the others wait in its queue (they are read together)
    wait_in_thread(lambda: sum("event" in entry for entry in records(workdir)) > seen, 30,
                   "the plugin at the backlog", detail=lambda: records(workdir))
    assert call(daemon.endpoint, "stop", name="plugin:slow", waiting=True, timeout=30)["status"] == "ok"
    entries = records(workdir)
    assert "stopped" in entries[-1], entries
    assert sum("event" in entry for entry in entries) < seen + 5, entries
