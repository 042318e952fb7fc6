"""systemd's notify protocol against a fake NOTIFY_SOCKET: READY=1 once the watchers run,
RELOADING=1/READY=1 around reloads, STOPPING=1 at stop, STATUS= counts, and WATCHDOG=1
pings that stop while the hub is held."""
import os
import time

import gevent
import pytest

from gcircus.arbiter import Arbiter
from gcircus.config import load_config
from gcircus.config.build import arbiter_from_config
from gcircus.hosting.notify import NotifySocket, SystemdNotifier, notify_address
from gcircus.watcher import Watcher
from tests.conftest import child_cmd
from tests.fixtures.systemd import FakeNotifySocket


@pytest.fixture
def notify_socket(tmp_path):
    fake = FakeNotifySocket(str(tmp_path))
    yield fake
    fake.close()


@pytest.fixture
def abstract_notify_socket():
    """'@name': the abstract namespace systemd may use."""
    fake = FakeNotifySocket(abstract=True)
    yield fake
    fake.close()


@pytest.fixture
def notified():
    """notified(arbiter, fake, watchdog=None) -> the arbiter started with a notifier attached."""
    running = []

    def start(arbiter, fake, watchdog=None):
        notifier = SystemdNotifier(NotifySocket(notify_address(fake.value)), watchdog)
        notifier.attach(arbiter)
        greenlet = gevent.spawn(arbiter.start)
        running.append((arbiter, greenlet, notifier))
        return notifier

    yield start
    for arbiter, greenlet, notifier in running:
        with gevent.Timeout(60, False):
            arbiter.stop()
        greenlet.join(10)
        notifier.close()


def sleeper(name, **kw):
    return Watcher(name, child_cmd("ready_then_sleep"), **kw)


def test_ready_only_once_every_autostart_watcher_runs(abstract_notify_socket, notified):
    watchers = [sleeper("a", priority=3), sleeper("b", priority=2, numprocesses=2), sleeper("c", priority=1),
                sleeper("manual", autostart=False)]
    # the arbiter yields between watcher starts: a READY=1 sent early would arrive meanwhile
    arbiter = Arbiter(watchers, None, None, check_delay=60, handle_signals=False, warmup_delay=0.2)
    notified(arbiter, abstract_notify_socket)
    datagrams = abstract_notify_socket.wait_for("READY=1")
    for name, count in (("a", 1), ("b", 2), ("c", 1)):
        watcher = arbiter.get_watcher(name)
        assert watcher.is_active() and len(watcher.get_active_processes()) == count
    assert datagrams[-1] == ["READY=1", "STATUS=4 watchers: 3 active, 1 stopped; 4 processes"]
    assert all(datagram[0].startswith("STATUS=") for datagram in datagrams[:-1])   # progress only


def test_status_follows_the_watchers(notify_socket, notified):
    arbiter = Arbiter([sleeper("a"), sleeper("b")], None, None, check_delay=60, handle_signals=False)
    notified(arbiter, notify_socket)
    notify_socket.wait_for("READY=1")
    gevent.spawn(arbiter.get_watcher("b").stop)
    assert notify_socket.wait_for("STATUS=2 watchers: 1 active, 1 stopped; 1 processes")


def test_reloading_then_ready_around_reloadconfig_and_reload(notify_socket, notified, tmp_path):
    path = tmp_path / "gcircus.ini"
    path.write_text("[circus]\nendpoint = ipc://%s/c.sock\npubsub_endpoint = ipc://%s/p.sock\n"
                    "[watcher:a]\ncmd = %s\n" % (tmp_path, tmp_path, child_cmd("ready_then_sleep")))
    arbiter = arbiter_from_config(load_config(str(path)), str(path))
    arbiter.handle_signals = False
    notified(arbiter, notify_socket)
    notify_socket.wait_for("READY=1")
    path.write_text(path.read_text() + "[watcher:b]\ncmd = %s\n" % child_cmd("ready_then_sleep"))
    gevent.spawn(arbiter.reload_from_config)
    reloading = notify_socket.wait_for("RELOADING=1")[-1]
    assert any(line.startswith("MONOTONIC_USEC=") for line in reloading)
    ready = notify_socket.wait_for("READY=1")
    assert ready[-1][0] == "READY=1" and arbiter.get_watcher("b").is_active()
    assert "STATUS=2 watchers: 2 active; 2 processes" in ready[-1]
    gevent.spawn(arbiter.reload)                 # what SIGHUP runs
    notify_socket.wait_for("RELOADING=1")
    notify_socket.wait_for("READY=1")


def test_stopping_when_the_arbiter_stops(notify_socket, notified):
    arbiter = Arbiter([sleeper("a")], None, None, check_delay=60, handle_signals=False)
    notified(arbiter, notify_socket)
    notify_socket.wait_for("READY=1")
    stopper = gevent.spawn(arbiter.stop)
    assert notify_socket.wait_for("STOPPING=1")[-1] == ["STOPPING=1", "STATUS=stopping"]
    stopper.join(30)
    assert not notify_socket.drain()             # STOPPING=1 once, nothing after


def hold_the_hub(seconds):
    """Block the hub on purpose (as a wedged hook or plugin would): time.sleep is not
    gevent's here, so no greenlet runs until it returns."""
    time.sleep(seconds)


def test_watchdog_pings_stop_while_the_hub_is_held(notify_socket, notified):
    arbiter = Arbiter([sleeper("a")], None, None, check_delay=60, handle_signals=False)
    notified(arbiter, notify_socket, watchdog=0.05)
    notify_socket.wait_for("READY=1")
    for _ in range(3):
        notify_socket.wait_for("WATCHDOG=1", ignore=())
    notify_socket.drain()
    # nothing can yield between the drain and the hold: every ping sent during it is one
    # the watchdog sent while the hub was held
    hold_the_hub(0.5)                            # ten watchdog periods
    assert notify_socket.drain() == []
    notify_socket.wait_for("WATCHDOG=1", ignore=())   # the hub runs again: so do the pings


def test_notifier_from_environ_takes_the_variables_away(notify_socket):
    environ = {"NOTIFY_SOCKET": notify_socket.value, "WATCHDOG_USEC": "3000000",
               "WATCHDOG_PID": str(os.getpid()), "PATH": "/bin"}
    notifier = SystemdNotifier.from_environ(environ)
    try:
        assert notifier.watchdog_interval == 1.5
        assert environ == {"PATH": "/bin"}       # no child mistakes itself for the notified service
        notifier.sock.send("STATUS=hello")
        assert notify_socket.wait_for("STATUS=hello")
    finally:
        notifier.close()
    other = {"NOTIFY_SOCKET": notify_socket.value, "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"}
    notifier = SystemdNotifier.from_environ(other)
    try:
        assert notifier.watchdog_interval is None    # the watchdog is another process's
    finally:
        notifier.close()
    assert SystemdNotifier.from_environ({}) is None
