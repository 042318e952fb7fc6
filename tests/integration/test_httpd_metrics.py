"""GET /metrics against a live arbiter, parsed by prometheus_client's text parser."""
import os
import signal

from prometheus_client.parser import text_string_to_metric_families

from gcircus.watcher import Watcher
from tests.fixtures.http_client import http_request
from tests.support.wait import wait_until

FAMILIES = {
    "gcircus_daemon_start_time_seconds": "gauge", "gcircus_daemon_uptime_seconds": "gauge",
    "gcircus_daemon_cpu_seconds": "counter", "gcircus_daemon_resident_memory_bytes": "gauge",
    "gcircus_daemon_greenlets": "gauge", "gcircus_watchers": "gauge", "gcircus_hub_stalls": "counter",
    "gcircus_httpd_sse_clients": "gauge", "gcircus_httpd_sse_dropped_messages": "counter",
    "gcircus_watcher_state": "gauge", "gcircus_watcher_processes_configured": "gauge",
    "gcircus_watcher_processes_running": "gauge", "gcircus_watcher_restarts": "counter",
    "gcircus_watcher_spawn_failures": "counter", "gcircus_watcher_last_exit_code": "gauge",
    "gcircus_watcher_last_start_time_seconds": "gauge", "gcircus_process_cpu_seconds": "counter",
    "gcircus_process_resident_memory_bytes": "gauge", "gcircus_process_start_time_seconds": "gauge",
}


def scrape(address):
    reply = http_request(address, "GET", "/metrics")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(reply.body.decode())}


def values(family, **wanted):
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples
            if all(s.labels.get(k) == v for k, v in wanted.items())}


def test_metrics_families_and_values(httpd_arbiter):
    arbiter, address = httpd_arbiter([
        Watcher("web", "sleep 120", numprocesses=2, min_uptime=0),
        Watcher("broken", "/nonexistent/binary", max_retry=1, backoff_base=0.01),
        Watcher("idle", "sleep 120", autostart=False),
    ])
    web = arbiter.get_watcher("web")
    victim = sorted(web.processes)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: web.restarts == 1 and len(web.get_active_processes()) == 2, 10, "the respawn")
    wait_until(lambda: arbiter.get_watcher("broken").is_stopped(), 10, "broken to give up")

    families = scrape(address)
    assert {name: families[name].type for name in FAMILIES} == FAMILIES
    assert all(name.startswith("gcircus_") for name in families)
    state = families["gcircus_watcher_state"]
    assert values(state, state="active") == {(("state", "active"), ("watcher", "web")): 1.0,
                                             (("state", "active"), ("watcher", "broken")): 0.0,
                                             (("state", "active"), ("watcher", "idle")): 0.0}
    assert values(state, watcher="idle", state="stopped") == {(("state", "stopped"), ("watcher", "idle")): 1.0}

    def by_watcher(name):
        return {s.labels["watcher"]: s.value for s in families[name].samples}
    assert by_watcher("gcircus_watcher_processes_configured") == {"web": 2, "broken": 1, "idle": 1}
    assert by_watcher("gcircus_watcher_processes_running") == {"web": 2, "broken": 0, "idle": 0}
    assert by_watcher("gcircus_watcher_restarts")["web"] == 1
    assert by_watcher("gcircus_watcher_spawn_failures")["broken"] >= 1
    assert by_watcher("gcircus_watcher_last_exit_code")["web"] == -9
    last_start = by_watcher("gcircus_watcher_last_start_time_seconds")
    assert last_start["web"] == web.last_start_time and last_start["idle"] != last_start["idle"]   # NaN

    rss = {s.labels["pid"]: s for s in families["gcircus_process_resident_memory_bytes"].samples}
    assert set(rss) == {str(pid) for pid in web.processes}
    assert all(s.labels["watcher"] == "web" and s.value > 0 for s in rss.values())
    assert sorted(s.labels["wid"] for s in rss.values()) == ["1", "2"]
    cpu = [s for s in families["gcircus_process_cpu_seconds"].samples]
    assert all(s.name == "gcircus_process_cpu_seconds_total" and s.value >= 0 for s in cpu) and len(cpu) == 2

    daemon = {name: families[name].samples[0].value for name in (
        "gcircus_daemon_uptime_seconds", "gcircus_daemon_resident_memory_bytes", "gcircus_daemon_greenlets",
        "gcircus_watchers", "gcircus_daemon_cpu_seconds")}
    assert daemon["gcircus_watchers"] == 3 and daemon["gcircus_daemon_resident_memory_bytes"] > 0
    assert daemon["gcircus_daemon_greenlets"] >= 3 and daemon["gcircus_daemon_uptime_seconds"] > 0
