"""A crash-looping watcher is visible as such wherever an operator looks (docs/crash-loops.md): `status`,
`stats` (of one watcher and of all), gcircusctl's output, the dashboard's API and /metrics each say that it
backs off, after how many crashes in a row, for how long in all and when the next try comes."""
import time

from prometheus_client.parser import text_string_to_metric_families

from gcircus.commands import get_command
from gcircus.watcher import Watcher
from tests.fixtures.http_client import http_request
from tests.support.wait import wait_until

WAIT = 3600         # the second crash's backoff: far longer than the test


def test_a_crash_loop_shows_in_status_stats_the_api_and_metrics(served_arbiter, call):
    crasher = Watcher("crasher", "sh -c 'exit 3'", min_uptime=60, backoff_base=WAIT, backoff_max=WAIT)
    arbiter = served_arbiter([crasher, Watcher("steady", "sleep 120")], httpd=True, httpd_port=0)
    wait_until(lambda: crasher.status() == "backoff", 10, "the crasher to back off")
    now = time.time()

    status = call("status")
    assert status["statuses"] == {"crasher": "backoff", "steady": "active"}
    waiting = status["backoff"]["crasher"]
    assert (waiting["crashes"], waiting["spawn_failures"], waiting["delay"]) == (2, 0, WAIT)
    assert 0 < waiting["retry_in"] <= WAIT and now < waiting["retry_at"] <= now + WAIT
    assert set(status["backoff"]) == {"crasher"}

    every = call("stats")
    assert set(every["backoff"]) == {"crasher"} and every["backoff"]["crasher"]["crashes"] == 2
    one = call("stats", name="crasher")
    assert one["backoff"]["delay"] == WAIT and one["info"] == {}
    for reply in (every, one):
        assert "backoff: crash 2 in a row, spawn failure 0 in a row, next try in" in get_command("stats").console(reply)

    address = arbiter.http_server.address[:2]
    watchers = {w["name"]: w for w in http_request(address, "GET", "/api/watchers").json()["watchers"]}
    assert watchers["crasher"]["state"] == "backoff" and watchers["crasher"]["backoff"]["crashes"] == 2
    assert watchers["crasher"]["backoff"]["delay"] == WAIT and watchers["steady"]["backoff"] is None

    metrics = {f.name: f for f in text_string_to_metric_families(http_request(address, "GET", "/metrics").body.decode())}

    def by_watcher(name):
        return {s.labels["watcher"]: s.value for s in metrics[name].samples}
    assert by_watcher("gcircus_watcher_backoff") == {"crasher": 1, "steady": 0}
    assert by_watcher("gcircus_watcher_backoff_crashes") == {"crasher": 2, "steady": 0}
    retry_in = by_watcher("gcircus_watcher_backoff_retry_in_seconds")
    assert 0 < retry_in["crasher"] <= WAIT and retry_in["steady"] == 0
