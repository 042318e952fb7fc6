"""Each wire command against a live arbiter: reply keys and values as Circus
gives them, the `waiting` behaviour, and the fixes of Circus's bugs."""
import os
import signal

import psutil

from gcircus.states import WatcherState
from gcircus.supervision import children_record
from gcircus.supervision.children_record import ChildRecord, read_entries
from gcircus.watcher import Watcher
from tests.conftest import child_cmd
from tests.support.wait import wait_until


def ok(reply):
    assert reply["status"] == "ok", reply
    return reply


def test_list_status_numbers(served_arbiter, call):
    web = Watcher("Web Front", "sleep 120", numprocesses=2)
    served_arbiter([web, Watcher("worker", "sleep 120")])
    assert ok(call("list"))["watchers"] == ["web front", "worker"]        # sorted, lower-cased
    assert sorted(ok(call("list", name="WEB FRONT"))["pids"]) == sorted(web.processes)
    assert ok(call("status"))["statuses"] == {"Web Front": "active", "worker": "active"}
    assert call("status", name="worker")["status"] == "active"          # replaces "ok"
    assert ok(call("numwatchers"))["numwatchers"] == 2
    assert ok(call("numprocesses"))["numprocesses"] == 3
    reply = ok(call("numprocesses", name="web front"))
    assert reply["numprocesses"] == 2 and reply["watcher_name"] == "web front"


def test_add_then_start_and_rm(served_arbiter, call, events):
    arbiter = served_arbiter([])
    assert list(ok(call("add", name="late", cmd="sleep 120"))) == ["status", "time", "id"]
    assert call("status", name="late")["status"] == "stopped"
    reply = ok(call("add", name="eager", cmd="sleep", args=["120"], start=True, waiting=True,
                    options={"numprocesses": 2, "env": {"A": "1"}, "rlimit_nofile": 256,
                             "hooks.before_start": "%s.allow" % __name__}))
    eager = arbiter.get_watcher("eager")
    assert sorted(reply["started"]) == sorted(eager.processes) and reply["kept"] == []
    assert eager.env == {"A": "1"} and eager.rlimits == {"nofile": 256}
    assert events.count("watcher.eager.add") == 1
    ok(call("start", name="late", waiting=True))
    assert call("status", name="late")["status"] == "active"
    pids = list(eager.processes)
    ok(call("rm", name="eager", waiting=True))
    assert "eager" not in call("list")["watchers"] and call("numwatchers")["numwatchers"] == 1
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in pids)
    events.wait_count("watcher.eager.remove", 1)


def allow(**kw):
    return True


def test_add_refuses_unknown_and_badly_typed_options(served_arbiter, call):
    served_arbiter([])
    assert "unknown key 'bogus'" in call("add", name="a", cmd="sleep 1", options={"bogus": 1})["reason"]
    assert call("add", name="a", cmd="sleep 1", options={"numprocesses": "many"})["errno"] == 3
    assert call("add", name="a", cmd="sleep 1", options={"hooks.nope": "x.y"})["errno"] == 3
    assert call("add", name="a", cmd=["sleep"])["errno"] == 3
    assert call("numwatchers")["numwatchers"] == 0


def test_add_and_set_refuse_an_empty_cmd(served_arbiter, call):
    served_arbiter([Watcher("web", "sleep 120")])
    for cmd in ("", "   "):
        reply = call("add", name="blank", cmd=cmd, start=True)
        assert reply["errno"] == 3 and "'cmd': invalid command %r (must not be empty)" % cmd in reply["reason"], reply
        assert reply["tb"] is None
    assert call("numwatchers")["numwatchers"] == 1
    reply = call("set", name="web", options={"cmd": " "})
    assert reply["errno"] == 3 and "'cmd': invalid command ' ' (must not be empty)" in reply["reason"]
    assert call("status", name="web")["status"] == "active"


