"""HttpObserver: checks a URL every loop_rate seconds (Circus's plugin of the same name).

Options: check_url (http://localhost/), timeout (10 s), restart_on_error (a
watcher name), loop_rate (60 s), and the statsd options (application_name
defaults to `http_observer`).

A response under 400 sends the timer `http_stats.request_time` (ms); an error
status, a refused connection or a timeout sends the counters
`http_stats.error` and `http_stats.error.<status>` (599 when there was no
response, as tornado reports it) and, with restart_on_error, restarts that
watcher (counter `http_stats.restart_on_error`).

Circus's plugin used a tornado API removed in tornado 5; this one speaks
HTTP/1.1 itself over gevent sockets (https through gevent's ssl), so it waits
without blocking the hub and needs nothing beyond gevent.
"""
import logging
import time
from urllib.parse import urlsplit

import gevent
from gevent import socket

from gcircus.plugins.statsd import BaseObserver

logger = logging.getLogger("gcircus")

NO_RESPONSE = 599
MAX_HEADER_BYTES = 65536


def http_get(url, timeout=10.0):
    """The status code of a GET of url (the body is read and dropped); raises OSError
    (or gevent.Timeout's OSError-compatible socket.timeout) when there is no response."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("check_url must be an http:// or https:// URL, not %r" % url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host_header = parts.hostname if parts.port is None else "%s:%s" % (parts.hostname, parts.port)
    with gevent.Timeout(timeout, socket.timeout("no response within %ss" % timeout)):
        conn = socket.create_connection((parts.hostname, port))
        try:
            if parts.scheme == "https":
                from gevent import ssl
                conn = ssl.create_default_context().wrap_socket(conn, server_hostname=parts.hostname)
            conn.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gcircus-http-observer\r\n"
                          "Accept: */*\r\nConnection: close\r\n\r\n" % (path, host_header)).encode("latin-1"))
            return _read_status(conn)
        finally:
            conn.close()


def _read_status(conn):
    """The status of the response on conn, once its body is read (Content-Length,
    chunked, or up to the close)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise OSError("the server closed the connection without a complete response")
        data += chunk
        if len(data) > MAX_HEADER_BYTES and b"\r\n\r\n" not in data:
            raise OSError("no end of HTTP headers in the first %d bytes" % MAX_HEADER_BYTES)
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split()
    if len(status) < 2 or not status[0].startswith("HTTP/") or not status[1].isdigit():
        raise OSError("not an HTTP response: %r" % lines[0][:100])
    headers = dict((k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:]))
    if "content-length" in headers and headers["content-length"].isdigit():
        remaining = int(headers["content-length"]) - len(body)
        while remaining > 0:
            chunk = conn.recv(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while not body.endswith(b"0\r\n\r\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            body = body[-16:] + chunk
    else:
        while conn.recv(65536):
            pass
    return int(status[1])


class HttpObserver(BaseObserver):
    name = "http_observer"
    default_app_name = "http_observer"

    def __init__(self, *args, **config):
        super().__init__(*args, **config)
        self.check_url = config.get("check_url", "http://localhost/")
        self.timeout = float(config.get("timeout", 10))
        self.restart_on_error = config.get("restart_on_error")

    def look_after(self):
        started = time.monotonic()
        try:
            code = http_get(self.check_url, self.timeout)
        except (OSError, ValueError) as error:
            logger.info("http_observer: %s: %s", self.check_url, error)
            code = NO_RESPONSE
        if code < 400:
            self.statsd.timed("http_stats.request_time", int((time.monotonic() - started) * 1000))
            return
        self.statsd.increment("http_stats.error")
        self.statsd.increment("http_stats.error.%s" % code)
        if self.restart_on_error:
            self.cast("restart", name=self.restart_on_error)
            self.statsd.increment("http_stats.restart_on_error")
