"""SIGKILL of the daemon (or the OOM killer): its processes die with it, so a restarted daemon starts exactly its
own set, and the port a process held is free again (issue 13 item 12).

Each process gets a parent-death signal (SIGKILL, through `setpriv --pdeathsig`): the kernel kills it when the
daemon dies, whatever its uid. ``die_with_daemon = false`` lets a watcher's processes outlive the daemon instead.
"""
import os
import signal

import psutil

from tests.conftest import child_cmd
from tests.e2e.daemon_support import READY, Daemon, call, wait_for_file
from tests.integration.conftest import free_port

NUMPROCESSES = 3


def config(workdir, port, extra=""):
    return """
[socket:web]
host = 127.0.0.1
port = {port}

[watcher:web]
cmd = {worker}
numprocesses = {n}
use_sockets = true
{extra}
""".format(port=port, worker=child_cmd("alive_on_usr1", workdir), n=NUMPROCESSES, extra=extra)


# the parent-death signal is set on the slow path (`executable` renames argv[0], which an exec wrapper cannot
# do) as well, and kept across the switch to another uid (only root can switch)
OTHERS = """
[watcher:renamed]
cmd = renamed-sleep 120
executable = /bin/sleep
""" + ("""
[watcher:unprivileged]
cmd = sleep 120
uid = nobody
""" if os.geteuid() == 0 else "")
OTHER_COUNT = 2 if os.geteuid() == 0 else 1


def started(gcircusd, body, count):
    daemon = gcircusd(body)
    call(daemon.endpoint, "status", name="web")     # answering: every watcher is started
    processes = daemon.children()
    assert len(processes) == count, [p.cmdline() for p in processes]
    return daemon, processes


def test_sigkilled_daemon_takes_its_processes_along_and_a_restart_does_not_double_them(gcircusd, workdir):
    port = free_port()
    daemon, processes = started(gcircusd, config(workdir, port) + OTHERS, NUMPROCESSES + OTHER_COUNT)
    daemon.proc.kill()
    daemon.proc.wait(10)
    gone, alive = psutil.wait_procs(processes, timeout=10)
    assert not alive, "outlived the daemon: %s" % [p.pid for p in alive]

    restarted = Daemon(daemon.config)
    try:
        restarted.wait_for(READY)
        assert call(daemon.endpoint, "status", name="web")["status"] == "active"   # the port was free again
        fresh = restarted.children()
        assert len(fresh) == NUMPROCESSES + OTHER_COUNT
        assert not {p.pid for p in fresh} & {p.pid for p in processes}
    finally:
        restarted.kill()


def test_die_with_daemon_false_lets_processes_outlive_the_daemon(gcircusd, workdir):
    daemon, processes = started(gcircusd, config(workdir, free_port(), extra="die_with_daemon = false"),
                                NUMPROCESSES)
    for process in processes:       # SIGUSR1 would kill one that has not set its handler yet
        wait_for_file(os.path.join(workdir, "ready-%d" % process.pid), lambda text: text == "ready")
    daemon.proc.kill()
    daemon.proc.wait(10)
    try:
        for process in processes:
            os.kill(process.pid, signal.SIGUSR1)        # a process with a SIGKILL pending never handles it
            wait_for_file(os.path.join(workdir, "alive-%d" % process.pid), lambda text: text == "alive")
    finally:
        for process in processes:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
