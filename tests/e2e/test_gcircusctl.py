"""gcircusctl against a live gcircusd: every command's human output and exit code
(0 ok, 3 error reply, 1 timeout or client error, 2 usage), --json, the shell,
listen, CIRCUSCTL_ENDPOINT and CurveZMQ keys."""
import json
import os
import select
import signal
import subprocess
import sys

import psutil
import pytest

from gcircus import __version__
from gcircus.endpoints import curve
from gcircus.commands import NAMES

WATCHERS = "[watcher:web]\ncmd = sleep 120\nnumprocesses = 2\n[watcher:worker]\ncmd = sleep 121\n"


@pytest.fixture
def daemon(gcircusd):
    return gcircusd(WATCHERS)


@pytest.fixture
def ctl(daemon, gcircusctl):
    def run(*args, **kw):
        return gcircusctl(*args, endpoint=daemon.endpoint, **kw)
    return run


def expect(result, code, out=None, err=None):
    assert result.code == code, (result.code, result.out, result.err)
    if out is not None:
        assert result.out == out, result.out
    if err is not None:
        assert err in result.err, result.err
    return result


def pids(ctl, name):
    return [int(p) for p in expect(ctl("list", name), 0).out.split(",") if p]


def test_help_version_and_usage_errors(gcircusctl):
    expect(gcircusctl("--version"), 0, "gcircusctl %s" % __version__)
    helped = expect(gcircusctl("--help"), 0)
    lines = helped.out.splitlines()
    assert lines[0] == "usage: gcircusctl [options] command [args]"
    listed = [line.split()[0] for line in lines[lines.index("Commands:") + 1:] if line.startswith("  ")]
    assert listed == sorted(NAMES)
    assert expect(gcircusctl("--help", "add"), 0).out.splitlines()[0] == "Create a new watcher"
    assert expect(gcircusctl("add", "--help"), 0).out.startswith("usage: gcircusctl add")
    expect(gcircusctl("foo"), 2, "", "unknown command: foo")
    expect(gcircusctl("incr"), 2, "", "the following arguments are required: name")
    expect(gcircusctl("--timeout"), 2, "")
    expect(gcircusctl("--help", "nope"), 2, err="unknown command: nope")


def test_client_errors_are_exit_1_with_a_message(gcircusctl):
    expect(gcircusctl("list", endpoint="foo"), 1, "", "cannot connect to foo")
    import importlib.util
    if not any(importlib.util.find_spec(name) for name in ("paramiko", "pexpect")):
        # the usual install: --ssh needs the ssh extra, and says so
        result = expect(gcircusctl("--ssh", "nobody@127.0.0.1:1", "list", endpoint="tcp://127.0.0.1:5"), 1, "")
        assert "gcircus[ssh]" in result.err and "Traceback" not in result.err


def test_timeout_is_exit_1(gcircusctl, workdir):
    result = gcircusctl("--timeout", "0.3", "list", endpoint="ipc://%s/nobody.sock" % workdir)
    expect(result, 1, "", "Timed out.")
    assert "--timeout" in result.err      # the hint


