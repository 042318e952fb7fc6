"""gcircus-top and Circus 0.19's circus-top reading our stats stream: real terminals
(a pty), real subprocesses, waiting on what they print."""
import fcntl
import os
import shutil
import struct
import subprocess
import sys
import termios
import time

import gevent
import gevent.socket
import pytest

from gcircus.sockets import CircusSocket
from gcircus.stats.top import TopBoard
from gcircus.watcher import Watcher
from tests.conftest import child_cmd
from tests.integration.conftest import free_port

CIRCUS_TOP = shutil.which("circus-top", path=os.path.dirname(sys.executable))


class Terminal:
    """A program running on a pseudo-terminal (50x160); collects everything it draws."""

    def __init__(self, argv):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        env = dict(os.environ, TERM="xterm", LINES="50", COLUMNS="160")
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                        start_new_session=True)
        os.close(slave)
        os.set_blocking(master, False)
        self.master = master
        self.output = b""

    def wait_for(self, predicate, timeout=15, what="output"):
        deadline = time.monotonic() + timeout
        while not predicate(self.output):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail("no %s within %ss; the terminal shows: %r" % (what, timeout, self.output[-2000:]))
            try:
                gevent.socket.wait_read(self.master, timeout=min(remaining, 0.5))
            except gevent.socket.timeout:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:        # EIO: the program ended and the pty closed
                chunk = b""
            if not chunk:
                pytest.fail("the program ended before its %s; it showed %r" % (what, self.output[-2000:]))
            self.output += chunk

    def type(self, text):
        os.write(self.master, text.encode())

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        os.close(self.master)


@pytest.fixture
def three_workers(run_arbiter, lines):
    """An arbiter with a 3-process watcher and a socket, streaming stats; (endpoint, pids, socket)."""
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    watcher = Watcher("workers", child_cmd("ready_then_sleep"), numprocesses=3,
                      stdout_stream={"stream": lines})
    sock = CircusSocket("web", host="127.0.0.1", port=0)
    run_arbiter([watcher], stats_endpoint=endpoint, stats_interval=0.5, sockets=[sock])
    lines.wait_for("ready", 3)
    return endpoint, sorted(watcher.processes), sock


@pytest.mark.skipif(CIRCUS_TOP is None, reason="Circus 0.19 is not installed (pip install circus==0.19.0)")
def test_circus_0_19_circus_top_shows_our_stream(three_workers):
    endpoint, pids, sock = three_workers
    terminal = Terminal([CIRCUS_TOP, "--endpoint", endpoint])
    try:
        terminal.wait_for(lambda out: b"Circus Top" in out and all(str(pid).encode() in out for pid in pids)
                          and b"(avg)" in out and b"127.0.0.1:%d" % sock.port in out,
                          what="the three pids, their aggregate and the socket")
        assert b"workers" in terminal.output and b"(circusd)" in terminal.output
    finally:
        terminal.close()


def test_gcircus_top_curses_shows_pids_and_quits_on_q(three_workers):
    endpoint, pids, sock = three_workers
    terminal = Terminal([sys.executable, "-m", "gcircus.cli.top", "--endpoint", endpoint])
    try:
        terminal.wait_for(lambda out: b"gcircus top" in out and all(str(pid).encode() in out for pid in pids)
                          and b"(older)" in out, what="the three pids")
        terminal.type("q")
        deadline = time.monotonic() + 10
        while terminal.process.poll() is None and time.monotonic() < deadline:
            gevent.sleep(0.05)    # a polled exit (the test's own subprocess has no hub watcher)
        assert terminal.process.returncode == 0
    finally:
        terminal.close()


def test_gcircus_top_prints_plain_snapshots_when_not_on_a_tty(three_workers):
    endpoint, pids, sock = three_workers
    import gevent.subprocess
    result = gevent.subprocess.run(
        [sys.executable, "-m", "gcircus.cli.top", "--endpoint", endpoint, "--iterations", "2",
         "--refresh", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    last = text.strip().split("== ")[-1]
    assert "gcircus top" in last and "workers" in last
    for pid in pids:
        assert "\n  %d " % pid in last
    assert "(avg)" in last and "(sum)" in last and "(older)" in last
    assert "%d (circusd)" % os.getpid() in last
    assert "127.0.0.1:%d" % sock.port in last


def test_board_layout_sorting_and_expiry():
    board = TopBoard(process_timeout=3)
    assert board.lines()[-1] == "*** Waiting for data ***"
    for pid, cpu in ((11, 9.0), (12, 10.0), (13, "N/A")):
        board.update("web", str(pid), {"pid": pid, "cpu": cpu, "mem": 1.5, "age": 2.0, "name": None}, now=0)
    board.update("web", None, {"pid": [11, 12, 13], "cpu": "N/A", "mem": 4.5, "age": 2.0}, now=0)
    board.update("circusd-stats", None, {"pid": [], "cpu": 0.0, "mem": 0, "age": "N/A"}, now=0)
    board.update("sockets", "5", {"fd": 5, "reads": 3, "address": "127.0.0.1:80"}, now=0)
    board.update("sockets", None, {"addresses": ["127.0.0.1:80"], "reads": 3}, now=0)
    lines = board.lines(100)
    assert "circusd-stats" not in lines
    rows = [line.split() for line in lines[lines.index("web") + 2:lines.index("web") + 6]]
    assert [row[0] for row in rows[:3]] == ["12", "11", "13"]        # numeric cpu order, N/A last
    assert rows[3] == ["N/A", "(avg)", "4.50", "(sum)", "2.00", "(older)"]
    assert lines[lines.index("sockets") + 2].split() == ["127.0.0.1:80", "3"]
    board.update("web", "12", {"pid": 12, "cpu": 1.0, "mem": 1.5, "age": 3.0, "name": None}, now=2)
    board.expire(now=4)
    assert set(board.watchers) == {"web"} and set(board.watchers["web"]) == {"12"}
