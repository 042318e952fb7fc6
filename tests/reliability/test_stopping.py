"""Stopping pre-empts waiting: SIGTERM or quit during a long warmup_delay (a watcher's or
the arbiter's) or during a crash-loop backoff ends the daemon at once, leaving no child;
nothing is spawned once the stop has begun."""
import signal

import psutil
import pytest

from tests.e2e.daemon_support import call, write_config
from tests.support.wait import wait_until

LONG = 3600          # a pause no test could wait out
STOP_DEADLINE = 30   # generous: a stop takes well under a second here


def _children(daemon, count):
    return wait_until(lambda: len(daemon.children()) >= count and daemon.children(), 20,
                      "%d children of the daemon" % count, detail=daemon.text)


def _stops_cleanly(daemon, children, how):
    if how == "quit":
        assert call(daemon.endpoint, "quit")["status"] == "ok"
        code = daemon.proc.wait(STOP_DEADLINE)
    else:
        code = daemon.stop(signal.SIGTERM, timeout=STOP_DEADLINE)
    assert code == 0, daemon.text()
    assert not psutil.wait_procs(children, timeout=5)[1]
    assert not daemon.children()


@pytest.fixture
def start(workdir, daemons):
    def run(body, circus_extra=""):
        path, endpoint = write_config(workdir, body, circus_extra=circus_extra)
        daemon = daemons(path)
        daemon.endpoint = endpoint
        return daemon
    return run


@pytest.mark.parametrize("how", ["sigterm", "quit"])
def test_stop_interrupts_a_watcher_warmup(start, how):
    daemon = start("[watcher:slow]\ncmd = sleep 120\nnumprocesses = 3\nwarmup_delay = %d\n" % LONG)
    children = _children(daemon, 1)            # the second waits for the warmup
    _stops_cleanly(daemon, children, how)
    assert len(children) == 1


def test_sigterm_interrupts_the_arbiter_warmup(start):
    daemon = start("[watcher:a]\ncmd = sleep 120\npriority = 2\n[watcher:b]\ncmd = sleep 121\n",
                   circus_extra="warmup_delay = %d\n" % LONG)
    children = _children(daemon, 1)
    assert [c.cmdline() for c in children] == [["sleep", "120"]]     # b waits for the warmup
    _stops_cleanly(daemon, children, "sigterm")


def test_sigterm_interrupts_a_crash_loop_backoff(start):
    daemon = start("[watcher:crash]\ncmd = sh -c 'exit 3'\nmax_retry = -1\nmin_uptime = 60\n"
                   "backoff_base = %d\nbackoff_max = %d\n[watcher:steady]\ncmd = sleep 120\n" % (LONG, LONG))
    daemon.wait_for("Arbiter now waiting for commands")
    daemon.wait_for("died after")              # the crash loop has begun: the next try is far away
    children = daemon.children()
    _stops_cleanly(daemon, children, "sigterm")
