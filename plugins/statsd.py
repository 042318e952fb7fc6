"""statsd plugins (Circus's): StatsdEmitter counts every event; FullStats sends
the watchers' CPU and memory gauges every loop_rate seconds; BaseObserver is
the periodic base the observers share.

Options: host (localhost), port (8125), sample_rate (1.0), application_name
(app); FullStats and observers: loop_rate (60 s). Metrics are prefixed
`circus.<application_name>.watcher.` as Circus's are.

Unlike Circus, a sample_rate below 1 really samples (a metric is sent with that
probability, tagged `|@rate` so statsd scales it back); Circus tags every
message and sends them all, which makes statsd over-count.
"""
import logging
import random

from gevent import socket

from gcircus.plugin import CircusPlugin, human2bytes

logger = logging.getLogger("gcircus")


class StatsdClient:
    """Fire-and-forget statsd metrics over UDP (the host is resolved once)."""

    def __init__(self, host="localhost", port=8125, prefix=None, sample_rate=1.0):
        self.host = host
        self.port = int(port)
        self.prefix = prefix
        self.sample_rate = float(sample_rate)
        self._address = None
        self.socket = None

    def _target(self):
        if self._address is None:
            family, _, _, _, address = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_DGRAM)[0]
            self.socket = socket.socket(family, socket.SOCK_DGRAM)
            self._address = address
        return self._address

    def send(self, bucket, value, sample_rate=None):
        rate = self.sample_rate if sample_rate is None else float(sample_rate)
        if rate < 1:
            if random.random() >= rate:
                return
            value = "%s|@%s" % (value, rate)
        if self.prefix:
            bucket = "%s.%s" % (self.prefix, bucket)
        try:
            address = self._target()
            self.socket.sendto(("%s:%s" % (bucket, value)).encode("utf-8"), address)
        except OSError as error:   # resolving or sending: a metric is never worth an exception
            logger.debug("statsd: cannot send %s to %s:%s: %s", bucket, self.host, self.port, error)

    def increment(self, bucket, delta=1):
        self.send(bucket, "%d|c" % delta)

    def decrement(self, bucket, delta=1):
        self.increment(bucket, -abs(delta))

    def gauge(self, bucket, value):
        self.send(bucket, "%s|g" % value)

    def timed(self, bucket, value):
        self.send(bucket, "%s|ms" % value)

    def stop(self):
        if self.socket is not None:
            self.socket.close()
            self.socket = None
            self._address = None


class StatsdEmitter(CircusPlugin):
    """Increments `circus.<app>.watcher.<watcher>.<event>` for every event."""

    name = "statsd"
    default_app_name = "app"

    def __init__(self, endpoint, pubsub_endpoint, check_delay, ssh_server=None, **config):
        super().__init__(endpoint, pubsub_endpoint, check_delay, ssh_server, **config)
        self.app = config.get("application_name", self.default_app_name)
        self.prefix = "circus.%s.watcher" % self.app
        self.statsd = StatsdClient(host=config.get("host", "localhost"), port=int(config.get("port", 8125)),
                                   prefix=self.prefix, sample_rate=float(config.get("sample_rate", 1.0)))

    def handle_recv(self, data):
        watcher_name, action, _body = self.split_data(data)
        self.statsd.increment("%s.%s" % (watcher_name, action))

    def handle_stop(self):
        self.statsd.stop()


class BaseObserver(StatsdEmitter):
    """Calls look_after() every loop_rate seconds; ignores events."""

    def __init__(self, *args, **config):
        super().__init__(*args, **config)
        self.loop_rate = float(config.get("loop_rate", 60))

    def handle_init(self):
        self.periodic(self.loop_rate, self.look_after)     # stops with the plugin

    def handle_recv(self, data):
        """Observers report on the timer; events are not counted here."""

    def look_after(self):
        raise NotImplementedError()


class FullStats(BaseObserver):
    """Gauges per watcher (plugins excluded): watchers_num, cpu_max/sum,
    mem_pct_max/sum, mem_max/sum (bytes); `_stats.error` when `stats` fails."""

    name = "full_stats"

    def look_after(self):
        reply = self.call("stats")
        if reply.get("status") == "error":
            self.statsd.increment("_stats.error")
            return
        for name, processes in reply.get("infos", {}).items():
            if name.startswith("plugin:"):
                continue
            infos = [info for info in processes.values() if isinstance(info, dict)]
            if "spawn_count" in processes:
                self.statsd.gauge("_stats.%s.spawn_count" % name, processes["spawn_count"])
            self.statsd.gauge("_stats.%s.watchers_num" % name, len(infos))
            cpus = [info["cpu"] for info in infos if isinstance(info.get("cpu"), (int, float))]
            mems = [info["mem"] for info in infos if isinstance(info.get("mem"), (int, float))]
            sizes = [human2bytes(info["mem_info1"]) for info in infos if info.get("mem_info1") != "N/A"]
            for metric, values in (("cpu", cpus), ("mem_pct", mems), ("mem", sizes)):
                if values:
                    self.statsd.gauge("_stats.%s.%s_max" % (name, metric), max(values))
                    self.statsd.gauge("_stats.%s.%s_sum" % (name, metric), sum(values))
