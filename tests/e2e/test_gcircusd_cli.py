"""gcircusd's command line: --daemon (everything refusable is refused before detaching,
inherited fds closed), pidfile from the command line or [circus], --version, --backend,
and the example configuration shipped in examples/."""
import os
import subprocess
import sys

import psutil
import pytest

import gcircus
from gcircus.config import load_config
from tests.e2e.daemon_support import (
    READY,
    Daemon,
    call,
    end_process,
    settled_children,
    wait_answering,
    wait_for_file,
    write_config,
)

EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "examples", "gcircus.ini")


def read(path):
    with open(path) as handle:
        return handle.read()


def gcircusd(*args, **kw):
    """Run the gcircusd command to completion (the launcher, with --daemon)."""
    return subprocess.run([sys.executable, "-m", "gcircus.cli.gcircusd", *args],
                          capture_output=True, text=True, timeout=30, check=False, **kw)


@pytest.fixture
def detached():
    """Pids of daemons a test started with --daemon: terminated at teardown if still there."""
    pids = []
    yield pids
    for pid in pids:
        end_process(pid)


def launch_daemon(workdir, detached, *extra, body="[watcher:w]\ncmd = sleep 120\n", **kw):
    """gcircusd --daemon with a pidfile and a log file; returns (pid, endpoint, log) once it answers."""
    path, endpoint = write_config(workdir, body)
    pidfile, log = os.path.join(workdir, "d.pid"), os.path.join(workdir, "d.log")
    launcher = gcircusd(path, "--daemon", "--pidfile", pidfile, "--log-output", log, *extra, **kw)
    assert launcher.returncode == 0, launcher.stderr
    wait_answering(endpoint, log)
    pid = int(read(pidfile))
    detached.append(pid)
    wait_for_file(log, lambda text: READY in text)    # the watchers are started
    return pid, endpoint, log


def test_daemon_mode_detaches_writes_the_pidfile_and_quits_cleanly(workdir, detached):
    pid, endpoint, _ = launch_daemon(workdir, detached)
    assert call(endpoint, "numwatchers")["numwatchers"] == 1
    assert read(os.path.join(workdir, "d.pid")) == "%d\n" % pid
    # its own session (setsid) and not its leader (second fork): no controlling terminal, ever
    assert os.getsid(pid) != os.getsid(0) and os.getsid(pid) != pid
    process = psutil.Process(pid)
    assert all(os.readlink("/proc/%d/fd/%d" % (pid, fd)) == os.devnull for fd in (0, 1, 2))
    children = settled_children(pid)
    assert [c.cmdline() for c in children] == [["sleep", "120"]]
    assert call(endpoint, "quit", waiting=True)["status"] == "ok"
    process.wait(30)
    assert not psutil.wait_procs(children, timeout=5)[1]
    assert not os.path.exists(os.path.join(workdir, "d.pid"))


def test_daemon_mode_closes_inherited_file_descriptors(workdir, detached):
    marker = os.path.join(workdir, "inherited.txt")
    with open(marker, "w") as inherited:
        pid, _, log = launch_daemon(workdir, detached, pass_fds=(inherited.fileno(),))
    targets = _open_files(pid)
    assert marker not in targets, "the daemon kept an fd it inherited: %s" % targets
    assert log in targets       # its own log file, opened after the sweep


def _open_files(pid):
    """What pid's descriptors point at; one the daemon closes while we list them (a spawn's status pipe, a
    /proc read) is simply not there."""
    targets = []
    directory = "/proc/%d/fd" % pid
    for fd in os.listdir(directory):
        try:
            targets.append(os.readlink(os.path.join(directory, fd)))
        except FileNotFoundError:
            continue
    return targets


def _refusals(workdir):
    """(name, extra args, config body, expected stderr text) of --daemon launches that must fail."""
    missing = os.path.join(workdir, "nodir")
    busy = os.path.join(workdir, "busy.pid")
    with open(busy, "w") as handle:
        handle.write("%d\n" % os.getpid())    # a live process: this test
    return [
        ("bad_config", [], "umask = 9z\n[watcher:w]\ncmd = sleep 120\n",
         "[circus] umask: invalid octal umask '9z'"),
        ("pidfile_directory", ["--pidfile", os.path.join(missing, "d.pid")], "",
         "directory %s does not exist" % missing),
        ("pidfile_in_use", ["--pidfile", busy], "", "names a running process (pid %d)" % os.getpid()),
        ("log_directory", ["--log-output", os.path.join(missing, "d.log")], "",
         "log output %r: directory %s does not exist" % (os.path.join(missing, "d.log"), missing)),
        ("logger_config", ["--logger-config", os.path.join(workdir, "nope.json")], "",
         "logger config %r does not exist" % os.path.join(workdir, "nope.json")),
    ]


@pytest.mark.parametrize("case", ["bad_config", "pidfile_directory", "pidfile_in_use", "log_directory",
                                  "logger_config"])
