"""RedisObserver against a real redis-server (installed by .ci/run): INFO gauges
while it runs, an error counter and a watcher restart once it is gone."""
import shutil
import subprocess

import gevent.subprocess
import pytest

from gcircus.plugins.redis_observer import parse_redis_url, redis_info
from gcircus.watcher import Watcher
from tests.integration.conftest import free_port
from tests.integration.plugin_support import statsd_fixture, statsd_options

statsd = statsd_fixture()

REDIS_SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


class RedisServer:
    """redis-server on a free loopback port, without persistence; ready once it says so."""

    def __init__(self):
        self.port = free_port()
        self.process = gevent.subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--requirepass", "s3cret"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        seen = []
        with gevent.Timeout(15, AssertionError("redis-server did not start: %s" % seen)):
            for line in self.process.stdout:
                seen.append(line)
                if b"Ready to accept connections" in line:
                    break
        self.url = "redis://:s3cret@127.0.0.1:%d/0" % self.port

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait()
        self.process.stdout.close()


@pytest.fixture
def redis_server():
    server = RedisServer()
    yield server
    server.stop()


def test_redis_gauges_then_error_and_restart(served_arbiter, statsd, events, redis_server):
    served_arbiter([Watcher("cache-client", "sleep 120")], plugins=[statsd_options(
        statsd, use="circus.plugins.redis_observer.RedisObserver", name="plugin:redis",
        redis_url=redis_server.url, loop_rate="0.1", timeout="2", restart_on_timeout="cache-client")])
    prefix = "circus.redis_observer.watcher.redis_stats."
    clients = statsd.wait_for(prefix + "connected_clients:")[0]
    assert clients.endswith("|g") and int(clients.split(":")[1].split("|")[0]) >= 1
    statsd.wait_for(prefix + "used_memory:")
    statsd.wait_for(prefix + "uptime_in_seconds:")
    assert not statsd.matching(prefix + "client_longest_output_list")   # redis 7 has no such key: skipped
    assert events.count("watcher.cache-client.stop") == 0
    redis_server.stop()
    statsd.wait_for(prefix + "error:1|c")
    statsd.wait_for(prefix + "restart_on_error:1|c")
    events.wait_count("watcher.cache-client.start", 2)


def test_wrong_password_is_an_error(redis_server):
    assert int(redis_info(redis_server.url, 5)["connected_clients"]) >= 1
    with pytest.raises(OSError, match="WRONGPASS|invalid"):
        redis_info("redis://:nope@127.0.0.1:%d/0" % redis_server.port, 5)


def test_redis_urls():
    assert parse_redis_url("redis://localhost:6379/0") == (("localhost", 6379), None, 0, False)
    assert parse_redis_url("rediss://:p%40ss@h/2") == (("h", 6379), "p@ss", 2, True)
    assert parse_redis_url("unix:///tmp/r.sock")[0] == "/tmp/r.sock"
    with pytest.raises(ValueError):
        parse_redis_url("http://x")
