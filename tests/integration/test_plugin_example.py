"""The example plugin of docs/writing-a-plugin.md (examples/event_log.py), run from
its INI file (examples/event_log.ini) with loopback ports and a temporary log."""
import os
import signal
import sys

import gevent
import pytest

from gcircus.config.build import load_arbiter
from tests.integration.conftest import loopback_endpoints
from tests.support.wait import wait_until

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "examples")


@pytest.fixture
def example_arbiter(tmp_path, monkeypatch, events):
    monkeypatch.syspath_prepend(EXAMPLES)     # what PYTHONPATH=examples does for gcircusd
    endpoints = loopback_endpoints()
    log = tmp_path / "events.log"
    with open(os.path.join(EXAMPLES, "event_log.ini")) as source:
        text = source.read()
    text = (text.replace("tcp://127.0.0.1:5555", endpoints.control)
                .replace("tcp://127.0.0.1:5556", endpoints.pubsub)
                .replace("python3 -u examples/worker.py", "%s -u %s" % (sys.executable,
                                                                         os.path.join(EXAMPLES, "worker.py")))
                .replace("/tmp/gcircus-events.log", str(log))
                .replace("summary_every = 10", "summary_every = 0.2"))
    config = tmp_path / "event_log.ini"
    config.write_text(text)
    arbiter = load_arbiter(str(config))
    arbiter.handle_signals = False
    arbiter.publisher.add_listener(events)
    greenlet = gevent.spawn(arbiter.start)
    assert arbiter.wait_started(15)
    yield arbiter, log
    arbiter.stop()
    greenlet.join(10)


def _lines(log):
    return log.read_text().splitlines() if log.exists() else []


def test_the_example_plugin_logs_summarises_and_restarts(example_arbiter, events):
    arbiter, log = example_arbiter
    wait_until(lambda: sum(" worker spawn pid " in line for line in _lines(log)) == 2, what="two spawns logged")
    assert _lines(log)[0].endswith("started, watching plugin:eventlog, worker")
    wait_until(lambda: any("summary worker: 2 processes" in line for line in _lines(log)), what="a summary")
    victim = sorted(arbiter.get_watcher("worker").processes)[0]
    os.kill(victim, signal.SIGUSR1)             # the worker exits 75: "restart my watcher"
    events.wait_count("watcher.worker.start", 2)
    wait_until(lambda: sum(" worker spawn pid " in line for line in _lines(log)) >= 4, what="the restart logged")
    text = log.read_text()
    assert "worker reap pid %d exit code 75" % victim in text
    assert "restarting worker (a process asked for it)" in text and " worker stop" in text
    arbiter.stop()
    assert _lines(log)[-1].endswith("stopped")
