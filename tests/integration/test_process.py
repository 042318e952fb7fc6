"""Process: spawn, substitution, environment, identity, rlimits, signals, info, status."""
import json
import os
import signal
import sys

import psutil
import pytest

from gcircus.exc import SpawnError
from gcircus.process import DEAD_OR_ZOMBIE, OTHER, RUNNING, UNEXISTING, Process
from tests.conftest import child_cmd


def test_status_constants_match_circus():
    assert (RUNNING, DEAD_OR_ZOMBIE, UNEXISTING, OTHER) == (0, 1, 2, 3)


def test_seed_example_top_in_a_shell():
    proc = Process('Top', 'top', shell=True)
    assert proc.pid > 0 and proc.wid == 'Top'
    assert proc.age() >= 0
    proc.stop()
    assert proc.wait(10) is not None
    assert proc.status == UNEXISTING
    assert proc.info() == "No such process (stopped?)"


def test_info_has_circus_keys_and_formats(tmp_path):
    proc = Process(1, child_cmd("ready_then_sleep"), pipe_stderr=False)
    try:
        assert proc.stdout.readline().startswith(b"ready")
        info = proc.info()
        for key in ("mem_info1", "mem_info2", "cpu", "mem", "ctime", "pid", "username", "nice",
                    "create_time", "age", "cmdline", "children", "started", "wid"):
            assert key in info, key
        assert info["pid"] == proc.pid and info["wid"] == 1
        assert info["mem_info1"][-1] in "BKMG"
        assert info["cmdline"].startswith("python")
        minutes, rest = info["ctime"].split(":")
        assert minutes.isdigit() and "." in rest
        assert proc.status == RUNNING
    finally:
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL


def test_exit_code_and_signal_convention():
    assert Process(1, "sh -c 'exit 3'").wait(10) == 3
    proc = Process(1, "sleep 30")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == -signal.SIGTERM


def test_substitution_env_and_args(tmp_path):
    out = tmp_path / "out.json"
    proc = Process(7, child_cmd("print_env", out), args=["$(CIRCUS.WID)", "((circus.env.foo))", "$(circus.unknown)"],
                   env={"FOO": "bar"})
    assert proc.wait(10) == 0
    data = json.loads(out.read_text())
    assert data["argv"][2:] == ["7", "bar", "$(circus.unknown)"]
    data["env"].pop("LC_CTYPE", None)  # added by the child Python itself (PEP 538)
    assert data["env"] == {"FOO": "bar"}  # no copy_env: Circus gives an empty environment


def test_string_args_are_shlex_split(tmp_path):
    out = tmp_path / "out.json"
    assert Process(1, child_cmd("print_env", out), args="'a b' c").wait(10) == 0
    assert json.loads(out.read_text())["argv"][2:] == ["a b", "c"]


def test_legacy_wid_is_substituted(tmp_path):
    out = tmp_path / "out.json"
    with pytest.warns(DeprecationWarning):
        proc = Process(3, child_cmd("print_env", out) + " $WID")
    assert proc.wait(10) == 0
    assert json.loads(out.read_text())["argv"][-1] == "3"


def test_executable_is_honoured(tmp_path):
    """argv[0] is the display name; the binary run is `executable` (Circus ignored it)."""
    out = tmp_path / "argv0"
    code = "open(%r, 'w').write(open('/proc/self/cmdline').read().split(chr(0))[0])" % str(out)
    proc = Process(1, 'fancy-name -c "%s"' % code, executable=sys.executable)
    assert proc.wait(10) == 0
    assert out.read_text() == "fancy-name"


def test_working_dir(tmp_path):
    out = tmp_path / "out.json"
    assert Process(1, child_cmd("print_env", out), working_dir=str(tmp_path)).wait(10) == 0
    assert json.loads(out.read_text())["cwd"] == str(tmp_path)


def test_rlimits_by_name_fast_path():
    proc = Process(1, "sh -c 'ulimit -n; ulimit -Hn'", rlimits={"nofile": 123}, pipe_stderr=False)
    assert proc.stdout.read() == b"123\n123\n"
    assert proc.wait(10) == 0


def test_unknown_rlimit_is_a_spawn_error():
    with pytest.raises(ValueError, match="unknown rlimit 'bogus'"):
        Process(1, "true", rlimits={"bogus": 1})


