"""RedisObserver: sends a redis server's INFO figures to statsd every loop_rate
seconds (Circus's plugin of the same name).

Options: redis_url (redis://localhost:6379/0; `redis://:password@host:port/db`,
`rediss://` for TLS, `unix:///path/to/redis.sock`), timeout (5 s),
restart_on_timeout (a watcher name), loop_rate (60 s), and the statsd options
(application_name defaults to `redis_observer`).

Each loop: gauges `redis_stats.<key>` for the keys of OBSERVE the server
reports (a key newer servers dropped is skipped; Circus's plugin failed on
it). A refused connection or a timeout sends the counter `redis_stats.error`
and, with restart_on_timeout, restarts that watcher (counter
`redis_stats.restart_on_error`).

It speaks redis's protocol (RESP) itself over gevent sockets: no client
library to install, and it never blocks the hub.
"""
import logging
from urllib.parse import unquote, urlsplit

import gevent
from gevent import socket

from gcircus.plugins.statsd import BaseObserver

logger = logging.getLogger("gcircus")


class RedisError(OSError):
    """The server answered with an error, or not in RESP."""


def _command(*words):
    encoded = [str(word).encode("utf-8") for word in words]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in encoded)


class _Reader:
    def __init__(self, conn):
        self.conn = conn
        self.buffer = b""

    def _fill(self):
        chunk = self.conn.recv(65536)
        if not chunk:
            raise RedisError("the server closed the connection")
        self.buffer += chunk

    def line(self):
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def exactly(self, size):
        while len(self.buffer) < size + 2:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size + 2:]
        return data

    def reply(self):
        """One RESP reply: simple string, integer, bulk string (or None); errors raise."""
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.exactly(size)
        if kind == b"-":
            raise RedisError("redis: %s" % rest.decode("utf-8", "replace"))
        raise RedisError("not a RESP reply: %r" % line[:100])


def parse_redis_url(url):
    """(connect target, password, db, tls): target is (host, port) or a unix path."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path, (unquote(parts.password) if parts.password else None), 0, False
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError("redis_url must be redis://, rediss:// or unix://, not %r" % url)
    db = parts.path.strip("/") or "0"
    return ((parts.hostname or "localhost", parts.port or 6379),
            unquote(parts.password) if parts.password else None, int(db), parts.scheme == "rediss")


def redis_info(url, timeout=5.0):
    """INFO of the server at url as {key: value string}; OSError (or socket.timeout) on failure."""
    target, password, db, tls = parse_redis_url(url)
    with gevent.Timeout(timeout, socket.timeout("no answer within %ss" % timeout)):
        if isinstance(target, str):
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(target)
        else:
            conn = socket.create_connection(target)
        try:
            if tls:
                from gevent import ssl
                conn = ssl.create_default_context().wrap_socket(conn, server_hostname=target[0])
            reader = _Reader(conn)
            if password is not None:
                conn.sendall(_command("AUTH", password))
                reader.reply()
            conn.sendall(_command("INFO"))
            text = reader.reply() or b""
        finally:
            conn.close()
    info = {}
    for line in text.decode("utf-8", "replace").splitlines():
        if line and not line.startswith("#") and ":" in line:
            key, _, value = line.partition(":")
            info[key] = value
    return info


class RedisObserver(BaseObserver):
    name = "redis_observer"
    default_app_name = "redis_observer"

    OBSERVE = ["pubsub_channels", "connected_slaves", "lru_clock", "connected_clients", "keyspace_misses",
               "used_memory", "used_memory_peak", "total_commands_processed", "used_memory_rss",
               "total_connections_received", "pubsub_patterns", "used_cpu_sys", "used_cpu_sys_children",
               "blocked_clients", "used_cpu_user", "client_biggest_input_buf", "mem_fragmentation_ratio",
               "expired_keys", "evicted_keys", "client_longest_output_list", "uptime_in_seconds",
               "keyspace_hits"]

    def __init__(self, *args, **config):
        super().__init__(*args, **config)
        self.redis_url = config.get("redis_url", "redis://localhost:6379/0")
        parse_redis_url(self.redis_url)    # a bad URL is a configuration error, said at once
        self.timeout = float(config.get("timeout", 5))
        self.restart_on_timeout = config.get("restart_on_timeout")

    def look_after(self):
        try:
            info = redis_info(self.redis_url, self.timeout)
        except OSError as error:
            logger.info("redis_observer: %s: %s", self.redis_url, error)
            self.statsd.increment("redis_stats.error")
            if self.restart_on_timeout:
                self.cast("restart", name=self.restart_on_timeout)
                self.statsd.increment("redis_stats.restart_on_error")
            return
        for key in self.OBSERVE:
            if key in info:
                self.statsd.gauge("redis_stats.%s" % key, info[key])
