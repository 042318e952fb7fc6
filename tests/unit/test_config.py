"""Unit tests of gcircus.config.load_config on the INI fixtures in tests/fixtures/config.

Every test passes ``environ`` explicitly (standing for circusd's environment) so results never depend on the
environment the tests run in.
"""
import logging
import os
import resource
import signal

import pytest

from gcircus.config import ConfigError, load_config
from gcircus.config.sections import WATCHER_FIELDS
from gcircus.options import (API, ARBITER_OPTIONS, KEYWISE, SECTION, SOCKET_OPTIONS, VALUE, WATCHER_DEFAULTS,
                             WATCHER_OPTIONS)

FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, "fixtures", "config"))
# VENV_DIR: typed.ini's virtualenv must be a directory (the loader checks it); any will do
ENVIRON = {"PATH": "/usr/bin:/bin", "HOME": "/home/operator", "GLOBAL": "from-os", "RUN_DIR": "/run/from-os",
           "VENV_DIR": FIXTURES}


def load(name, environ=ENVIRON):
    return load_config(os.path.join(FIXTURES, name), environ=environ)


def by_name(entries):
    return {entry["name"]: entry for entry in entries}


# --- includes -----------------------------------------------------------------------------------------------

def test_include_globs_and_include_dir_add_their_sections():
    config = load("includes.ini")
    assert [w["name"] for w in config["watchers"]] == ["fromdir", "main", "part1", "part2", "shared"]
    assert [s["name"] for s in config["sockets"]] == ["fromdir"]
    assert [os.path.basename(path) for path in config["files"]] == [
        "includes.ini", "includes-part-1.ini", "includes-part-2.ini", "from-dir.ini"]
    assert config["errors"] == [] and config["warnings"] == []


def test_includes_do_not_nest_and_include_dir_reads_only_ini_files():
    names = {w["name"] for w in load("includes.ini")["watchers"]}
    assert "nested" not in names
    assert "notini" not in names


def test_main_file_definitions_beat_included_ones_key_by_key():
    config = load("includes.ini")
    shared = by_name(config["watchers"])["shared"]
    assert shared["cmd"] == "/bin/shared-from-main-file"
    assert shared["numprocesses"] == 4                   # absent from the main file's section
    assert config["circus"]["check_delay"] == 2.0        # main file's 2, not the include's 99
    assert config["circus"]["pidfile"] == "/run/from-include.pid"


def test_a_file_matched_twice_is_read_once(tmp_path):
    main = tmp_path / "main.ini"
    main.write_text("[circus]\ninclude = *.ini other.ini\n[watcher:a]\ncmd = a\n")
    (tmp_path / "other.ini").write_text("[watcher:b]\ncmd = b\n")
    config = load_config(str(main), environ={})
    assert config["files"] == [str(main), str(tmp_path / "other.ini")]
    assert [w["name"] for w in config["watchers"]] == ["a", "b"]


def test_missing_include_only_warns_and_logs(caplog):
    with caplog.at_level(logging.WARNING, logger="gcircus.config"):
        config = load("missing_include.ini")
    assert [w["name"] for w in config["watchers"]] == ["alone"]
    assert config["errors"] == []
    path = os.path.join(FIXTURES, "missing_include.ini")
    assert config["warnings"] == [
        "%s [circus] include: 'does-not-exist-*.ini' matches no file" % path,
        "%s [circus] include_dir: no .ini file in 'no-such-dir'" % path,
    ]
    assert [record.getMessage() for record in caplog.records] == config["warnings"]


def test_missing_main_file_raises_naming_it(tmp_path):
    missing = str(tmp_path / "nope.ini")
    with pytest.raises(ConfigError, match="%s: cannot read config file: No such file" % missing):
        load_config(missing, environ={})
    with pytest.raises(ConfigError, match="not a regular file \\(a directory\\)"):
        load_config(str(tmp_path), environ={})


# --- environment sections -----------------------------------------------------------------------------------

@pytest.fixture
def env_config():
    return load("env.ini")