def test_rm_nostop_leaves_the_process_running(served_arbiter, call, tmp_path, monkeypatch):
    record = ChildRecord(str(tmp_path / "children"))      # as gcircusd keeps one
    assert record.claim()
    monkeypatch.setattr(children_record, "current", record)
    watcher = Watcher("loose", "sleep 120")
    served_arbiter([watcher])
    pid = next(iter(watcher.processes))
    process = watcher.processes[pid]
    assert pid in read_entries(record.path)
    ok(call("rm", name="loose", nostop=True, waiting=True))
    try:
        assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        # no longer ours: a gcircusd restarted after a crash must not stop it
        assert pid not in read_entries(record.path)
    finally:
        os.kill(pid, signal.SIGKILL)
        record.close()
    # no longer managed: its exit is not replaced by the removed watcher (nothing would ever stop that one)
    wait_until(process.has_exited, what="the exit collected")
    ok(call("list"))        # hub turns in which a replacement would have been spawned
    assert [c.pid for c in psutil.Process().children() if c.cmdline() == ["sleep", "120"]] == []


def test_start_stop_restart_by_name_and_match(served_arbiter, call):
    web1, web2 = Watcher("web1", "sleep 120"), Watcher("web2", "sleep 120")
    other = Watcher("other", "sleep 120")
    served_arbiter([web1, web2, other])
    assert ok(call("stop", name="web1", waiting=True))["info"] is None
    assert web1.state is WatcherState.STOPPED
    info = ok(call("start", name="web1", waiting=True))["info"]
    assert info["started"] == list(web1.processes) and info["kept"] == []
    old = list(web1.processes)
    info = ok(call("restart", name="web1", match="simple", waiting=True))["info"]
    assert info["stopped"] == old and info["started"] == list(web1.processes) and info["kept"] == []
    reply = ok(call("stop", name="web*", waiting=True))                  # glob, several: no info
    assert "info" not in reply and web1.is_stopped() and web2.is_stopped() and other.is_active()
    ok(call("start", name="^web[12]$", match="regex", waiting=True))
    assert web1.is_active() and web2.is_active()
    assert call("stop", name="nothing*")["reason"] == "program nothing* not found"
    ok(call("stop", waiting=True))
    assert all(w.is_stopped() for w in (web1, web2, other))
    ok(call("start", waiting=True))
    assert all(w.is_active() for w in (web1, web2, other))
    before = {pid for w in (web1, web2, other) for pid in w.processes}
    ok(call("restart", waiting=True))
    after = {pid for w in (web1, web2, other) for pid in w.processes}
    assert len(after) == 3 and not before & after


def test_stop_without_waiting_answers_before_the_stop_ends(served_arbiter, call, events, lines):
    watcher = Watcher("slowpoke", child_cmd("ready_then_sleep", "--ignore-term"), graceful_timeout=1,
                      stdout_stream={"stream": lines})
    served_arbiter([watcher])
    lines.wait_for("ready")
    assert list(ok(call("stop", name="slowpoke"))) == ["status", "time", "id"]
    assert watcher.state is WatcherState.STOPPING
    lines.wait_for("TERM")
    assert watcher.state is WatcherState.STOPPING          # TERM ignored: SIGKILL after 1 s
    events.wait_count("watcher.slowpoke.stop", 1)
    assert events.count("watcher.slowpoke.kill") == 2


def test_reload_named_and_all(served_arbiter, call, events):
    watcher = Watcher("Upper", "sleep 120", numprocesses=2)
    served_arbiter([watcher])
    old = sorted(watcher.processes)
    info = ok(call("reload", name="upper", waiting=True))["info"]
    assert sorted(info["stopped"]) == old and sorted(info["started"]) == sorted(watcher.processes)
    assert not set(old) & set(watcher.processes)
    events.wait_count("watcher.upper.reload", 1)
    old = sorted(watcher.processes)
    assert "info" not in ok(call("reload", sequential=True, waiting=True))
    assert len(watcher.processes) == 2 and not set(old) & set(watcher.processes)
    old = sorted(watcher.processes)
    ok(call("reload", name="upper", graceful=False, waiting=True))
    assert not set(old) & set(watcher.processes)


