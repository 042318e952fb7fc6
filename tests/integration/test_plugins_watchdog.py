"""WatchDog with real children sending heartbeats over UDP: a silent process is
killed and respawned, a beating one is left alone."""
from gcircus.watcher import Watcher
from tests.conftest import child_cmd
from tests.integration.plugin_support import free_udp_port, plugin_instance


def test_a_silent_process_is_killed_and_respawned(served_arbiter, lines, events):
    port = free_udp_port()
    beating = Watcher("beating", child_cmd("udp_heartbeat", "127.0.0.1", port, 0.05),
                      stdout_stream={"stream": lines})
    silent = Watcher("silent", child_cmd("udp_heartbeat", "127.0.0.1", port, 0.05, "--silent"),
                     stdout_stream={"stream": lines}, graceful_timeout=2)
    other = Watcher("unwatched", child_cmd("udp_heartbeat", "127.0.0.1", port, 0.05, "--silent"),
                    stdout_stream={"stream": lines})
    arbiter = served_arbiter([beating, silent, other], plugins=[{
        "use": "circus.plugins.watchdog.WatchDog", "name": "plugin:watchdog", "port": str(port),
        "loop_rate": "0.1", "max_count": "3", "watchers_regex": "^(beating|silent)$",
        "watchers_stop_signal": "TERM", "watchers_graceful_timeout": "1"}])
    lines.wait_for("ready", 3)
    (beating_pid,) = beating.processes
    (first_silent,) = silent.processes
    (other_pid,) = other.processes
    events.wait_count("watcher.silent.reap", 2, timeout=15)          # killed, respawned, killed again
    reaps = [m for t, m in events.events if t == "watcher.silent.reap"]
    assert reaps[0]["process_pid"] == first_silent and reaps[0]["exit_code"] == -15
    spawned = [m["process_pid"] for t, m in events.events if t == "watcher.silent.spawn"]
    assert len(spawned) >= 2 and spawned[1] != first_silent
    assert list(beating.processes) == [beating_pid] and list(other.processes) == [other_pid]
    assert events.count("watcher.beating.kill") == 0 and events.count("watcher.unwatched.kill") == 0
    watchdog = plugin_instance(arbiter, "plugin:watchdog")
    assert str(beating_pid) in watchdog.pid_status and str(other_pid) not in watchdog.pid_status
