"""SIGKILL of the daemon (or the OOM killer), then a restart: the restarted daemon never runs a second set beside
the processes its predecessor left, and the port one of them held is free for it (issue 13 item 12).

gcircusd records every process it starts (pid and kernel start time); the next gcircusd of the same configuration
SIGKILLs the recorded ones still running, with their descendants, before it binds or starts anything.
``die_with_daemon = true`` has the kernel kill them the moment the daemon dies instead (a parent-death signal).
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


# the slow spawn path (`executable` renames argv[0]) and another uid (only root can switch) are recorded and
# stopped (or given the parent-death signal) as well
def others(extra=""):
    return """
[watcher:renamed]
cmd = renamed-sleep 120
executable = /bin/sleep
{extra}
""".format(extra=extra) + ("""
[watcher:unprivileged]
cmd = sleep 120
uid = nobody
{extra}
""".format(extra=extra) if os.geteuid() == 0 else "")


OTHER_COUNT = 2 if os.geteuid() == 0 else 1
# a process with a child of its own: the whole tree is a leftover
TREE = """
[watcher:tree]
cmd = sh -c "sleep 120 & wait"
"""


def started(gcircusd, body, count):
    daemon = gcircusd(body)
    call(daemon.endpoint, "status", name="web")     # answering: every watcher is started
    processes = daemon.children()
    assert len(processes) == count, [p.cmdline() for p in processes]
    return daemon, processes


def gone(process):
    """Exited (a zombie of ours counts: tests run as a subreaper, and the dead wait to be collected)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def sigkill(daemon):
    daemon.proc.kill()
    daemon.proc.wait(10)


def test_a_restarted_daemon_stops_what_a_sigkilled_one_left_before_it_starts_anything(gcircusd, workdir):
    port = free_port()
    count = NUMPROCESSES + OTHER_COUNT + 2
    daemon, processes = started(gcircusd, config(workdir, port) + others() + TREE, count)
    sigkill(daemon)
    assert not [p.pid for p in processes if gone(p)], "the recorded processes outlive the daemon until a restart"

    restarted = Daemon(daemon.config)
    try:
        restarted.wait_for(READY)
        assert "SIGKILLed %d process(es) a previous gcircusd" % (count - 1) in restarted.text()   # + 1 descendant
        assert [p.pid for p in processes if not gone(p)] == []
        assert call(daemon.endpoint, "status", name="web")["status"] == "active"   # the port was free again
        fresh = restarted.children()
        assert len(fresh) == count
        assert not {p.pid for p in fresh} & {p.pid for p in processes}
    finally:
        restarted.kill()
    for process in processes:
        try:
            process.wait(0)     # collected: a subreaper's zombies are its own
        except psutil.Error:
            pass


def test_a_second_daemon_of_the_same_configuration_leaves_the_running_ones_processes_alone(gcircusd, workdir):
    daemon, processes = started(gcircusd, config(workdir, free_port()), NUMPROCESSES)
    second = Daemon(daemon.config)
    try:
        second.wait_for("another gcircusd of this configuration holds")
        second.wait_for(READY)      # its claim is over: had it taken the record, the first's processes were dead
    finally:
        second.kill()
    assert [p.pid for p in processes if gone(p)] == []
    assert {p.pid for p in daemon.children()} == {p.pid for p in processes}


def test_die_with_daemon_has_the_kernel_take_the_processes_along(gcircusd, workdir):
    extra = "die_with_daemon = true"
    daemon, processes = started(gcircusd, config(workdir, free_port(), extra) + others(extra),
                                NUMPROCESSES + OTHER_COUNT)
    sigkill(daemon)
    _, alive = psutil.wait_procs(processes, timeout=10)
    assert not alive, "outlived the daemon: %s" % [p.pid for p in alive]


def test_processes_outlive_a_sigkilled_daemon_by_default(gcircusd, workdir):
    daemon, processes = started(gcircusd, config(workdir, free_port()), NUMPROCESSES)
    for process in processes:       # SIGUSR1 would kill one that has not set its handler yet
        wait_for_file(os.path.join(workdir, "ready-%d" % process.pid), lambda text: text == "ready")
    sigkill(daemon)
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
