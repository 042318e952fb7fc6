"""Broken configurations: what raises, what is reported, what only warns — and the exact messages.

Each case is a small INI text written to ``<tmp>/bad.ini``; ``{path}`` in an expected message stands for that
file.  The loader reports every broken section in ``errors`` (leaving it out) and goes on, so that one load
finds every problem; whoever runs the file then refuses it whole (``check_loaded``).
"""
import pytest

from gcircus.config import ConfigError, check_loaded, load_config

GOOD = "\n[watcher:good]\ncmd = /bin/good\n"


def write(tmp_path, text):
    path = tmp_path / "bad.ini"
    path.write_text(text)
    return str(path)


# (id, INI text, exact message) — fatal: load_config raises ConfigError
FATAL = [
    ("syntax-error", "[watcher:a]\ncmd = x\nthis line has no delimiter\n",
     "{path}:3: cannot parse line 'this line has no delimiter' (expected key = value)"),
    ("circus-bad-float", "[circus]\ncheck_delay = fast\n",
     "{path} [circus] check_delay: invalid number 'fast'"),
    ("circus-bad-bool", "[circus]\nstatsd = perhaps\n",
     "{path} [circus] statsd: invalid boolean 'perhaps' (expected yes/no, true/false, on/off or 1/0)"),
    ("circus-bad-umask", "[circus]\numask = 099\n",
     "{path} [circus] umask: invalid octal umask '099'"),
    ("circus-bad-port", "[circus]\nhttpd_port = 80000\n",
     "{path} [circus] httpd_port: invalid port '80000' (must be between 0 and 65535)"),
    ("circus-bad-loglevel", "[circus]\nloglevel = loud\n",
     "{path} [circus] loglevel: invalid value 'loud' (expected one of critical, error, warning, info, debug)"),
    ("circus-bad-backend", "[circus]\nstream_backend = tornado\n",
     "{path} [circus] stream_backend: invalid value 'tornado' (expected one of gevent, thread)"),
    # every number is range-checked where it is read: nothing out of range reaches a C call
    ("circus-negative-check-delay", "[circus]\ncheck_delay = -1\n",
     "{path} [circus] check_delay: invalid duration '-1' (must be >= 0)"),
    ("circus-huge-max-message-size", "[circus]\nmax_message_size = 2147483648\n",
     "{path} [circus] max_message_size: invalid value '2147483648' (must be between 0 and 2147483647)"),
    ("circus-endpoint-mode", "[circus]\nendpoint_mode = 1777\n",
     "{path} [circus] endpoint_mode: invalid octal mode '1777' (must be between 0 and 777)"),
    ("circus-infinite-interval", "[circus]\nstats_interval = 1e400\n",
     "{path} [circus] stats_interval: invalid number '1e400' (must be finite)"),
]

