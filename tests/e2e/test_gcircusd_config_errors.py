"""gcircusd against broken configurations: a specific message, never a traceback.

Any problem refuses the whole file: gcircusd exits 1 before anything starts and
lists every problem with its file, section and key (a daemon running part of its
configuration, or none of its watchers, is found broken much later). Only
warnings (an include matching nothing, an empty section) let it start.
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

REFUSED = [
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
    ("plugin_isolate", "[plugin:p]\nuse = tests.fixtures.audit_plugin.Audit\nisolate = maybe\n",
     "[plugin:p] isolate: invalid boolean 'maybe'"),
    ("plugin_not_importable", "[plugin:p]\nuse = no_such_pkg_xyz.Plugin\n", "use: cannot import plugin class"),
    ("virtualenv_missing", "[watcher:w]\ncmd = sleep 1\nvirtualenv = /no/such/venv\n", "virtualenv '/no/such/venv'"),
    ("duplicate_watcher", "[watcher:dup]\ncmd = sleep 121\n[watcher:DUP]\ncmd = sleep 122\n",
     "duplicate watcher name 'DUP'"),
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


@pytest.mark.parametrize("name,body,message", REFUSED, ids=[case[0] for case in REFUSED])
def test_broken_sections_refuse_the_whole_file(workdir, name, body, message):
    path, _ = write_config(workdir, body + GOOD)
    daemon = Daemon(path)
    try:
        assert daemon.proc.wait(20) == 1
        output = daemon.drain()
        assert output.startswith("gcircusd: %s has 1 error(s), nothing was started:\n  %s" % (path, path)), output
        assert message in output and "Traceback" not in output
        assert READY not in output
    finally:
        daemon.kill()


def test_every_problem_is_listed_with_file_section_and_key(workdir):
    body = ("[watcher:a]\ncmd = sleep 1\nnumprocesses = abc\nstop_signal = SIGFOO\n"
            "[watcher:b]\ngraceful_timeout = soon\nstdout_stream.class = no_such_pkg_xyz.Stream\n"
            "hooks.before_start = no_such_pkg_xyz.hook\n")
    path, _ = write_config(workdir, body + GOOD)
    daemon = Daemon(path)
    try:
        assert daemon.proc.wait(20) == 1
        lines = daemon.drain().splitlines()
        assert lines[0] == "gcircusd: %s has 6 error(s), nothing was started:" % path
        assert [line.split(": ", 1)[0] for line in lines[1:]] == [
            "  %s [watcher:a] %s" % (path, key) for key in ("numprocesses", "stop_signal")] + [
            "  %s [watcher:b] %s" % (path, key) for key in (
                "graceful_timeout", "cmd", "hooks.before_start", "stdout_stream.class")]
    finally:
        daemon.kill()


def test_a_missing_include_only_warns(workdir):
    path, _ = write_config(workdir, GOOD)
    with open(path) as handle:
        text = handle.read()
    with open(path, "w") as handle:
        handle.write(text.replace("check_delay = 5\n", "check_delay = 5\ninclude = /nonexistent/*.ini\n"))
    daemon = Daemon(path)
    try:
        daemon.wait_for(READY)
        assert "matches no file" in daemon.text()
        assert [p.cmdline() for p in daemon.children()] == [["sleep", "120"]]
        assert daemon.stop() == 0
    finally:
        daemon.kill()
