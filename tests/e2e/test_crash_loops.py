"""Crash loops through a real gcircusd: retried for ever with a visible backoff (status, stats,
gcircusctl, the log), and the recipe docs/crash-loops.md gives for giving up after N crashes."""
import os
import re

from tests.e2e.daemon_support import READY, call
from tests.support.wait import wait_until

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "docs", "crash-loops.md")
CRASHER = '[watcher:crasher]\ncmd = sh -c "exit 3"\n'


def doc_ini_block(after_heading):
    with open(DOC) as handle:
        text = handle.read()
    match = re.search(r"## %s\n.*?```ini\n(.*?)```" % re.escape(after_heading), text, re.S)
    assert match, "docs/crash-loops.md has no ini block under '## %s'" % after_heading
    return match.group(1)


def test_a_crash_loop_shows_as_backoff_and_is_never_abandoned(gcircusd, gcircusctl):
    # the second crash waits 30 s: long enough to look at it; max_retry would have stopped it before
    daemon = gcircusd(CRASHER + "max_retry = 1\nbackoff_base = 30\n[watcher:steady]\ncmd = sleep 120\n")
    wait_until(lambda: call(daemon.endpoint, "status", name="crasher")["status"] == "backoff",
               what="the crasher to back off")
    reply = call(daemon.endpoint, "status")
    assert reply["statuses"] == {"crasher": "backoff", "steady": "active"}
    assert reply["backoff"]["crasher"]["crashes"] == 2 and 0 < reply["backoff"]["crasher"]["retry_in"] <= 30
    stats = call(daemon.endpoint, "stats", name="crasher")
    assert stats["info"] == {} and stats["backoff"]["crashes"] == 2
    result = gcircusctl("status", endpoint=daemon.endpoint)
    assert re.fullmatch(r"crasher: backoff \(crash 2 in a row, next try in \d+\.\d s\)\nsteady: active",
                        result.out), result.out
    assert re.fullmatch(r"backoff \(crash 2 in a row, next try in \d+\.\d s\)",
                        gcircusctl("status", "crasher", endpoint=daemon.endpoint).out)
    daemon.wait_for("crash 2 in a row, backing off 30 s")
    assert "stopping the watcher" not in daemon.text()


def test_flapping_recipe_gives_up_after_n_crashes(gcircusd, gcircusctl):
    daemon = gcircusd(CRASHER + doc_ini_block("Giving up after N crashes"))
    daemon.wait_for("flapping detected: reached max retry limit, stopping it")
    wait_until(lambda: call(daemon.endpoint, "status", name="crasher")["status"] == "stopped",
               what="the crasher to be stopped")
    assert daemon.text().count(" in a row, ") == 4       # attempts = 4 crashes, then no respawn
    assert READY in daemon.text()
    assert gcircusctl("status", "crasher", endpoint=daemon.endpoint).out == "stopped"
