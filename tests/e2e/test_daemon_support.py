"""The e2e helpers' own traps: a daemon's child is read only once it runs its own program.

Before its first exec a child shows the daemon's command line (vfork shares the daemon's memory), then its exec
wrapper's (setpriv); under load a test that read it then saw `python -m gcircus.cli.gcircusd ...` or `setpriv
...` where it expected `sleep 120`. Here a child is held before its exec, so the window is as wide as we like."""
import subprocess
import sys

import psutil

from tests.e2e.daemon_support import _on_its_way, settled_children
from tests.support.wait import wait_in_thread

# a "daemon" whose child waits for a byte on stdin before it execs its program
FORKS_THEN_HOLDS = """
import os
pid = os.fork()
if pid == 0:
    os.read(0, 1)
    os.execvp("sleep", ["sleep", "120"])
os.write(1, b"forked\\n")
os.waitpid(pid, 0)
"""


def test_a_child_is_settled_only_once_it_runs_its_own_program():
    daemon = subprocess.Popen([sys.executable, "-c", FORKS_THEN_HOLDS], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    try:
        assert daemon.stdout.readline() == b"forked\n"
        parent = psutil.Process(daemon.pid)
        child, = parent.children()
        assert child.cmdline() == parent.cmdline()          # not exec'd yet: the daemon's command line
        assert _on_its_way(child, daemon.pid, parent.cmdline())
        daemon.stdin.write(b"x")
        daemon.stdin.close()
        wait_in_thread(lambda: child.cmdline() == ["sleep", "120"], 10, "the child's exec")
        assert not _on_its_way(child, daemon.pid, parent.cmdline())
        assert [c.cmdline() for c in settled_children(daemon.pid)] == [["sleep", "120"]]
    finally:
        for process in psutil.Process(daemon.pid).children():
            process.kill()
        daemon.kill()
        daemon.wait()
