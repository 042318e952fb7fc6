"""gcircusd as systemd, a container runtime or Kubernetes runs it: the notify protocol
and watchdog against a fake NOTIFY_SOCKET, sockets passed in by socket activation, the
subreaper role, critical watchers, `gcircusctl health` and JSON logs."""
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import psutil
import pytest

from tests.conftest import child_cmd
from tests.e2e.conftest import run_gcircusctl
from tests.e2e.daemon_support import Daemon, write_config
from tests.fixtures.systemd import FakeNotifySocket, activation_wrapper
from tests.support.wait import wait_until

EXIT_CRITICAL = 3


@pytest.fixture
def notify_socket(workdir):
    fake = FakeNotifySocket(workdir)
    yield fake
    fake.close()


def daemon_env(**extra):
    return dict(os.environ, PYTHONUNBUFFERED="1", **extra)


def test_notify_ready_reloading_stopping_and_watchdog(workdir, notify_socket):
    path, endpoint = write_config(workdir, "[watcher:a]\ncmd = %s\nnumprocesses = 2\n"
                                  % child_cmd("ready_then_sleep"))
    daemon = Daemon(path, env=daemon_env(NOTIFY_SOCKET=notify_socket.value, WATCHDOG_USEC="200000"))
    try:
        ready = notify_socket.wait_for("READY=1")[-1]
        assert "STATUS=1 watchers: 1 active; 2 processes" in ready
        notify_socket.wait_for("WATCHDOG=1", ignore=())
        assert run_gcircusctl("reloadconfig", "--waiting", endpoint=endpoint).code == 0
        notify_socket.wait_for("RELOADING=1")
        notify_socket.wait_for("READY=1")
        os.kill(daemon.proc.pid, signal.SIGHUP)
        notify_socket.wait_for("RELOADING=1")
        notify_socket.wait_for("READY=1")
        assert run_gcircusctl("quit", endpoint=endpoint).code == 0
        notify_socket.wait_for("STOPPING=1")
        assert daemon.proc.wait(30) == 0
    finally:
        daemon.kill()


def test_watchdog_pings_stop_while_a_hook_holds_the_hub(workdir, notify_socket):
    fifo = os.path.join(workdir, "hold")
    os.mkfifo(fifo)
    path, endpoint = write_config(workdir, "[watcher:held]\ncmd = %s\nautostart = false\n"
                                  "hooks.before_spawn = tests.fixtures.hooks.hold_the_hub\n"
                                  % child_cmd("ready_then_sleep"))
    env = daemon_env(NOTIFY_SOCKET=notify_socket.value, WATCHDOG_USEC="100000", GCIRCUS_TEST_HOLD=fifo,
                     PYTHONPATH=os.getcwd())
    daemon = Daemon(path, env=env)
    starter = None
    try:
        notify_socket.wait_for("READY=1")
        notify_socket.wait_for("WATCHDOG=1", ignore=())
        starter = subprocess.Popen([sys.executable, "-m", "gcircus.cli.gcircusctl", "--endpoint", endpoint,
                                    "--timeout", "60", "start", "held"], stdout=subprocess.DEVNULL)
        # the hook opens the FIFO to read: our open succeeds once it has, and from then on
        # the hook blocks the daemon's hub until we close it
        writer = wait_until(lambda: _open_writer(fifo), 20, "the hook to hold the hub")
        notify_socket.drain()
        assert notify_socket.recv(1.0) is None       # ten watchdog periods: not one ping
        os.close(writer)
        notify_socket.wait_for("WATCHDOG=1", ignore=())   # the hub runs again
        assert starter.wait(30) == 0
    finally:
        if starter is not None and starter.poll() is None:
            starter.kill()
            starter.wait()
        daemon.kill()


def _open_writer(fifo):
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:         # ENXIO: no reader yet
        return None


