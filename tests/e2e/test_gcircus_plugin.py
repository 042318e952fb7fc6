"""gcircus-plugin: the example plugin run as its own process against a live gcircusd."""
import os
import signal
import subprocess
import sys

from tests.e2e.daemon_support import call, wait_for_file

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "examples")


def test_a_plugin_runs_standalone_and_stops_on_sigterm(gcircusd, workdir):
    daemon = gcircusd("[watcher:web]\ncmd = sleep 120\n")
    log = os.path.join(workdir, "events.log")
    plugin = subprocess.Popen(
        [sys.executable, "-m", "gcircus.cli.plugin", "--endpoint", daemon.endpoint, "--pubsub", daemon.pubsub,
         "--config", "path:%s:::summary_every:60" % log, "event_log.EventLog"],
        env=dict(os.environ, PYTHONPATH=EXAMPLES), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_file(log, lambda text: "started, watching web" in text)    # handle_init called `list`
        assert call(daemon.endpoint, "incr", name="web", waiting=True)["numprocesses"] == 2
        wait_for_file(log, lambda text: "web spawn pid" in text)             # an event reached handle_recv
        plugin.send_signal(signal.SIGTERM)
        assert plugin.wait(20) == 0, plugin.stdout.read().decode()
    finally:
        if plugin.poll() is None:
            plugin.kill()
            plugin.wait(10)


def test_bad_plugin_arguments_are_named(workdir):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "gcircus.cli.plugin", *args], capture_output=True,
                              text=True, timeout=30)
    missing = run("no_such_module.Plugin")
    assert missing.returncode == 1 and "no_such_module" in missing.stderr and "Traceback" not in missing.stderr
    bad_config = run("--config", "novalue", "gcircus.plugins.flapping.Flapping")
    assert bad_config.returncode == 1 and "'novalue' is not key:value" in bad_config.stderr
    assert run("--version").stdout.startswith("gcircus-plugin ")