def test_reading_commands(ctl, daemon):
    expect(ctl("numwatchers"), 0, "2")
    expect(ctl("list"), 0, "web,worker")
    web = pids(ctl, "web")
    assert len(web) == 2
    expect(ctl("status"), 0, "web: active\nworker: active")
    expect(ctl("status", "web"), 0, "active")
    expect(ctl("status", "nope"), 3, "", "error: program nope not found")
    expect(ctl("numprocesses"), 0, "3")
    expect(ctl("numprocesses", "web"), 0, "2")
    expect(ctl("get", "web", "numprocesses", "env"), 0, "numprocesses: 2\nenv: ")
    expect(ctl("get", "web", "bogus"), 3, "", "'bogus' option not found")
    options = expect(ctl("options", "web"), 0).out.splitlines()
    assert options == sorted(options) and "cmd: sleep 120" in options and "numprocesses: 2" in options
    glob = expect(ctl("globaloptions"), 0).out.splitlines()
    assert glob[0] == "endpoint: %s" % daemon.endpoint and "check_delay: 5.0" in glob
    expect(ctl("globaloptions", "check_delay"), 0, "check_delay: 5.0")
    stats = expect(ctl("stats", "web"), 0).out.splitlines()
    assert stats[0] == "web:" and len(stats) == 3
    first = stats[1].split()
    assert int(first[0].rstrip(":")) in web and int(first[1]) in web and first[2] == "sleep"
    single = expect(ctl("stats", "web", str(web[0])), 0).out
    assert single.startswith("%d: %d  sleep " % (web[0], web[0]))
    assert expect(ctl("stats"), 0).out.splitlines()[0] == "web:"
    dstats = expect(ctl("dstats"), 0).out.splitlines()
    assert dstats[0] == "Main Process:" and dstats[1].split()[0] == str(daemon.proc.pid)
    expect(ctl("listsockets"), 0, "")
    expect(ctl("ipython"), 0, "error: ipython is not available in gcircus")


def test_changing_commands(ctl, daemon):
    expect(ctl("incr", "web"), 0, "3")                       # a number even without --waiting
    expect(ctl("incr", "web", "2", "--waiting"), 0, "5")
    expect(ctl("decr", "web", "3", "--waiting"), 0, "2")
    expect(ctl("add", "test2", "sleep", "122"), 0, "ok")
    expect(ctl("status", "test2"), 0, "stopped")
    expect(ctl("add", "--start", "test3", "sleep 123"), 0, "ok")
    expect(ctl("status", "test3"), 0, "active")
    expect(ctl("add", "test3", "sleep 1"), 3, "", "already exist")
    expect(ctl("start", "test2", "--waiting"), 0, "ok")
    expect(ctl("stop", "test*", "--waiting"), 0, "ok")
    expect(ctl("status"), 0, "test2: stopped\ntest3: stopped\nweb: active\nworker: active")
    expect(ctl("start", "--match", "regex", "^test", "--waiting"), 0, "ok")
    before = pids(ctl, "worker")
    expect(ctl("restart", "worker", "--waiting"), 0, "ok")
    assert pids(ctl, "worker") != before
    before = pids(ctl, "web")
    expect(ctl("reload", "web", "--waiting"), 0, "ok")
    after = pids(ctl, "web")
    assert len(after) == 2 and not set(before) & set(after)
    expect(ctl("reload", "--sequential", "--waiting", "--timeout", "30"), 2)   # global flags come first
    expect(ctl("reload", "--sequential", "--waiting"), 0, "ok")
    expect(ctl("signal", "web", "hup"), 0, "ok")
    expect(ctl("signal", "web", str(pids(ctl, "web")[0]), "SIGCONT"), 0, "ok")
    expect(ctl("signal", "web", "bogus"), 3, "", "'signum': invalid signal 'bogus'")
    before = pids(ctl, "worker")
    expect(ctl("kill", "worker", "--signum", "KILL", "--waiting"), 0, "ok")
    assert pids(ctl, "worker") != before and len(pids(ctl, "worker")) == 1
    expect(ctl("set", "web", "env", "A=1,B=2", "numprocesses", "3", "--waiting"), 0, "ok")
    expect(ctl("get", "web", "env", "numprocesses"), 0, "env: A=1,B=2\nnumprocesses: 3")
    expect(ctl("set", "web", "numprocesses", "many"), 2, "")
    expect(ctl("set", "web", "nope", "1"), 3, "", "unknown key 'nope'")
    expect(ctl("rm", "test3", "--waiting"), 0, "ok")
    orphan = pids(ctl, "test2")
    expect(ctl("rm", "--nostop", "test2"), 0, "ok")
    expect(ctl("list"), 0, "web,worker")
    assert all(psutil.pid_exists(pid) for pid in orphan)      # --nostop: left running, as asked
    for pid in orphan:
        os.kill(pid, signal.SIGKILL)
    expect(ctl("reloadconfig", "--waiting"), 0, "ok")
    expect(ctl("stop", "--waiting"), 0, "ok")
    expect(ctl("status"), 0, "web: stopped\nworker: stopped")
    expect(ctl("start", "--waiting"), 0, "ok")
    expect(ctl("quit", "--waiting"), 0, "ok")
    assert daemon.proc.wait(30) == 0


