"""spawner.find_program answers as shutil.which does for a bare program name, on real files: the first
executable regular file along the search path, skipping directories and files without the x bit."""
import os
import shutil

import pytest

from gcircus.supervision.spawner import find_program


@pytest.fixture
def dirs(tmp_path):
    made = {}
    for name in ("a", "b", "c"):
        made[name] = tmp_path / name
        made[name].mkdir()
    (made["a"] / "tool").mkdir()                  # a directory of that name: not a program
    (made["b"] / "tool").write_text("#!/bin/sh\n")    # not executable
    (made["c"] / "tool").write_text("#!/bin/sh\n")
    os.chmod(made["c"] / "tool", 0o755)
    return made


def test_first_executable_file_along_the_path(dirs):
    path = os.pathsep.join(str(dirs[name]) for name in ("a", "b", "c"))
    assert find_program("tool", path) == str(dirs["c"] / "tool") == shutil.which("tool", path=path)


def test_none_when_nothing_matches(dirs):
    path = os.pathsep.join(str(dirs[name]) for name in ("a", "b"))
    assert find_program("tool", path) is None is shutil.which("tool", path=path)
    assert find_program("tool", "") is None is shutil.which("tool", path="")


def test_the_daemon_path_by_default(dirs, monkeypatch):
    monkeypatch.setenv("PATH", str(dirs["c"]))
    assert find_program("tool") == str(dirs["c"] / "tool") == shutil.which("tool")
