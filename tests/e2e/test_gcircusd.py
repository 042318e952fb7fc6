"""gcircusd end to end: a real daemon process, driven by signals, gcircusctl and the client."""
import os
import signal
import subprocess
import sys

import psutil
import pytest

from tests.e2e.daemon_support import READY, Daemon, wait_for_file, write_config
from tests.support.wait import wait_until


def call(endpoint, command, **properties):
    from gcircus.client import CircusClient
    client = CircusClient(endpoint=endpoint, timeout=10)
    try:
        return client.call({"command": command, "properties": properties})
    finally:
        client.stop()


def ctl(endpoint, *args):
    return subprocess.run([sys.executable, "-m", "gcircus.cli.gcircusctl", "--endpoint", endpoint] + list(args),
                          capture_output=True, text=True, timeout=30)


def pids_of(endpoint, name):
    return sorted(call(endpoint, "list", name=name)["pids"])


def test_start_drive_and_sigterm_leaves_no_child(workdir, daemons):
    path, endpoint = write_config(workdir, "[watcher:web]\ncmd = sleep 120\nnumprocesses = 3\n"
                                           "[watcher:worker]\ncmd = sleep 121\n")
    daemon = daemons(path)
    daemon.wait_for(READY)
    children = daemon.children()
    assert len(children) == 4
    result = ctl(endpoint, "status")
    assert result.returncode == 0 and "web: active" in result.stdout and "worker: active" in result.stdout
    assert ctl(endpoint, "incr", "web").returncode == 0
    assert len(pids_of(endpoint, "web")) == 4
    assert daemon.stop(signal.SIGTERM) == 0
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive and not daemon.children()
    assert not [name for name in os.listdir(workdir) if name.endswith(".sock")]   # no stale socket files


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT])
def test_int_and_quit_stop_gracefully(workdir, daemons, sig):
    path, _ = write_config(workdir, "[watcher:w]\ncmd = sleep 120\n")
    daemon = daemons(path)
    daemon.wait_for(READY)
    children = daemon.children()
    assert daemon.stop(sig) == 0
    assert not psutil.wait_procs(children, timeout=5)[1]


def test_sighup_reloads_watchers_gracefully(workdir, daemons):
    path, endpoint = write_config(workdir, "[watcher:w]\ncmd = sleep 120\nnumprocesses = 2\n")
    daemon = daemons(path)
    daemon.wait_for(READY)
    before = pids_of(endpoint, "w")
    os.kill(daemon.proc.pid, signal.SIGHUP)
    daemon.wait_for("all watchers reloaded")
    after = pids_of(endpoint, "w")
    assert len(after) == 2 and not set(after) & set(before)


def test_circus_spec_example_config_runs(workdir, daemons):
    """A config as Circus documents it (circus.* stream class, [env], hooks-free) runs unchanged."""
    log = os.path.join(workdir, "out.log")
    body = ("[watcher:myprogram]\ncmd = %s\nargs = -c \"print('hello from $(circus.wid)', flush=True); "
            "import time; time.sleep(120)\"\nwarmup_delay = 0\nnumprocesses = 2\n"
            "stdout_stream.class = circus.stream.FileStream\nstdout_stream.filename = %s\n"
            "[env:myprogram]\nGREETING = hi\n" % (sys.executable, log))
    path, endpoint = write_config(workdir, body)
    daemon = daemons(path)
    daemon.wait_for(READY)
    assert call(endpoint, "numprocesses", name="myprogram")["numprocesses"] == 2
    assert call(endpoint, "options", name="myprogram")["options"]["numprocesses"] == 2
    expected = ["", "hello from 1", "hello from 2"]
    wait_for_file(log, lambda text: sorted(text.split("\n")) == expected)
    assert daemon.stop() == 0
    with open(log) as handle:
        assert sorted(handle.read().split("\n")) == expected


def test_reloadconfig_applies_the_edited_file(workdir, daemons):
    path, endpoint = write_config(workdir, "[watcher:keep]\ncmd = sleep 120\n"
                                           "[watcher:change]\ncmd = sleep 121\n"
                                           "[watcher:gone]\ncmd = sleep 122\n"
                                           "[watcher:grow]\ncmd = sleep 123\n")
    daemon = daemons(path)
    daemon.wait_for(READY)
    before = {name: pids_of(endpoint, name) for name in ("keep", "change", "grow")}
    new_endpoint = "ipc://%s/ctl2.sock" % workdir
    with open(path) as handle:
        text = handle.read()
    text = text.replace("endpoint = %s" % endpoint, "endpoint = %s" % new_endpoint)
    text = text.replace("sleep 121", "sleep 131").replace("[watcher:gone]\ncmd = sleep 122\n", "")
    text = text.replace("cmd = sleep 123\n", "cmd = sleep 123\nnumprocesses = 3\n")
    text += "[watcher:added]\ncmd = sleep 124\n"
    with open(path, "w") as handle:
        handle.write(text)
    assert call(endpoint, "reloadconfig", waiting=True)["status"] == "ok"
    assert pids_of(new_endpoint, "keep") == before["keep"]
    assert not set(pids_of(new_endpoint, "change")) & set(before["change"])
    grow = pids_of(new_endpoint, "grow")
    assert len(grow) == 3 and set(before["grow"]) <= set(grow)
    names = call(new_endpoint, "list")["watchers"]
    assert "gone" not in names and "added" in names
    def cmdlines():     # a child just spawned may still be in its exec wrapper: polled, with a deadline
        found = sorted(" ".join(p.cmdline()) for p in daemon.children())
        return "sleep 122" not in found and "sleep 131" in found and "sleep 124" in found and found
    wait_until(cmdlines, 10, "the reloaded watchers' programs")


def test_pidfile_of_a_live_daemon_is_refused(workdir, daemons):
    path, _ = write_config(workdir, "[watcher:w]\ncmd = sleep 120\n")
    pidfile = os.path.join(workdir, "d.pid")
    first = daemons(path, "--pidfile", pidfile)
    first.wait_for(READY)
    second = Daemon(path, "--pidfile", pidfile)
    try:
        assert second.proc.wait(20) == 1
        assert "names a running process" in second.drain()
    finally:
        second.kill()
    assert open(pidfile).read() == "%d\n" % first.proc.pid
    assert first.stop() == 0
    assert not os.path.exists(pidfile)


def test_stale_pidfile_is_replaced(workdir, daemons):
    path, _ = write_config(workdir, "[watcher:w]\ncmd = sleep 120\n")
    pidfile = os.path.join(workdir, "d.pid")
    dead = subprocess.Popen(["true"])
    dead.wait()
    with open(pidfile, "w") as handle:
        handle.write("%d\n" % dead.pid)
    daemon = daemons(path, "--pidfile", pidfile)
    daemon.wait_for(READY)
    assert open(pidfile).read() == "%d\n" % daemon.proc.pid
    assert daemon.stop() == 0
