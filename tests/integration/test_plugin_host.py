"""Plugins as greenlets of the arbiter: events in, calls and casts out
through the real controller, `plugin:NAME` in list/status, restart with backoff
on failure, clear startup errors, reloadconfig's apply, Circus-written plugins."""
import importlib.util
import shutil

import gevent
import pytest
from gevent.event import Event

from gcircus.arbiter import Arbiter
from gcircus.plugin import CircusPlugin
from gcircus.plugin_host.manager import PluginLoadError, PluginWatcher
from gcircus.watcher import Watcher
from tests.support.wait import wait_until

HERE = "tests.integration.test_plugin_host"
RECORDS = {}   # plugin name -> Record; the plugins below write here (they run in this process)


class Record:
    def __init__(self):
        self.instances = 0
        self.events = []
        self.replies = []
        self.stopped = 0
        self.changed = Event()

    def note(self, kind, value=None):
        getattr(self, kind).append(value) if isinstance(getattr(self, kind), list) else None
        self.changed.set()

    def wait(self, predicate, timeout=10, what="plugin activity"):
        wait_until(lambda: predicate(self), timeout, what, changed=self.changed)


def record(name):
    return RECORDS.setdefault(name, Record())


class Recorder(CircusPlugin):
    """Records events; calls `list` at init and on every spawn; casts what `cast_on_spawn` says."""

    def __init__(self, *args, **config):
        super().__init__(*args, **config)
        self.record = record(config["name"])
        self.record.instances += 1
        self.record.config = config

    def handle_init(self):
        self.record.note("replies", self.call("list"))

    def handle_recv(self, data):
        watcher, action, body = self.split_data(data)
        self.record.note("events", (watcher, action, self.load_message(body)))
        if action == "spawn" and self.config.get("cast_on_spawn"):
            self.cast(self.config["cast_on_spawn"], name=watcher)

    def handle_stop(self):
        self.record.stopped += 1
        self.record.changed.set()


class Crasher(Recorder):
    """Raises on every event (and so is restarted, with a growing backoff)."""

    def handle_recv(self, data):
        super().handle_recv(data)
        raise RuntimeError("boom in handle_recv")


class TickCrasher(Recorder):
    """A periodic task that raises after two ticks: the plugin is restarted."""

    def handle_init(self):
        self.ticks = 0
        self.periodic(0.05, self.tick)

    def tick(self):
        self.ticks += 1
        self.record.note("replies", self.call("numwatchers"))
        if self.ticks == 2:
            raise ValueError("tick failed")


class StopsItself(Recorder):
    """Stops itself at its first event."""

    def handle_recv(self, data):
        super().handle_recv(data)
        self.stop()


@pytest.fixture(autouse=True)
def fresh_records():
    RECORDS.clear()
    yield
    RECORDS.clear()


def test_plugin_gets_events_calls_controller_and_is_listed(served_arbiter, call, events):
    arbiter = served_arbiter([Watcher("web", "sleep 120")],
                             plugins=[{"use": HERE + ".Recorder", "name": "plugin:rec", "colour": "blue"}])
    rec = record("plugin:rec")
    rec.wait(lambda r: r.replies and any(a == "spawn" for _, a, _ in r.events), what="init call + spawn")
    assert rec.replies[0]["status"] == "ok" and rec.replies[0]["watchers"] == ["plugin:rec", "web"]
    assert rec.config == {"name": "plugin:rec", "colour": "blue"}
    (watcher, action, body) = [e for e in rec.events if e[1] == "spawn"][0]
    assert watcher == "web" and body["process_pid"] == list(arbiter.get_watcher("web").processes)[0]
    assert call("list")["watchers"] == ["plugin:rec", "web"]
    assert call("status", name="plugin:rec")["status"] == "active"
    assert call("list", name="plugin:rec")["pids"] == []
    assert isinstance(arbiter.get_watcher("plugin:rec"), PluginWatcher)
    # a command stops it (handle_stop) and starts a fresh instance
    assert call("stop", name="plugin:rec", waiting=True)["status"] == "ok"
    assert rec.stopped == 1 and call("status", name="plugin:rec")["status"] == "stopped"
    assert call("start", name="plugin:rec", waiting=True)["status"] == "ok"
    rec.wait(lambda r: r.instances == 2 and len(r.replies) == 2, what="a second instance")