# (id, INI text, exact message) — the section is reported in result['errors'] and left out
REPORTED = [
    ("unknown-section-kind", "[foo:bar]\nx = 1\n",
     "{path} [foo:bar]: unknown section (expected [circus], [env], [env:NAMES], [watcher:NAME], "
     "[socket:NAME] or [plugin:NAME])"),
    ("misspelt-section", "[watchers:web]\ncmd = x\n", "{path} [watchers:web]: unknown section"),
    ("bad-integer", "[watcher:web]\ncmd = x\nnumprocesses = abc\n",
     "{path} [watcher:web] numprocesses: invalid integer 'abc'"),
    ("negative-numprocesses", "[watcher:web]\ncmd = x\nnumprocesses = -2\n",
     "{path} [watcher:web] numprocesses: invalid value '-2' (must be >= 0)"),
    ("bad-float", "[watcher:web]\ncmd = x\ngraceful_timeout = 3s\n",
     "{path} [watcher:web] graceful_timeout: invalid number '3s'"),
    ("negative-duration", "[watcher:web]\ncmd = x\nwarmup_delay = -1\n",
     "{path} [watcher:web] warmup_delay: invalid duration '-1' (must be >= 0)"),
    ("bad-bool", "[watcher:web]\ncmd = x\nshell = sometimes\n",
     "{path} [watcher:web] shell: invalid boolean 'sometimes'"),
    ("bad-signal", "[watcher:web]\ncmd = x\nstop_signal = SIGFOO\n",
     "{path} [watcher:web] stop_signal: invalid signal 'SIGFOO'"),
    ("bad-max-retry", "[watcher:web]\ncmd = x\nmax_retry = -5\n",
     "{path} [watcher:web] max_retry: invalid retry count '-5' (must be >= 0, or -1 for unlimited)"),
    ("missing-cmd", "[watcher:web]\nnumprocesses = 2\n",
     "{path} [watcher:web] cmd: missing command (cmd is required)"),
    ("empty-watcher-name", "[watcher:]\ncmd = x\n", "{path} [watcher:]: watcher name is empty"),
    ("duplicate-watcher", "[watcher:Web]\ncmd = x\n[watcher:web]\ncmd = y\n",
     "{path} [watcher:web]: duplicate watcher name 'web' (already defined by [watcher:Web])"),
    ("singleton-many", "[watcher:web]\ncmd = x\nsingleton = true\nnumprocesses = 2\n",
     "{path} [watcher:web] numprocesses: a singleton watcher runs at most 1 process, got 2"),
    ("bad-hook-spec", "[watcher:web]\ncmd = x\nhooks.before_start = my.hooks.check, always\n",
     "{path} [watcher:web] hooks.before_start: invalid hook 'my.hooks.check, always' (expected "
     "dotted.name[,bool]): invalid boolean 'always'"),
    ("bad-hook-name", "[watcher:web]\ncmd = x\nhooks.before_launch = my.hooks.check\n",
     "{path} [watcher:web] hooks.before_launch: unknown hook 'before_launch'"),
    ("bad-rlimit-name", "[watcher:web]\ncmd = x\nrlimit_openfiles = 10\n",
     "{path} [watcher:web] rlimit_openfiles: unknown rlimit 'openfiles'"),
    ("bad-rlimit-value", "[watcher:web]\ncmd = x\nrlimit_nofile = many\n",
     "{path} [watcher:web] rlimit_nofile: invalid integer 'many'"),
    ("bad-stream-int", "[watcher:web]\ncmd = x\nstdout_stream.max_bytes = 1MB\n",
     "{path} [watcher:web] stdout_stream.max_bytes: invalid integer '1MB'"),
    ("bad-stream-utc", "[watcher:web]\ncmd = x\nstderr_stream.utc = gmt\n",
     "{path} [watcher:web] stderr_stream.utc: invalid boolean 'gmt'"),
    ("bare-mapping-key", "[watcher:web]\ncmd = x\nhooks = my.hooks.check\n",
     "{path} [watcher:web] hooks: write it key by key (e.g. hooks.before_start = pkg.mod.func)"),
    ("api-only-key", "[watcher:web]\ncmd = x\nprereload_fn = my.hooks.prepare\n",
     "{path} [watcher:web] prereload_fn: can only be set through the Python API"),
    ("bad-stream-backend", "[watcher:web]\ncmd = x\nstream_backend = asyncio\n",
     "{path} [watcher:web] stream_backend: invalid value 'asyncio' (expected one of gevent, thread)"),
    ("unknown-stdin-socket", "[watcher:web]\ncmd = x\nstdin_socket = nosuch\n",
     "{path} [watcher:web] stdin_socket: unknown socket 'nosuch' (no [socket:nosuch] section)"),
    ("bad-py-ver", "[watcher:web]\ncmd = x\nvirtualenv_py_ver = three\n",
     "{path} [watcher:web] virtualenv_py_ver: invalid python version 'three' (expected X.Y)"),
    ("bad-socket-umask", "[socket:web]\npath = /tmp/w.sock\numask = rwx\n",
     "{path} [socket:web] umask: invalid octal umask 'rwx'"),
    ("bad-socket-port", "[socket:web]\nport = 99999\n",
     "{path} [socket:web] port: invalid port '99999' (must be between 0 and 65535)"),
    ("bad-socket-family", "[socket:web]\nfamily = AF_PACKET\n",
     "{path} [socket:web] family: invalid socket family 'AF_PACKET' (expected one of AF_INET, AF_INET6, AF_UNIX)"),
    ("unix-without-path", "[socket:web]\nfamily = AF_UNIX\n",
     "{path} [socket:web] path: an AF_UNIX socket needs a path"),
    ("path-with-inet", "[socket:web]\npath = /tmp/w.sock\nfamily = AF_INET\n",
     "{path} [socket:web] family: a socket with a path is AF_UNIX, not AF_INET"),
    ("duplicate-socket", "[socket:Web]\nport = 1\n[socket:WEB]\nport = 2\n",
     "{path} [socket:WEB]: duplicate socket name 'web' (already defined by [socket:Web])"),
    ("plugin-without-use", "[plugin:flap]\nmax_retry = 2\n",
     "{path} [plugin:flap] use: missing plugin class (use = package.module.Class is required)"),
    ("plugin-bad-use", "[plugin:flap]\nuse = Flapping\n",
     "{path} [plugin:flap] use: invalid dotted name 'Flapping' (expected package.module.attribute)"),
    ("plugin-bad-priority", "[plugin:flap]\nuse = a.B\npriority = high\n",
     "{path} [plugin:flap] priority: invalid integer 'high'"),
    # ranges: listen() takes a C int (a 21-line OverflowError traceback once), rlimits an unsigned 64-bit
    ("socket-backlog-overflow", "[socket:web]\nport = 0\nbacklog = 2147483648\n",
     "{path} [socket:web] backlog: invalid backlog '2147483648' (must be between 0 and 2147483647)"),
    ("socket-negative-backlog", "[socket:web]\nport = 0\nbacklog = -1\n",
     "{path} [socket:web] backlog: invalid backlog '-1' (must be between 0 and 2147483647)"),
    ("socket-negative-port", "[socket:web]\nport = -1\n",
     "{path} [socket:web] port: invalid port '-1' (must be between 0 and 65535)"),
    ("socket-umask-range", "[socket:web]\npath = /tmp/w.sock\numask = 1000\n",
     "{path} [socket:web] umask: invalid octal umask '1000' (must be between 0 and 777)"),
    ("socket-proto-range", "[socket:web]\nport = 0\nproto = 99999999999\n",
     "{path} [socket:web] proto: invalid protocol '99999999999' (must be between 0 and 2147483647)"),
    ("rlimit-too-big", "[watcher:web]\ncmd = x\nrlimit_nofile = 18446744073709551616\n",
     "{path} [watcher:web] rlimit_nofile: invalid rlimit '18446744073709551616' (must be between 0 and "
     "9223372036854775807, or empty for unlimited)"),
    ("infinite-timeout", "[watcher:web]\ncmd = x\ngraceful_timeout = 1e400\n",
     "{path} [watcher:web] graceful_timeout: invalid number '1e400' (must be finite)"),
    ("negative-stream-size", "[watcher:web]\ncmd = x\nstdout_stream.max_bytes = -1\n",
     "{path} [watcher:web] stdout_stream.max_bytes: invalid value '-1' (must be >= 0)"),
    ("non-ascii-digit", "[watcher:web]\ncmd = x\nnumprocesses = \u0661\n",
     "{path} [watcher:web] numprocesses: invalid integer '\u0661'"),
    ("underscored-number", "[watcher:web]\ncmd = x\nwarmup_delay = 1_0\n",
     "{path} [watcher:web] warmup_delay: invalid number '1_0'"),
    ("blank-cmd", "[watcher:web]\ncmd =\n",
     "{path} [watcher:web] cmd: invalid command '' (must not be empty)"),
    # what the section names in code or on disk is checked at load time too
    ("unimportable-hook", "[watcher:web]\ncmd = x\nhooks.before_start = no_such_module_xyz.check\n",
     "{path} [watcher:web] hooks.before_start: cannot import hook 'no_such_module_xyz.check': "
     "No module named 'no_such_module_xyz'"),
    ("hook-not-callable", "[watcher:web]\ncmd = x\nhooks.after_start = os.sep\n",
     "{path} [watcher:web] hooks.after_start: 'os.sep' is not callable"),
    ("unimportable-stream-class", "[watcher:web]\ncmd = x\nstdout_stream.class = no_such_pkg.Stream\n",
     "{path} [watcher:web] stdout_stream.class: cannot import stream class 'no_such_pkg.Stream': "
     "No module named 'no_such_pkg'"),
    ("unknown-builtin-stream", "[watcher:web]\ncmd = x\nstderr_stream.class = FilStream\n",
     "{path} [watcher:web] stderr_stream.class: unknown stream class 'FilStream'"),
    ("stream-options-refused", "[watcher:web]\ncmd = x\nstdout_stream.class = fractions.Fraction\n"
     "stdout_stream.colour = red\n",
     "{path} [watcher:web] stdout_stream.class: fractions.Fraction does not take the options given (colour): "
     "got an unexpected keyword argument 'colour'"),
    ("missing-virtualenv", "[watcher:web]\ncmd = x\nvirtualenv = /no/such/venv\n",
     "{path} [watcher:web] virtualenv: virtualenv '/no/such/venv' is not a directory"),
    ("unimportable-plugin", "[plugin:audit]\nuse = no_such_pkg.Audit\n",
     "{path} [plugin:audit] use: cannot import plugin class 'no_such_pkg.Audit': No module named 'no_such_pkg'"),
    ("not-a-plugin", "[plugin:audit]\nuse = os.path.join\n",
     "{path} [plugin:audit] use: 'os.path.join' is not a plugin class"),
]

