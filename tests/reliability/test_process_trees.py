"""Stopping a process stops its whole tree (issue 13 item 11).

The tree (every descendant, however deep) is taken before the stop signal, while it still hangs below the
process. With ``stop_children`` every member gets the stop signal at once; without it the process gets it alone
(it may stop its own children its way, as gunicorn's master does) and whatever of the tree is still there once
it has exited gets it next. Whatever is alive at graceful_timeout gets SIGKILL, and `stop` returns only once the
tree is gone. The documented limit: a descendant that left the tree before the stop (double fork, re-parented to
init) is not reached.
"""
import psutil
import pytest

from gcircus.watcher import Watcher
from tests.conftest import LineStream, child_cmd

DEPTH = 3          # the process, a child, a grandchild and a great-grandchild


def tree_pids(lines):
    lines.wait_for("ready", DEPTH + 1, timeout=30)
    return lines.pids("ready")


def alive(pids):
    found = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.mark.parametrize("stop_children", [False, True])
def test_stop_reaches_every_descendant_and_kills_the_stubborn_one(run_arbiter, stop_children):
    lines = LineStream()
    watcher = Watcher("tree", child_cmd("process_tree", DEPTH, "--leaf-ignores-term"), stop_children=stop_children,
                      graceful_timeout=1, stdout_stream={"stream": lines})
    run_arbiter([watcher])
    pids = tree_pids(lines)
    watcher.stop()
    assert alive(pids) == []
    # each careless parent got the graceful signal (it wrote TERM); only the leaf, which ignores it, needed SIGKILL
    assert sorted(lines.pids("TERM")) == sorted(pids)


@pytest.mark.parametrize("stop_children", [False, True])
def test_quit_takes_every_tree_down(run_arbiter, stop_children):
    lines = LineStream()
    watcher = Watcher("tree", child_cmd("process_tree", DEPTH, "--all-ignore-term"), numprocesses=2,
                      stop_children=stop_children, graceful_timeout=1, stdout_stream={"stream": lines})
    arbiter = run_arbiter([watcher])
    lines.wait_for("ready", 2 * (DEPTH + 1), timeout=30)
    pids = lines.pids("ready")
    arbiter.stop()
    assert alive(pids) == []