def test_global_env_section_expands_shell_style_references(env_config):
    env = env_config["env"]
    assert env["PATH"] == "/usr/bin:/bin:/opt/global/bin"
    assert env["HOME_COPY"] == "/home/operator"
    assert env["NOT_EXPANDED"] == "$lower and $(circus.wid)"
    assert env["MISSING"] == "[]"
    # result['env'] is the [env] section alone, not circusd's whole environment
    assert "HOME" not in env
    # [env] beats circusd's environment
    assert env["GLOBAL"] == "from-env"


def test_env_name_section_beats_env_section_and_extends_its_values(env_config):
    web = by_name(env_config["watchers"])["web"]["env"]
    assert web["SHARED"] == "from-env-web"
    assert web["GLOBAL"] == "from-env"
    assert web["PATH"] == "/usr/bin:/bin:/opt/global/bin:/opt/web/bin"
    assert web["ONLY_WEB"] == "yes"


def test_env_patterns_wildcards_and_name_lists(env_config):
    watchers = by_name(env_config["watchers"])
    assert "ONLY_WEB" not in watchers["webworker"]["env"]                 # [env:web] is not a prefix match
    assert watchers["webworker"]["env"]["STAR"] == "web-star"             # [env:web*]
    assert watchers["web"]["env"]["STAR"] == "web-star"
    assert "STAR" not in watchers["db"]["env"]
    for name in ("db", "cache"):                                          # [env:db, cache]
        assert watchers[name]["env"]["SHARED"] == "from-env-db-cache"
        assert watchers[name]["env"]["BUILT"] == "from-env-db-cache-and-from-env"
        # $(circus.env.X) in an env value: the built env beats circusd's environment too
        assert watchers[name]["env"]["VIA_CIRCUS_ENV"] == "from-env"
    assert all(w["env"]["EVERYONE"] == "1" for w in watchers.values())    # [env:*]


def test_later_env_sections_win(env_config):
    watchers = by_name(env_config["watchers"])
    # [env:web*] sets it first, [env:*] comes later in the file
    assert watchers["web"]["env"]["SHARED_STAR"] == "from-star"
    assert watchers["db"]["env"]["SHARED_STAR"] == "from-star"


def test_env_section_matching_no_watcher_warns(env_config):
    assert env_config["warnings"] == [
        "%s [env:nobody-has-this-name]: matches no watcher" % os.path.join(FIXTURES, "env.ini")]
    assert env_config["errors"] == []


def test_each_watcher_gets_its_own_env_dict(env_config):
    watchers = by_name(env_config["watchers"])
    watchers["db"]["env"]["X"] = "1"
    assert "X" not in watchers["cache"]["env"] and "X" not in env_config["env"]


# --- $(circus.env.X) in every section kind ------------------------------------------------------------------

@pytest.fixture
def circus_env():
    return load("circus_env.ini")


def test_circus_env_in_circus_section_uses_env_section_before_os_environ(circus_env):
    assert circus_env["circus"]["endpoint"] == "tcp://127.0.0.1:6555"
    assert circus_env["circus"]["pubsub_endpoint"] == "ipc:///run/from-env-section/pubsub.sock"


def test_circus_env_in_socket_and_plugin_sections(circus_env):
    sock = circus_env["sockets"][0]
    assert sock["path"] == "/run/from-env-section/web.sock"
    assert (sock["family"], sock["host"], sock["port"]) == ("AF_UNIX", None, None)
    plugin = circus_env["plugins"][0]
    assert plugin["use"] == "tests.fixtures.audit_plugin.Audit"  # lower-case reference, upper-case variable
    assert plugin["target"] == "/run/from-env-section/audit.log"  # ((circus.env.X)) form


def test_circus_env_in_watcher_section_prefers_the_watcher_env(circus_env):
    web = circus_env["watchers"][0]
    assert web["cmd"] == "/bin/web --home /home/operator --fd $(circus.sockets.web) --wid $(circus.wid)"
    assert web["args"] == "--mode from-env-web --unknown $(circus.env.NOT_DEFINED_ANYWHERE)"
    assert web["working_dir"] == "/run/web-only"
    assert web["stdout_stream"] == {"filename": "/run/web-only/web.log"}


