"""Turning the dashboard on: the Arbiter's and get_arbiter's httpd arguments, [circus] httpd keys, and
reloadconfig applying their changes live."""
import socket

import gevent

import gcircus
from gcircus.watcher import Watcher
from tests.fixtures.http_client import http_request
from tests.integration.conftest import free_port




def refused(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_get_arbiter_serves_the_dashboard():
    port = free_port()
    arbiter = gcircus.get_arbiter([{"cmd": "sleep 120", "name": "w"}], controller=None, pubsub_endpoint=None,
                                  httpd=True, httpd_port=port, handle_signals=False)
    runner = gevent.spawn(arbiter.start)
    try:
        assert arbiter.wait_started(15)
        watchers = http_request(("127.0.0.1", port), "GET", "/api/watchers").json()["watchers"]
        assert [(w["name"], w["running"]) for w in watchers] == [("w", 1)]
    finally:
        arbiter.stop()
        runner.join(10)
    assert refused(port)


def test_a_port_in_use_is_logged_and_the_daemon_runs_on(run_arbiter, caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        arbiter = run_arbiter([Watcher("w", "sleep 120")], httpd=True, httpd_port=taken.getsockname()[1])
        assert arbiter.http_server is None and len(arbiter.get_watcher("w").processes) == 1
        assert "the dashboard cannot start on localhost:%d" % taken.getsockname()[1] in caplog.text


def test_reloadconfig_turns_moves_guards_and_stops_the_dashboard(from_file):
    first, second = free_port(), free_port()
    base = "[circus]\nendpoint = tcp://127.0.0.1:%d\npubsub_endpoint = tcp://127.0.0.1:%d\ncheck_delay = 60\n" % (
        free_port(), free_port())
    watcher = "[watcher:w]\ncmd = sleep 120\n"
    arbiter, path = from_file(base + watcher)
    assert arbiter.http_server is None and refused(first)

    path.write_text(base + "httpd = true\nhttpd_port = %d\n" % first + watcher)
    summary = arbiter.reload_from_config()
    assert {"httpd", "httpd_port"} <= set(summary["settings"])
    assert http_request(("127.0.0.1", first), "GET", "/api/watchers").status == 200

    path.write_text(base + "httpd = true\nhttpd_port = %d\nhttpd_token = abc\n" % second + watcher)
    arbiter.reload_from_config()
    assert http_request(("127.0.0.1", second), "GET", "/api/watchers").status == 401
    assert http_request(("127.0.0.1", second), "GET", "/api/watchers",
                        headers={"Authorization": "Bearer abc"}).status == 200
    assert refused(first)      # the old address is released at once

    path.write_text(base + watcher)
    arbiter.reload_from_config()
    assert arbiter.http_server is None and refused(second)
    assert len(arbiter.get_watcher("w").processes) == 1