def test_daemon_mode_refuses_before_detaching(workdir, case):
    """The launching process reports the problem and exits 1; nothing is left running."""
    _, extra, body, expected = next(c for c in _refusals(workdir) if c[0] == case)
    path, _ = write_config(workdir, body or "[watcher:w]\ncmd = sleep 120\n")
    launcher = gcircusd(path, "--daemon", "--log-output", os.path.join(workdir, "d.log"), *extra)
    assert launcher.returncode == 1, (launcher.returncode, launcher.stderr)
    assert launcher.stderr.startswith("gcircusd: ") and expected in launcher.stderr, launcher.stderr
    assert "Traceback" not in launcher.stderr
    running = [p.pid for p in psutil.process_iter(["cmdline"]) if path in (p.info["cmdline"] or [])]
    assert not running


def test_daemon_mode_reports_a_start_failure_after_detaching(workdir):
    """Some failures only show once the daemon runs (an endpoint that cannot be bound): the launcher
    waits for the daemon's word, so it still exits 1 with the reason instead of 0."""
    path = os.path.join(workdir, "unbindable.ini")
    with open(path, "w") as handle:
        handle.write("[circus]\nendpoint = tcp://192.0.2.1:5555\npubsub_endpoint = ipc://%s/pub.sock\n"
                     "[watcher:w]\ncmd = sleep 120\n" % workdir)    # 192.0.2.1: TEST-NET, never local
    launcher = gcircusd(path, "--daemon", "--log-output", os.path.join(workdir, "d.log"))
    assert launcher.returncode == 1, (launcher.returncode, launcher.stderr)
    assert "gcircusd: cannot start: cannot bind tcp://192.0.2.1:5555" in launcher.stderr, launcher.stderr
    running = [p.pid for p in psutil.process_iter(["cmdline"]) if path in (p.info["cmdline"] or [])]
    assert not running


def test_pidfile_from_the_circus_section(workdir):
    pidfile = os.path.join(workdir, "from-ini.pid")
    path, _ = write_config(workdir, "pidfile = %s\n[watcher:w]\ncmd = sleep 120\n" % pidfile)
    daemon = Daemon(path)
    try:
        daemon.wait_for(READY)
        assert read(pidfile) == "%d\n" % daemon.proc.pid
        assert daemon.stop() == 0
        assert not os.path.exists(pidfile)
    finally:
        daemon.kill()


def test_pidfile_in_a_missing_directory_is_refused(workdir):
    missing = os.path.join(workdir, "nodir")
    path, _ = write_config(workdir, "pidfile = %s/d.pid\n[watcher:w]\ncmd = sleep 120\n" % missing)
    result = gcircusd(path)
    assert result.returncode == 1
    assert "gcircusd: pidfile %s/d.pid: directory %s does not exist" % (missing, missing) in result.stderr
    assert "Traceback" not in result.stderr


def test_version():
    result = gcircusd("--version")
    assert result.returncode == 0 and result.stdout.strip() == gcircus.__version__


def test_backend_gevent_is_accepted(workdir):
    out = os.path.join(workdir, "out.log")
    path, _ = write_config(workdir, "[watcher:w]\ncmd = echo through-the-backend\nrespawn = false\n"
                                           "stdout_stream.class = FileStream\nstdout_stream.filename = %s\n"
                                           % out)
    daemon = Daemon(path, "--backend", "gevent")
    try:
        daemon.wait_for(READY)
        wait_for_file(out, lambda text: text == "through-the-backend\n")
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def test_an_unknown_backend_is_refused(workdir):
    path, _ = write_config(workdir, "[watcher:w]\ncmd = sleep 120\n")
    result = gcircusd(path, "--backend", "asyncio")
    assert result.returncode == 2
    assert "argument --backend: invalid choice: 'asyncio' (choose from 'gevent', 'thread')" in result.stderr


def test_the_shipped_example_configuration_loads_cleanly():
    """Loaded only: running it would bind 127.0.0.1:8080 and :5555, which may be taken here."""
    config = load_config(EXAMPLE)
    assert config["errors"] == [] and config["warnings"] == []
    assert [w["name"] for w in config["watchers"]] == ["flaky", "ticker", "web"]
    assert [s["name"] for s in config["sockets"]] == ["web"]



def test_the_example_uses_a_private_control_socket_that_the_readme_points_gcircusctl_to():
    """The safe setup (issue 13 item 14): an ipc socket only its owner may use, and the README's
    `export GCIRCUSCTL_ENDPOINT=...` names that socket, so its `gcircusctl status` reaches the example."""
    circus = load_config(EXAMPLE)["circus"]
    assert circus["endpoint"].startswith("ipc://") and circus["pubsub_endpoint"].startswith("ipc://")
    assert circus["endpoint_mode"] == 0o600
    readme = read(os.path.join(os.path.dirname(EXAMPLE), os.pardir, "README.md"))
    assert "GCIRCUSCTL_ENDPOINT=%s`" % circus["endpoint"] in readme
