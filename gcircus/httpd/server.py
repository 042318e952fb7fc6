"""The arbiter's HTTP server: gevent.pywsgi on the arbiter's own hub, serving the dashboard page, the JSON API,
the event and output streams, and /metrics.

Routes (all GET unless said otherwise):

    /                                   the dashboard page (static files under /static/)
    /api/watchers                       every watcher: state, counts, restarts, last exit code, processes
    /api/watchers/<name>                one watcher, with its options
    POST /api/watchers/<name>/<action>  start, stop, restart, reload, incr, decr, signal (JSON body: parameters)
    /api/events                         Server-Sent Events: every event as published (?dashboard=1: the page's
                                        stream, with watcher updates and CPU/memory samples)
    /api/watchers/<name>/output         Server-Sent Events: the watcher's output lines (?pid=N, ?stream=stdout)
    /metrics                            Prometheus text format
    /healthz                            gcircus.hosting.health's answer: 200 healthy, 503 unhealthy (JSON body);
                                        like /metrics, readable with the metrics token

Connections are served by a bounded pool of greenlets; each event stream has its own capped queue (httpd.sse).
"""
import json
import logging
import os
from urllib.parse import parse_qs, urlencode

import gevent
import psutil
from gevent.pool import Pool
from gevent.pywsgi import WSGIServer

from gcircus.converters import to_bool, to_int
from gcircus.hosting.health import health
from gcircus.httpd import api
from gcircus.httpd.auth import Auth, cross_site, foreign_host
from gcircus.httpd.live import LiveFeeds
from gcircus.httpd.metrics import CONTENT_TYPE as METRICS_TYPE
from gcircus.httpd.metrics import MetricsCollector
from gcircus.httpd.sse import Client, encode

