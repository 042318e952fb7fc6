"""A running gcircusd and its edited configuration file: reloadconfig refuses a file with a
broken section (the running watchers stay), SIGHUP does not read the file at all, and an
unnamed restart builds the daemon again from the edited file."""
import os
import signal

import psutil

from tests.e2e.daemon_support import READY, call, wait_answering
from tests.support.wait import wait_until

RUNNING = "[watcher:a]\ncmd = sleep 120\n[watcher:b]\ncmd = sleep 121\nnumprocesses = 2\n"


def edit(path, old, new):
    with open(path) as handle:
        text = handle.read()
    assert old in text, "%r not in the config" % old
    with open(path, "w") as handle:
        handle.write(text.replace(old, new))


def pids(endpoint):
    return {name: sorted(call(endpoint, "list", name=name)["pids"]) for name in ("a", "b")}


def cmdlines(daemon):
    """The children's command lines once every one has left its exec wrapper (a child just
    spawned may still be there: polled, with a deadline)."""
    def settled():
        found = sorted(" ".join(p.cmdline()) for p in daemon.children())
        return found if found and all(line.startswith("sleep ") for line in found) else None
    return wait_until(settled, 10, "children past their exec wrapper",
                      detail=lambda: [" ".join(p.cmdline()) for p in daemon.children()])


def test_reloadconfig_with_a_typo_changes_nothing_and_says_why(gcircusd, gcircusctl):
    daemon = gcircusd(RUNNING)
    before = pids(daemon.endpoint)
    # a typo in b, a new command for a, and a new watcher: none of it may be applied
    edit(daemon.config, "numprocesses = 2\n", "numprocesses = 2\nmax_retry = often\n[watcher:c]\ncmd = sleep 122\n")
    edit(daemon.config, "sleep 120", "sleep 130")
    result = gcircusctl("reloadconfig", "--waiting", endpoint=daemon.endpoint)
    assert result.code == 3 and result.out == "", result
    assert "reloadconfig refused, nothing was changed" in result.err
    assert "[watcher:b] max_retry: invalid" in result.err and "'often'" in result.err
    assert pids(daemon.endpoint) == before
    assert call(daemon.endpoint, "list")["watchers"] == ["a", "b"]
    # without --waiting the file is checked before the reply too
    result = gcircusctl("reloadconfig", endpoint=daemon.endpoint)
    assert result.code == 3 and "[watcher:b] max_retry: invalid" in result.err, result
    assert pids(daemon.endpoint) == before
    assert cmdlines(daemon) == ["sleep 120", "sleep 121", "sleep 121"]
    # SIGHUP reloads the running watchers and does not read the file: the typo does not matter
    os.kill(daemon.proc.pid, signal.SIGHUP)
    daemon.wait_for("all watchers reloaded")
    after = pids(daemon.endpoint)
    assert len(after["a"]) == 1 and len(after["b"]) == 2 and not set(after["b"]) & set(before["b"])
    assert cmdlines(daemon) == ["sleep 120", "sleep 121", "sleep 121"]


def test_restart_builds_the_daemon_again_from_the_edited_file(gcircusd, gcircusctl):
    daemon = gcircusd(RUNNING)
    children = daemon.children()
    edit(daemon.config, "check_delay = 5\n", "check_delay = 7\n")
    edit(daemon.config, "sleep 120", "sleep 130")
    edit(daemon.config, "numprocesses = 2\n", "numprocesses = 2\n[watcher:c]\ncmd = sleep 122\n")
    assert gcircusctl("restart", endpoint=daemon.endpoint).out == "ok"
    daemon.wait_for("restarting from %s" % daemon.config)
    daemon.wait_for(READY, count=2)                              # the new arbiter started its watchers
    assert call(daemon.endpoint, "globaloptions", option="check_delay")["options"] == {"check_delay": 7.0}
    assert call(daemon.endpoint, "list")["watchers"] == ["a", "b", "c"]
    assert not psutil.wait_procs(children, timeout=10)[1]      # the old arbiter's processes are gone
    assert cmdlines(daemon) == ["sleep 121", "sleep 121", "sleep 122", "sleep 130"]
    assert daemon.proc.poll() is None                            # the same process throughout


def test_restart_with_a_broken_file_keeps_the_previous_configuration(gcircusd, gcircusctl):
    daemon = gcircusd(RUNNING)
    edit(daemon.config, "check_delay = 5\n", "check_delay = soon\n")
    assert gcircusctl("restart", endpoint=daemon.endpoint).out == "ok"
    daemon.wait_for("restart: %s [circus] check_delay: invalid number 'soon'; keeping the previous "
                    "configuration" % daemon.config)
    wait_answering(daemon.endpoint)
    assert call(daemon.endpoint, "list")["watchers"] == ["a", "b"]
    assert call(daemon.endpoint, "globaloptions", option="check_delay")["options"] == {"check_delay": 5.0}
