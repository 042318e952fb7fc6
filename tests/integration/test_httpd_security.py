"""Who may use the dashboard: tokens, basic auth, the metrics token, cross-site and foreign-Host refusals."""
import base64

from gcircus.watcher import Watcher
from tests.fixtures.http_client import EventStream, http_request

TOKEN = "s3cret-token"


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()}


def test_without_the_token_every_route_is_401_and_nothing_changes(httpd_arbiter, events):
    arbiter, address = httpd_arbiter([Watcher("w", "sleep 120")], httpd_token=TOKEN)
    watcher = arbiter.get_watcher("w")
    spawned = events.count("watcher.w.spawn")
    for method, path in (("GET", "/"), ("GET", "/static/dashboard.js"), ("GET", "/api/watchers"),
                         ("GET", "/api/watchers/w"), ("POST", "/api/watchers/w/incr"), ("POST", "/api/watchers/w/stop"),
                         ("GET", "/api/events"), ("GET", "/api/watchers/w/output"), ("GET", "/metrics")):
        for headers in ({}, {"Authorization": "Bearer wrong"}, basic("admin", "wrong")):
            reply = http_request(address, method, path, headers=headers)
            assert reply.status == 401, (method, path, headers)
            assert reply.json()["reason"] == "authentication required"
            assert reply.headers["www-authenticate"].startswith("Basic ")
    assert watcher.numprocesses == 1 and watcher.is_active() and events.count("watcher.w.spawn") == spawned

    good = {"Authorization": "Bearer " + TOKEN}
    assert http_request(address, "POST", "/api/watchers/w/incr", headers=good).json()["numprocesses"] == 2
    assert http_request(address, "GET", "/metrics", headers=basic("anyone", TOKEN)).status == 200
    stream = EventStream(address, "/api/events", headers=good)
    stream.close()
    assert stream.status == 200


def test_token_in_the_address_logs_the_browser_in_with_a_cookie(httpd_arbiter):
    _, address = httpd_arbiter([Watcher("w", "sleep 120")], httpd_token=TOKEN)
    assert http_request(address, "GET", "/?token=wrong").status == 401
    reply = http_request(address, "GET", "/?token=" + TOKEN)
    assert reply.status == 303 and reply.headers["location"] == "/"
    cookie = reply.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    session = {"Cookie": cookie.split(";")[0]}
    assert http_request(address, "GET", "/api/watchers", headers=session).status == 200
    assert http_request(address, "GET", "/api/watchers", headers={"Cookie": "gcircus_session=forged"}).status == 401


def test_token_file_and_basic_auth_user(httpd_arbiter, tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    _, address = httpd_arbiter([Watcher("w", "sleep 120")], httpd_token_file=str(path),
                               httpd_user="admin", httpd_password="pw")
    assert http_request(address, "GET", "/api/watchers", headers={"Authorization": "Bearer " + TOKEN}).status == 200
    assert http_request(address, "GET", "/api/watchers", headers=basic("admin", "pw")).status == 200
    assert http_request(address, "GET", "/api/watchers", headers=basic("root", "pw")).status == 401


def test_metrics_token_reads_metrics_only(httpd_arbiter):
    arbiter, address = httpd_arbiter([Watcher("w", "sleep 120")], httpd_token=TOKEN, httpd_metrics_token="scrape")
    scraper = {"Authorization": "Bearer scrape"}
    assert http_request(address, "GET", "/metrics", headers=scraper).status == 200
    assert http_request(address, "GET", "/api/watchers", headers=scraper).status == 401
    assert http_request(address, "POST", "/api/watchers/w/incr", headers=scraper).status == 401
    assert arbiter.get_watcher("w").numprocesses == 1


def test_metrics_token_alone_guards_metrics_only(httpd_arbiter):
    _, address = httpd_arbiter([Watcher("w", "sleep 120")], httpd_metrics_token="scrape")
    assert http_request(address, "GET", "/metrics").status == 401
    assert http_request(address, "GET", "/metrics", headers={"Authorization": "Bearer scrape"}).status == 200
    assert http_request(address, "GET", "/api/watchers").status == 200


def test_cross_site_posts_are_refused_and_change_nothing(httpd_arbiter, events):
    arbiter, address = httpd_arbiter([Watcher("w", "sleep 120")])
    host = "127.0.0.1:%d" % address[1]
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                    {"Referer": "http://evil.example/page"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "http://localhost:1", "Sec-Fetch-Site": "same-site"}):
        reply = http_request(address, "POST", "/api/watchers/w/incr", headers=dict(headers, Host=host))
        assert reply.status == 403 and reply.json()["reason"].startswith("cross-site request refused"), headers
    assert arbiter.get_watcher("w").numprocesses == 1 and events.count("watcher.w.spawn") == 1
    same_origin = {"Host": host, "Origin": "http://" + host, "Sec-Fetch-Site": "same-origin",
                   "Referer": "http://%s/" % host}
    assert http_request(address, "POST", "/api/watchers/w/incr", headers=same_origin).status == 200


def test_a_foreign_host_name_is_refused_on_loopback(httpd_arbiter):
    _, address = httpd_arbiter([Watcher("w", "sleep 120")])
    reply = http_request(address, "GET", "/api/watchers", headers={"Host": "rebound.example:%d" % address[1]})
    assert reply.status == 403 and "unexpected Host header" in reply.json()["reason"]
    for host in ("localhost:%d" % address[1], "127.0.0.1", "[::1]:80"):
        assert http_request(address, "GET", "/api/watchers", headers={"Host": host}).status == 200, host


def test_the_page_forbids_inline_scripts_and_framing(httpd_arbiter):
    _, address = httpd_arbiter([Watcher("w", "sleep 120")])
    page = http_request(address, "GET", "/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    script = http_request(address, "GET", "/static/dashboard.js").body.decode()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script
    assert http_request(address, "GET", "/static/../server.py").status == 404


def test_an_unreadable_token_file_keeps_the_dashboard_closed(run_arbiter, tmp_path, caplog):
    arbiter = run_arbiter([Watcher("w", "sleep 120")], httpd=True, httpd_port=0,
                          httpd_token_file=str(tmp_path / "missing"))
    assert arbiter.http_server is None and len(arbiter.get_watcher("w").processes) == 1
    assert "the dashboard cannot start" in caplog.text and "httpd_token_file" in caplog.text


def test_a_token_in_an_api_address_is_not_a_credential(httpd_arbiter):
    _, address = httpd_arbiter([Watcher("w", "sleep 120")], httpd_token=TOKEN)
    assert http_request(address, "GET", "/api/watchers?token=" + TOKEN).status == 401
