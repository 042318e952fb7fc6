"""The option tables are the single source of options: constructors, config readers and the wire agree with them."""
import getpass
import inspect
import signal

import pytest

from gcircus import get_arbiter
from gcircus.arbiter import Arbiter
from gcircus.commands.watcher_options import get_option, get_options, set_option, validate_option
from gcircus.config.objects import ARBITER_OPTION_KEYS
from gcircus.config.reload import _LIVE_SETTINGS
from gcircus.exc import MessageError
from gcircus.options import (ARBITER_OPTIONS, GLOBAL_OPTIONS, MANAGE, RELOAD, REPORTED_OPTIONS, REQUIRED,
                             SOCKET_DEFAULTS, SOCKET_OPTIONS, WATCHER_DEFAULTS, WATCHER_OPTIONS)
from gcircus.sockets import CircusSocket
from gcircus.supervision.backoff import backoff_delay
from gcircus.watcher import Watcher, to_signum


def _parameters(function, skip):
    return {name: parameter for name, parameter in inspect.signature(function).parameters.items()
            if name not in skip and parameter.kind is not inspect.Parameter.VAR_KEYWORD}


def test_every_watcher_keyword_is_in_the_table_with_its_default():
    parameters = _parameters(Watcher.__init__, ("self", "name"))
    assert set(parameters) == {name for name, option in WATCHER_OPTIONS.items() if option.param}
    for name, parameter in parameters.items():
        default = WATCHER_OPTIONS[name].default
        assert parameter.default == (inspect.Parameter.empty if default is REQUIRED else default), name


def test_every_watcher_option_of_the_table_is_taken_by_the_watcher():
    watcher = Watcher("x", "true")
    for name, option in WATCHER_OPTIONS.items():
        if option.attribute and name not in ("stopped", "stdout_stream", "stderr_stream"):
            assert hasattr(watcher, name), name
    # keyword options that are no constructor parameter are taken from **options, not kept as free-form
    given = {name: option.default for name, option in WATCHER_OPTIONS.items() if not option.param and option.attribute}
    assert Watcher("x", "true", **given).options == {}
    assert set(WATCHER_DEFAULTS) == {name for name, option in WATCHER_OPTIONS.items()
                                     if option.attribute and name not in ("cmd", "args", "stopped")}


def test_seed_signature_order():
    names = list(inspect.signature(Watcher.__init__).parameters)[1:]
    assert names[:24] == [
        "name", "cmd", "args", "numprocesses", "warmup_delay", "working_dir", "shell", "uid",
        "max_retry", "gid", "send_hup", "env", "stopped", "graceful_timeout", "prereload_fn",
        "rlimits", "executable", "stdout_stream", "stderr_stream", "stream_backend", "priority",
        "singleton", "use_sockets", "copy_env"]


def test_every_reported_option_is_an_attribute():
    watcher = Watcher("x", "true")
    for name in REPORTED_OPTIONS:
        if not name.endswith("_conf"):
            assert hasattr(watcher, name), name
    assert set(get_options(watcher)) == set(REPORTED_OPTIONS)


def test_free_form_options_are_kept():
    watcher = Watcher("x", "true", **{"flapping.max_retry": "3"})
    assert watcher.options == {"flapping.max_retry": "3"}


# A valid `set` value of every settable option, and what `get` then reports.
SAMPLES = {
    "cmd": ("sleep 5", "sleep 5"), "args": (["a", "b"], ["a", "b"]), "numprocesses": ("3", 3),
    "warmup_delay": (0.5, 0.5), "working_dir": ("/tmp", "/tmp"), "shell": ("yes", True),
    "shell_args": ("-e", "-e"), "uid": (getpass.getuser(), getpass.getuser()), "gid": (None, None),
    "max_retry": (-1, -1), "send_hup": (True, True), "stop_signal": ("SIGINT", signal.SIGINT),
    "stop_children": ("on", True), "env": ({"A": "1"}, {"A": "1"}), "graceful_timeout": ("2.5", 2.5),
    "executable": ("/bin/sh", "/bin/sh"), "stdout_stream": ({"class": "NullStream"}, {"class": "NullStream"}),
    "stderr_stream": ({"class": "NullStream"}, {"class": "NullStream"}), "priority": (-4, -4),
    "singleton": (False, False), "use_sockets": (1, True), "copy_env": (True, True), "copy_path": (True, True),
    "max_age": (10, 10.0), "max_age_variance": ("5", 5.0), "respawn": (False, False), "autostart": ("off", False),
    "close_child_stdin": (False, False), "close_child_stdout": (True, True), "close_child_stderr": (True, True),
    "min_uptime": (0, 0.0), "backoff_base": (1, 1.0), "backoff_max": (60, 60.0), "retry_in": ("3", 3.0),
    "critical": ("yes", True),
}


def test_every_settable_option_round_trips_through_get():
    settable = {name for name, option in WATCHER_OPTIONS.items() if option.set}
    # hooks and rlimits hold callables and kernel limits: set key by key, not reported (as in Circus)
    assert set(SAMPLES) == settable - {"hooks", "rlimits"}
    for name, (given, expected) in SAMPLES.items():
        watcher = Watcher("x", "true")
        action = set_option(watcher, name, validate_option(name, given))
        # a stream where there was none needs new processes (their pipes): a reload
        assert action == (RELOAD if name.endswith("_stream") else WATCHER_OPTIONS[name].set), name
        reported = WATCHER_OPTIONS[name].report or name
        assert get_option(watcher, reported) == expected, name


