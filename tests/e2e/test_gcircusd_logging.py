"""gcircusd's logging: --log-level, the line format, --log-output to a file
(reopened after rotation), --logger-config files in each format, and the config loader's
findings printed exactly once."""
import json
import os
import re
import signal

import pytest

from gcircus import __version__
from tests.e2e.daemon_support import (
    READY,
    call,
    wait_answering,
    wait_for_file,
    write_config,
)

WATCHER = "[watcher:w]\ncmd = sleep 120\n"

try:
    import yaml
except ImportError:
    yaml = None


def test_log_line_format(workdir, daemons):
    path, _ = write_config(workdir, WATCHER)
    daemon = daemons(path)
    daemon.wait_for(READY)
    line = next(line for line in daemon.output if READY in line)
    pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d gcircus\[%d\] \[INFO\] %s" % (daemon.proc.pid, READY)
    assert re.fullmatch(pattern, line), line


def test_log_level_debug_shows_debug_lines(workdir, daemons):
    path, _ = write_config(workdir, WATCHER)
    daemon = daemons(path, "--log-level", "DEBUG")     # any case
    daemon.wait_for(READY)
    assert any(" [DEBUG] " in line for line in daemon.output), daemon.text()


def test_log_level_warning_hides_info_and_wins_over_the_file(workdir, daemons):
    # [circus] asks for debug, the command line for warning: the command line wins
    path, endpoint = write_config(workdir, "loglevel = debug\n[watcher:empty]\n" + WATCHER)
    daemon = daemons(path, "--log-level", "warning")
    wait_answering(endpoint)
    assert call(endpoint, "status", name="w")["status"] == "active"
    assert daemon.stop() == 0
    output = daemon.text()
    assert "[WARNING]" in output and "[watcher:empty]: empty section ignored" in output
    assert "[INFO]" not in output and "[DEBUG]" not in output, output


def test_config_warnings_are_printed_once(workdir, daemons):
    path, _ = write_config(workdir, "[watcher:empty]\n[socket:s]\nhost = 127.0.0.1\nport = 0\nprot = 80\n"
                                    + WATCHER)
    daemon = daemons(path)
    daemon.wait_for(READY)
    for finding in ("[watcher:empty]: empty section ignored", "[socket:s] prot: unknown socket option, ignored"):
        found = [line for line in daemon.output if finding in line]
        assert len(found) == 1, daemon.text()
        assert " gcircus.config[" in found[0] and "[WARNING]" in found[0]


def test_config_errors_refuse_the_file_before_logging_starts(workdir, daemons):
    """Printed once, on stderr, with no log line format and no traceback: nothing was started."""
    path, _ = write_config(workdir, "[watcher:bad]\ncmd = sleep 1\nnumprocesses = abc\n" + WATCHER)
    daemon = daemons(path)
    assert daemon.proc.wait(20) == 1
    assert daemon.drain().strip() == ("gcircusd: %s has 1 error(s), nothing was started:\n"
                                      "  %s [watcher:bad] numprocesses: invalid integer 'abc'" % (path, path))


def test_log_output_file_is_reopened_after_rotation(workdir, daemons):
    log = os.path.join(workdir, "gcircusd.log")
    path, _ = write_config(workdir, WATCHER)
    daemon = daemons(path, "--log-output", log)
    wait_for_file(log, lambda text: READY in text)
    os.rename(log, log + ".1")                        # what logrotate does
    os.kill(daemon.proc.pid, signal.SIGHUP)
    text = wait_for_file(log, lambda text: "all watchers reloaded" in text)
    assert "got signal SIGHUP: reload" in text and READY not in text
    with open(log + ".1") as rotated:
        assert "SIGHUP" not in rotated.read()
    assert daemon.stop() == 0
    assert daemon.text() == ""                        # nothing went to stdout/stderr


def test_the_last_log_lines_reach_the_file_and_stdout_at_exit(workdir, daemons):
    # gcircusd ends without tearing the interpreter down: what it logged last must still be written
    log = os.path.join(workdir, "gcircusd.log")
    path, _ = write_config(workdir, WATCHER)
    to_file = daemons(path, "--log-output", log)
    wait_for_file(log, lambda text: READY in text)
    assert to_file.stop() == 0
    with open(log) as handle:
        assert handle.read().rstrip().endswith("gcircusd %s exiting (pid %d)" % (__version__, to_file.proc.pid))
    to_stdout = daemons(path)
    to_stdout.wait_for(READY)
    assert to_stdout.stop() == 0
    assert to_stdout.text().rstrip().endswith("gcircusd %s exiting (pid %d)" % (__version__, to_stdout.proc.pid))