def test_raw_sections_hold_expanded_strings(circus_env):
    raw = circus_env["raw"]
    assert sorted(raw) == ["circus", "plugin:audit", "socket:web", "watcher:web"]
    assert raw["circus"]["endpoint"] == "tcp://127.0.0.1:6555"
    assert raw["watcher:web"]["working_dir"] == "/run/web-only"
    assert raw["watcher:web"]["use_sockets"] == "true"
    assert raw["plugin:audit"] == {"use": "tests.fixtures.audit_plugin.Audit",
                                   "target": "/run/from-env-section/audit.log"}


def test_default_environ_is_the_process_environment(monkeypatch):
    monkeypatch.setenv("HOME", "/somewhere/else")
    assert "--home /somewhere/else " in load_config(os.path.join(FIXTURES, "circus_env.ini"))["watchers"][0]["cmd"]


# --- typed values -------------------------------------------------------------------------------------------

@pytest.fixture
def typed():
    config = load("typed.ini")
    assert config["errors"] == []
    return config


def test_circus_section_types(typed):
    circus = typed["circus"]
    assert circus["check_delay"] == 0.5
    assert circus["warmup_delay"] == 1.5
    assert circus["umask"] == 0o002
    assert (circus["statsd"], circus["httpd"], circus["debug"]) == (True, False, True)
    assert circus["httpd_port"] == 9090
    assert circus["loglevel"] == "debug"
    assert circus["multicast_endpoint"] == "udp://237.219.251.97:12027"
    assert circus["stream_backend"] == "thread"
    assert circus["curve_secret_key"] == "/etc/gcircus/server.key_secret"
    assert circus["curve_allowed_keys"] == "/etc/gcircus/clients"
    assert (circus["endpoint_mode"], circus["max_message_size"], circus["stats_interval"]) == (0o660, 2048, 0.5)
    assert "include" not in circus


def test_circus_defaults_when_section_absent(tmp_path):
    path = tmp_path / "bare.ini"
    path.write_text("[watcher:a]\ncmd = /bin/a\n")
    circus = load_config(str(path), environ={})["circus"]
    assert circus == {
        "endpoint": "tcp://127.0.0.1:5555", "endpoint_owner": None, "pubsub_endpoint": "tcp://127.0.0.1:5556",
        "multicast_endpoint": None, "statsd": False, "stats_endpoint": "tcp://127.0.0.1:5557",
        "statsd_close_outputs": False, "check_delay": 5.0, "warmup_delay": 0.0, "umask": None,
        "httpd": False, "httpd_host": "localhost", "httpd_port": 8080, "httpd_close_outputs": False,
        "debug": False, "debug_gc": False, "pidfile": None, "loglevel": None, "logoutput": None,
        "loggerconfig": None, "logformat": None, "fqdn_prefix": None, "stream_backend": "gevent",
        "curve_secret_key": None, "curve_allowed_keys": None, "endpoint_mode": None, "max_message_size": None,
        "stats_interval": None, "httpd_token": None, "httpd_token_file": None, "httpd_metrics_token": None,
        "httpd_user": None, "httpd_password": None, "hub_stall_threshold": None, "max_request_wait": None,
    }


def test_ini_defaults_are_the_option_tables(tmp_path):
    """Each [circus] and [socket:NAME] key, and each written-once watcher default, comes from gcircus.options."""
    path = tmp_path / "bare.ini"
    path.write_text("[watcher:a]\ncmd = /bin/a\n[socket:s]\nhost = localhost\n")
    config = load_config(str(path), environ={})
    assert config["circus"] == {name: option.config_default for name, option in ARBITER_OPTIONS.items()
                                if option.config == VALUE}
    sock = dict(config["sockets"][0])
    assert sock.pop("name") == "s"
    assert sock == {name: option.config_default for name, option in SOCKET_OPTIONS.items()}
    watcher = by_name(config["watchers"])["a"]
    for name, option in WATCHER_OPTIONS.items():
        if option.config == VALUE and option.attribute and name not in ("cmd", "stream_backend"):
            assert watcher[name] == option.config_default, name