def test_missing_binary_is_a_clear_spawn_error():
    with pytest.raises(SpawnError, match="no-such-binary-xyz"):
        Process(1, "no-such-binary-xyz --flag")
    with pytest.raises(SpawnError, match="no-such-binary-xyz"):
        Process(1, "no-such-binary-xyz", rlimits={"nofile": 64})


@pytest.mark.parametrize("rlimits", [None, {"nofile": 64}], ids=["plain", "prlimit"])
def test_a_bare_program_name_is_found_on_the_daemons_path_with_an_empty_child_env(tmp_path, monkeypatch,
                                                                                     rlimits):
    """Children get an empty environment (Circus's default), so the OS default path (/bin:/usr/bin)
    would miss `python` from a virtualenv; the daemon's PATH finds it, the child's env stays empty."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "gcircus-only-here"
    program.write_text("#!%s\nimport os, sys\nprint(sys.argv[1], \"PATH\" in os.environ)\n" % sys.executable)
    program.chmod(0o755)
    monkeypatch.setenv("PATH", "%s%s%s" % (bin_dir, os.pathsep, os.environ.get("PATH", os.defpath)))
    proc = Process(1, "gcircus-only-here ran", env={}, rlimits=rlimits, pipe_stderr=False)
    assert proc.stdout.read() == b"ran False\n"
    assert proc.wait(10) == 0
    monkeypatch.setenv("PATH", os.defpath)
    with pytest.raises(SpawnError, match="gcircus-only-here"):
        Process(1, "gcircus-only-here ran", env={}, rlimits=rlimits)
    with pytest.raises(SpawnError, match="gcircus-only-here"):     # a child PATH is the child's to search
        Process(1, "gcircus-only-here ran", env={"PATH": "/nowhere"}, rlimits=rlimits)


@pytest.mark.skipif(os.geteuid() != 0, reason="changing identity needs root")
def test_uid_and_gid_by_name_and_number_with_groups():
    import grp
    import pwd
    nobody = pwd.getpwnam("nobody")
    proc = Process(1, "sh -c 'id -u; id -g; id -G'", uid="nobody", gid="nogroup", pipe_stderr=False)
    uid, gid, groups = proc.stdout.read().decode().split("\n")[:3]
    assert proc.wait(10) == 0
    assert int(uid) == nobody.pw_uid and int(gid) == grp.getgrnam("nogroup").gr_gid
    expected_groups = set(os.getgrouplist("nobody", grp.getgrnam("nogroup").gr_gid))
    assert set(map(int, groups.split())) == expected_groups
    proc = Process(1, "sh -c 'id -u; id -g'", uid=0, gid="0", pipe_stderr=False)
    assert proc.stdout.read() == b"0\n0\n"
    assert proc.wait(10) == 0


def test_each_child_has_its_own_session():
    proc = Process(1, "sleep 30")
    try:
        assert os.getsid(proc.pid) == proc.pid
    finally:
        proc.kill_tree()
        proc.wait(10)


def test_children_signals_and_tree_kill():
    proc = Process(1, child_cmd("ready_then_sleep", "--grandchild"), pipe_stderr=False)
    try:
        assert proc.stdout.readline().startswith(b"ready")
        assert proc.stdout.readline().startswith(b"ready")
        children = proc.children()
        assert len(children) == 1 and proc.is_child(children[0])
        assert not proc.is_child(os.getpid())
        with pytest.raises(psutil.NoSuchProcess):
            proc.send_signal_child(os.getpid(), signal.SIGTERM)
    finally:
        killed = proc.kill_tree()
        proc.wait(10)
    gone, alive = psutil.wait_procs([psutil.Process(pid) for pid in killed if psutil.pid_exists(pid)], 5)
    assert not alive


def test_ordering_by_start_time():
    first = Process(1, "true")
    second = Process(2, "true")
    assert first < second and second > first
    first.wait(10)
    second.wait(10)


def test_exit_is_known_with_or_without_a_waiter():
    """has_exited and wait_exited tell the exit whether or not anything waits on the Event; the Event, made
    on demand after the exit, is already set."""
    unwaited, waited = Process(1, "sleep 60"), Process(2, "sleep 60")
    assert not unwaited.has_exited() and not waited.wait_exited(0.01)
    for proc in (unwaited, waited):
        proc.send_signal(signal.SIGKILL)
    assert waited.wait_exited(10) and waited.returncode == -signal.SIGKILL
    assert unwaited.wait(10) == -signal.SIGKILL and unwaited.has_exited()
    assert unwaited.exited.is_set() and not unwaited.is_alive()