# (id, INI text, exact warning) — loads normally, with a warning
WARNED = [
    ("missing-include", "[circus]\ninclude = nothing-*.ini\n",
     "{path} [circus] include: 'nothing-*.ini' matches no file"),
    ("unknown-circus-key", "[circus]\nchek_delay = 1\n", "{path} [circus] chek_delay: unknown option, ignored"),
    ("stats-endpoint-forces-statsd", "[circus]\nstats_endpoint = tcp://127.0.0.1:7000\n",
     "{path} [circus] stats_endpoint: setting stats_endpoint turns statsd on (deprecated: set statsd = true)"),
    ("env-in-watcher", "[watcher:web]\ncmd = x\nenv = A=1\n",
     "{path} [watcher:web] env: ignored in a watcher section (use an [env:web] section)"),
    ("unknown-socket-key", "[socket:web]\nprot = 80\n", "{path} [socket:web] prot: unknown socket option, ignored"),
    ("empty-section", "[watcher:web]\n", "{path} [watcher:web]: empty section ignored"),
]


@pytest.mark.parametrize("text, expected", [case[1:] for case in FATAL], ids=[case[0] for case in FATAL])
def test_fatal_errors_raise_config_error(tmp_path, text, expected):
    path = write(tmp_path, text + GOOD)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value) == expected.format(path=path)


