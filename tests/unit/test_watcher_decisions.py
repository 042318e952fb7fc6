"""The watcher's decisions from scripted histories: no fork, no pipes, no sockets.

A ScriptedWatcher builds FakeProcess objects instead of forking (Watcher.process_class);
each test feeds exits and signals to them and asserts what the watcher decided — the
events it published and the processes it spawned — as Supervisor's tests do with their
fake OS. Real-process tests of the same paths live in tests/integration.
"""
import itertools
import signal
import time

import gevent
import pytest
from gevent.event import Event

from gcircus.pubsub import Publisher
from gcircus.states import WatcherState
from gcircus.watcher import Watcher
from tests.support.wait import wait_until

_pids = itertools.count(100000)


class FakeProcess:
    """Duck-types gcircus.process.Process: 'spawned' at construction, exits when told to (or when
    signalled with a signal it does not ignore)."""

    def __init__(self, wid, cmd, watcher=None, **_spawn_options):
        self.wid, self.cmd, self.watcher = wid, cmd, watcher
        self.pid = next(_pids)
        self.started = time.time()
        self.ended = None
        self.returncode = None
        self.stopping = False
        self.killer = None
        self.max_age_timer = None
        self.exited = Event()
        self.pumps = []
        self.stdout = self.stderr = None
        self.signals = []
        self.ignores = set()
        self._listeners = []

    def exit(self, code=0, lived=None):
        """The kernel reports this process's exit (after `lived` seconds, if given)."""
        if lived is not None:
            self.started = time.time() - lived
        self.ended = time.time()
        self.returncode = code
        self.exited.set()
        for listener in self._listeners:
            listener(self)

    def add_exit_listener(self, listener):
        self._listeners.append(listener)
        if self.exited.is_set():
            listener(self)

    def send_signal(self, signum):
        self.signals.append(signum)
        if not self.exited.is_set() and signum not in self.ignores:
            gevent.get_hub().loop.run_callback(self.exit, -signum)    # the kernel reports it later

    def kill_tree(self, signum=signal.SIGKILL):
        self.send_signal(signum)
        return []

    def children(self, recursive=False):
        return []

    def has_exited(self):
        return self.exited.is_set()

    def wait_exited(self, timeout=None):
        return self.exited.wait(timeout)

    def check_exit(self):
        """Nothing to collect: every exit is reported through exit()."""

    def exit_pending(self):
        """No exit sits unreported in a fake kernel."""
        return False

    def age(self):
        return (self.ended or time.time()) - self.started

    def info(self):
        return {"pid": self.pid}


class ScriptedWatcher(Watcher):
    process_class = FakeProcess


@pytest.fixture
def scripted():
    """scripted(**options) -> (started watcher, its event log [(event, body)])."""
    made = []

    def make(**options):
        options.setdefault("min_uptime", 1)
        watcher = ScriptedWatcher("w", "prog", **options)
        log = []
        changed = Event()
        watcher.publisher = Publisher()

        def listen(topic, message):
            log.append((topic.rsplit(".", 1)[1], message))
            changed.set()
        watcher.publisher.add_listener(listen)
        watcher.log, watcher.log_changed = log, changed
        watcher.start()
        made.append(watcher)
        return watcher, log
    yield make
    for watcher in made:
        watcher.stop()
        watcher.close()


def events(log):
    return [name for name, _ in log]


def wait_events(watcher, predicate, what):
    wait_until(lambda: predicate(events(watcher.log)), 5, what, changed=watcher.log_changed,
               detail=lambda: events(watcher.log))


def test_start_spawns_numprocesses_then_publishes_start(scripted):
    watcher, log = scripted(numprocesses=3)
    assert events(log) == ["spawn", "spawn", "spawn", "start"]
    assert sorted(p.wid for p in watcher.processes.values()) == [1, 2, 3]
    assert watcher.state is WatcherState.ACTIVE