def test_socket_from_listen_fds_reaches_a_worker_and_is_never_bound_again(workdir):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    with socket.socket() as probe:           # a free port the config names, and nobody binds
        probe.bind(("127.0.0.1", 0))
        configured_port = probe.getsockname()[1]
    path, endpoint = write_config(workdir, "[socket:web]\nhost = 127.0.0.1\nport = %d\n"
                                  "[watcher:web]\ncmd = %s $(circus.sockets.web)\nuse_sockets = true\n"
                                  "numprocesses = 2\n" % (configured_port, child_cmd("http_worker")))
    daemon = Daemon(path, env=daemon_env(), wrapper=activation_wrapper({listener.fileno(): "web"}),
                    pass_fds=[listener.fileno()])
    listener_inode = os.fstat(listener.fileno()).st_ino
    listener.close()           # from now on only the daemon holds it
    try:
        daemon.wait_for("ready ", count=2)
        ready = [line.split() for line in daemon.output if line.startswith("ready ")]
        assert {(int(port_), int(inode)) for _, _, port_, inode in ready} == {(port, listener_inode)}
        body = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10).read())
        assert body["pid"] in {int(words[1]) for words in ready} and body["inode"] == listener_inode
        sockets = run_gcircusctl("--json", "listsockets", endpoint=endpoint)
        assert json.loads(sockets.out)["sockets"][0]["port"] == port
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", configured_port), timeout=5)
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def test_subreaper_reaps_orphans_and_keeps_its_own_exit_statuses(workdir, daemons):
    path, endpoint = write_config(workdir, "[watcher:maker]\ncmd = %s 100 --exit 7\nmin_uptime = 0\n"
                                  % child_cmd("orphan_maker"))
    daemon = daemons(path, "--subreaper")
    daemon.wait_for("exited with status 7", count=3, timeout=60)    # three generations of orphans
    assert run_gcircusctl("stop", "maker", "--waiting", endpoint=endpoint).code == 0
    daemon.wait_for("adopted", count=300, timeout=60)
    adopted = [line.split() for line in daemon.output if line.startswith("adopted ")]
    assert {int(parent) for _, _, parent in adopted} == {daemon.proc.pid}   # ours, not pytest's
    wait_until(lambda: not daemon.children(), 20, "every orphan to be collected",
               detail=lambda: [(c.pid, c.status()) for c in daemon.children()])
    assert daemon.stop() == 0


def test_orphans_still_running_are_stopped_when_the_daemon_stops(workdir, daemons):
    path, _ = write_config(workdir, "[watcher:maker]\ncmd = %s 5 --linger\ngraceful_timeout = 5\n"
                           % child_cmd("orphan_maker"))
    daemon = daemons(path, "--subreaper")
    daemon.wait_for("adopted", count=5)
    orphans = [psutil.Process(int(line.split()[1])) for line in daemon.output if line.startswith("adopted ")]
    assert daemon.stop(signal.SIGTERM) == 0
    assert not psutil.wait_procs(orphans, timeout=5)[1]
    assert "stopping 5 adopted orphan process(es)" in daemon.text()


def test_a_critical_watcher_that_cannot_start_stops_the_daemon(workdir, daemons):
    path, _ = write_config(workdir, "[watcher:db]\ncmd = %s/missing-binary\ncritical = true\nmax_retry = 2\n"
                           "[watcher:web]\ncmd = %s\n" % (workdir, child_cmd("ready_then_sleep")))
    daemon = daemons(path)
    assert daemon.proc.wait(60) == EXIT_CRITICAL
    daemon.drain()
    assert "critical watcher db gave up: 3 failed spawns in a row (max_retry 2)" in daemon.text()
    # web was stopped with it: the no-child-left-behind guard fails the test otherwise


def test_gcircusctl_health(workdir, gcircusd, gcircusctl):
    daemon = gcircusd("[watcher:web]\ncmd = %s\n[watcher:flaky]\ncmd = false\nmax_retry = -1\n"
                      "backoff_base = 0.5\n" % child_cmd("ready_then_sleep"))
    unhealthy = wait_until(lambda: _health(gcircusctl, daemon.endpoint, 4), 20, "flaky to back off")
    assert unhealthy.out.startswith("unhealthy\n  flaky: backing off")
    assert gcircusctl("stop", "flaky", "--waiting", endpoint=daemon.endpoint).code == 0
    healthy = gcircusctl("health", endpoint=daemon.endpoint)
    assert (healthy.code, healthy.out) == (0, "healthy")     # stopped on request is healthy
    reply = json.loads(gcircusctl("--json", "health", endpoint=daemon.endpoint).out)
    assert reply["healthy"] is True and reply["watchers"] == {"web": "ok", "flaky": "ok"}


def _health(gcircusctl, endpoint, code):
    result = gcircusctl("health", endpoint=endpoint)
    return result if result.code == code else None


def test_json_logs_one_object_per_line(workdir, daemons):
    path, endpoint = write_config(workdir, "[watcher:w]\ncmd = %s\n"
                                  "hooks.after_start = tests.fixtures.hooks.boom\n" % child_cmd("ready_then_sleep"))
    daemon = daemons(path, "--log-format", "json")
    daemon.wait_for('"Arbiter now waiting for commands"')
    assert daemon.stop() == 0
    lines = [line for line in daemon.output if line.strip() and not line.startswith(("ready ", "TERM "))]
    entries = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    failure = next(entry for entry in entries if entry["message"].startswith("hook after_start"))
    assert failure["level"] == "ERROR" and "RuntimeError: boom from after_start" in failure["exc"]
    assert failure["time"].endswith("Z") and failure["logger"].startswith("gcircus")