def test_incr_decr_always_return_numprocesses(served_arbiter, call):
    watcher = Watcher("web", "sleep 120")
    single = Watcher("single", "sleep 120", singleton=True)
    served_arbiter([watcher, single])
    assert ok(call("incr", name="web"))["numprocesses"] == 2                      # without waiting too
    assert ok(call("incr", name="web", nb=2, waiting=True))["numprocesses"] == 4
    assert len(watcher.processes) == 4
    assert ok(call("decr", name="web", nb=100, waiting=True))["numprocesses"] == 0
    assert not watcher.processes
    assert ok(call("decr", name="web", nb=100))["numprocesses"] == 0
    assert ok(call("incr", name="web", nb=1, waiting=True))["numprocesses"] == 1
    for command in ("decr", "incr"):
        reply = call(command, name="web", nb=-3, waiting=True)
        assert reply["errno"] == 3 and "'nb': invalid value" in reply["reason"]
    assert len(watcher.processes) == 1 and watcher.numprocesses == 1
    reply = ok(call("incr", name="single"))
    assert reply["numprocesses"] == 1 and reply["singleton"] is True and len(single.processes) == 1


def test_signal_targets(served_arbiter, call, lines):
    cmd = child_cmd("ready_then_sleep", "--ignore-term", "--grandchild")
    watcher = Watcher("family", cmd, graceful_timeout=0.2, stdout_stream={"stream": lines})
    served_arbiter([watcher])
    lines.wait_for("ready", 2)
    parent = next(iter(watcher.processes))
    child = [pid for pid in lines.pids("ready") if pid != parent][0]
    ok(call("signal", name="family", signum="term"))                              # the process only
    lines.wait_for("TERM", 1)
    assert lines.pids("TERM") == [parent]
    ok(call("signal", name="family", pid=parent, signum=15, children=True))      # its children only
    lines.wait_for("TERM", 2)
    assert lines.pids("TERM")[1] == child
    ok(call("signal", name="family", signum="SIGTERM", recursive=True))          # both
    lines.wait_for("TERM", 4)
    assert sorted(lines.pids("TERM")[2:]) == sorted([parent, child])
    ok(call("signal", name="family", pid=parent, childpid=child, signum="TERM"))
    lines.wait_for("TERM", 5)
    assert lines.pids("TERM")[4] == child
    reply = call("signal", name="family", pid=1, signum="TERM")                  # not ours: an error
    assert reply["errno"] == 3 and "process 1 not found in family" in reply["reason"]
    assert call("signal", name="family", childpid=child, signum="TERM")["errno"] == 3


def test_kill_stops_then_replaces(served_arbiter, call, events, lines):
    watcher = Watcher("stubborn", child_cmd("ready_then_sleep", "--ignore-term"), numprocesses=2,
                      graceful_timeout=0.3, stdout_stream={"stream": lines})
    served_arbiter([watcher])
    lines.wait_for("ready", 2)
    first, second = list(watcher.processes)
    ok(call("kill", name="stubborn", pid=first, signum="KILL", waiting=True))
    assert first not in watcher.processes and len(watcher.processes) == 2
    reaps = [m for t, m in events.events if t == "watcher.stubborn.reap"]
    assert reaps[0]["process_pid"] == first and reaps[0]["exit_code"] == -signal.SIGKILL
    ok(call("kill", name="stubborn", graceful_timeout="0.1", waiting=True))    # TERM ignored: SIGKILL
    assert second not in watcher.processes and len(watcher.processes) == 2
    assert second in lines.pids("TERM")
    reap = [m for t, m in events.events if t == "watcher.stubborn.reap" and m["process_pid"] == second]
    assert reap[0]["exit_code"] == -signal.SIGKILL
    assert call("kill", name="stubborn", pid=1)["errno"] == 3


def test_stats_and_dstats(served_arbiter, call):
    watcher = Watcher("web", "sleep 120", numprocesses=2)
    served_arbiter([watcher])
    infos = ok(call("stats"))["infos"]
    assert set(infos) == {"web"} and set(infos["web"]) == {str(p) for p in watcher.processes}
    info = next(iter(infos["web"].values()))
    assert info["cmdline"] == "sleep" and {"cpu", "mem", "mem_info1", "ctime", "wid", "age"} <= set(info)
    reply = ok(call("stats", name="WEB"))
    assert reply["name"] == "WEB" and len(reply["info"]) == 2
    pid = next(iter(watcher.processes))
    reply = ok(call("stats", name="web", process=pid))
    assert reply["process"] == pid and reply["info"]["pid"] == pid and reply["info"]["wid"] in (1, 2)
    assert call("stats", name="web", process=1)["reason"] == "process 1 not found in 'web'"
    info = ok(call("dstats"))["info"]
    assert info["pid"] == os.getpid() and info["children"] == []