def test_an_exit_after_min_uptime_is_reaped_then_replaced_at_once_with_its_wid(scripted):
    watcher, log = scripted(numprocesses=2)
    victim = next(iter(watcher.processes.values()))
    victim.exit(1, lived=5)
    wait_events(watcher, lambda names: names.count("spawn") == 3, "the replacement")
    assert events(log)[-2:] == ["reap", "spawn"]             # reap first, on the wire too
    assert dict(log)["reap"] == {"process_pid": victim.pid, "time": dict(log)["reap"]["time"], "exit_code": 1}
    assert victim.pid not in watcher.processes and len(watcher.processes) == 2
    assert sorted(p.wid for p in watcher.processes.values()) == [1, 2]   # the freed wid is reused


def test_respawn_false_never_refills_and_stops_when_the_last_process_is_gone(scripted):
    watcher, log = scripted(numprocesses=2, respawn=False)
    first, second = list(watcher.processes.values())
    first.exit(0, lived=5)
    wait_events(watcher, lambda names: "reap" in names, "the first reap")
    assert watcher.state is WatcherState.ACTIVE and events(log).count("spawn") == 2
    watcher.reap_and_manage_processes()                      # the safety-net sweep must not refill either
    assert events(log).count("spawn") == 2
    second.exit(0, lived=5)
    wait_events(watcher, lambda names: names[-1:] == ["stop"], "the watcher's stop")
    assert watcher.state is WatcherState.STOPPED and events(log).count("spawn") == 2


def test_decr_retires_the_oldest_process_and_incr_spawns_one(scripted):
    watcher, log = scripted(numprocesses=2)
    oldest, newest = watcher.processes.values()
    oldest.started -= 10
    assert watcher.decr(1, wait=True) == 1
    assert oldest.signals == [signal.SIGTERM] and not newest.signals
    assert list(watcher.processes) == [newest.pid]
    assert watcher.incr(1) == 2 and events(log).count("spawn") == 3


def test_stop_signals_every_process_then_reaps_them_and_publishes_stop(scripted):
    watcher, log = scripted(numprocesses=2, stop_signal="INT")
    processes = list(watcher.processes.values())
    assert sorted(watcher.stop()) == sorted(p.pid for p in processes)
    assert all(p.signals == [signal.SIGINT] for p in processes)
    assert events(log)[-5:].count("reap") == 2 and events(log)[-1] == "stop"
    assert watcher.state is WatcherState.STOPPED and not watcher.processes


def test_a_process_ignoring_the_stop_signal_is_killed_after_graceful_timeout(scripted):
    watcher, log = scripted(graceful_timeout=0.05)
    stubborn = next(iter(watcher.processes.values()))
    stubborn.ignores.add(signal.SIGTERM)
    watcher.stop()
    assert stubborn.signals[0] == signal.SIGTERM and signal.SIGKILL in stubborn.signals
    assert dict(log)["reap"]["exit_code"] == -signal.SIGKILL


def test_max_age_starts_the_replacement_before_retiring_the_old_process(scripted):
    watcher, log = scripted(max_age=0.05, max_age_variance=0)
    old = next(iter(watcher.processes.values()))
    wait_events(watcher, lambda names: "reap" in names, "the retirement")
    names = events(log)
    assert names.index("spawn", 1) < names.index("reap")     # the new one was spawned first
    assert old.signals == [signal.SIGTERM] and old.pid not in watcher.processes


def test_a_stopping_watcher_does_not_replace_what_it_stops(scripted):
    watcher, log = scripted(numprocesses=3)
    watcher.stop()
    assert events(log).count("spawn") == 3 and not watcher.processes


def test_a_failed_after_start_hook_stops_the_watcher_without_ever_publishing_start(scripted):
    watcher, log = scripted(hooks={"after_start": ("tests.unit.test_watcher_decisions.refuse", False)})
    assert "start" not in events(log) and events(log)[-1] == "stop"
    assert watcher.state is WatcherState.STOPPED and not watcher.processes


def refuse(watcher, arbiter, hook_name, **kwargs):
    return False
