"""statsd plugins against a real UDP statsd endpoint: StatsdEmitter (also under
Circus's names) and FullStats."""
from gcircus.watcher import Watcher
from tests.conftest import child_cmd
from tests.integration.plugin_support import statsd_fixture, statsd_options

statsd = statsd_fixture()


def test_statsd_emitter_counts_every_event(served_arbiter, statsd, lines, call):
    served_arbiter([Watcher("web", child_cmd("ready_then_sleep"), stdout_stream={"stream": lines})], plugins=[
        statsd_options(statsd, use="circus.plugins.statsd.StatsdEmitter", name="plugin:statsd",
                       application_name="shop"),
        statsd_options(statsd, use="circus.plugins._statsd.StatsdEmitter", name="plugin:old_name")])
    statsd.wait_for("circus.shop.watcher.web.spawn:1|c")
    statsd.wait_for("circus.shop.watcher.web.start:1|c")
    statsd.wait_for("circus.app.watcher.web.spawn:1|c")       # the default application name
    call("incr", name="web", waiting=True)
    statsd.wait_for("circus.shop.watcher.web.spawn:1|c", count=2)


def test_full_stats_sends_cpu_and_memory_gauges(served_arbiter, statsd, lines):
    served_arbiter([Watcher("web", child_cmd("ready_then_sleep"), numprocesses=2,
                            stdout_stream={"stream": lines})],
                   plugins=[statsd_options(statsd, use="gcircus.plugins.statsd.FullStats", name="plugin:full",
                                           loop_rate="0.2")])
    lines.wait_for("ready", 2)
    prefix = "circus.app.watcher._stats.web."
    statsd.wait_for(prefix + "watchers_num:2|g")
    for gauge in ("cpu_max", "cpu_sum", "mem_pct_max", "mem_pct_sum", "mem_max", "mem_sum"):
        line = statsd.wait_for(prefix + gauge + ":")[0]
        assert line.endswith("|g") and float(line.split(":")[1].split("|")[0]) >= 0
    mem_sum = statsd.wait_for(prefix + "mem_sum:")[0]
    assert int(mem_sum.split(":")[1].split("|")[0]) > 2 * 1024 * 1024       # two python processes, in bytes
    assert not statsd.matching("circus.app.watcher._stats.plugin:")        # plugins are skipped


def test_sample_rate_really_samples_and_tags_the_rate():
    """Below 1, a metric is sent with that probability and carries |@rate (statsd scales it back)."""
    import random
    from gevent import socket
    from gcircus.plugins.statsd import StatsdClient
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    try:
        client = StatsdClient("127.0.0.1", receiver.getsockname()[1], prefix="app", sample_rate=0.25)
        random.seed(7)                         # the sampling draws are the only randomness here
        for _ in range(400):
            client.increment("spawn")
        client.send("always", "1|c", sample_rate=1)     # a per-call rate of 1: sent, and our end marker
        received = []
        receiver.settimeout(10)
        while "app.always:1|c" not in received:          # loopback UDP keeps the order
            received.append(receiver.recv(100).decode())
    finally:
        receiver.close()
    sampled = [m for m in received if m.startswith("app.spawn:")]
    assert all(m == "app.spawn:1|c|@0.25" for m in sampled)
    assert 60 <= len(sampled) <= 140, len(sampled)          # ~100 of 400
    assert "app.always:1|c" in received