def test_process_commands_on_a_plugin_say_it_is_a_plugin(served_arbiter, call):
    served_arbiter([], plugins=[{"use": HERE + ".Recorder", "name": "plugin:rec"}])
    record("plugin:rec").wait(lambda r: r.replies, what="the plugin's init call")
    for command, props in (("incr", {}), ("decr", {"nb": 1}), ("signal", {"signum": "HUP"}),
                           ("kill", {}), ("set", {"options": {"numprocesses": 3}})):
        reply = call(command, name="plugin:rec", **props)
        assert reply["status"] == "error", (command, reply)
        assert reply["reason"].startswith("plugin:rec is a plugin, not a watcher of processes"), (command, reply)
    assert call("status", name="plugin:rec")["status"] == "active"
    assert call("numprocesses", name="plugin:rec")["numprocesses"] == 0


def test_cast_goes_through_the_controller(served_arbiter, events):
    served_arbiter([Watcher("web", "sleep 120")],
                   plugins=[{"use": HERE + ".Recorder", "name": "plugin:stopper", "cast_on_spawn": "stop"}])
    events.wait_count("watcher.web.stop", 1)


def test_a_plugin_that_raises_is_restarted_and_the_arbiter_keeps_serving(served_arbiter, call, events):
    arbiter = served_arbiter([Watcher("web", "sleep 120")],
                             plugins=[{"use": HERE + ".Crasher", "name": "plugin:crash"}])
    rec = record("plugin:crash")
    rec.wait(lambda r: r.instances >= 1 and r.events, what="a first failure")
    for _ in range(3):
        call("incr", name="web", waiting=True)        # each spawn event makes it raise again
    rec.wait(lambda r: r.instances >= 3, what="restarts")
    runner = arbiter.get_watcher("plugin:crash").runner
    assert runner.restarts >= 2 and rec.stopped >= 2       # each failed instance got handle_stop
    assert call("numprocesses", name="web")["numprocesses"] == 4
    assert call("status", name="plugin:crash")["status"] == "active"
    assert runner.running


def test_a_failing_periodic_task_restarts_the_plugin(served_arbiter):
    arbiter = served_arbiter([], plugins=[{"use": HERE + ".TickCrasher", "name": "plugin:ticks"}])
    rec = record("plugin:ticks")
    rec.wait(lambda r: r.instances >= 2 and len(r.replies) >= 3, what="a restart after the failing tick")
    assert all(reply["numwatchers"] == 1 for reply in rec.replies)
    assert arbiter.get_watcher("plugin:ticks").runner.restarts >= 1


def test_an_unimportable_plugin_is_a_startup_error_naming_the_class(endpoints):
    web = Watcher("web", "sleep 120")
    arbiter = Arbiter([web], endpoints.control, None, handle_signals=False,
                      plugins=[{"use": "no.such.module.Plugin", "name": "plugin:bad"}])
    with pytest.raises(PluginLoadError, match=r"plugin:bad.*no\.such\.module\.Plugin"):
        arbiter.start()          # fails before any spawn, and releases what it bound
    assert not web.processes and arbiter.controller is None
    arbiter = Arbiter([], None, None, handle_signals=False,
                      plugins=[{"use": "gcircus.watcher.logger", "name": "plugin:odd"}])
    with pytest.raises(PluginLoadError, match="not a plugin class"):
        arbiter.start()