def test_log_output_from_the_circus_section(workdir, daemons):
    log = os.path.join(workdir, "from-ini.log")
    path, _ = write_config(workdir, "logoutput = %s\n" % log + WATCHER)
    daemons(path)
    wait_for_file(log, lambda text: READY in text)


INI_LOGGER_CONFIG = """\
[loggers]
keys = root

[handlers]
keys = file

[formatters]
keys = plain

[logger_root]
level = INFO
handlers = file

[handler_file]
class = FileHandler
args = (%r, "a")
formatter = plain

[formatter_plain]
format = FROM-INI %%(name)s %%(levelname)s %%(message)s
"""


def dict_logger_config(log, tag):
    return {"version": 1,
            "formatters": {"plain": {"format": tag + " %(name)s %(levelname)s %(message)s"}},
            "handlers": {"file": {"class": "logging.FileHandler", "filename": log, "formatter": "plain"}},
            "root": {"level": "INFO", "handlers": ["file"]}}


def test_logger_config_ini_named_in_the_circus_section(workdir, daemons):
    log, config = os.path.join(workdir, "ini.log"), os.path.join(workdir, "logging.ini")
    with open(config, "w") as handle:
        handle.write(INI_LOGGER_CONFIG % log)
    path, _ = write_config(workdir, "loggerconfig = %s\n[watcher:empty]\n" % config + WATCHER)
    daemons(path)
    text = wait_for_file(log, lambda text: READY in text)
    assert "FROM-INI gcircus INFO %s" % READY in text
    assert "FROM-INI gcircus.config WARNING" in text   # the loader's findings go there too


def test_logger_config_json_keeps_gcircus_loggers(workdir, daemons):
    """dictConfig disables existing loggers by default; gcircus's own lines must still appear."""
    log, config = os.path.join(workdir, "json.log"), os.path.join(workdir, "logging.json")
    with open(config, "w") as handle:
        json.dump(dict_logger_config(log, "FROM-JSON"), handle)
    path, _ = write_config(workdir, WATCHER)
    daemon = daemons(path, "--logger-config", config)
    text = wait_for_file(log, lambda text: READY in text)
    assert "FROM-JSON gcircus INFO %s" % READY in text
    assert daemon.text() == ""


@pytest.mark.skipif(yaml is None, reason="PyYAML is not installed")
def test_logger_config_yaml(workdir, daemons):
    log, config = os.path.join(workdir, "yaml.log"), os.path.join(workdir, "logging.yaml")
    with open(config, "w") as handle:
        yaml.safe_dump(dict_logger_config(log, "FROM-YAML"), handle)
    path, _ = write_config(workdir, WATCHER)
    daemons(path, "--logger-config", config)
    assert "FROM-YAML gcircus INFO %s" % READY in wait_for_file(log, lambda text: READY in text)


@pytest.mark.skipif(yaml is not None, reason="PyYAML is installed")
def test_logger_config_yaml_without_pyyaml_is_a_clear_error(workdir, daemons):
    config = os.path.join(workdir, "logging.yaml")
    with open(config, "w") as handle:
        handle.write("version: 1\n")
    path, _ = write_config(workdir, WATCHER)
    daemon = daemons(path, "--logger-config", config)
    assert daemon.proc.wait(20) == 1
    assert daemon.drain().strip() == ("gcircusd: logger config %r is YAML, but PyYAML is not installed "
                                      "(pip install pyyaml)" % config)