def test_watcher_scalar_types(typed):
    w = by_name(typed["watchers"])["typed"]
    assert (w["numprocesses"], w["warmup_delay"], w["graceful_timeout"]) == (4, 0.25, 88.0)
    assert (w["max_retry"], w["priority"], w["stop_signal"]) == (-1, -3, int(signal.SIGQUIT))
    assert (w["send_hup"], w["stop_children"], w["shell"]) == (True, True, False)
    assert (w["uid"], w["gid"]) == ("www-data", "33")                  # kept as given, resolved at spawn
    assert (w["copy_env"], w["copy_path"], w["use_sockets"]) == (True, True, True)
    assert (w["max_age"], w["max_age_variance"]) == (3600.0, 12.5)
    assert (w["respawn"], w["autostart"], w["on_demand"]) == (False, False, True)
    assert (w["close_child_stdin"], w["close_child_stdout"], w["close_child_stderr"]) == (False, True, True)
    assert (w["virtualenv"], w["virtualenv_py_ver"]) == (FIXTURES, "3.11")
    assert (w["min_uptime"], w["backoff_base"], w["backoff_max"]) == (2.5, 0.2, 60.0)
    assert w["args"] == '--flag "two words"'


def test_shell_args_is_kept_verbatim(typed):
    assert by_name(typed["watchers"])["typed"]["shell_args"] == "--login -e"


def test_rlimits_from_rlimit_keys(typed):
    assert by_name(typed["watchers"])["typed"]["rlimits"] == {
        "nofile": 4096, "nproc": 20, "core": resource.RLIM_INFINITY, "as": resource.RLIM_INFINITY}


def test_hooks_from_hooks_keys(typed):
    assert by_name(typed["watchers"])["typed"]["hooks"] == {
        "before_start": ("tests.fixtures.hooks.yes", False),
        "after_reap": ("tests.fixtures.hooks:no", True),
        "before_signal": ("tests.fixtures.hooks.boom", False),
    }


def test_stream_options_are_gathered_and_coerced(typed):
    w = by_name(typed["watchers"])["typed"]
    assert w["stdout_stream"] == {"class": "FileStream", "filename": "/var/log/typed.out",
                                  "max_bytes": 1048576, "backup_count": 5}
    assert w["stderr_stream"] == {"class": "TimedRotatingFileStream", "filename": "/var/log/typed.err",
                                  "rotate_when": "H", "rotate_interval": 2, "utc": True,
                                  "time_format": "%Y-%m-%d"}


def test_unknown_watcher_keys_are_free_form_strings(typed):
    w = by_name(typed["watchers"])["typed"]
    assert w["flapping.max_retry"] == "7"
    assert w["custom_option"] == "kept as text"
    assert not any(key.startswith(("rlimit_", "hooks.", "stdout_stream.")) for key in w)


def test_watcher_defaults_are_circus_ones(typed):
    w = by_name(typed["watchers"])["defaults"]
    ours = {key: w.pop(key) for key in ("min_uptime", "backoff_base", "backoff_max", "die_with_daemon",
                                        "critical")}
    assert w == {
        "name": "defaults", "cmd": "/bin/defaults", "args": None, "numprocesses": 1, "warmup_delay": 0.0,
        "working_dir": None, "shell": False, "shell_args": None, "uid": None, "gid": None, "max_retry": 5,
        "send_hup": False, "stop_signal": 15, "stop_children": False, "graceful_timeout": 30.0,
        "executable": None, "priority": 0, "singleton": False, "use_sockets": False, "copy_env": False,
        "copy_path": False, "max_age": 0.0, "max_age_variance": 30.0, "respawn": True, "autostart": True,
        "on_demand": False, "virtualenv": None, "virtualenv_py_ver": None, "stdin_socket": None,
        "close_child_stdin": True, "close_child_stdout": False, "close_child_stderr": False,
        "env": {}, "rlimits": None, "hooks": None, "stdout_stream": None, "stderr_stream": None,
    }
    # our restart-policy and die_with_daemon options take the Watcher's defaults from the one option table
    assert ours == {key: WATCHER_DEFAULTS[key] for key in ours}


