"""2,000 children under one watcher: they all start, `stats`, `status` and `list` answer
with every one of them, `stop` ends them all, and no turn of the hub is held for long
(the hub guard, at a threshold far above what any of these should take, counts none)."""
import os

import psutil

from tests.e2e.daemon_support import READY, Daemon, call, wait_for_file, write_config
from tests.support.wait import wait_until

CHILDREN = 2000
STALL_THRESHOLD = 1.0       # seconds; the sliced work here holds the hub a few ms at a time
DEADLINE = 180              # generous deadlines: completion is asserted, not speed


def test_two_thousand_children(workdir):
    path, endpoint = write_config(workdir, "[watcher:crowd]\ncmd = sleep 3600\nnumprocesses = %d\n"
                                           "graceful_timeout = 5\n" % CHILDREN)
    with open(path) as handle:
        text = handle.read()
    with open(path, "w") as handle:
        handle.write(text.replace("[circus]\n", "[circus]\nhub_stall_threshold = %s\n" % STALL_THRESHOLD))
    log = os.path.join(workdir, "gcircusd.log")
    daemon = Daemon(path, "--log-output", log)
    try:
        wait_for_file(log, lambda text: READY in text, timeout=DEADLINE)
        pids = call(endpoint, "list", name="crowd", timeout=DEADLINE)["pids"]
        assert len(pids) == CHILDREN
        infos = call(endpoint, "stats", name="crowd", timeout=DEADLINE)["info"]
        assert sorted(int(pid) for pid in infos) == sorted(pids)
        assert all(isinstance(info, dict) and info["cmdline"] == "sleep" for info in infos.values())
        assert len(call(endpoint, "stats", timeout=DEADLINE)["infos"]["crowd"]) == CHILDREN
        assert call(endpoint, "status", timeout=DEADLINE)["statuses"] == {"crowd": "active"}
        reply = call(endpoint, "stop", name="crowd", waiting=True, timeout=DEADLINE)
        assert reply["status"] == "ok", reply
        assert call(endpoint, "numprocesses", timeout=DEADLINE)["numprocesses"] == 0
        wait_until(lambda: not daemon.children(), 30, "every child gone")
        hub = call(endpoint, "dstats", timeout=DEADLINE)["hub"]
        assert hub["stalls"] == 0, (hub, open(log).read()[-3000:])
        assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).ppid() == daemon.proc.pid]
    finally:
        daemon.kill()