def test_invalid_logger_config_is_a_clear_error(workdir, daemons):
    config = os.path.join(workdir, "logging.json")
    with open(config, "w") as handle:
        json.dump({"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}, handle)
    path, _ = write_config(workdir, WATCHER)
    daemon = daemons(path, "--logger-config", config)
    assert daemon.proc.wait(20) == 1
    output = daemon.drain()
    assert output.startswith("gcircusd: logger config %r is invalid:" % config) and "Traceback" not in output


CIRCUS_LOGGER_CONFIG = """\
[loggers]
keys = root, circus

[handlers]
keys = rootfile, circusfile

[formatters]
keys = plain

[logger_root]
level = INFO
handlers = rootfile

[logger_circus]
level = INFO
handlers = circusfile
qualname = circus
propagate = 0

[handler_rootfile]
class = FileHandler
args = (%r, "a")
formatter = plain

[handler_circusfile]
class = FileHandler
args = (%r, "a")
formatter = plain

[formatter_plain]
format = %%(name)s %%(levelname)s %%(message)s
"""

CIRCUS_LOGGING_PLUGIN = '''
import logging

from circus.plugins import CircusPlugin


class Hello(CircusPlugin):
    def handle_init(self):
        logging.getLogger("circus").info("plugin says hello")

    def handle_recv(self, data):
        pass
'''


def test_a_circus_logger_config_gets_every_gcircus_line(workdir, daemons):
    """`[logger_circus] qualname = circus` (a loggerconfig written for Circus) gets the daemon's lines,
    the config loader's and the plugins' that log through `circus`; propagate = 0 keeps them from root."""
    root_log, circus_log = os.path.join(workdir, "root.log"), os.path.join(workdir, "circus.log")
    config = os.path.join(workdir, "logging.ini")
    with open(config, "w") as handle:
        handle.write(CIRCUS_LOGGER_CONFIG % (root_log, circus_log))
    with open(os.path.join(workdir, "hello_plugin.py"), "w") as handle:
        handle.write(CIRCUS_LOGGING_PLUGIN)
    path, _ = write_config(workdir, "loggerconfig = %s\n[watcher:empty]\n" % config + WATCHER
                           + "[plugin:hello]\nuse = hello_plugin.Hello\n")
    daemon = daemons(path, env=dict(os.environ, PYTHONPATH=workdir, PYTHONUNBUFFERED="1"))
    text = wait_for_file(circus_log, lambda text: READY in text and "plugin says hello" in text)
    assert "gcircus INFO %s" % READY in text
    assert "gcircus.config WARNING" in text and "circus INFO plugin says hello" in text
    assert "gcircus INFO w started" in text
    assert daemon.stop() == 0
    with open(circus_log) as handle:
        assert "gcircus INFO w stopped" in handle.read()
    with open(root_log) as handle:
        assert "gcircus" not in handle.read()


def test_the_daemon_logs_its_lifecycle(workdir, daemons):
    path, endpoint = write_config(workdir, WATCHER)
    daemon = daemons(path)
    daemon.wait_for(READY)
    starting = next(line for line in daemon.output if "gcircusd " in line and " starting" in line)
    assert starting.endswith("gcircusd %s starting (pid %d, config %s): control %s, events ipc://%s/pub.sock" % (
        __version__, daemon.proc.pid, path, endpoint, workdir)), starting
    daemon.wait_for("[INFO] w started")
    assert daemon.stop() == 0
    text = daemon.text()
    assert "[INFO] got signal SIGTERM: quit" in text and "[INFO] w stopped" in text
    assert text.rstrip().endswith("[INFO] gcircusd %s exiting (pid %d)" % (__version__, daemon.proc.pid)), text


@pytest.mark.parametrize("suffix", [".json", ".ini"])
def test_a_logger_config_that_fails_shows_the_cause(workdir, daemons, suffix):
    """A handler whose module is missing: the message says which module (dictConfig alone says only
    "Unable to configure handler")."""
    config = os.path.join(workdir, "logging" + suffix)
    with open(config, "w") as handle:
        if suffix == ".json":
            json.dump({"version": 1, "handlers": {"sentry": {"class": "raven.handlers.logging.SentryHandler"}},
                       "root": {"handlers": ["sentry"]}}, handle)
        else:
            handle.write("[loggers]\nkeys = root\n[handlers]\nkeys = sentry\n[formatters]\nkeys =\n"
                         "[logger_root]\nhandlers = sentry\n[handler_sentry]\n"
                         "class = raven.handlers.logging.SentryHandler\nargs = ()\n")
    path, _ = write_config(workdir, WATCHER)
    daemon = daemons(path, "--logger-config", config)
    assert daemon.proc.wait(20) == 1
    output = daemon.drain()
    assert output.startswith("gcircusd: logger config %r is invalid: " % config), output
    assert "No module named 'raven'" in output and "Traceback" not in output
