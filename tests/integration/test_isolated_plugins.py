"""`isolate = true` through the library API: the plugin runs in its own process (the
gcircus-plugin runner) as the watcher `plugin:NAME`, also against CurveZMQ endpoints (the
daemon admits a key pair made for it); configurations it cannot work with are refused
with the plugin named. The daemon-level cases (gcircusd, SIGKILL, quit) are in
tests/e2e/test_isolated_plugins.py."""
import json
import logging
import time

import gevent
import psutil
import pytest
from gevent.event import Event

from gcircus.arbiter import Arbiter
from gcircus.client import CircusClient
from gcircus.endpoints import curve
from gcircus.plugin import CircusPlugin
from gcircus.plugin_host import session as session_module
from gcircus.plugin_host.isolated import IsolationError
from gcircus.watcher import Watcher
from tests.support.wait import wait_until

PLUGIN = "tests.fixtures.blocking_plugin.Sleeper"
TRIGGER_EVERY = 0.2     # see tests/e2e/test_isolated_plugins.py: the plugin's subscription goes live late


def sleeper(tmp_path, **extra):
    return dict({"use": PLUGIN, "isolate": True, "record": str(tmp_path / "record"),
                 "sleeping": str(tmp_path / "sleeping")}, **extra)


def records(tmp_path):
    path = tmp_path / "record"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for_an_event(tmp_path, call):
    """Publish `updated` events on web until the plugin has recorded one."""
    last = [0.0]

    def got_one():
        if any("event" in entry for entry in records(tmp_path)):
            return True
        if time.monotonic() - last[0] >= TRIGGER_EVERY:
            last[0] = time.monotonic()
            assert call("set", name="web", options={"warmup_delay": 0})["status"] == "ok"
        return False

    wait_until(got_one, 30, "the isolated plugin to record an event", detail=lambda: records(tmp_path))


def test_an_api_plugin_with_isolate_runs_as_a_process(served_arbiter, call, events, tmp_path):
    arbiter = served_arbiter([Watcher("web", "sleep 120")], plugins=[sleeper(tmp_path)])
    assert call("list")["watchers"] == ["plugin:sleeper", "web"]    # named after its class, as hosted ones
    wait_until(lambda: call("list", name="plugin:sleeper")["pids"], 20, "the plugin's process")
    wait_until(lambda: [e for e in records(tmp_path) if "init" in e], 20, "the plugin's init")
    (init,) = [e for e in records(tmp_path) if "init" in e]
    assert init["init"]["status"] == "ok" and init["pid"] == call("list", name="plugin:sleeper")["pids"][0]
    wait_for_an_event(tmp_path, call)
    assert arbiter.get_watcher("plugin:sleeper").is_plugin()
    # signal and kill reach its process; commands that resize name it as a plugin
    assert call("incr", name="plugin:sleeper")["reason"].startswith("plugin:sleeper is a plugin running as one")
    assert "isolate = true" in call("set", name="plugin:sleeper", options={"numprocesses": 3})["reason"]
    assert call("signal", name="plugin:sleeper", signum="SIGCONT")["status"] == "ok"
    # a reload is a restart (stop, then start): an overlapping reload would run two instances at once
    (old,) = call("list", name="plugin:sleeper")["pids"]
    stops = events.count("watcher.plugin:sleeper.stop")
    reply = call("reload", name="plugin:sleeper", waiting=True)
    assert reply["status"] == "ok", reply
    assert events.count("watcher.plugin:sleeper.stop") == stops + 1
    assert events.count("watcher.plugin:sleeper.reload") == 0
    assert call("list", name="plugin:sleeper")["pids"] != [old]


@pytest.fixture
def keys(tmp_path):
    server_public, server_secret = curve.create_keypair(str(tmp_path / "server"), "server")
    test_public, test_secret = curve.create_keypair(str(tmp_path / "admitted"), "test")
    return dict(server_public=server_public, server_secret=server_secret, admitted=str(tmp_path / "admitted"),
                test=test_secret)


def test_an_isolated_plugin_works_under_curve(served_arbiter, endpoints, keys, tmp_path):
    """Only keys in curve_allowed_keys are admitted: the plugin's own key pair is added to them."""
    served_arbiter([Watcher("web", "sleep 120")], plugins=[sleeper(tmp_path, name="plugin:slow")],
                   curve_secret_key=keys["server_secret"], curve_allowed_keys=keys["admitted"])
    with CircusClient(endpoint=endpoints.control, timeout=15, curve_server_key=keys["server_public"],
                      curve_client_key=keys["test"]) as client:
        def call(command, **props):
            return client.call({"command": command, "properties": props})
        wait_until(lambda: [e for e in records(tmp_path) if "init" in e], 30, "the plugin's init call",
                   detail=lambda: records(tmp_path))
        assert [e for e in records(tmp_path) if "init" in e][0]["init"]["status"] == "ok"
        wait_for_an_event(tmp_path, call)       # its subscription to the events got through too
        # the keys (and the options) go to its process only, not into what `options` shows of it
        shown = json.dumps(call("options", name="plugin:slow"))
        assert "GCIRCUS_PLUGIN" not in shown and "record" not in shown.replace("records", "")


