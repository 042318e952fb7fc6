"""Hooks and stream classes written for Circus, in a directory only the watcher's env PYTHONPATH names,
importing `circus` on a machine without Circus: gcircusd loads them (as circusd adds that PYTHONPATH to
its own path) and serves `circus` from gcircus though no plugin is configured."""
import os
import signal
import subprocess
import sys

from tests.e2e.daemon_support import READY, wait_for_file, write_config

HOOKS = '''
import os

import circus
from circus.util import to_bool


def before_start(watcher, arbiter, hook_name, **kwargs):
    with open(os.path.join(os.path.dirname(__file__), "hooked"), "w") as handle:
        handle.write("%s %s" % (circus.__doc__.split()[0], to_bool("yes")))
    return True
'''

STREAM = '''
from circus.stream import FileStream


class Tagged(FileStream):
    """Circus's FileStream, each chunk tagged."""

    def __call__(self, chunk):
        super().__call__(dict(chunk, data=b"tagged " + chunk["data"]))
'''

# A machine without Circus: the test environment has it installed, so the daemon runs with it hidden.
WITHOUT_CIRCUS = "import sys; sys.modules['circus'] = None; from gcircus.cli.gcircusd import main; sys.exit(main())"


def test_hooks_and_streams_from_the_watchers_pythonpath_import_circus(workdir):
    code = os.path.join(workdir, "code")
    os.mkdir(code)
    for name, text in (("userhooks.py", HOOKS), ("userstream.py", STREAM)):
        with open(os.path.join(code, name), "w") as handle:
            handle.write(text)
    out = os.path.join(workdir, "out.txt")
    path, _ = write_config(workdir, "[watcher:w]\ncmd = sh -c \"echo hello; exec sleep 120\"\n"
                                    "hooks.before_start = userhooks.before_start\n"
                                    "stdout_stream.class = userstream.Tagged\n"
                                    "stdout_stream.filename = %s\n"
                                    "[env:w]\nPYTHONPATH = %s\n" % (out, code))
    log = os.path.join(workdir, "daemon.log")
    with open(log, "w") as output:
        daemon = subprocess.Popen([sys.executable, "-c", WITHOUT_CIRCUS, path], stdout=output,
                                  stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        wait_for_file(log, lambda text: READY in text or daemon.poll() is not None)
        assert wait_for_file(os.path.join(code, "hooked"), bool) == "gcircus True"
        assert wait_for_file(out, bool) == "tagged hello\n"
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    with open(log) as handle:
        text = handle.read()
    assert "error" not in text.lower(), text
