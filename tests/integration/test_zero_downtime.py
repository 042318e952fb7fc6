"""Zero-downtime reload: a graceful reload of workers sharing one
listening socket starts the new generation before stopping the old, so a client
sending requests the whole time sees no failure.

Why nothing can fail, rather than rarely fails:
- the arbiter holds the listening socket across generations, so a connection
  made while no worker accepts waits in the shared listen backlog;
- the new generation is spawned before the old one is signalled;
- a worker told to stop (SIGTERM) finishes the request it is serving and
  accepts nothing more (tests/fixtures/children/http_worker.py), and a worker
  that had not yet accepted anything leaves its connections in the backlog.
"""

import gevent
import pytest
from gevent.event import Event

from gcircus.sockets import CircusSocket
from gcircus.watcher import Watcher
from tests.conftest import child_cmd
from tests.fixtures.http_client import http_get
from tests.support.wait import wait_until

WORKERS = 4
RELOADS = 5
REQUESTS = 2000
CLIENTS = 8


class Traffic:
    """CLIENTS greenlets sending requests back to back, one connection each (no keep-alive)."""

    def __init__(self, address):
        self.address = address
        self.served = []          # pid of the worker that answered, per request
        self.failures = []        # repr of each failed request
        self._progress = Event()
        self._stopping = False
        self._clients = []

    def start(self, clients):
        for number in range(clients):
            client = gevent.spawn(self._client_loop)
            client.name = "traffic[%d]" % number
            self._clients.append(client)

    def _client_loop(self):
        """Owned by the test; sends requests until stop()."""
        while not self._stopping:
            try:
                self.served.append(http_get(self.address, timeout=10)["pid"])
            except (OSError, ValueError) as error:
                self.failures.append(repr(error))
            self._progress.set()

    @property
    def done(self):
        return len(self.served) + len(self.failures)

    def wait_for(self, count, timeout=20):
        wait_until(lambda: self.done >= count, timeout, "%d requests" % count, changed=self._progress,
                   detail=lambda: "only %d done" % self.done)

    def stop(self):
        self._stopping = True
        gevent.joinall(self._clients, timeout=15)


def http_workers(lines, numprocesses=WORKERS):
    return Watcher("web", child_cmd("http_worker", "$(circus.sockets.web)"), numprocesses=numprocesses,
                   use_sockets=True, stdout_stream={"stream": lines}, graceful_timeout=10)


@pytest.mark.parametrize("round_number", [1, 2, 3])
def test_reloads_under_continuous_traffic_lose_no_request(run_arbiter, lines, events, round_number):
    web = CircusSocket("web", host="127.0.0.1", port=0)
    watcher = http_workers(lines)
    run_arbiter([watcher], sockets=[web])
    lines.wait_for("ready", WORKERS)
    traffic = Traffic(("127.0.0.1", web.port))
    traffic.start(CLIENTS)
    generations = [set(watcher.processes)]
    try:
        for number in range(1, RELOADS + 1):
            traffic.wait_for(number * REQUESTS // (RELOADS + 1))
            result = watcher.reload()
            assert set(result["stopped"]) == generations[-1]
            assert set(result["started"]) == set(watcher.processes)
            generations.append(set(watcher.processes))
        traffic.wait_for(REQUESTS)
    finally:
        traffic.stop()
    assert traffic.failures == []
    assert traffic.done >= REQUESTS
    served = set(traffic.served)
    assert len(generations) == RELOADS + 1 and all(len(g) == WORKERS for g in generations)
    for generation in generations:
        assert served & generation, "a generation served nothing"
    assert served <= set().union(*generations)
    # the old workers left on their own after SIGTERM: none had to be SIGKILLed
    exits = [m["exit_code"] for t, m in events.events if t == "watcher.web.reap"]
    assert len(exits) == RELOADS * WORKERS and set(exits) <= {0, -15}


def test_a_request_in_flight_is_finished_by_the_old_worker(run_arbiter, lines, events):
    web = CircusSocket("web", host="127.0.0.1", port=0)
    watcher = http_workers(lines, numprocesses=1)
    run_arbiter([watcher], sockets=[web])
    lines.wait_for("ready")
    old = next(iter(watcher.processes))
    slow = gevent.spawn(http_get, ("127.0.0.1", web.port), "/slow")
    lines.wait_for("busy")                     # the old worker is in the middle of it
    result = watcher.reload()
    assert result["stopped"] == [old]
    assert slow.get(timeout=10)["pid"] == old  # answered, not cut off
    reap = [m for t, m in events.events if t == "watcher.web.reap"]
    assert [(m["process_pid"], m["exit_code"]) for m in reap] == [(old, 0)]
    assert http_get(("127.0.0.1", web.port))["pid"] == result["started"][0]