def test_json_output_and_exit_codes(ctl):
    reply = json.loads(expect(ctl("--json", "numwatchers"), 0).out)
    assert reply["status"] == "ok" and reply["numwatchers"] == 2
    failed = expect(ctl("--json", "status", "nope"), 3)          # Circus exits 0 here
    assert json.loads(failed.out)["errno"] == 3
    pretty = expect(ctl("--json", "--prettify", "list"), 0).out
    assert pretty.startswith("{\n  ") and json.loads(pretty)["watchers"] == ["web", "worker"]


def test_endpoint_from_the_environment(daemon, gcircusctl):
    expect(gcircusctl("numwatchers", env={"CIRCUSCTL_ENDPOINT": daemon.endpoint}), 0, "2")


def test_interactive_shell(ctl):
    result = expect(ctl(stdin="numwatchers\nhelp\nlist web worker\nbogus\n"), 0)
    lines = result.out.splitlines()
    assert lines[0] == "gcircusctl %s" % __version__
    assert lines[1:3] == ["web: active", "worker: active"]          # the shell starts with status
    assert "(gcircusctl) 2" in result.out
    assert "Documented commands (type help <topic>):" in result.out
    assert "*** unknown command: bogus" in result.out
    assert "unrecognized arguments: worker" in result.err          # a usage error does not end the shell


def test_listen_prints_events(daemon, ctl):
    listener = subprocess.Popen(
        [sys.executable, "-m", "gcircus.cli.gcircusctl", "--endpoint", daemon.pubsub, "listen", "watcher.web."],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        # zmq's slow joiner: keep producing events until the listener prints one
        for _attempt in range(50):
            expect(ctl("incr", "web", "--waiting"), 0)
            expect(ctl("decr", "web", "--waiting"), 0)
            ready, _, _ = select.select([listener.stdout], [], [], 0.2)
            if ready:
                line = listener.stdout.readline()
                break
        topic, _, body = line.rstrip("\n").partition(": ")
        assert topic in ("b'watcher.web.spawn'", "b'watcher.web.kill'", "b'watcher.web.reap'"), line
        assert json.loads(body[2:-1])["process_pid"] > 0
    finally:
        listener.send_signal(signal.SIGTERM)
        assert listener.wait(10) == 0


def test_curve_keys_on_the_command_line(gcircusd, gcircusctl, workdir):
    server_public, server_secret = curve.create_keypair(os.path.join(workdir, "server"), "server")
    _, client_secret = curve.create_keypair(os.path.join(workdir, "clients"), "admin")
    daemon = gcircusd(WATCHERS, "curve_secret_key = %s\ncurve_allowed_keys = %s\n"
                      % (server_secret, os.path.join(workdir, "clients")))
    keys = ("--curve-server-key", server_public, "--curve-client-key", client_secret)
    expect(gcircusctl(*keys, "numwatchers", endpoint=daemon.endpoint), 0, "2")
    expect(gcircusctl("--timeout", "0.5", "numwatchers", endpoint=daemon.endpoint), 1, "", "Timed out.")
    daemon.wait_for("CurveZMQ: refused a connection")


def test_restart_without_name_restarts_the_daemon_in_place(daemon, ctl):
    before = pids(ctl, "web")
    expect(ctl("restart"), 0, "ok")
    after = []
    for _attempt in range(100):           # the new arbiter binds the endpoint again
        result = ctl("--timeout", "0.2", "list", "web")
        if result.code == 0:
            after = [int(p) for p in result.out.split(",")]
            break
    assert len(after) == 2 and not set(after) & set(before)
    assert daemon.proc.poll() is None      # same daemon process
