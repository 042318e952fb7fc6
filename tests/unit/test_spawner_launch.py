"""A prepared spawner Launch started with hand_over_cpu (the lone replacement's path: the hub yields the CPU to
the new child right after the fork) behaves exactly as a plain start: the child runs the program with its pipes,
an exec failure is the same SpawnError, and neither leaves a descriptor behind in the daemon."""
import os
import subprocess

import pytest

from gcircus.exc import SpawnError
from gcircus.supervision import spawner


def _open_fds():
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("hand_over_cpu", [False, True])
def test_the_child_runs_the_program_and_its_output_arrives(hand_over_cpu):
    before = _open_fds()
    launch = spawner.prepare(["sh", "-c", "echo started; exit 3"], env={"PATH": os.defpath}, cwd="/")
    child = spawner.start(launch, hand_over_cpu)
    try:
        assert child.stdout.read() == b"started\n"
        _pid, status = os.waitpid(child.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 3
    finally:
        for stream in (child.stdout, child.stderr):
            stream.close()
    assert _open_fds() == before


@pytest.mark.parametrize("hand_over_cpu", [False, True])
def test_an_exec_failure_is_the_same_spawn_error(hand_over_cpu, tmp_path):
    before = _open_fds()
    launch = spawner.prepare([str(tmp_path / "missing")], cwd="/")
    with pytest.raises(SpawnError, match="missing.*No such file"):
        spawner.start(launch, hand_over_cpu)
    assert _open_fds() == before


def test_a_launch_can_be_started_again_after_a_hand_over(tmp_path):
    """The watcher starts one prepared launch at every replacement: the hand-over changes nothing in it."""
    launch = spawner.prepare(["sleep", "30"], stdin=subprocess.DEVNULL, pipe_stdout=False, pipe_stderr=False,
                             env={"PATH": os.defpath}, cwd=str(tmp_path))
    children = [spawner.start(launch, hand_over_cpu) for hand_over_cpu in (True, True, False)]
    try:
        assert len({child.pid for child in children}) == 3
        for child in children:
            assert os.readlink("/proc/%d/cwd" % child.pid) == str(tmp_path)
    finally:
        for child in children:
            os.kill(child.pid, 9)
            os.waitpid(child.pid, 0)
