"""The suite's contenders: their configuration files and how each daemon is launched.

Every contender runs one program named ``w`` (``numprocesses``/``numprocs`` copies of one command) from a file
written into the run's temporary directory, with its control endpoint on a free loopback port:

- gcircus: ``python -m gcircus.cli.gcircusd`` (this venv, its modules byte-compiled first as pip would), its defaults;
- circus / circus-cd0.1: circusd 0.19 with ``check_delay = 1`` / ``0.1`` (Circus respawns and reaps only in the
  periodic ``manage_watchers`` call, every check_delay seconds; 1 s was asked for, written explicitly: the INI
  default of Circus 0.19 is 5 s, its Arbiter class default 1 s);
- supervisor / supervisor-ss0: supervisord 4.3 with its default ``startsecs = 1`` / with ``startsecs = 0``.

Output is discarded the same way for all: no stream for circus/gcircus (none of the commands write to stdout or
stderr anyway), ``stdout_logfile = NONE`` / ``stderr_logfile = NONE`` for Supervisor.
"""
import os
import signal
import subprocess
import sys
import time

import _common

GCIRCUS, CIRCUS, SUPERVISOR = "gcircus", "circus", "supervisor"

# name -> (kind, extra [circus] lines or [supervisord]/program lines)
CONTENDERS = {
    "gcircus": (GCIRCUS, {}),
    "circus": (CIRCUS, {"circus": "check_delay = 1"}),
    "circus-cd0.1": (CIRCUS, {"circus": "check_delay = 0.1"}),
    "supervisor": (SUPERVISOR, {}),
    "supervisor-ss0": (SUPERVISOR, {"program": "startsecs = 0"}),
}

CIRCUS_INI = """\
[circus]
endpoint = tcp://127.0.0.1:{port}
pubsub_endpoint = tcp://127.0.0.1:{pubsub_port}
statsd = false
{circus_extra}

[watcher:w]
cmd = {cmd}
numprocesses = {n}
warmup_delay = 0
{watcher_extra}
"""

SUPERVISOR_CONF = _common.SUPERVISORD_SECTION + """\
minfds = {minfds}

[inet_http_server]
port = 127.0.0.1:{port}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:w]
command = {cmd}
numprocs = {n}
process_name = %(program_name)s_%(process_num)s
autorestart = true
stdout_logfile = NONE
stderr_logfile = NONE
{program_extra}
"""

# a crash loop retries forever everywhere
CRASH_WATCHER = {CIRCUS: "max_retry = -1", GCIRCUS: "max_retry = -1", SUPERVISOR: "startretries = 1000000"}


# The floor of a respawn on this machine: a gevent hub with one libev child watcher per child that, on an exit,
# calls the C `_posixsubprocess.fork_exec` of `sleep` at once (no process object, no hooks, no events, no log).
# On SIGTERM it respawns no more, SIGKILLs its children and exits. str.format field: n.
FLOOR_SCRIPT = """
import os, signal, subprocess, gevent
from gcircus.supervision import spawner
loop = gevent.get_hub().loop
watchers = {{}}
def spawn():
    child = spawner.fork_exec(["sleep", "3600"], stdin=subprocess.DEVNULL, env={{}}, cwd="/tmp")
    watcher = loop.child(child.pid)
    watcher.start(exited, child.pid)
    watchers[child.pid] = watcher
def exited(pid):
    watchers.pop(pid).stop()
    spawn()
def stop():
    for pid, watcher in list(watchers.items()):
        watcher.stop()
        os.kill(pid, signal.SIGKILL)
    os._exit(0)
gevent.signal_handler(signal.SIGTERM, stop)
for _ in range({n}):
    spawn()
gevent.sleep(3600)
"""


def floor_argv(n):
    """The command line of the floor daemon with n children (this venv's Python, so the same gevent)."""
    return [sys.executable, "-c", FLOOR_SCRIPT.format(n=n)]


def kind(contender):
    return CONTENDERS[contender][0]


class Daemon:
    """One launched daemon: ``process`` (its Popen), ``started`` (time.monotonic() just before the Popen),
    ``rpc`` (kind, address) for the control clients, and its log files."""

    def __init__(self, contender, workdir, cmd, n, compare_bin, crash=False, extra_sections=None):
        self.contender = contender
        self.kind, extra = CONTENDERS[contender]
        self.workdir = workdir
        self.log_path = os.path.join(workdir, "daemon.log")
        port = _common.free_port()
        if self.kind == SUPERVISOR:
            config = os.path.join(workdir, "supervisord.conf")
            program_extra = "\n".join(line for line in (extra.get("program"), crash and CRASH_WATCHER[SUPERVISOR])
                                      if line)
            text = SUPERVISOR_CONF.format(workdir=workdir, port=port, cmd=cmd, n=n, program_extra=program_extra,
                                          minfds=max(1024, 4 * n + 256))
            argv = [os.path.join(compare_bin, "supervisord"), "-c", config]
            self.rpc = ("xmlrpc", "http://127.0.0.1:%d/RPC2" % port)
        else:
            config = os.path.join(workdir, "circus.ini")
            text = CIRCUS_INI.format(port=port, pubsub_port=_common.free_port(), cmd=cmd, n=n,
                                     circus_extra=extra.get("circus", ""),
                                     watcher_extra=CRASH_WATCHER[self.kind] if crash else "")
            log_options = ["--log-level", "warning", "--log-output", self.log_path + ".own"]
            if self.kind == CIRCUS:
                argv = [os.path.join(compare_bin, "circusd")] + log_options + [config]
            else:
                argv = _common.gcircusd_argv(*log_options, config)
            self.rpc = ("zmq", "tcp://127.0.0.1:%d" % port)
        if extra_sections is not None:      # more watchers/programs: extra_sections(kind) gives their text
            text += "\n" + extra_sections(self.kind)
        with open(config, "w") as handle:
            handle.write(text)
        self.argv = argv
        with open(self.log_path, "wb") as log:
            self.started = time.monotonic()
            self.process = _common.start_process(argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        self.pid = self.process.pid

    def terminate(self):
        """SIGTERM, the graceful stop every contender handles."""
        os.kill(self.pid, signal.SIGTERM)

    def exited(self):
        return self.process.poll() is not None      # waitpid(WNOHANG) on our child

    def kill(self, timeout=5.0):
        _common.kill_tree(self.pid, timeout)

    def tail(self, size=1500):
        """The end of the daemon's logs, for error messages."""
        text = []
        for path in (self.log_path, self.log_path + ".own", os.path.join(self.workdir, "supervisord.log")):
            try:
                with open(path, "rb") as handle:
                    text.append(handle.read()[-size:].decode("utf-8", "replace").strip())
            except OSError:
                pass
        return " | ".join(filter(None, text)) or "(empty logs)"
