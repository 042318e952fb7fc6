"""HttpObserver against a gevent.pywsgi server: request times while it answers,
error counters and a restart of the watcher once it fails or goes away."""
from gevent.pywsgi import WSGIServer

from gcircus.plugins.http_observer import http_get
from gcircus.watcher import Watcher
from tests.integration.conftest import free_port
from tests.integration.plugin_support import statsd_fixture, statsd_options

statsd = statsd_fixture()


def test_http_checks_time_errors_and_restarts(served_arbiter, statsd, events):
    status = ["200 OK"]
    paths = []

    def app(environ, start_response):
        paths.append(environ["PATH_INFO"] + "?" + environ["QUERY_STRING"])
        start_response(status[0], [("Content-Type", "text/plain")])
        return [b"fine" * 1000]

    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    try:
        url = "http://127.0.0.1:%d/health?deep=1" % server.server_port
        served_arbiter([Watcher("web", "sleep 120")], plugins=[statsd_options(
            statsd, use="circus.plugins.http_observer.HttpObserver", name="plugin:http", check_url=url,
            loop_rate="0.1", timeout="2", restart_on_error="web")])
        prefix = "circus.http_observer.watcher.http_stats."
        line = statsd.wait_for(prefix + "request_time:")[0]
        assert line.endswith("|ms") and paths[0] == "/health?deep=1"
        assert events.count("watcher.web.stop") == 0
        status[0] = "503 Service Unavailable"
        statsd.wait_for(prefix + "error.503:1|c")
        statsd.wait_for(prefix + "restart_on_error:1|c")
        events.wait_count("watcher.web.start", 2)
    finally:
        server.stop()
    statsd.wait_for(prefix + "error.599:1|c")            # nobody listens any more


def test_http_get_reads_chunked_and_sized_bodies():
    def app(environ, start_response):
        start_response("404 Not Found", [])
        return iter([b"a" * 100000, b"b"])              # no length: pywsgi sends it chunked

    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    try:
        assert http_get("http://127.0.0.1:%d/" % server.server_port, 5) == 404
    finally:
        server.stop()
    try:
        http_get("http://127.0.0.1:%d/" % free_port(), 5)
    except OSError:
        pass
    else:
        raise AssertionError("a refused connection must raise OSError")