def test_every_watcher_option_of_the_option_table_is_read_from_ini():
    handled = set(WATCHER_FIELDS) | {"env", "rlimits", "hooks", "stdout_stream", "stderr_stream",
                                     "prereload_fn", "stopped"}
    assert set(WATCHER_OPTIONS) == handled
    assert {name for name, option in WATCHER_OPTIONS.items() if option.config == VALUE} == set(WATCHER_FIELDS)
    assert {name for name, option in WATCHER_OPTIONS.items() if option.config in (KEYWISE, SECTION, API)} == {
        "env", "rlimits", "hooks", "stdout_stream", "stderr_stream", "prereload_fn", "stopped"}


def test_socket_types_and_octal_umask(typed):
    sockets = by_name(typed["sockets"])
    assert list(sockets) == ["defaults", "tcp", "unix"]
    assert sockets["unix"]["umask"] == 0o022                              # octal, unlike Circus's decimal 22
    assert (sockets["unix"]["family"], sockets["unix"]["replace"]) == ("AF_UNIX", True)
    tcp = sockets["tcp"]
    assert (tcp["host"], tcp["port"], tcp["backlog"]) == ("127.0.0.1", 0, 10)
    assert (tcp["so_reuseport"], tcp["blocking"], tcp["proto"]) == (True, True, "tcp")
    assert (tcp["type"], tcp["family"]) == ("SOCK_STREAM", "AF_INET6")
    assert sockets["defaults"] == {
        "name": "defaults", "host": "localhost", "port": 8080, "path": None, "family": "AF_INET",
        "type": "SOCK_STREAM", "proto": 0, "backlog": 2048, "so_reuseport": False, "umask": 0o010,
        "replace": False, "blocking": False, "interface": None}


def test_socket_names_are_lower_cased(tmp_path):
    path = tmp_path / "s.ini"
    path.write_text("[socket:MySock]\nport = 1\n")
    config = load_config(str(path), environ={})
    assert config["sockets"][0]["name"] == "mysock"
    assert list(config["raw"]) == ["circus", "socket:mysock"]


def test_plugins_keep_string_options_and_default_priority_one(typed):
    plugins = typed["plugins"]
    assert [p["name"] for p in plugins] == ["plugin:flapping", "plugin:statsd"]
    assert plugins[0] == {"name": "plugin:flapping", "use": "circus.plugins.flapping.Flapping",
                          "retry_in": "3", "max_retry": "2", "priority": 30}
    assert plugins[1]["priority"] == 1
    assert plugins[1]["application_name"] == "example"


# --- [DEFAULT], empty sections, ordering ---------------------------------------------------------------------

def test_default_section_and_empty_sections_through_load_config():
    config = load("parser_rules.ini")
    watchers = by_name(config["watchers"])
    assert list(watchers) == ["overrides-default", "rules"]
    assert watchers["rules"]["working_dir"] == "/srv/default"
    assert watchers["rules"]["copy_env"] is True
    assert watchers["rules"]["numprocesses"] == 2
    assert watchers["rules"]["empty"] == ""
    assert config["warnings"] == [
        "%s [watcher:empty]: empty section ignored" % os.path.join(FIXTURES, "parser_rules.ini")]


def test_entries_are_sorted_by_name(tmp_path):
    path = tmp_path / "order.ini"
    path.write_text("[watcher:b]\ncmd = b\n[watcher:a]\ncmd = a\n[watcher:c]\ncmd = c\n"
                    "[plugin:z]\nuse = circus.plugins.flapping.Flapping\n"
                    "[plugin:y]\nuse = circus.plugins.flapping.Flapping\n")
    config = load_config(str(path), environ={})
    assert [w["name"] for w in config["watchers"]] == ["a", "b", "c"]
    assert [p["name"] for p in config["plugins"]] == ["plugin:y", "plugin:z"]
