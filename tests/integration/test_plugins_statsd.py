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
