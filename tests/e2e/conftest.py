"""gcircusctl end-to-end fixtures: a real gcircusd subprocess on ipc endpoints in a
short temp dir, and the real gcircusctl command line against it."""
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tests.e2e.daemon_support import READY, Daemon, short_tmpdir, write_config


@pytest.fixture
def workdir():
    directory = short_tmpdir()
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def daemons():
    """daemons(config_path, *args, env=None) -> a started Daemon, killed (with its children) at teardown."""
    started = []

    def start(path, *args, env=None):
        daemon = Daemon(path, *args, env=env)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


@pytest.fixture
def gcircusd(workdir):
    """gcircusd(body, circus_extra='') -> a started daemon with .endpoint and .pubsub (ipc)."""
    started = []

    def start(body, circus_extra=""):
        path, endpoint = write_config(workdir, body, circus_extra=circus_extra)
        daemon = Daemon(path)
        started.append(daemon)
        daemon.wait_for(READY)
        daemon.endpoint = endpoint
        daemon.pubsub = "ipc://%s/pub.sock" % workdir
        daemon.config = path
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


def run_gcircusctl(*args, endpoint=None, env=None, stdin=None, timeout=60):
    """The gcircusctl console script (as installed: the module's main) with args."""
    command = [sys.executable, "-m", "gcircus.cli.gcircusctl"]
    if endpoint is not None:
        command += ["--endpoint", endpoint]
    result = subprocess.run(command + list(args), capture_output=True, text=True, timeout=timeout,
                            input=stdin, env=dict(os.environ, **(env or {})))
    return SimpleNamespace(code=result.returncode, out=result.stdout.rstrip("\n"),
                           err=result.stderr.rstrip("\n"))


@pytest.fixture
def gcircusctl():
    return run_gcircusctl
