"""100 clients at once: every request is answered, and a `quit` sent in the middle of the
load is honoured ahead of the work queued before it (reply at once, daemon gone), with nothing
spawned after it.

The clients stop sending new requests as `quit` is sent (each still has its last one in flight,
queued in the daemon ahead of quit): a request sent later could reach a daemon that has already
closed its socket, and no daemon can answer that. The default run loads the daemon for
LOAD_SECONDS; the slow variant for 30 s."""
import random
import time

import gevent
import psutil
import pytest

from gcircus.client import CallError, CircusClient, CircusConsumer
from tests.e2e.daemon_support import READY, Daemon, write_config

CLIENTS = 100
LOAD_SECONDS = 8
# Generous, so that a loaded CI machine cannot miss it: without pre-emption quit waited 55 s behind
# the load; here it is answered in milliseconds (the bound is 2 s)
QUIT_DEADLINE = 10.0
CLIENT_TIMEOUT = 30         # generous: a request unanswered this long is a lost request
COMMANDS = [("status", {}), ("list", {}), ("list", {"name": "web"}), ("stats", {"name": "web"}),
            ("incr", {"name": "web"}), ("decr", {"name": "web"}), ("numprocesses", {}),
            ("status", {"name": "other"}), ("dstats", {})]


class Load:
    """CLIENTS greenlets, each with its own client, sending COMMANDS until stopped."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.sent = self.answered = 0
        self.unanswered = []
        self.tracebacks = []
        self.running = True
        self.greenlets = [gevent.spawn(self._client_loop, seed) for seed in range(CLIENTS)]

    def _client_loop(self, seed):
        rng = random.Random(seed)
        client = CircusClient(endpoint=self.endpoint, timeout=CLIENT_TIMEOUT, green=True)
        try:
            while self.running:
                command, props = rng.choice(COMMANDS)
                self.sent += 1
                try:
                    reply = client.call({"command": command, "properties": dict(props)})
                except CallError as error:
                    self.unanswered.append((command, str(error)))
                    return
                self.answered += 1
                if reply.get("tb"):
                    self.tracebacks.append((command, reply))
        finally:
            client.stop()

    def stop(self):
        self.running = False
        gevent.joinall(self.greenlets, timeout=CLIENT_TIMEOUT + 5)


class Spawns:
    """Every `spawn` event the daemon publishes: (time, pid)."""

    def __init__(self, endpoint):
        self.consumer = CircusConsumer(["watcher."], endpoint=endpoint, timeout=0.2, green=True).connect()
        self.seen = []
        self.greenlet = gevent.spawn(self._read)

    def _read(self):
        import json
        for topic, body in self.consumer:
            if topic.endswith(b".spawn"):
                message = json.loads(body)
                self.seen.append((message["time"], message["process_pid"]))

    def stop(self):
        self.consumer.stop()
        self.greenlet.join(5)


def _run(workdir, seconds):
    path, endpoint = write_config(workdir, "[watcher:web]\ncmd = sleep 3600\nnumprocesses = 3\n"
                                           "graceful_timeout = 5\n[watcher:other]\ncmd = sleep 3601\n")
    daemon = Daemon(path)
    spawns = None
    try:
        daemon.wait_for(READY)
        spawns = Spawns("ipc://%s/pub.sock" % workdir)
        load = Load(endpoint)
        gevent.sleep(seconds)              # the load runs for this long: the duration is the test's subject
        assert load.answered > CLIENTS, "the load never got going: %d answers" % load.answered
        quitter = CircusClient(endpoint=endpoint, timeout=QUIT_DEADLINE, green=True)
        try:
            # no greenlet runs between these two lines: every request in flight was sent before quit
            load.running = False
            reply = quitter.call({"command": "quit", "properties": {}})
        finally:
            quitter.stop()
        answered_at = time.time()
        assert reply["status"] == "ok", reply
        code = daemon.proc.wait(60)
        load.stop()
        assert code == 0, daemon.text()
        assert not load.unanswered, "%d requests never answered: %s" % (len(load.unanswered), load.unanswered[:5])
        assert not load.tracebacks, load.tracebacks[:3]
        late = [(t, pid) for t, pid in spawns.seen if t > answered_at]
        assert not late, "spawned after quit was answered: %s" % late
        leftovers = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] in (
            ["sleep", "3600"], ["sleep", "3601"]) and p.ppid() == daemon.proc.pid]
        assert not leftovers
        return load
    finally:
        if spawns is not None:
            spawns.stop()
        daemon.kill()


def test_hundred_clients_then_quit(workdir):
    load = _run(workdir, LOAD_SECONDS)
    assert load.answered >= load.sent - CLIENTS      # each client had at most one request in flight at quit


@pytest.mark.slow
def test_hundred_clients_for_thirty_seconds_then_quit(workdir):
    _run(workdir, 30)
