"""Churn: 20 watchers whose processes exit at once, respawned thousands of times. After
the churn (watchers stopped) the daemon holds the same fds, memory and greenlets as
before it (within 5 %), and no zombie is left.

The default run makes CYCLES spawn/exit cycles per watcher; the slow variant 10,000."""
import os

import psutil
import pytest

from tests.e2e.daemon_support import READY, Daemon, call, wait_for_file, write_config
from tests.support.wait import wait_until

WATCHERS = 20
WARMUP = 30         # cycles per watcher before the baseline (first-time allocations done)
CYCLES = 120


def _lines(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().count(b"\n")
    except FileNotFoundError:
        return 0


def _figures(daemon, endpoint):
    # dstats first: the daemon imports a command's module (and dstats psutil) at its first use, which is
    # no churn's doing and must not count in the memory read after it
    greenlets = call(endpoint, "dstats")["hub"]["greenlets"]
    proc = psutil.Process(daemon.proc.pid)
    return {"fds": proc.num_fds(), "rss": proc.memory_info().rss, "greenlets": greenlets}


def _within(before, after, share=0.05, slack=1):
    return after <= before * (1 + share) + slack


def _churn(workdir, cycles):
    body = "".join("[watcher:w%d]\ncmd = sh -c 'echo >> %s/w%d'\nautostart = false\nmin_uptime = 0\n"
                   "max_retry = -1\n" % (n, workdir, n) for n in range(WATCHERS))
    path, endpoint = write_config(workdir, body)
    log = os.path.join(workdir, "gcircusd.log")
    daemon = Daemon(path, "--log-output", log)     # a line per exit: a pipe nobody reads would fill up
    try:
        wait_for_file(log, lambda text: READY in text)

        def run_until(count):
            assert call(endpoint, "start", name="w*", waiting=True)["status"] == "ok"   # autostart = false
            wait_until(lambda: all(_lines("%s/w%d" % (workdir, n)) >= count for n in range(WATCHERS)),
                       120 + count / 20, "%d cycles of every watcher" % count,
                       detail=lambda: [_lines("%s/w%d" % (workdir, n)) for n in range(WATCHERS)])
            assert call(endpoint, "stop", waiting=True)["status"] == "ok"
            assert not [c for c in daemon.children() if c.status() == psutil.STATUS_ZOMBIE]
            assert not daemon.children()

        run_until(WARMUP)
        before = _figures(daemon, endpoint)
        run_until(WARMUP + cycles)
        after = _figures(daemon, endpoint)
        done = sum(_lines("%s/w%d" % (workdir, n)) for n in range(WATCHERS))
        assert done >= WATCHERS * (WARMUP + cycles)
        for key in ("fds", "greenlets"):
            assert _within(before[key], after[key]), (key, before, after)
        assert _within(before["rss"], after["rss"], slack=0), (before, after)
        print("churn figures before/after:", before, after)     # shown with -s: the suite's measure
    finally:
        daemon.kill()
        for n in range(WATCHERS):
            if os.path.exists("%s/w%d" % (workdir, n)):
                os.unlink("%s/w%d" % (workdir, n))


def test_churn_leaves_no_leak_and_no_zombie(workdir):
    _churn(workdir, CYCLES)


@pytest.mark.slow
@pytest.mark.timeout(900)     # 200,000 spawns: minutes, not the suite's 120 s per test
def test_churn_of_ten_thousand_cycles_per_watcher(workdir):
    _churn(workdir, 10000)