@pytest.mark.parametrize("text, expected", [case[1:] for case in REPORTED], ids=[case[0] for case in REPORTED])
def test_broken_sections_are_reported_and_the_file_refused(tmp_path, text, expected):
    path = write(tmp_path, text + GOOD)
    config = load_config(path, environ={})
    assert len(config["errors"]) == 1, config["errors"]
    assert config["errors"][0].startswith(expected.format(path=path))
    assert "good" in [w["name"] for w in config["watchers"]]       # the rest was still read
    with pytest.raises(ConfigError) as caught:
        check_loaded(config, path, "nothing was started")
    assert str(caught.value) == "%s has 1 error(s), nothing was started:\n  %s" % (path, config["errors"][0])


def test_broken_sections_leave_no_entry(tmp_path):
    text = "".join(case[1] for case in REPORTED if not case[0].startswith("duplicate"))
    config = load_config(write(tmp_path, text + GOOD), environ={})
    assert [w["name"] for w in config["watchers"]] == ["good"]
    assert config["sockets"] == [] and config["plugins"] == []
    assert sorted(config["raw"]) == ["circus", "watcher:good"]


def test_duplicates_keep_the_first_definition(tmp_path):
    config = load_config(write(tmp_path, "[watcher:Web]\ncmd = first\n[watcher:web]\ncmd = second\n"), environ={})
    assert [(w["name"], w["cmd"]) for w in config["watchers"]] == [("Web", "first")]


@pytest.mark.parametrize("text, expected", [case[1:] for case in WARNED], ids=[case[0] for case in WARNED])
def test_warnings_do_not_stop_loading(tmp_path, text, expected):
    path = write(tmp_path, text + GOOD)
    config = load_config(path, environ={})
    assert config["errors"] == []
    assert config["warnings"] == [expected.format(path=path)]
    assert "good" in [w["name"] for w in config["watchers"]]


def test_stats_endpoint_turns_statsd_on(tmp_path):
    config = load_config(write(tmp_path, "[circus]\nstats_endpoint = tcp://127.0.0.1:7000\n"), environ={})
    assert config["circus"]["statsd"] is True
    assert config["circus"]["stats_endpoint"] == "tcp://127.0.0.1:7000"


def test_every_bad_value_of_a_section_is_reported(tmp_path):
    path = write(tmp_path, "[watcher:web]\ncmd = x\nnumprocesses = one\nshell = maybe\nstop_signal = NOPE\n")
    errors = load_config(path, environ={})["errors"]
    assert [error.split(": ", 1)[0] for error in errors] == [
        "%s [watcher:web] numprocesses" % path, "%s [watcher:web] shell" % path,
        "%s [watcher:web] stop_signal" % path]


def test_all_circus_errors_are_in_the_exception(tmp_path):
    path = write(tmp_path, "[circus]\ncheck_delay = x\ndebug = y\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert len(caught.value.errors) == 2
    assert str(caught.value) == "\n".join(caught.value.errors)


def test_errors_name_the_included_file_that_holds_the_bad_value(tmp_path):
    (tmp_path / "part.ini").write_text("[watcher:web]\nnumprocesses = lots\n")
    path = write(tmp_path, "[circus]\ninclude = part.ini\n[watcher:web]\ncmd = x\n")
    errors = load_config(path, environ={})["errors"]
    assert errors == ["%s [watcher:web] numprocesses: invalid integer 'lots'" % (tmp_path / "part.ini")]


def test_syntax_error_in_included_file_is_fatal_and_names_it(tmp_path):
    (tmp_path / "part.ini").write_text("[watcher:web]\ngarbage\n")
    path = write(tmp_path, "[circus]\ninclude = part.ini\n")
    with pytest.raises(ConfigError, match="part.ini:2: cannot parse line 'garbage'"):
        load_config(path, environ={})

