"""gcircusd against broken configurations: a specific message, never a traceback.

Fatal problems (syntax, [circus] values, a missing file) exit 1 before anything
starts; a broken watcher/socket/plugin section is reported and skipped while the
rest of the configuration runs (Circus's behaviour).
"""
import os

import pytest

from tests.e2e.daemon_support import READY, Daemon, write_config

GOOD = "[watcher:good]\ncmd = sleep 120\n"

FATAL = [
    ("syntax", "[watcher:w\ncmd = x\n", "malformed section header '[watcher:w'"),
    ("circus_float", "", "[circus] check_delay: invalid number 'soon'"),
    ("circus_umask", "", "[circus] umask: invalid octal umask '9z'"),
    ("log_level", "", "loglevel: invalid value 'loud'"),
]
CIRCUS_OVERRIDES = {"circus_float": "check_delay = soon\n", "circus_umask": "umask = 9z\n",
                    "log_level": "loglevel = loud\n"}

SKIPPED = [
    ("unknown_section", "[foo:bar]\nx = 1\n", "[foo:bar]: unknown section"),
    ("bad_integer", "[watcher:w]\ncmd = sleep 1\nnumprocesses = abc\n", "numprocesses: invalid integer 'abc'"),
    ("bad_signal", "[watcher:w]\ncmd = sleep 1\nstop_signal = SIGFOO\n", "stop_signal: invalid signal 'SIGFOO'"),
    ("bad_float", "[watcher:w]\ncmd = sleep 1\ngraceful_timeout = soon\n", "graceful_timeout: invalid number 'soon'"),
    ("bad_bool", "[watcher:w]\ncmd = sleep 1\ncopy_env = maybe\n", "copy_env: invalid boolean 'maybe'"),
    ("missing_cmd", "[watcher:w]\nnumprocesses = 1\n", "cmd: missing command"),
    ("bad_port", "[socket:s]\nhost = 127.0.0.1\nport = 99999\n", "port: invalid port '99999'"),
    ("plugin_without_use", "[plugin:p]\nfoo = 1\n", "use: missing plugin class"),
    ("singleton", "[watcher:w]\ncmd = sleep 1\nsingleton = true\nnumprocesses = 2\n", "singleton watcher runs at most 1"),
    ("bad_rlimit", "[watcher:w]\ncmd = sleep 1\nrlimit_bogus = 1\n", "unknown rlimit 'bogus'"),
    ("negative", "[watcher:w]\ncmd = sleep 1\nnumprocesses = -2\n", "invalid value '-2'"),
    ("bad_hook_spec", "[watcher:w]\ncmd = sleep 1\nhooks.before_start = not a name\n", "invalid hook 'not a name'"),
    ("unknown_hook_module", "[watcher:w]\ncmd = sleep 1\nhooks.before_start = no_such_module_xyz.hook\n",
     "no_such_module_xyz"),
    ("unknown_stream_class", "[watcher:w]\ncmd = sleep 1\nstdout_stream.class = no_such_pkg.Stream\n",
     "no_such_pkg.Stream"),
    ("missing_include", "", "matches no file"),
    ("stdin_socket", "[watcher:w]\ncmd = sleep 1\nstdin_socket = nosuch\n", "unknown socket 'nosuch'"),
    # listen() takes a C int: this one used to end the daemon with a 21-line OverflowError traceback
    ("backlog_overflow", "[socket:s]\nhost = 127.0.0.1\nport = 0\nbacklog = 2147483648\n",
     "[socket:s] backlog: invalid backlog '2147483648' (must be between 0 and 2147483647)"),
    ("rlimit_overflow", "[watcher:w]\ncmd = sleep 1\nrlimit_nofile = 18446744073709551616\n",
     "rlimit_nofile: invalid rlimit '18446744073709551616'"),
]


def test_missing_config_file(workdir):
    daemon = Daemon(os.path.join(workdir, "nope.ini"))
    try:
        assert daemon.proc.wait(20) == 1
        assert "does not exist" in daemon.drain() and "Traceback" not in daemon.text()
    finally:
        daemon.kill()


@pytest.mark.parametrize("name,body,message", FATAL, ids=[case[0] for case in FATAL])
def test_fatal_config_errors_exit_1(workdir, name, body, message):
    path, _ = write_config(workdir, body + GOOD)
    if name in CIRCUS_OVERRIDES:
        with open(path) as handle:
            text = handle.read()
        with open(path, "w") as handle:
            handle.write(text.replace("check_delay = 5\n", CIRCUS_OVERRIDES[name]))
    daemon = Daemon(path)
    try:
        assert daemon.proc.wait(20) == 1
        output = daemon.drain()
        assert message in output and "Traceback" not in output
    finally:
        daemon.kill()


def test_out_of_range_values_exit_1_with_one_line_each(workdir):
    """Every out-of-range [circus] value is named on a line of its own; nothing starts."""
    path, _ = write_config(workdir, GOOD)
    bad = {"check_delay": ("-1", "invalid duration '-1' (must be >= 0)"),
           "max_message_size": ("2147483648", "invalid value '2147483648' (must be between 0 and 2147483647)"),
           "httpd_port": ("70000", "invalid port '70000' (must be between 0 and 65535)"),
           "endpoint_mode": ("1777", "invalid octal mode '1777' (must be between 0 and 777)"),
           "stats_interval": ("1e400", "invalid number '1e400' (must be finite)")}
    with open(path) as handle:
        text = handle.read()
    with open(path, "w") as handle:
        handle.write(text.replace("check_delay = 5\n", "".join("%s = %s\n" % (key, value) for key, (value, _)
                                                               in bad.items())))
    daemon = Daemon(path)
    try:
        assert daemon.proc.wait(20) == 1
        lines = [line for line in daemon.drain().splitlines() if line.strip()]
        assert "Traceback" not in "\n".join(lines)
        assert len(lines) == len(bad), lines
        for key, (_, reason) in bad.items():
            assert sum(line.endswith("[circus] %s: %s" % (key, reason)) for line in lines) == 1, (key, lines)
        assert daemon.children() == []
    finally:
        daemon.kill()


@pytest.mark.parametrize("name,body,message", SKIPPED, ids=[case[0] for case in SKIPPED])
def test_broken_sections_are_reported_and_the_rest_runs(workdir, name, body, message):
    path, _ = write_config(workdir, body + GOOD)
    if name == "missing_include":
        with open(path) as handle:
            text = handle.read()
        with open(path, "w") as handle:
            handle.write(text.replace("check_delay = 5\n", "check_delay = 5\ninclude = /nonexistent/*.ini\n"))
    daemon = Daemon(path)
    try:
        daemon.wait_for(READY)
        assert message in daemon.text()
        assert [p.cmdline() for p in daemon.children()] == [["sleep", "120"]]
        assert daemon.stop() == 0
        assert "Traceback" not in daemon.text()
    finally:
        daemon.kill()


def test_duplicate_watcher_keeps_the_first_definition(workdir):
    """Names are case-insensitive: the second [watcher:DUP] is reported and skipped, the first runs."""
    path, _ = write_config(workdir, "[watcher:dup]\ncmd = sleep 121\n[watcher:DUP]\ncmd = sleep 122\n" + GOOD)
    daemon = Daemon(path)
    try:
        daemon.wait_for(READY)
        assert "duplicate watcher name 'DUP'" in daemon.text()
        assert sorted(p.cmdline() for p in daemon.children()) == [["sleep", "120"], ["sleep", "121"]]
        assert daemon.stop() == 0
        assert "Traceback" not in daemon.text()
    finally:
        daemon.kill()
