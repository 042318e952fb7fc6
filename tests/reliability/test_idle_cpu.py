"""The daemon does not spin: with stats on and a connection waiting un-accepted on a
socket whose watcher is stopped, its CPU stays near idle and `reads` counts at most
one observation per 10 ms (Circus's select() resolution), not one per hub turn."""
import json
import socket
import time

import psutil
import zmq

from tests.integration.conftest import free_port

WINDOW = 2.0                  # seconds of daemon CPU time measured
CPU_BOUND = 0.5               # a spinning hub burns ~WINDOW; an idle one ~0
STATS_INTERVAL = 0.5
# socket_reads looks at most once per 10 ms: a round holds at most ~50 reads; 3x slack
READS_BOUND = 3 * STATS_INTERVAL / 0.01


def _socket_reads(endpoint, rounds, timeout=20):
    """`reads` of the first `rounds` stat.sockets totals on the stats endpoint."""
    context = zmq.Context.instance()
    sub = context.socket(zmq.SUB)
    sub.linger = 0
    sub.setsockopt(zmq.SUBSCRIBE, b"stat.sockets")
    sub.connect(endpoint)
    reads = []
    deadline = time.monotonic() + timeout
    try:
        while len(reads) < rounds:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "no %d stat.sockets rounds within %ss (got %s)" % (rounds, timeout, reads)
            if sub.poll(remaining * 1000):
                topic, body = sub.recv_multipart()
                if topic == b"stat.sockets":
                    reads.append(json.loads(body)["reads"])
    finally:
        sub.close()
    return reads


def test_pending_connection_on_stopped_watcher_socket_does_not_spin(gcircusd, workdir):
    port = free_port()
    stats = "ipc://%s/stats.sock" % workdir
    daemon = gcircusd("[socket:web]\nhost = 127.0.0.1\nport = %d\n"
                      "[watcher:web]\ncmd = sleep 120\nuse_sockets = true\nautostart = false\n" % port,
                      circus_extra="stats_endpoint = %s\nstats_interval = %s\n" % (stats, STATS_INTERVAL))
    waiting = socket.create_connection(("127.0.0.1", port), timeout=5)   # queued, never accepted
    try:
        _socket_reads(stats, 1)          # stats run and the connection is seen
        proc = psutil.Process(daemon.proc.pid)
        before = proc.cpu_times()
        reads = _socket_reads(stats, 2 + int(WINDOW / STATS_INTERVAL))
        after = proc.cpu_times()
        used = (after.user + after.system) - (before.user + before.system)
        assert used < CPU_BOUND, "daemon used %.2fs of CPU in ~%ss while idle" % (used, WINDOW)
        assert max(reads) <= READS_BOUND, "reads inflated: %s per %ss round" % (reads, STATS_INTERVAL)
        assert max(reads) > 0      # the waiting connection is counted
    finally:
        waiting.close()
