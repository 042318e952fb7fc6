"""CommandReloader: a watcher is restarted when its executable file changes."""
import os
import sys

from gcircus.plugins.command_reloader import executable_of
from gcircus.watcher import Watcher
from tests.support.wait import wait_until
from tests.integration.plugin_support import plugin_instance

APP = """#!%s
import os, sys, time
os.write(1, ("ready %%d %%s\\n" %% (os.getpid(), sys.argv[1])).encode())
time.sleep(3600)
""" % sys.executable


def test_a_changed_executable_restarts_its_watcher(served_arbiter, lines, events, tmp_path):
    app = tmp_path / "app"
    app.write_text(APP)
    app.chmod(0o755)
    watcher = Watcher("app", "%s --flag" % app, stdout_stream={"stream": lines}, copy_env=True)
    arbiter = served_arbiter([watcher, Watcher("other", "sleep 120")], plugins=[{
        "use": "circus.plugins.command_reloader.CommandReloader", "name": "plugin:reloader", "loop_rate": "0.1"}])
    lines.wait_for("ready")
    (first,) = watcher.processes
    reloader = plugin_instance(arbiter, "plugin:reloader")
    wait_until(lambda: {"app", "other"} <= set(reloader.cmd_files), what="the commands to be known")
    assert reloader.cmd_files["other"]["path"] == os.path.realpath(executable_of("sleep"))
    app.write_text(APP.replace("time.sleep", "time.sleep  "))
    later = os.stat(app).st_mtime + 5
    os.utime(app, (later, later))
    lines.wait_for("ready", 2)
    assert events.count("watcher.app.stop") == 1 and events.count("watcher.app.start") == 2
    assert list(watcher.processes) != [first]
    assert events.count("watcher.other.stop") == 0


def test_executable_of_finds_the_program_of_a_command_line():
    assert executable_of("sleep 10") == os.path.realpath(executable_of("sleep"))
    assert executable_of("%s -c 'print(1)'" % sys.executable) == os.path.realpath(sys.executable)
    assert executable_of("/no/such/program --x") is None and executable_of("") is None
