"""The README's code runs as printed: its plugin example, loaded by a real gcircusd."""
import os
import re

from tests.e2e.daemon_support import READY, Daemon, wait_for_file, write_config

README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "README.md")


def readme_block(after_heading):
    with open(README) as handle:
        text = handle.read()
    match = re.search(r"## %s\n.*?```python\n(.*?)```" % re.escape(after_heading), text, re.S)
    assert match, "README has no python block under '## %s'" % after_heading
    return match.group(1)


def test_readme_plugin_example_logs_non_zero_exits(workdir):
    with open(os.path.join(workdir, "readme_plugin.py"), "w") as handle:
        handle.write(readme_block("Writing a plugin"))
    log = os.path.join(workdir, "exits.log")
    path, _ = write_config(workdir, "[watcher:bad]\ncmd = sh -c \"exit 3\"\n"
                                    "[plugin:exits]\nuse = readme_plugin.ExitLogger\npath = %s\n" % log)
    daemon = Daemon(path, env=dict(os.environ, PYTHONPATH=workdir, PYTHONUNBUFFERED="1"))
    try:
        daemon.wait_for(READY)
        text = wait_for_file(log, lambda content: content.count("exited with 3") >= 2)
        assert all(line.startswith("bad pid ") for line in text.splitlines())
        assert daemon.stop() == 0
    finally:
        daemon.kill()
