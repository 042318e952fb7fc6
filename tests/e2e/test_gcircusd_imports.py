"""What a plain gcircusd (one watcher, default options, no stream, stats, CurveZMQ, plugin or dashboard)
holds in memory: none of the modules that only an optional feature needs. Each is loaded where the feature
is used; an eager import anywhere on the start path would bring it back silently, memory held for as long
as the daemon runs (the suite's RSS row against Supervisor)."""
import os
import signal
import sys

from tests.e2e.daemon_support import READY, Program, call, wait_for_file, write_config

# The daemon's modules are listed on SIGUSR1 (gcircusd itself does not handle it) into the file named by
# argv[1]; then it runs as gcircusd does.
DRIVER = """
import os, signal, sys
listing = sys.argv.pop(1)
def list_modules(signum, frame):
    with open(listing + ".part", "w") as handle:
        handle.write("\\n".join(sorted(sys.modules)))
    os.rename(listing + ".part", listing)
signal.signal(signal.SIGUSR1, list_modules)
from gcircus.cli.gcircusd import main
sys.exit(main())
"""

# module -> the feature that needs it
OPTIONAL = {
    "psutil": "stats, the sampler, gcircus-top",
    "ctypes": "the subreaper, rlimits through a preexec",
    "logging.config": "logger_config",
    "logging.handlers": "syslog and file log outputs",
    "tempfile": "nothing at run time",
    "pprint": "nothing: gevent's default error-context formatter (gcircusd sets repr)",
    "dataclasses": "nothing (pprint imports it)",
    "inspect": "nothing (dataclasses imports it)",
    "shutil": "nothing: argparse's width lookup and shutil.which (bz2, lzma with it)",
    "bz2": "nothing (shutil imports it)",
    "lzma": "nothing (shutil imports it)",
    "uuid": "client ids (gcircusctl, plugins)",
    "subprocess": "a spawn failure's SubprocessError (the spawner calls _posixsubprocess itself)",
    "zmq.auth": "CurveZMQ certificates",
    "gcircus.stats.collector": "stats",
    "gcircus.stats.publisher": "stats",
    "gcircus.plugin_host.manager": "plugins",
    "gcircus.httpd": "the dashboard",
    "gcircus.stream.base": "streams",
    "gcircus.stream.file": "file streams",
    "gcircus.stream.splice": "file streams",
    "termios": "file streams (splice)",
    "gcircus.stream.rotating": "TimedRotatingFileStream",
    "calendar": "TimedRotatingFileStream",
    "gcircus.stream.console": "StdoutStream",
    "gcircus.stream.memory": "QueueStream, NullStream",
    "gcircus.stream.threaded": "the thread stream backend",
}


def test_a_plain_daemon_loads_no_optional_module(workdir):
    path, endpoint = write_config(workdir, "[watcher:w]\ncmd = sleep 120\nnumprocesses = 2\n")
    listing = os.path.join(workdir, "modules.txt")
    daemon = Program([sys.executable, "-c", DRIVER, listing, path])
    try:
        daemon.wait_for(READY)
        assert call(endpoint, "status", name="w")["status"] == "active"
        daemon.proc.send_signal(signal.SIGUSR1)
        loaded = set(wait_for_file(listing, bool).split("\n"))
    finally:
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(30) == 0, daemon.drain()
    assert "gcircus.watcher" in loaded       # the listing is the daemon's
    assert {module: OPTIONAL[module] for module in OPTIONAL if module in loaded} == {}
