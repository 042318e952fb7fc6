"""Command-line construction: substitution, shell joining, environments."""
import os
import sys

import pytest

from gcircus.supervision import cmdline
from gcircus.supervision.cmdline import build_argv, build_env, build_variables, substitute


def test_substitution_is_case_insensitive_and_keeps_unknown_keys():
    variables = build_variables(3, {"Foo": "bar"}, {"web": 7})
    text = "$(circus.wid) $(CIRCUS.WID) ((circus.env.FOO)) $(circus.sockets.WEB) $(circus.nope)"
    assert substitute(text, variables) == "3 3 bar 7 $(circus.nope)"


def test_argv_from_string_and_list_args():
    variables = build_variables(1)
    assert build_argv("foo --fd", None, variables) == ["foo", "--fd"]
    assert build_argv("foo", "'a b' $(circus.wid)", variables) == ["foo", "a b", "1"]
    assert build_argv("foo", ["a b", "$(circus.wid)"], variables) == ["foo", "a b", "1"]


def test_shell_joins_and_appends_shell_args():
    variables = build_variables(1)
    assert build_argv("foo", "--fd", variables, shell=True) == ["foo --fd"]
    assert build_argv("foo", "--fd", variables, shell=True, shell_args="bar baz qux") == \
        ["foo --fd", "bar", "baz", "qux"]


def test_env_is_empty_without_copy_env(monkeypatch):
    monkeypatch.setenv("OUTSIDE", "1")
    assert build_env({"A": 1}) == {"A": "1"}
    env = build_env({"A": "2"}, copy_env=True)
    assert env["OUTSIDE"] == "1" and env["A"] == "2"


def test_copy_path_exports_sys_path():
    env = build_env(copy_env=True, copy_path=True)
    assert env["PYTHONPATH"].split(os.pathsep) == [p for p in sys.path if p]


def test_virtualenv_errors_name_the_path():
    with pytest.raises(ValueError, match="/no/such/venv"):
        build_env(copy_env=True, virtualenv="/no/such/venv")


def test_shell_command_is_passed_as_written():
    """No split and re-quote: metacharacters must reach /bin/sh unquoted."""
    variables = build_variables(2)
    assert build_argv("echo a; echo $((1+$(circus.wid))) > out", None, variables, shell=True) == \
        ["echo a; echo $((1+2)) > out"]
    assert build_argv("grep", ["a b", "it's"], variables, shell=True) == ["grep 'a b' 'it'\"'\"'s'"]


@pytest.mark.parametrize("cmd, args, shell, shell_args", [
    ("sleep", "3600", False, None),
    ("python -c 'print(1)'", ["--flag", "a b"], False, None),
    ("echo", "hello world", True, None),
    ("echo", ["x"], True, ["--login"]),
])
def test_static_argv_is_the_built_argv(cmd, args, shell, shell_args):
    built = build_argv(cmd, args, {}, shell, shell_args)
    assert cmdline.static_argv(cmd, args, shell, shell_args) == tuple(built)
    assert cmdline.static_argv(cmd, args, shell, shell_args) == tuple(built)   # the cached one


@pytest.mark.parametrize("cmd, args, shell_args", [
    ("run $(circus.wid)", None, None),
    ("run", "--fd ((circus.sockets.web))", None),
    ("run", ["--wid", "$(CIRCUS.WID)"], None),
    ("run $WID", None, None),
    ("run", None, ["$(circus.env.home)"]),
])
def test_static_argv_declines_commands_with_variables(cmd, args, shell_args):
    assert cmdline.static_argv(cmd, args, shell_args is not None, shell_args) is None


def _fake_virtualenv(tmp_path):
    site = tmp_path / "venv" / "lib" / ("python%d.%d" % sys.version_info[:2]) / "site-packages"
    site.mkdir(parents=True)
    (tmp_path / "venv" / "bin").mkdir()
    return str(tmp_path / "venv"), str(site)


def test_virtualenv_site_packages_come_after_the_env_pythonpath(tmp_path):
    """Circus's order: the watcher env's PYTHONPATH entries first, then the virtualenv's."""
    venv, site = _fake_virtualenv(tmp_path)
    env = build_env({"PYTHONPATH": "/app/src:/app/lib", "PATH": "/usr/bin"}, copy_env=True, virtualenv=venv)
    assert env["PYTHONPATH"].split(os.pathsep) == ["/app/src", "/app/lib", site]
    assert env["PATH"].split(os.pathsep) == [os.path.join(venv, "bin"), "/usr/bin"]


def test_the_watcher_env_pythonpath_wins_over_copy_path():
    """As Circus: copy_path sets PYTHONPATH to the daemon's sys.path, then the watcher's env applies."""
    assert build_env({"PYTHONPATH": "/app"}, copy_env=True, copy_path=True)["PYTHONPATH"] == "/app"


def test_copy_path_and_virtualenv_work_without_copy_env(tmp_path):
    """No daemon environment is copied, but the options do what they say (Circus refuses them)."""
    venv, site = _fake_virtualenv(tmp_path)
    env = build_env({"A": "1"}, copy_path=True, virtualenv=venv)
    assert sorted(env) == ["A", "PATH", "PYTHONPATH"]
    assert env["PYTHONPATH"].split(os.pathsep) == [p for p in sys.path if p] + [site]
    assert env["PATH"] == os.path.join(venv, "bin")
