"""The stats stream: a greenlet inside the arbiter (no circusd-stats process)
publishing Circus's stats messages (so circus-top reads them) on a PUB socket bound on `stats_endpoint`.

Every `interval` seconds (1 by default; arbiter option `stats_interval`), for
each watcher with processes: `stat.<watcher>.<pid>` per process then the
`stat.<watcher>` aggregate; then `stat.circus.<pid>` / `stat.circus` for the
daemon itself (named `circusd`, as circus-top expects), then
`stat.sockets.<fd>` per listening socket and `stat.sockets`.

Sampling is spread over slices of at most SLICE seconds of hub time, so 500
processes never stall the hub for more than that at once.
"""
import json
import logging
import os
import time

import gevent
import zmq as plain_zmq
import zmq.green as zmq

from gcircus.endpoints import binding, curve
from gcircus.stats import stats_endpoint_of
from gcircus.stats.collector import ProcessSampler, aggregate, socket_messages
from gcircus.stats.socket_reads import SocketReads
from gcircus.supervision.hub_guard import SLICE, Slicer  # noqa: F401  (SLICE: the tests' bound)

logger = logging.getLogger("gcircus")

DEFAULT_INTERVAL = 1.0
DAEMON_KEY = "circusd"


class StatsPublisher:
    """Owns the PUB socket on the stats endpoint; topics `stat.<name>[.<subtopic>]`."""

    def __init__(self, endpoint, context=None, options=None):
        self.endpoint = endpoint
        self.context = context or zmq.Context.instance()
        self.options = options or {}
        self.socket = None
        self._guards = []

    def start(self):
        # A plain pyzmq socket: every send is NOBLOCK and a PUB never waits, so the green
        # wrapper would only add its bookkeeping (half the cost of a send, measured).
        socket = plain_zmq.Socket(self.context, zmq.PUB)
        socket.linger = 0
        try:
            security = curve.ServerSecurity.from_options(self.options)
            if security is not None:
                self._guards.extend(security.protect(socket, self.endpoint, "stats"))
            binding.bind_endpoint(socket, self.endpoint, self.options)
        except Exception as error:
            socket.close()
            self._stop_guards()
            if isinstance(error, OSError):
                raise OSError("cannot bind stats_endpoint %s: %s" % (self.endpoint, error)) from error
            raise
        self.socket = socket
        return self

    def publish(self, name, stat):
        if self.socket is None:
            return
        topic = "stat.%s" % name
        if "subtopic" in stat:
            topic += ".%d" % stat["subtopic"]
        try:
            self.socket.send_multipart([topic.encode("utf-8"), json.dumps(stat).encode("utf-8")],
                                       zmq.NOBLOCK)
        except zmq.Again:
            pass   # PUB semantics: a subscriber that does not keep up misses messages
        except zmq.ZMQError as error:
            logger.warning("cannot publish %s: %s", topic, error)

    def stop(self):
        if self.socket is not None:
            self.socket.close()
            self.socket = None
        self._stop_guards()

    def _stop_guards(self):
        for guard in reversed(self._guards):
            guard.stop()
        self._guards = []


class StatsStreamer:
    """The arbiter's stats service: start() binds and starts the greenlet, stop() ends both."""

    def __init__(self, arbiter, endpoint, interval=DEFAULT_INTERVAL, context=None):
        self.arbiter = arbiter
        self.interval = float(interval)
        if self.interval <= 0:
            raise ValueError("stats_interval must be positive, not %r" % (interval,))
        self.publisher = StatsPublisher(endpoint, context, arbiter.options)
        self.sampler = ProcessSampler()
        self.socket_reads = None
        self.rounds = 0
        self.last_round_seconds = 0.0
        self._greenlet = None

    @property
    def endpoint(self):
        return self.publisher.endpoint

    def start(self):
        self.publisher.start()
        self.socket_reads = SocketReads()
        self._greenlet = gevent.spawn(self._stats_loop)
        self._greenlet.name = "stats"
        logger.debug("stats published on %s every %ss", self.endpoint, self.interval)
        return self

    def stop(self):
        if self._greenlet is not None:
            self._greenlet.kill()
            self._greenlet = None
        if self.socket_reads is not None:
            self.socket_reads.stop()
            self.socket_reads = None
        self.publisher.stop()

    def _stats_loop(self):
        """Owned by the streamer; lives from start() to stop(); one round per interval
        (a slow round delays the next; rounds never bunch up)."""
        deadline = time.monotonic()
        while True:
            deadline += self.interval
            gevent.sleep(max(0.0, deadline - time.monotonic()))
            try:
                self.publish_round()
            except Exception:
                logger.exception("stats: a round failed")
            deadline = max(deadline, time.monotonic() - self.interval)

    def publish_round(self):
        """Sample and publish everything once."""
        began = time.monotonic()
        slicer = Slicer()
        tracked = [DAEMON_KEY]
        for watcher in list(self.arbiter.watchers):
            processes = [p for p in list(watcher.processes.values()) if p.is_alive()]
            if processes:
                tracked.extend(processes)
                self._publish_group(_topic_name(watcher), [(p, p.pid, None, p.program()) for p in processes],
                                    slicer)
        self._publish_group("circus", [(DAEMON_KEY, os.getpid(), "circusd", None)], slicer)
        self.sampler.retain(tracked)
        self._publish_sockets()
        self.rounds += 1
        self.last_round_seconds = time.monotonic() - began

    def _publish_group(self, name, members, slicer):
        infos = {}
        for key, pid, label, program in members:
            info = self.sampler.sample(key, pid, program=program)
            if info is not None:
                info["subtopic"] = pid
                info["name"] = label
                self.publisher.publish(name, info)
                infos[pid] = info
            slicer.tick()
        self.publisher.publish(name, aggregate(infos))

    def _publish_sockets(self):
        sockets = self.arbiter.sockets
        counts = self.socket_reads.sync(sockets)
        if not counts:
            return
        for body in socket_messages(counts):
            self.publisher.publish("sockets", body)


def _topic_name(watcher):
    """Topics use the watcher's event name (lower case, spaces as underscores)."""
    return watcher.res_name


def start_stats(arbiter):
    """The started stats streamer when the arbiter wants stats, else None."""
    endpoint = stats_endpoint_of(arbiter)
    if endpoint is None:
        return None
    interval = arbiter.options.get("stats_interval") or DEFAULT_INTERVAL
    context = None if arbiter.controller is None else arbiter.controller.context
    return StatsStreamer(arbiter, endpoint, interval, context).start()
