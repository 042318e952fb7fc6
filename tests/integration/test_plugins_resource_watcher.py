"""ResourceWatcher against processes that really hold memory: absolute and
percentage limits restart the watcher; with process_children the fat child, and
only it, gets child_signal."""
import psutil
import pytest

from gcircus.plugins.resource_watcher import parse_memory_limit
from gcircus.watcher import Watcher
from tests.conftest import child_cmd
from tests.integration.plugin_support import statsd_fixture, statsd_options

statsd = statsd_fixture()

LIMITS = {"loop_rate": "0.1", "max_count": "1", "max_cpu": "0", "health_threshold": "0"}


def _hog(name, lines, *args):
    return Watcher(name, child_cmd("memory_hog", *args), stdout_stream={"stream": lines})


def test_memory_limits_absolute_and_percentage_restart_the_watcher(served_arbiter, lines, events,
                                                                   statsd):
    forty_mb_percent = "%.4f" % (40 * 1024 * 1024 * 100.0 / psutil.virtual_memory().total)
    absolute, percent, lean = _hog("absolute", lines, 80), _hog("percent", lines, 80), _hog("lean", lines, 0)
    served_arbiter([absolute, percent, lean], plugins=[
        statsd_options(statsd, use="circus.plugins.resource_watcher.ResourceWatcher", name="plugin:abs",
                       watcher="absolute", max_mem="50M", **LIMITS),
        dict(use="gcircus.plugins.resource_watcher.ResourceWatcher", name="plugin:pct", watcher="percent",
             max_mem=forty_mb_percent, port="9", **LIMITS),
        dict(use="gcircus.plugins.resource_watcher.ResourceWatcher", name="plugin:lean", watcher="lean",
             max_mem="50M", min_mem="1K", port="9", **LIMITS)])
    lines.wait_for("ready", 3)
    # the first pid of each watcher from its spawn event: a hog may already be restarted by now
    first = {w.name: [next(m["process_pid"] for t, m in events.events if t == "watcher.%s.spawn" % w.name)]
             for w in (absolute, percent, lean)}
    events.wait_count("watcher.absolute.start", 2)          # cast restart: stopped and started again
    events.wait_count("watcher.percent.start", 2)
    assert list(absolute.processes) != first["absolute"] and list(percent.processes) != first["percent"]
    statsd.wait_for("circus.app.watcher._resource_watcher.absolute.over_memory:1|c")
    statsd.wait_for("circus.app.watcher._resource_watcher.absolute.restarting:1|c")
    # a 0 MB hog is ~10 MB of python: under 50M, over 1K (min_mem in bytes, not percent)
    assert events.count("watcher.lean.start") == 1 and list(lean.processes) == first["lean"]


def test_the_fat_child_and_only_it_gets_the_child_signal(served_arbiter, lines, events):
    family = Watcher("family", child_cmd("memory_hog", 80, "--children", 2, "--fat", 1),
                     stdout_stream={"stream": lines})
    served_arbiter([family], plugins=[dict(
        use="circus.plugins.resource_watcher.ResourceWatcher", name="plugin:rw", watcher="family",
        max_mem="50M", process_children="true", child_signal="TERM", port="9", **LIMITS)])
    lines.wait_for("ready")
    lines.wait_for("child", 2)
    fat = [int(line.split()[1]) for _, line in lines.lines if line.startswith("child ") and line.endswith(" 80")]
    lean = [int(line.split()[1]) for _, line in lines.lines if line.startswith("child ") and line.endswith(" 0")]
    (parent,) = family.processes
    lines.wait_for("TERM")
    assert lines.pids("TERM") == fat                          # not the lean child, not the parent
    assert list(family.processes) == [parent] and events.count("watcher.family.start") == 1
    assert psutil.pid_exists(lean[0])


@pytest.mark.parametrize("text, expected", [
    ("90", (90.0, True)), (90, (90.0, True)), ("12.5%", (12.5, True)), ("50M", (50 * 1024 ** 2, False)),
    ("1.5G", (int(1.5 * 1024 ** 3), False)), ("100B", (100, False)), (None, (None, None))])
def test_memory_limit_syntax(text, expected):
    assert parse_memory_limit(text) == expected