def test_apply_adds_and_removes_plugins_live(served_arbiter, call, events):
    arbiter = served_arbiter([], plugins=[{"use": HERE + ".Recorder", "name": "plugin:old"}])
    record("plugin:old").wait(lambda r: r.replies)
    errors = arbiter.plugin_manager.apply(
        added=[{"use": HERE + ".Recorder", "name": "plugin:new"}, {"use": "nope.Nope", "name": "plugin:x"}],
        removed=["plugin:old"])
    assert len(errors) == 1 and "nope.Nope" in errors[0]
    record("plugin:new").wait(lambda r: r.replies)
    assert record("plugin:old").stopped == 1
    assert call("list")["watchers"] == ["plugin:new"]
    assert events.count("watcher.plugin:old.remove") == 1


def test_inactive_plugin_is_listed_but_not_started(served_arbiter, call):
    served_arbiter([], plugins=[{"use": HERE + ".Recorder", "name": "plugin:off", "active": "false"}])
    assert call("status", name="plugin:off")["status"] == "stopped"
    assert "plugin:off" not in RECORDS


def test_api_plugins_without_a_name_get_one(served_arbiter, call):
    served_arbiter([], plugins=[{"use": HERE + ".Recorder"}, {"use": HERE + ".Recorder"}])
    assert call("list")["watchers"] == ["plugin:recorder", "plugin:recorder-2"]


CIRCUS_PLUGIN_SOURCE = '''
from circus.plugins import CircusPlugin

class CircusWritten(CircusPlugin):
    """Written against Circus's documented API, for Circus."""
    name = "circus_written"

    def __init__(self, endpoint, pubsub_endpoint, check_delay, ssh_server, **config):
        super(CircusWritten, self).__init__(endpoint, pubsub_endpoint, check_delay,
                                            ssh_server=ssh_server, **config)
        self.seen = config["sink"]

    def handle_init(self):
        pass

    def handle_recv(self, data):
        watcher_name, action, msg = self.split_data(data)
        if action == "spawn":
            info = self.call("numprocesses", name=watcher_name)
            SEEN.append((watcher_name, self.load_message(msg)["process_pid"], info["numprocesses"]))
            self.cast("decr", name=watcher_name)

SEEN = []
'''


