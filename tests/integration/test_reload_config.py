"""reloadconfig (Arbiter.reload_from_config) on a running arbiter built from an INI file: sockets and watchers
follow the edited file, a socket that cannot bind does not stop the rest, [circus]
settings are applied live or reported, and a file with a broken section changes nothing."""
import json
import logging
import os
import shutil
import socket
import tempfile

import gevent
import pytest
import zmq.green as zmq
from gevent.event import Event

from gcircus.client import CircusClient
from gcircus.config import ConfigError
from tests.support.wait import wait_until


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def circus():
    """The [circus] section of the files here: ipc endpoints in a fresh short directory. Ports chosen
    when the module was imported were often taken by the time a test bound them, minutes later."""
    directory = tempfile.mkdtemp(prefix="gc-", dir="/tmp")    # short: an ipc path is at most 107 bytes
    yield "[circus]\nendpoint = ipc://%s/ctl.sock\npubsub_endpoint = ipc://%s/pub.sock\ncheck_delay = 60\n" % (
        directory, directory)
    shutil.rmtree(directory, ignore_errors=True)


def socket_section(name, port):
    return "[socket:%s]\nhost = 127.0.0.1\nport = %d\n" % (name, port)


def test_sockets_follow_the_file_and_a_bind_failure_is_reported(circus, from_file):
    keep, old, taken = free_port(), free_port(), socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        watcher = "[watcher:web]\ncmd = sleep 120 $(circus.sockets.moving)\nuse_sockets = true\n"
        arbiter, path = from_file(circus + socket_section("keep", keep) + socket_section("moving", old)
                                  + socket_section("gone", free_port()) + watcher
                                  + "[watcher:other]\ncmd = sleep 121\n")
        kept_socket, gone_socket = arbiter.sockets["keep"], arbiter.sockets["gone"]
        web_pids = [p.pid for p in arbiter.get_watcher("web").processes.values()]
        moved = free_port()         # chosen just before it is bound: a port chosen earlier may be taken by now
        path.write_text(circus + socket_section("keep", keep) + socket_section("moving", moved)
                        + socket_section("busy", taken.getsockname()[1]) + watcher
                        + "[watcher:other]\ncmd = sleep 121\nnumprocesses = 2\n")
        summary = arbiter.reload_from_config()
        assert summary["sockets"]["added"] == ["busy"] and summary["sockets"]["removed"] == ["gone"]
        assert summary["sockets"]["changed"] == ["moving"]
        assert any("busy" in error for error in summary["sockets"]["errors"])
        assert arbiter.sockets["keep"] is kept_socket
        assert gone_socket.fileno() == -1 and "gone" not in arbiter.sockets
        assert arbiter.sockets["moving"].getsockname()[1] == moved
        # the watcher that uses the moved socket was replaced; the rest of the file was applied too
        assert not set(web_pids) & {p.pid for p in arbiter.get_watcher("web").processes.values()}
        assert len(arbiter.get_watcher("other").processes) == 2
    finally:
        taken.close()


# -- [circus] settings -------------------------------------------------------------------


def circus_section(circus, **settings):
    """The circus section with some keys replaced or added."""
    lines = dict(line.split(" = ", 1) for line in circus.splitlines()[1:])
    lines.update({key: str(value) for key, value in settings.items()})
    return "[circus]\n" + "".join("%s = %s\n" % item for item in lines.items())


class LogLines(logging.Handler):
    """The gcircus log records' messages, with a wait for one containing some text."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []
        self._changed = Event()

    def emit(self, record):
        self.messages.append(record.getMessage())
        self._changed.set()

    def wait_for(self, text, timeout=10):
        wait_until(lambda: any(text in message for message in self.messages), timeout,
                   "a log line with %r" % text, changed=self._changed, detail=lambda: "got %s" % self.messages)


@pytest.fixture
def log_lines():
    handler = LogLines()
    gcircus_logger = logging.getLogger("gcircus")
    old_level = gcircus_logger.level
    gcircus_logger.addHandler(handler)
    gcircus_logger.setLevel(logging.DEBUG)
    yield handler
    gcircus_logger.removeHandler(handler)
    gcircus_logger.setLevel(old_level)


@pytest.fixture
def process_settings():
    """Whatever a reload does to this (test) process's umask and root log level is undone."""
    umask = os.umask(0o022)
    os.umask(umask)
    level = logging.getLogger().level
    yield
    os.umask(umask)
    logging.getLogger().setLevel(level)


