"""The daemon's stdout is a pipe nobody reads (a script that never reads it, a stuck log shipper, a
stalled journald): its own log and a watcher's StdoutStream output fill the pipe, and still commands
answer and children are replaced. Reading the pipe again, the log resumes, with a line counting the
log lines dropped meanwhile; watcher output is held back (the child waits), never dropped."""
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys

from tests.e2e.daemon_support import READY, call, write_config
from tests.support.wait import wait_in_thread

DROPPED = re.compile(r"(\d+) log lines dropped while the log output was blocked")

# Five processes that exit at once and are replaced at once: two log lines per cycle, hundreds a second.
CHURN = "[watcher:churn]\ncmd = true\nnumprocesses = 5\nmin_uptime = 0\n"
STEADY = "[watcher:steady]\ncmd = sleep 120\n"


def blocked_writing(pid):
    """The daemon's threads that wait in the kernel for room in a pipe (wchan names the kernel function)."""
    blocked = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/wchan" % (pid, tid)) as handle:
                if "pipe_write" in handle.read():
                    blocked.append(tid)
        except FileNotFoundError:
            pass
    return blocked


def wait_output_stuck(daemon):
    """Until the daemon's stdout pipe is full and a write of the daemon waits for room in it (no event says
    so: the kernel's view is polled)."""
    popen = daemon if isinstance(daemon, subprocess.Popen) else daemon.proc
    wait_in_thread(lambda: blocked_writing(popen.pid), 30, "a write of the daemon to block on its full stdout")


def steady_pid(endpoint):
    return call(endpoint, "list", name="steady")["pids"][0]


def assert_hub_serves(endpoint):
    """Commands answer and a killed process is replaced, with the pipe full."""
    assert call(endpoint, "status", name="steady")["status"] == "active"
    old = steady_pid(endpoint)
    os.kill(old, signal.SIGKILL)
    wait_in_thread(lambda: call(endpoint, "list", name="steady")["pids"] not in ([], [old]), 20,
                   "the killed process to be replaced")


def test_a_stuck_stdout_holds_neither_commands_nor_respawns_and_drops_are_counted(workdir, daemons):
    path, endpoint = write_config(workdir, CHURN + STEADY)
    daemon = daemons(path, "--log-output", "-")     # never read until the end
    wait_output_stuck(daemon)
    assert_hub_serves(endpoint)
    wait_in_thread(lambda: call(endpoint, "dstats")["log"]["dropped"] > 0, 60,
                   "log lines to be dropped (the queue behind the stuck output is full)")
    assert call(endpoint, "stop", name="churn")["status"] == "ok"     # logged, or dropped: the output is stuck
    # the output flows again: the backlog, then the count of what could not be kept, then what comes next
    daemon.wait_for("log lines dropped while the log output was blocked", timeout=30)
    assert call(endpoint, "stop", name="steady")["status"] == "ok"
    daemon.wait_for("steady stopped")
    dropped = call(endpoint, "dstats")["log"]["dropped"]
    assert sum(int(found) for found in DROPPED.findall(daemon.text())) == dropped
    assert READY in daemon.text()
    assert daemon.stop() == 0
    assert "exiting" in daemon.output[-1]


@contextlib.contextmanager
def unread_daemon(path):
    """gcircusd with a stdout nobody reads and stderr apart from it (the final word has somewhere to go)."""
    daemon = subprocess.Popen([sys.executable, "-m", "gcircus.cli.gcircusd", path],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield daemon
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        daemon.stdout.close()
        daemon.stderr.close()


def test_sigterm_with_a_stuck_stdout_exits_and_counts_what_it_could_not_write(workdir):
    path, endpoint = write_config(workdir, CHURN + STEADY)
    with unread_daemon(path) as daemon:
        wait_output_stuck(daemon)
        wait_in_thread(lambda: call(endpoint, "dstats")["log"]["dropped"] > 0, 60, "log lines to be dropped")
        daemon.send_signal(signal.SIGTERM)
        # it exits after a bounded wait for the output, not whenever someone reads the pipe
        assert daemon.wait(30) == 0
        errors = daemon.stderr.read().decode()
        assert re.fullmatch(r"gcircusd: \d+ log lines not written: the log output was blocked at exit\n",
                            errors), errors


# 500,000 lines (5.4 MB): far more than the pipes and the writer's buffer hold, so the child must wait
CHATTY = ("[watcher:chatty]\ncmd = {python} -c \"import sys; sys.stdout.writelines('line ' + str(n) + chr(10) "
          "for n in range(500000)); print('done')\"\nrespawn = false\nstdout_stream.class = StdoutStream\n")


def test_a_watcher_writing_to_a_stuck_stdout_waits_and_loses_nothing(workdir, daemons):
    path, endpoint = write_config(workdir, CHATTY.format(python=sys.executable) + STEADY)
    daemon = daemons(path)
    wait_output_stuck(daemon)
    assert_hub_serves(endpoint)
    assert call(endpoint, "status", name="chatty")["status"] == "active"   # blocked on its own full pipe
    daemon.wait_for("done", timeout=60)
    lines = [line for line in daemon.output if line.startswith("line ")]
    assert lines == ["line %d" % n for n in range(500000)]
    assert daemon.stop() == 0


def test_a_stalled_syslog_holds_nothing_and_the_drop_count_reaches_it(workdir, daemons):
    """A syslog socket nobody reads (journald stalled): the daemon's sends block once its queue is full."""
    address = os.path.join(workdir, "log.sock")
    syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    syslog.bind(address)
    try:
        path, endpoint = write_config(workdir, CHURN + STEADY)
        daemons(path, "--log-output", "syslog://%s?daemon" % address)
        wait_in_thread(lambda: call(endpoint, "dstats")["log"]["dropped"] > 0, 60, "log lines to be dropped")
        assert_hub_serves(endpoint)
        assert call(endpoint, "stop", name="churn")["status"] == "ok"
        syslog.settimeout(20)
        received = []

        def receive_until(text):
            while not any(text in message for message in received):
                received.append(syslog.recv(65536).decode())

        receive_until("log lines dropped while the log output was blocked")
        assert call(endpoint, "stop", name="steady")["status"] == "ok"
        receive_until("steady stopped")
        # facility daemon (3), level info (6) or warning (4): <30> and <28>
        assert all(message.startswith(("<30>", "<28>")) for message in received), received[:3]
        dropped = call(endpoint, "dstats")["log"]["dropped"]
        assert sum(int(found) for message in received for found in DROPPED.findall(message)) == dropped
    finally:
        syslog.close()


def test_sigterm_does_not_wait_for_a_watcher_stuck_on_stdout(workdir):
    """The pump of a watcher whose output waits on the stuck stdout is given up at stop (after the pipe
    drain time), not waited for as a slow stream is (30 s)."""
    path, endpoint = write_config(workdir, CHATTY.format(python=sys.executable).replace("500000", "5000000"))
    with unread_daemon(path) as daemon:
        wait_output_stuck(daemon)
        assert call(endpoint, "status", name="chatty")["status"] == "active"
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(15) == 0
        errors = daemon.stderr.read().decode()
        assert re.search(r"gcircusd: \d+ bytes of watcher output not written: stdout was blocked at exit\n",
                         errors), errors