def test_isolate_needs_the_endpoints_and_a_boolean(tmp_path):
    web = Watcher("web", "sleep 120")
    arbiter = Arbiter([web], None, None, handle_signals=False, plugins=[sleeper(tmp_path, name="plugin:p")])
    with pytest.raises(IsolationError, match="plugin:p: isolate = true needs the daemon's endpoint"):
        arbiter.start()
    assert not web.processes
    arbiter = Arbiter([], None, None, handle_signals=False,
                      plugins=[sleeper(tmp_path, name="plugin:q", isolate="maybe")])
    with pytest.raises(IsolationError, match="plugin:q: isolate = 'maybe' is not a boolean"):
        arbiter.start()


def test_reloadconfig_turns_isolation_on_and_off(from_file, endpoints, tmp_path):
    head = "[circus]\nendpoint = %s\npubsub_endpoint = %s\n\n[watcher:web]\ncmd = sleep 120\n\n" % (
        endpoints.control, endpoints.pubsub)
    section = "[plugin:slow]\nuse = tests.fixtures.audit_plugin.Audit\n"    # hosted, it must not block
    arbiter, path = from_file(head + section + "isolate = true\n")
    wait_until(lambda: arbiter.get_watcher("plugin:slow").processes, 20, "the isolated plugin's process")
    (pid,) = arbiter.get_watcher("plugin:slow").processes
    path.write_text(head + section)                  # hosted on the hub from now on
    assert arbiter.reload_from_config()["plugins"]["changed"] == ["plugin:slow"]
    watcher = arbiter.get_watcher("plugin:slow")
    assert not watcher.runs_processes() and not arbiter.get_watcher("plugin:slow").processes
    wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
               20, "the isolated process gone")
    path.write_text(head + section + "isolate = yes\n")
    assert arbiter.reload_from_config()["plugins"]["changed"] == ["plugin:slow"]
    wait_until(lambda: arbiter.get_watcher("plugin:slow").processes, 20, "isolated again")


class Stuck(CircusPlugin):
    """Holds its first event until `release` is set (a gevent wait: the hub goes on meanwhile)."""

    def __init__(self, *args, **config):
        super().__init__(*args, **config)
        self.release = Event()
        self.received = []
        self.changed = Event()

    def handle_recv(self, data):
        self.received.append(data[0])
        self.changed.set()
        self.release.wait()


def test_a_standalone_plugin_that_does_not_keep_up_keeps_a_bounded_queue(served_arbiter, endpoints, monkeypatch,
                                                                         caplog):
    """The runner of an isolated plugin reads events as they come; past the bound the oldest are
    dropped, as for a hosted plugin, instead of the queue growing as long as the plugin is slow."""
    monkeypatch.setattr(session_module, "MAX_QUEUED_EVENTS", 20)
    caplog.set_level(logging.WARNING, logger="gcircus")
    arbiter = served_arbiter([Watcher("web", "sleep 120")])
    plugin = Stuck(endpoints.control, endpoints.pubsub, 1.0, None, name="stuck")
    running = gevent.spawn(plugin.start)
    try:
        def overflowing():
            arbiter.publisher.publish("watcher.web.probe", {"time": time.time()})
            return caplog.text.count("plugin stuck does not keep up with events: 1 dropped")
        wait_until(overflowing, 20, "the first event dropped", detail=lambda: caplog.text[-2000:])
        for _ in range(100):
            arbiter.publisher.publish("watcher.web.probe", {"time": time.time()})
        wait_until(lambda: "plugin stuck does not keep up with events: 100 dropped" in caplog.text, 20,
                   "100 events dropped")
        plugin.release.set()
        arbiter.publisher.publish("watcher.web.last", {"time": time.time()})
        wait_until(lambda: b"watcher.web.last" in plugin.received, 10, "the plugin going on",
                   changed=plugin.changed)
        assert len(plugin.received) <= 1 + 20 + 1      # the first, the queue's 20, the last one
    finally:
        plugin.release.set()
        plugin.stop()
        running.join(10)