def exchange(endpoint, message):
    """One request on a bare DEALER socket (the refusal of an oversized body carries no id,
    so CircusClient, which matches replies by id, would never see it)."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(endpoint)
    try:
        sock.send(json.dumps(dict(message, id="reload-test")).encode())
        with gevent.Timeout(10, AssertionError("no reply from %s to %r" % (endpoint, message))):
            return json.loads(sock.recv())
    finally:
        sock.close()


def current_umask():
    value = os.umask(0)
    os.umask(value)
    return value


def test_live_circus_settings_are_applied(circus, from_file, events, log_lines, process_settings):
    watcher = "[watcher:w]\ncmd = sleep 120\n"
    arbiter, path = from_file(circus_section(circus, umask="002") + watcher)
    assert current_umask() == 0o002
    path.write_text(circus_section(circus, check_delay=0.1, umask="027", loglevel="debug", max_message_size=2048,
                                   warmup_delay=0.5) + watcher)
    summary = arbiter.reload_from_config()
    assert summary["settings"] == ["check_delay", "loglevel", "max_message_size", "umask", "warmup_delay"]
    assert current_umask() == 0o027
    assert logging.getLogger().level == logging.DEBUG
    assert arbiter.warmup_delay == 0.5
    big = exchange(arbiter.endpoint, {"command": "list", "properties": {"pad": "x" * 4096}})
    assert big["status"] == "error" and "message too large" in big["reason"] and "2048" in big["reason"]
    options = exchange(arbiter.endpoint, {"command": "globaloptions", "properties": {"option": "check_delay"}})
    assert options["options"] == {"check_delay": 0.1}
    # The sweep now runs every 0.1 s, not after the 60 s sleep it was in: it notices the count
    # no command enforced and spawns the missing process.
    arbiter.get_watcher("w").numprocesses = 2
    events.wait_count("watcher.w.spawn", 2, timeout=5)
    log_lines.wait_for("[circus] check_delay is now 0.1")


def test_check_delay_from_zero_starts_the_sweep(circus, from_file, events):
    watcher = "[watcher:w]\ncmd = sleep 120\n"
    arbiter, path = from_file(circus_section(circus, check_delay=0) + watcher)
    path.write_text(circus_section(circus, check_delay=0.1) + watcher)
    arbiter.reload_from_config()
    arbiter.get_watcher("w").numprocesses = 2
    events.wait_count("watcher.w.spawn", 2, timeout=5)


def test_settings_needing_a_restart_are_reported_and_not_pretended(circus, from_file, log_lines):
    arbiter, path = from_file(circus + "[watcher:w]\ncmd = sleep 120\n")
    path.write_text(circus_section(circus, debug="true", fqdn_prefix="web1", statsd="true")
                    + "[watcher:w]\ncmd = sleep 120\n")
    assert arbiter.reload_from_config()["settings"] == ["debug", "fqdn_prefix", "statsd"]
    for key in ("debug", "fqdn_prefix", "statsd"):
        log_lines.wait_for("reloadconfig: [circus] %s changed; it takes effect at the next restart "
                           "of the daemon" % key)
        assert key not in arbiter.options or not arbiter.options[key]   # what runs is still the old value


def test_command_line_settings_win_over_the_edited_file(circus, tmp_path, from_file, log_lines, process_settings):
    arbiter, path = from_file(circus + "[watcher:w]\ncmd = sleep 120\n")
    arbiter.config_source.command_line = {"loglevel": "warning"}
    logging.getLogger().setLevel(logging.WARNING)
    path.write_text(circus_section(circus, loglevel="debug") + "[watcher:w]\ncmd = sleep 120\n")
    arbiter.reload_from_config()
    assert logging.getLogger().level == logging.WARNING
    log_lines.wait_for("[circus] loglevel changed; the command line's value 'warning' stays in force")


# -- watcher sections: added / removed keys (Circus misses them) ----------------


def test_a_key_added_or_removed_in_a_watcher_section_replaces_it(circus, from_file):
    plain = "[watcher:w]\ncmd = sleep 120\n"
    arbiter, path = from_file(circus + plain)
    for text in (plain + "max_age = 100\n", plain, plain + "custom_key = 1\n", plain):
        before = {p.pid for p in arbiter.get_watcher("w").processes.values()}
        path.write_text(circus + text)
        assert arbiter.reload_from_config()["watchers"]["replaced"] == ["w"], text
        assert not before & {p.pid for p in arbiter.get_watcher("w").processes.values()}
    assert arbiter.reload_from_config()["watchers"]["replaced"] == []   # unchanged file: nothing to do


# -- a file with errors changes nothing --------------------------------------------------

RUNNING = "[watcher:a]\ncmd = sleep 120\n[watcher:b]\ncmd = sleep 121\n"
# b's section has a typo, a changed and c is new: none of it may be applied
BROKEN = "[watcher:a]\ncmd = sleep 130\n[watcher:b]\ncmd = sleep 121\nnumprocesses = tow\n" \
         "[watcher:c]\ncmd = sleep 122\n"


def pids(arbiter):
    return {w.name: sorted(p.pid for p in w.processes.values()) for w in arbiter.watchers}


def test_a_broken_section_refuses_the_whole_reload(circus, from_file):
    arbiter, path = from_file(circus + RUNNING)
    before = pids(arbiter)
    path.write_text(circus + BROKEN)
    with pytest.raises(ConfigError) as raised:
        arbiter.reload_from_config()
    assert "reloadconfig refused, nothing was changed" in str(raised.value)
    assert "[watcher:b] numprocesses: invalid integer 'tow'" in str(raised.value)
    assert pids(arbiter) == before
    path.write_text(circus + BROKEN.replace("numprocesses = tow\n", ""))
    summary = arbiter.reload_from_config()    # fixed: the whole edit applies against the running state
    assert summary["watchers"]["replaced"] == ["a"] and summary["watchers"]["added"] == ["c"]


def test_reloadconfig_command_reports_the_errors(circus, from_file):
    """With or without waiting: the file is checked before the reply, a broken one gets an error."""
    arbiter, path = from_file(circus + RUNNING)
    before = pids(arbiter)
    path.write_text(circus + BROKEN)
    client = CircusClient(endpoint=arbiter.endpoint, timeout=10)
    try:
        for props in ({"waiting": True}, {}):
            reply = client.call({"command": "reloadconfig", "properties": props})
            assert reply["status"] == "error" and reply["errno"] == 3, reply
            assert "reloadconfig refused, nothing was changed" in reply["reason"]
            assert "numprocesses: invalid integer 'tow'" in reply["reason"]
    finally:
        client.stop()
    assert pids(arbiter) == before


def test_an_unimportable_stream_class_keeps_the_running_watcher(circus, from_file):
    arbiter, path = from_file(circus + RUNNING)
    before = pids(arbiter)
    path.write_text(circus + RUNNING.replace("[watcher:b]\n", "[watcher:b]\nstdout_stream.class = no_such_pkg.Out\n"))
    client = CircusClient(endpoint=arbiter.endpoint, timeout=10)
    try:
        reply = client.call({"command": "reloadconfig", "properties": {}})
    finally:
        client.stop()
    assert reply["status"] == "error", reply
    assert "[watcher:b] stdout_stream.class: cannot import stream class 'no_such_pkg.Out'" in reply["reason"]
    assert pids(arbiter) == before and arbiter.get_watcher("b").is_active()


def test_a_watcher_that_cannot_be_built_refuses_the_reload_before_any_change(circus, from_file, events):
    """The loader cannot see everything (a stream class may refuse its options when built): the new
    watchers are built before anything is removed, replaced or added."""
    arbiter, path = from_file(circus + RUNNING)
    before = pids(arbiter)
    path.write_text(circus + RUNNING.replace("sleep 120", "sleep 130")
                    + "[watcher:c]\ncmd = sleep 122\nstdout_stream.class = tests.fixtures.streams.Refusing\n")
    with pytest.raises(ConfigError) as raised:
        arbiter.reload_from_config()
    assert str(raised.value) == ("reloadconfig refused, nothing was changed: 1 watcher(s) cannot be built:\n"
                                 "  [watcher:c]: refusing to be built")
    assert pids(arbiter) == before and [w.name for w in arbiter.watchers] == ["a", "b"]
    assert not [t for t, _ in events.events if t.endswith((".remove", ".add"))]