@pytest.mark.skipif(importlib.util.find_spec("circus") is None, reason="Circus 0.19 is not installed")
def test_a_plugin_written_for_circus_runs_unchanged(served_arbiter, events, tmp_path, monkeypatch):
    (tmp_path / "circus_written.py").write_text(CIRCUS_PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    arbiter = served_arbiter([Watcher("web", "sleep 120", numprocesses=2)],
                             plugins=[{"use": "circus_written.CircusWritten", "name": "plugin:cw", "sink": "x"}])
    import circus_written
    events.wait_count("watcher.web.kill", 1)     # its cast decr retired one process
    wait_until(lambda: len(circus_written.SEEN) >= 2, what="two spawns seen")
    assert {pid for _, pid, _ in circus_written.SEEN} == {
        pid for t, m in events.events if t == "watcher.web.spawn" for pid in [m["process_pid"]]}
    assert circus_written.SEEN[0][0] == "web" and circus_written.SEEN[0][2] >= 1
    wait_until(lambda: arbiter.get_watcher("web").numprocesses == 0, what="decr twice")


def test_circus_names_are_served_by_gcircus_without_circus():
    """Without Circus installed, `import circus.*` in a plugin gets gcircus's names
    (forced here, in a fresh interpreter, since the test environment has Circus)."""
    import subprocess
    import sys
    script = "\n".join([
        "from gcircus.aliases import serve_circus_names",
        "assert serve_circus_names(force=True)",
        "from circus.plugins import CircusPlugin",
        "from circus import logger, __version__",
        "from circus.util import to_bool, human2bytes",
        "import circus.plugins.flapping, gcircus.plugin, gcircus.plugins.flapping",
        "assert CircusPlugin is gcircus.plugin.CircusPlugin",
        "assert circus.plugins.flapping.Flapping is gcircus.plugins.flapping.Flapping",
        "assert to_bool('yes') and human2bytes('1K') == 1024 and __version__ == '0.19.0'",
        "assert logger.name == 'circus'",
        "print('ok')"])
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


def test_a_plugin_can_stop_itself(served_arbiter, call, events):
    served_arbiter([Watcher("web", "sleep 120")], plugins=[{"use": HERE + ".StopsItself", "name": "plugin:once"}])
    events.wait_count("watcher.plugin:once.stop", 1)
    rec = record("plugin:once")
    assert rec.stopped == 1 and rec.instances == 1 and rec.events[0][1] == "spawn"
    assert call("status", name="plugin:once")["status"] == "stopped"


def test_a_plugin_runs_standalone_against_public_endpoints(served_arbiter, endpoints, call):
    served_arbiter([Watcher("web", "sleep 120")])
    plugin = Recorder(endpoints.control, endpoints.pubsub, 1.0, None, name="standalone")
    running = gevent.spawn(plugin.start)
    rec = record("standalone")
    rec.wait(lambda r: r.replies, what="handle_init's call")
    assert rec.replies[0]["watchers"] == ["web"]
    with gevent.Timeout(10):
        while not any(action == "spawn" for _, action, _ in rec.events):   # the SUB joins asynchronously
            call("incr", name="web", waiting=True)
            rec.changed.wait(0.2)
    plugin.stop()
    running.join(5)
    assert running.successful() and rec.stopped == 1 and not plugin.running


def test_reloadconfig_adds_changes_and_removes_plugin_sections(tmp_path, endpoints, events):
    from gcircus.config.build import load_arbiter
    config = tmp_path / "circus.ini"
    head = "[circus]\nendpoint = %s\npubsub_endpoint = %s\n\n" % (endpoints.control, endpoints.pubsub)
    section = "[plugin:%s]\nuse = " + HERE + ".Recorder\ncolour = %s\n\n"
    config.write_text(head + section % ("keep", "red") + section % ("change", "red") + section % ("drop", "red"))
    arbiter = load_arbiter(str(config))
    arbiter.handle_signals = False
    arbiter.publisher.add_listener(events)
    running = gevent.spawn(arbiter.start)
    try:
        assert arbiter.wait_started(15)
        for name in ("keep", "change", "drop"):
            record("plugin:" + name).wait(lambda r: r.replies)
        config.write_text(head + section % ("keep", "red") + section % ("change", "blue") + section % ("new", "x"))
        summary = arbiter.reload_from_config()
        assert summary["plugins"] == {"added": ["plugin:new"], "removed": ["plugin:drop"],
                                      "changed": ["plugin:change"]}
        record("plugin:new").wait(lambda r: r.replies)
        record("plugin:change").wait(lambda r: r.instances == 2 and r.config["colour"] == "blue")
        assert record("plugin:drop").stopped == 1 and record("plugin:keep").instances == 1
        assert sorted(w.name for w in arbiter.watchers) == ["plugin:change", "plugin:keep", "plugin:new"]
    finally:
        arbiter.stop()
        running.join(10)


def test_gcircusd_refuses_to_start_with_an_unimportable_plugin():
    """The daemon names the section and the class, exits 1, starts no process (checked when the
    file is loaded, before anything starts)."""
    from tests.e2e.daemon_support import Daemon, short_tmpdir, write_config
    workdir = short_tmpdir()
    path, _ = write_config(workdir, "[watcher:web]\ncmd = sleep 120\n\n[plugin:broken]\nuse = no.such.Plugin\n")
    daemon = Daemon(path)
    try:
        assert daemon.proc.wait(30) == 1
        output = daemon.drain()
        assert "[plugin:broken] use: cannot import plugin class 'no.such.Plugin'" in output
        assert "Traceback" not in output
    finally:
        daemon.kill()
        shutil.rmtree(workdir, ignore_errors=True)