logger = logging.getLogger("gcircus")

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
#: Connections served at once (event streams included); more wait in the listen backlog.
MAX_CONNECTIONS = 256
#: Largest request body read (an action's parameters are a few bytes).
MAX_BODY = 64 << 10
#: How long stop() gives requests in flight (an action waiting on a watcher) before ending them.
STOP_TIMEOUT = 2.0
SECURITY_HEADERS = [("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
                    ("Referrer-Policy", "same-origin")]
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def bind_host(host):
    """The address to bind: 'localhost' is 127.0.0.1 (whatever the resolver prefers), anything else as given."""
    return "127.0.0.1" if host in (None, "", "localhost") else host


class Response(Exception):
    """A finished answer raised from deep inside a handler (errors, redirects)."""

    def __init__(self, status, body, headers=()):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = list(headers)


def _json(status, body, headers=()):
    return Response(status, json.dumps(body, default=str).encode("utf-8"),
                    [("Content-Type", "application/json")] + list(headers))


_REASONS = {200: "OK", 303: "See Other", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}


class DashboardApp:
    """The WSGI application: authentication and origin checks, then routing."""

    def __init__(self, arbiter, live, auth, host):
        self.arbiter = arbiter
        self.live = live
        self.auth = auth
        self.host = host
        self.metrics = MetricsCollector(arbiter, psutil.Process().create_time(), live)
        self._static = {}

    def __call__(self, environ, start_response):
        # named for the hub guard and greenlet dumps: "httpd[GET /metrics]"
        gevent.getcurrent().name = "httpd[%s %s]" % (environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
        try:
            status, headers, body = self._handle(environ)
        except Response as answer:
            status, headers, body = answer.status, answer.headers, [answer.body]
        except Exception:
            logger.exception("httpd: %s %s failed", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            status, headers, body = 500, [("Content-Type", "application/json")], [
                b'{"status": "error", "reason": "internal error (see the daemon log)"}']
        start_response("%d %s" % (status, _REASONS.get(status, "")), headers + SECURITY_HEADERS)
        return body

    def _handle(self, environ):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO") or "/"
        query = parse_qs(environ.get("QUERY_STRING", ""))
        refused = foreign_host(environ, self.host)
        if refused:
            raise _json(403, {"status": "error", "reason": refused})
        if "token" in query and method == "GET" and path == "/":
            self._login(path, query)
        if not self.auth.allows(environ, metrics=(path in ("/metrics", "/healthz"))):
            raise _json(401, {"status": "error", "reason": "authentication required"},
                        [("WWW-Authenticate", 'Basic realm="gcircus", charset="UTF-8"')])
        parts = [part for part in path.split("/") if part]
        if method == "POST":
            refused = cross_site(environ)
            if refused:
                raise _json(403, {"status": "error", "reason": refused})
            if len(parts) == 4 and parts[:2] == ["api", "watchers"]:
                return self._action(parts[2], parts[3], environ, query)
            raise _json(405 if self._route_exists(parts) else 404,
                        {"status": "error", "reason": "no POST route %s" % path})
        if method not in ("GET", "HEAD"):
            raise _json(405, {"status": "error", "reason": "method %s not allowed" % method})
        status, headers, body = self._get(parts, query, path, head=(method == "HEAD"))
        return status, headers, [b""] if method == "HEAD" else body

    def _route_exists(self, parts):
        return parts in ([], ["metrics"], ["healthz"], ["api", "watchers"], ["api", "events"]) or (
            len(parts) in (3, 4) and parts[:2] == ["api", "watchers"])

    def _get(self, parts, query, path, head=False):
        if not parts:
            return self._static_file("index.html")
        if parts[0] == "static" and len(parts) == 2:
            return self._static_file(parts[1])
        if parts == ["metrics"]:
            return 200, [("Content-Type", METRICS_TYPE)], [self.metrics.collect().encode("utf-8")]
        if parts == ["healthz"]:
            report = health(self.arbiter)
            status, headers, body = _ok(report)
            return (200 if report["healthy"] else 503), headers + [("Cache-Control", "no-cache")], body
        if parts == ["api", "events"]:
            return self._event_stream(_flag(query, "dashboard"), head)
        if parts[:2] == ["api", "watchers"]:
            try:
                if len(parts) == 2:
                    return _ok(api.list_watchers(self.arbiter, self.live))
                if len(parts) == 3:
                    return _ok(api.show_watcher(self.arbiter, self.live, parts[2]))
                if len(parts) == 4 and parts[3] == "output":
                    return self._output_stream(parts[2], query, head)
                if len(parts) == 4 and parts[3] in api.ACTIONS:
                    raise _json(405, {"status": "error", "reason": "%s is a POST route" % path})
            except api.ApiError as error:
                raise _json(error.status, error.body()) from None
        raise _json(404, {"status": "error", "reason": "no route %s" % path})

    def _login(self, path, query):
        """/?token=T: set the session cookie and send the browser to the page without T in its address (a token
        is accepted in an address only there: API clients send a header, and addresses end up in logs)."""
        cookie = self.auth.login_cookie(query["token"][-1])
        if cookie is None:
            raise _json(401, {"status": "error", "reason": "wrong token"})
        rest = {key: values for key, values in query.items() if key != "token"}
        location = path + ("?" + urlencode(rest, doseq=True) if rest else "")
        raise Response(303, b"", [("Location", location), ("Set-Cookie", cookie)])

    def _action(self, name, action, environ, query):
        params = _read_params(environ)
        try:
            reply = api.run_action(self.arbiter, name, action, params)
        except api.ApiError as error:
            raise _json(error.status, error.body()) from None
        return _ok(reply)

    def _static_file(self, name):
        data = self._static.get(name)
        if data is None:
            path = os.path.join(STATIC_DIR, name)
            kind = STATIC_TYPES.get(os.path.splitext(name)[1])
            if kind is None or os.path.dirname(os.path.normpath(path)) != STATIC_DIR or not os.path.isfile(path):
                raise _json(404, {"status": "error", "reason": "no file %s" % name})
            with open(path, "rb") as handle:
                data = self._static[name] = (kind, handle.read())
        headers = [("Content-Type", data[0]), ("Cache-Control", "no-cache")]
        if data[0].startswith("text/html"):
            headers.append(("Content-Security-Policy", PAGE_POLICY))
        return 200, headers, [data[1]]

    # -- event streams -----------------------------------------------------------------------------------------

    def _event_stream(self, dashboard, head):
        if head:
            return 200, _SSE_HEADERS, [b""]
        if dashboard:
            client = self.live.dashboard.add(Client([self.live.snapshot()], resync=self.live.snapshot))
            self.live.page_opened()
        else:
            client = self.live.event_stream.add(Client())
        return 200, _SSE_HEADERS, client.messages()

    def _output_stream(self, name, query, head):
        watcher = api.lookup(self.arbiter, name)
        if head:
            return 200, _SSE_HEADERS, [b""]
        pid = _int(query, "pid")
        stream = query.get("stream", [None])[-1]
        if stream not in (None, "stdout", "stderr"):
            raise _json(400, {"status": "error", "reason": "stream must be stdout or stderr, not %r" % stream})
        buffer = self.live.output_of(watcher)
        hello = {"watcher": watcher.name, "pid": pid, "stream": stream,
                 "captured": {"stdout": watcher.streams.stdout is not None,
                              "stderr": watcher.streams.stderr is not None}}
        first = [encode("hello", hello), encode("lines", buffer.backlog(pid, stream))]

        def wanted(key):
            return (pid is None or key[0] == pid) and (stream is None or key[1] == stream)
        client = buffer.channel.add(Client(first, filter=wanted))
        return 200, _SSE_HEADERS, client.messages()


_SSE_HEADERS = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no")]


def _ok(body):
    return 200, [("Content-Type", "application/json")], [json.dumps(body, default=str).encode("utf-8")]


def _flag(query, key):
    return _query_value(query, key, to_bool, "0")


def _int(query, key):
    return _query_value(query, key, to_int, None)


def _query_value(query, key, converter, default):
    """A query parameter read by the config files' converter (one value grammar); 400 naming it when refused."""
    if key not in query:
        return default if default is None else converter(default)
    try:
        return converter(query[key][-1])
    except ValueError as error:
        raise _json(400, {"status": "error", "reason": "%s: %s" % (key, error)}) from None


def _read_params(environ):
    """An action's parameters: a JSON object body (or none)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise _json(400, {"status": "error", "reason": "bad Content-Length"}) from None
    if length > MAX_BODY:
        raise _json(413, {"status": "error", "reason": "body larger than %d bytes" % MAX_BODY})
    raw = environ["wsgi.input"].read(length) if length else b""
    if not raw.strip():
        return {}
    try:
        params = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _json(400, {"status": "error", "reason": "the body must be a JSON object"}) from None
    if not isinstance(params, dict):
        raise _json(400, {"status": "error", "reason": "the body must be a JSON object, not %s"
                          % type(params).__name__})
    return params


class HttpServer:
    """The arbiter's httpd service: start() binds and serves, stop() closes streams and the listener."""

    def __init__(self, arbiter, host="localhost", port=8080):
        self.arbiter = arbiter
        self.host = host
        self.port = int(port)
        options = arbiter.options
        self.live = LiveFeeds(arbiter, options.get("stats_interval") or 2.0)
        self.app = DashboardApp(arbiter, self.live, Auth.from_options(options), bind_host(host))
        self.server = None

    @property
    def address(self):
        """(host, port) actually bound (port 0 asks the kernel for a free one)."""
        return self.server.address if self.server is not None else (bind_host(self.host), self.port)

    def start(self):
        server = WSGIServer((bind_host(self.host), self.port), self.app, spawn=Pool(MAX_CONNECTIONS), log=None,
                            error_log=logging.getLogger("gcircus.httpd"))
        server.start()      # binds now: an OSError (port in use) reaches the caller
        self.server = server
        self.live.start()
        host, port = server.address[:2]
        logger.info("dashboard on http://%s:%d/%s", host if ":" not in host else "[%s]" % host, port,
                    " (authentication required)" if self.app.auth.required else "")
        return self

    def stop(self):
        self.live.stop()      # ends the event streams, so their connections finish at once
        if self.server is not None:
            self.server.stop(timeout=STOP_TIMEOUT)
            self.server = None

    def reconfigure(self, host, port, options):
        """Apply new httpd_* settings: credentials at once, a new address by serving there instead."""
        self.app.auth = Auth.from_options(options)
        if (bind_host(host), int(port)) != (bind_host(self.host), self.port):
            replacement = WSGIServer((bind_host(host), int(port)), self.app, spawn=Pool(MAX_CONNECTIONS),
                                     log=None, error_log=logging.getLogger("gcircus.httpd"))
            replacement.start()
            old, self.server = self.server, replacement
            self.host, self.port = host, int(port)
            self.app.host = bind_host(host)
            if old is not None:     # its requests in flight may finish; the reload does not wait for them
                old.close()
                gevent.spawn(old.stop, STOP_TIMEOUT).name = "httpd[old-server]"
            logger.info("dashboard moved to http://%s:%d/", *replacement.address[:2])
        self.live.interval = float(options.get("stats_interval") or 2.0)

    def __repr__(self):
        return "<HttpServer %s:%s>" % self.address[:2]