def test_options_get_and_globaloptions(served_arbiter, call, endpoints):
    served_arbiter([Watcher("web", "sleep 120", send_hup=True, env={"B": "2"}, **{"flapping.max_retry": 3})])
    options = ok(call("options", name="web"))["options"]
    assert list(options) == sorted(options)
    assert options["send_hup"] is True and options["flapping.max_retry"] == 3 and options["env"] == {"B": "2"}
    assert options["stop_signal"] == signal.SIGTERM and options["numprocesses"] == 1
    got = ok(call("get", name="web", keys=["numprocesses", "flapping.max_retry"]))["options"]
    assert got == {"numprocesses": 1, "flapping.max_retry": 3}
    glob = ok(call("globaloptions", name="ignored"))["options"]
    assert glob["endpoint"] == endpoints.control and glob["pubsub_endpoint"] == endpoints.pubsub
    assert set(glob) == {"endpoint", "stats_endpoint", "pubsub_endpoint", "check_delay", "multicast_endpoint"}
    assert ok(call("globaloptions", option="check_delay"))["options"] == {"check_delay": 60.0}


def test_set_applies_every_key_and_publishes_updated(served_arbiter, call, events, tmp_path):
    watcher = Watcher("web", "sleep 120")
    served_arbiter([watcher])
    first = next(iter(watcher.processes))
    ok(call("set", name="web", waiting=True, options={
        "respawn": False, "max_retry": 2, "copy_env": True, "close_child_stdout": True,
        "rlimit_nofile": 128, "min_uptime": 0.5, "backoff_base": 0.2, "stop_signal": "INT",
        "graceful_timeout": 3, "env": {"ONE": "1"}, "hooks.after_stop": "%s.allow" % __name__}))
    assert events.count("watcher.web.updated") == 11
    assert (watcher.respawn, watcher.max_retry, watcher.close_child_stdout) == (False, 2, True)
    assert watcher.rlimits == {"nofile": 128} and watcher.min_uptime == 0.5
    assert watcher.stop_signal == signal.SIGINT and watcher.graceful_timeout == 3.0
    assert watcher.child_env["ONE"] == "1" and "PATH" in watcher.child_env   # copy_env rebuilt the env
    assert "after_stop" in watcher.hooks
    assert first not in watcher.processes and len(watcher.processes) == 1      # reloaded: new process
    assert ok(call("get", name="web", keys=["env"]))["options"]["env"] == {"ONE": "1"}


def test_set_numprocesses_and_streams(served_arbiter, call, tmp_path):
    watcher = Watcher("web", "sleep 120")
    served_arbiter([watcher])
    pid = next(iter(watcher.processes))
    ok(call("set", name="web", options={"numprocesses": 3, "warmup_delay": 0}, waiting=True))
    assert len(watcher.processes) == 3 and pid in watcher.processes            # managed, not reloaded
    log = str(tmp_path / "out.log")
    ok(call("set", name="web", options={"stdout_stream.class": "FileStream",
                                        "stdout_stream.filename": log}, waiting=True))
    assert watcher.streams.stdout_conf == {"class": "FileStream", "filename": log}
    assert pid not in watcher.processes                                      # pipes need new processes
    assert call("set", name="web", options={"singleton": True})["errno"] == 3
    assert call("set", name="web", options={"numprocesses": -1})["errno"] == 3


def test_set_max_age_recycles_every_process(served_arbiter, call, events):
    watcher = Watcher("web", "sleep 120", numprocesses=4)
    served_arbiter([watcher])
    old = set(watcher.processes)
    ok(call("set", name="web", options={"max_age": 1, "max_age_variance": 0}, waiting=True))
    assert len(watcher.processes) == 4 and not old & set(watcher.processes)


def test_listsockets_ipython_reloadconfig(served_arbiter, call):
    served_arbiter([])
    assert ok(call("listsockets"))["sockets"] == []
    reply = ok(call("ipython"))
    assert reply["shell"] is False and "not available" in reply["msg"]
    reply = call("reloadconfig")
    assert reply["errno"] == 3 and "not started from a configuration file" in reply["reason"]