def test_hooks_and_rlimits_are_set_key_by_key_and_whole():
    watcher = Watcher("x", "true")
    assert set_option(watcher, "rlimit_nofile", validate_option("rlimit_nofile", 512)) == RELOAD
    assert set_option(watcher, "rlimits", validate_option("rlimits", {"core": None})) == RELOAD
    assert watcher.rlimits == {"nofile": 512, "core": -1}
    hook = "tests.fixtures.hooks.yes"
    assert set_option(watcher, "hooks.before_start", validate_option("hooks.before_start", hook)) == MANAGE
    assert set_option(watcher, "hooks", validate_option("hooks", {"after_stop": hook + ", true"})) == MANAGE
    assert "before_start" in watcher.hooks and "after_stop" in watcher.hooks


@pytest.mark.parametrize("name", sorted(name for name, option in WATCHER_OPTIONS.items() if not option.set))
def test_options_set_refuses(name):
    with pytest.raises(MessageError, match="unknown key %r" % name):
        validate_option(name, None)


@pytest.mark.parametrize("key, value, reason", [
    ("numprocesses", -1, "invalid value -1 (must be >= 0)"),
    ("graceful_timeout", -2, "invalid duration -2 (must be >= 0)"),
    ("warmup_delay", float("inf"), "must be finite"),
    ("max_retry", -2, "invalid retry count -2"),
    ("stdout_stream.max_bytes", -5, "invalid value -5 (must be >= 0)"),
    ("rlimit_nofile", 2 ** 64, "invalid rlimit"),
    ("rlimit_nofiles", 5, "unknown rlimit 'nofiles'"),
    ("stop_signal", "SIGFOO", "invalid signal 'SIGFOO'"),
    ("send_hup", "y", "invalid boolean 'y'"),
    ("priority", 1.5, "invalid integer 1.5"),
    ("env", {"A": 1}, "invalid environment"),
])
def test_wire_values_are_range_checked_by_the_option_converters(key, value, reason):
    with pytest.raises(MessageError) as caught:
        validate_option(key, value)
    assert ("%r: " % key) in str(caught.value) and reason in str(caught.value)


def test_signal_parsing():
    assert to_signum("term") == to_signum("SIGTERM") == to_signum(15) == to_signum("15") == signal.SIGTERM
    with pytest.raises(ValueError, match="'BOGUS'"):
        to_signum("BOGUS")


def test_backoff_doubles_from_the_second_failure_and_is_capped():
    delays = [backoff_delay(streak, 0.1, 1.0) for streak in range(1, 8)]
    assert delays == [0.0, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


# -- arbiter ---------------------------------------------------------------------------------

def test_every_arbiter_keyword_is_in_the_table_with_its_default():
    parameters = _parameters(Arbiter.__init__, ("self", "watchers"))
    assert set(parameters) == {name for name, option in ARBITER_OPTIONS.items() if option.param}
    for name, parameter in parameters.items():
        if parameter.default is not inspect.Parameter.empty:
            assert parameter.default == ARBITER_OPTIONS[name].default, name


def test_arbiter_options_land_in_arbiter_options():
    assert set(ARBITER_OPTION_KEYS) == {
        "statsd", "statsd_close_outputs", "multicast_endpoint", "debug", "debug_gc", "pidfile", "loglevel",
        "logoutput", "loggerconfig", "logformat", "fqdn_prefix", "umask", "endpoint_owner", "endpoint_mode",
        "max_message_size", "stats_interval", "hub_stall_threshold", "max_request_wait", "curve_secret_key", "curve_allowed_keys", "httpd_close_outputs",
        "httpd_token", "httpd_token_file", "httpd_metrics_token", "httpd_user", "httpd_password"}


def test_reloadconfig_applies_live_exactly_the_live_options():
    assert set(_LIVE_SETTINGS) == {name for name, option in ARBITER_OPTIONS.items() if option.live}


def test_globaloptions_reports_the_endpoints_and_check_delay():
    assert set(GLOBAL_OPTIONS) == {"endpoint", "pubsub_endpoint", "stats_endpoint", "check_delay",
                                   "multicast_endpoint"}


def test_get_arbiter_routes_arbiter_keywords_to_the_arbiter():
    arbiter = get_arbiter("sleep 1", numprocesses=2, warmup_delay=0.5, umask=0o22, proc_name="x")
    assert arbiter.warmup_delay == 0.5 and arbiter.options == {"umask": 0o22, "proc_name": "x"}
    assert arbiter.watchers[0].numprocesses == 2 and arbiter.watchers[0].warmup_delay == 0.0


# -- sockets ---------------------------------------------------------------------------------

def test_every_socket_keyword_is_in_the_table_with_its_default():
    parameters = _parameters(CircusSocket.__init__, ("self", "name"))
    assert set(parameters) == set(SOCKET_OPTIONS)
    for name, parameter in parameters.items():
        assert parameter.default == SOCKET_DEFAULTS[name], name


def test_socket_values_are_range_checked():
    with pytest.raises(ValueError, match=r"invalid backlog 2147483648 \(must be between 0 and 2147483647\)"):
        CircusSocket("s", backlog=2 ** 31)
    with pytest.raises(ValueError, match=r"invalid port 70000"):
        CircusSocket("s", port=70000)
    with pytest.raises(ValueError, match=r"invalid octal umask 512"):
        CircusSocket("s", path="/tmp/x.sock", umask=0o1000)
