"""The README's code runs as printed: every python block. The plugin example is loaded by a real
gcircusd; every library example runs as an application (plain and monkey-patched) next to the
worker.py it expects, serves, and leaves no worker behind when the application gets SIGTERM."""
import os
import re
import signal
import socket
import sys

import psutil
import pytest

from tests.e2e.daemon_support import READY, Daemon, Program, wait_for_file, write_config

README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "README.md")

# The worker the library examples run: says who it is, then waits for a signal.
WORKER = """import os
import signal

os.write(1, b"worker ready %d\\n" % os.getpid())
while True:
    signal.pause()
"""


def readme_text():
    with open(README) as handle:
        return handle.read()


def python_blocks():
    return re.findall(r"```python\n(.*?)```", readme_text(), re.S)


def readme_block(after_heading):
    match = re.search(r"## %s\n.*?```python\n(.*?)```" % re.escape(after_heading), readme_text(), re.S)
    assert match, "README has no python block under '## %s'" % after_heading
    return match.group(1)


def library_blocks():
    return [block for block in python_blocks() if "worker.py" in block]


def test_every_python_block_is_run_by_a_test():
    blocks = python_blocks()
    covered = library_blocks() + [readme_block("Writing a plugin")]
    assert blocks and sorted(blocks) == sorted(covered)
    assert len(library_blocks()) >= 3


def test_readme_plugin_example_logs_non_zero_exits(workdir):
    with open(os.path.join(workdir, "readme_plugin.py"), "w") as handle:
        handle.write(readme_block("Writing a plugin"))
    log = os.path.join(workdir, "exits.log")
    path, _ = write_config(workdir, "[watcher:bad]\ncmd = sh -c \"exit 3\"\n"
                                    "[plugin:exits]\nuse = readme_plugin.ExitLogger\npath = %s\n" % log)
    daemon = Daemon(path, env=dict(os.environ, PYTHONPATH=workdir, PYTHONUNBUFFERED="1"))
    try:
        daemon.wait_for(READY)
        text = wait_for_file(log, lambda content: content.count("exited with 3") >= 2)
        assert all(line.startswith("bad pid ") for line in text.splitlines())
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _with_free_ports(code):
    """The examples' fixed loopback ports, each swapped for a free one: other programs on this
    machine may hold 5555 (the examples are otherwise run exactly as printed)."""
    ports = {port: _free_port() for port in set(re.findall(r"127\.0\.0\.1[\"']?[:,] ?(\d{4,5})", code))}
    return re.sub(r"(127\.0\.0\.1[\"']?[:,] ?)(\d{4,5})", lambda m: m.group(1) + str(ports[m.group(2)]), code)


def _expected_workers(code):
    return int(re.search(r"numprocesses\W+(\d+)", code).group(1)) + code.count(".incr()")


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("patched", [False, True], ids=["plain", "monkey-patched"])
@pytest.mark.parametrize("index", range(len(library_blocks())))
def test_readme_library_example_runs_and_sigterm_leaves_no_worker(workdir, index, patched):
    code = _with_free_ports(library_blocks()[index])
    if patched:
        code = "from gevent import monkey\nmonkey.patch_all()\n" + code
    with open(os.path.join(workdir, "app.py"), "w") as handle:
        handle.write(code)
    with open(os.path.join(workdir, "worker.py"), "w") as handle:
        handle.write(WORKER)
    # As from a shell with this virtualenv activated: `python` is its interpreter.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)])
    app = Program([sys.executable, "app.py"], env=dict(os.environ, PATH=path, PYTHONUNBUFFERED="1"),
                  cwd=workdir)
    try:
        count = _expected_workers(code)
        app.wait_for("worker ready", count=count)
        workers = [int(line.split()[-1]) for line in app.output if line.startswith("worker ready")]
        assert all(_alive(pid) for pid in workers)
        app.proc.send_signal(signal.SIGTERM)
        assert app.proc.wait(30) == 0, app.drain(1)
        left = [pid for pid in workers if _alive(pid)]
        assert not left, "workers left running after SIGTERM: %s; output:\n%s" % (left, app.drain(1))
        assert "Traceback" not in app.drain(1)
    finally:
        app.kill()