class FakeSocket:
    def __init__(self, name, fd, **kw):
        self.name, self._fd = name, fd
        self.is_unix = "path" in kw
        self.__dict__.update(kw)

    def fileno(self):
        return self._fd

    def close(self):
        self._fd = -1


def test_listsockets_reports_host_port_or_path(served_arbiter, call):
    arbiter = served_arbiter([])
    arbiter.sockets.add(FakeSocket("web", 9, host="127.0.0.1", port=8080, backlog=2048))
    arbiter.sockets.add(FakeSocket("sock", 7, path="/tmp/x.sock", backlog=5))
    sockets = ok(call("listsockets"))["sockets"]
    assert sockets == [{"fd": 7, "name": "sock", "backlog": 5, "path": "/tmp/x.sock"},
                       {"fd": 9, "name": "web", "backlog": 2048, "host": "127.0.0.1", "port": 8080}]
    arbiter.sockets.remove("web")
    arbiter.sockets.remove("sock")


def test_events_reach_subscribers_with_circus_topics(served_arbiter, call, wire_events):
    arbiter = served_arbiter([])
    wire_events.sync(arbiter.publisher)
    ok(call("add", name="Added One", cmd="sleep 120", start=True, waiting=True))
    pid = ok(call("list", name="added one"))["pids"][0]
    ok(call("set", name="added one", options={"graceful_timeout": 5}))
    ok(call("kill", name="added one", waiting=True))
    ok(call("rm", name="added one", waiting=True))
    spawn = wire_events.wait_for("watcher.added_one.spawn", 2)
    assert spawn[0]["process_pid"] == pid and set(spawn[0]) == {"process_pid", "time"}
    reap = wire_events.wait_for("watcher.added_one.reap")[0]
    assert reap == {"process_pid": pid, "time": reap["time"], "exit_code": -signal.SIGTERM}
    assert wire_events.wait_for("watcher.added_one.kill")[0]["process_pid"] == pid
    wire_events.wait_for("watcher.added_one.stop")
    topics = [t.rsplit(".", 1)[1] for t in wire_events.topics()]
    assert topics[:3] == ["add", "spawn", "start"] and "updated" in topics
    assert topics.index("remove") < len(topics) - 1 and topics[-1] == "stop"


# Out-of-range values on the wire: the option table's converters refuse them as they refuse them in a config
# file, each with errno 3 naming the key, and nothing changes.
OUT_OF_RANGE = [
    ("numprocesses", -1, "invalid value -1 (must be >= 0)"),
    ("graceful_timeout", -1, "invalid duration -1 (must be >= 0)"),
    ("backoff_max", float("inf"), "(must be finite)"),
    ("max_retry", -2, "invalid retry count -2"),
    ("stdout_stream.max_bytes", -1, "invalid value -1 (must be >= 0)"),
    ("rlimit_nofile", 2 ** 64, "invalid rlimit 18446744073709551616"),
    ("priority", 1.5, "invalid integer 1.5"),
    ("stop_signal", 999, "invalid signal 999"),
    ("send_hup", "y", "invalid boolean 'y'"),
    ("cmd", "  ", "invalid command '  ' (must not be empty)"),
]


def test_set_and_add_refuse_out_of_range_values(served_arbiter, call):
    served_arbiter([Watcher("web", "sleep 120")])
    before = ok(call("options", name="web"))["options"]
    for key, value, reason in OUT_OF_RANGE:
        reply = call("set", name="web", options={key: value})
        assert reply.get("errno") == 3 and reply["reason"].startswith("message invalid: %r: " % key), (key, reply)
        assert reason in reply["reason"], (key, reply)
        # add takes its command from its own property (the one in options is ignored, as in Circus)
        props = {"cmd": value} if key == "cmd" else {"cmd": "sleep 120", "options": {key: value}}
        reply = call("add", name="new", **props)
        assert reply.get("errno") == 3 and "%r: " % key in reply["reason"] and reason in reply["reason"], (key, reply)
    assert ok(call("options", name="web"))["options"] == before
    assert ok(call("list"))["watchers"] == ["web"]
    assert call("status", name="web")["status"] == "active"
