"""Every option gcircus knows, one table per kind: watcher, arbiter ([circus]) and socket.

Each row says once what an option is: its default, the converter that reads it (from INI text and from the wire
alike, see gcircus.converters), what `set` does with it, whether `options`/`get`/`globaloptions` report it.
Every other list of option names (the INI readers, the wire's set/add/get, get_arbiter's routing of keywords,
the constructors' defaults) is derived from these tables; tests/unit/test_options.py pins that the
constructors' signatures agree with them.  A leaf: imports only gcircus.converters.

Adding an option: one row here (a converter from gcircus.converters that range-checks it), then the code
that uses it.  A watcher option that is no named parameter of Watcher() gets ``param=False`` and is read in
Watcher.__init__ from ``opt``; an arbiter option that is no named parameter lands in ``arbiter.options``; a
[circus] option that reloadconfig can apply gets ``live=True`` and an entry in config/reload.py's table.
"""
import signal

from gcircus import converters as conv

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
DEFAULT_PUBSUB = "tcp://127.0.0.1:5556"
DEFAULT_STATS = "tcp://127.0.0.1:5557"

#: The default of an option that has none to give (a watcher's cmd must be written).
REQUIRED = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()

# What `set` does once a watcher option is applied, weakest first (the strongest needed is performed):
MANAGE = 1   # the running watcher takes the value at once, then manages its processes
RELOAD = 2   # only new processes can honour it: a running watcher reloads gracefully

# How the INI loader reads a watcher option:
VALUE = "value"      # `key = value` in [watcher:NAME], through the option's converter
KEYWISE = "keywise"  # spelled key by key: hooks.before_start, rlimit_nofile, stdout_stream.class
SECTION = "section"  # from its own section ([env:NAME])
API = "api"          # a Python object: only the Python API can give it


class Option:
    """One row of an option table; see the module docstring. Attributes are read-only by convention."""

    __slots__ = ("name", "default", "convert", "config_default", "set", "add", "report", "config", "param",
                 "live", "attribute")

    def __init__(self, name, default, convert, *, config_default=REQUIRED, set=None, add=None, report=False,
                 config=VALUE, param=True, live=False, attribute=True):
        self.name = name
        self.default = default
        self.convert = convert
        # The INI default where Circus's file defaults differ from its constructor's (check_delay 5 vs 1).
        self.config_default = default if config_default is REQUIRED else config_default
        self.set = set                                  # None (refused by `set`), MANAGE or RELOAD
        self.add = (set is not None) if add is None else add   # accepted by `add`
        # The name `options`/`get` (watcher) or `globaloptions` (arbiter) report it under, or None.
        self.report = (name if report is True else report) or None
        self.config = config                            # VALUE, KEYWISE, SECTION, API or None (not in INI)
        self.param = param                              # a keyword of the constructor (Watcher/Arbiter/...)
        self.live = live                                # [circus]: reloadconfig applies it without a restart
        # watcher: kept as the Watcher attribute of that name; False: a free-form option (watcher.options)
        self.attribute = attribute

    def __repr__(self):
        return "<Option %s default=%r>" % (self.name, self.default)


def _table(*rows):
    return {row.name: row for row in rows}


_W = Option
WATCHER_OPTIONS = _table(
    _W("cmd", REQUIRED, conv.to_command, set=RELOAD, report=True),
    _W("args", None, conv.to_args, set=RELOAD, report=True),
    _W("numprocesses", 1, conv.to_nonneg_int, set=MANAGE, report=True),
    # Circus reads this one as an int; a duration is a float everywhere else, so "0.5" is accepted
    _W("warmup_delay", 0.0, conv.to_duration, set=MANAGE, report=True),
    _W("working_dir", None, conv.to_optional_str, set=RELOAD, report=True),
    _W("shell", False, conv.to_bool, set=RELOAD, report=True),
    _W("shell_args", None, conv.to_args, set=RELOAD, report=True, param=False),
    _W("uid", None, conv.to_identity, set=RELOAD, report=True),
    _W("gid", None, conv.to_identity, set=RELOAD, report=True),
    _W("max_retry", 5, conv.to_retry_count, set=MANAGE, report=True),
    _W("send_hup", False, conv.to_bool, set=MANAGE, report=True),
    _W("stop_signal", signal.SIGTERM, conv.to_signum, set=MANAGE, report=True, param=False),
    _W("stop_children", False, conv.to_bool, set=MANAGE, report=True, param=False),
    _W("env", None, conv.to_env, set=RELOAD, report=True, config=SECTION),
    _W("stopped", True, conv.to_bool, config=API),
    _W("graceful_timeout", 30.0, conv.to_duration, set=MANAGE, report=True),
    _W("prereload_fn", None, None, config=API),
    _W("rlimits", None, conv.to_rlimits, set=RELOAD, config=KEYWISE),   # or rlimit_<name>
    _W("executable", None, conv.to_optional_str, set=RELOAD, report=True),
    # stdout/stderr streams: running pumps switch to a new stream at once (no reload unless there was none)
    _W("stdout_stream", None, conv.to_stream_conf, set=MANAGE, report="stdout_stream_conf", config=KEYWISE),
    _W("stderr_stream", None, conv.to_stream_conf, set=MANAGE, report="stderr_stream_conf", config=KEYWISE),
    # normally injected from [circus] by the arbiter; a watcher may still choose its own
    _W("stream_backend", "gevent", conv.to_stream_backend),
    _W("priority", 0, conv.to_int, set=MANAGE, report=True),
    _W("singleton", False, conv.to_bool, set=MANAGE, report=True),
    _W("use_sockets", False, conv.to_bool, set=RELOAD, report=True),
    _W("copy_env", False, conv.to_bool, set=RELOAD, report=True),
    _W("copy_path", False, conv.to_bool, set=RELOAD, report=True, param=False),
    _W("max_age", 0, conv.to_duration, set=RELOAD, report=True, param=False),
    _W("max_age_variance", 30, conv.to_duration, set=RELOAD, report=True, param=False),
    _W("hooks", None, conv.to_hooks, set=MANAGE, config=KEYWISE, param=False),
    _W("respawn", True, conv.to_bool, set=MANAGE, report=True, param=False),
    _W("autostart", True, conv.to_bool, set=MANAGE, report=True, param=False),
    # constructor-only: accepted by `add`, refused by `set`
    _W("on_demand", False, conv.to_bool, add=True, report=True, param=False),
    _W("virtualenv", None, conv.to_optional_str, add=True, param=False),
    _W("virtualenv_py_ver", None, conv.to_python_version, add=True, param=False),
    _W("stdin_socket", None, conv.to_optional_str, add=True, param=False),
    _W("close_child_stdin", True, conv.to_bool, set=RELOAD, report=True, param=False),
    _W("close_child_stdout", False, conv.to_bool, set=RELOAD, report=True, param=False),
    _W("close_child_stderr", False, conv.to_bool, set=RELOAD, report=True, param=False),
    # Ours: a process must live min_uptime to count as started. The first faster death is replaced at
    # once; the n-th in a row waits backoff_base * 2**(n-2), capped at backoff_max.
    _W("min_uptime", 1.0, conv.to_duration, set=MANAGE, report=True, param=False),
    _W("backoff_base", 0.1, conv.to_duration, set=MANAGE, report=True, param=False),
    _W("backoff_max", 30.0, conv.to_duration, set=MANAGE, report=True, param=False),
    # Ours: true has the kernel SIGKILL the processes the moment the daemon dies (SIGKILL, OOM killer), at
    # the price of one more exec per spawn; without it they run on until gcircusd of the same configuration
    # starts again, which stops them first (gcircus.supervision.children_record).
    _W("die_with_daemon", False, conv.to_bool, add=True, report=True, param=False),
    # Ours: a critical watcher that gives up (max_retry, Flapping) stops the daemon: gcircusd exits 3
    _W("critical", False, conv.to_bool, set=MANAGE, report=True, param=False),
    # Accepted and unused by Circus's watcher: kept as free-form options (typed, so a typo is caught)
    _W("retry_in", None, conv.to_duration, set=MANAGE, add=True, param=False, attribute=False),
    _W("check_flapping", None, conv.to_bool, param=False, attribute=False),
)

#: Defaults of the watcher options the Watcher keeps as attributes (its constructor reads them from here).
WATCHER_DEFAULTS = {name: option.default for name, option in WATCHER_OPTIONS.items()
                    if option.attribute and option.default is not REQUIRED and name not in ("args", "stopped")}

#: What `options` and `get` report, besides free-form options.
REPORTED_OPTIONS = tuple(option.report for option in WATCHER_OPTIONS.values() if option.report)

#: Keys of the `<stream>.<key>` options of stdout_stream/stderr_stream that are typed (the rest stay text).
STREAM_OPTION_TYPES = {
    "max_bytes": conv.to_nonneg_int,
    "backup_count": conv.to_nonneg_int,
    "rotate_interval": conv.to_nonneg_int,
    "utc": conv.to_bool,
}


_A = Option
ARBITER_OPTIONS = _table(
    # param: a named keyword of Arbiter(); the others land in arbiter.options
    _A("endpoint", DEFAULT_ENDPOINT, conv.to_str, report=True, live=True),
    _A("pubsub_endpoint", DEFAULT_PUBSUB, conv.to_str, report=True, live=True),
    # The Python API has no stats without a stats_endpoint; the INI file names one and turns it on with statsd
    _A("stats_endpoint", None, conv.to_str, config_default=DEFAULT_STATS, report=True),
    _A("statsd", False, conv.to_bool, param=False),
    _A("statsd_close_outputs", False, conv.to_bool, param=False),
    # None here and below: the using module's default, written there beside its reason
    _A("stats_interval", None, conv.to_duration, param=False, live=True),      # stats.publisher: 1 s
    # a turn of the hub longer than this (seconds) is logged with its culprit and counted; 0: off
    _A("hub_stall_threshold", None, conv.to_duration, param=False, live=True),  # supervision.hub_guard: 0.1 s
    # a request still waiting for its watcher after this many seconds is refused, not executed
    _A("max_request_wait", None, conv.to_duration, param=False, live=True),     # controller: 10 s
    # The sweep behind the exit events; 0 turns it off. Circus's INI default is 5, its constructor's 1.
    _A("check_delay", 1.0, conv.to_duration, config_default=5.0, report=True, live=True),
    # Circus listens on a multicast group by default and tells anyone the control endpoint; we only do so
    # when asked: an unauthenticated reply naming the control endpoint is an exposure.  An empty value
    # also means off.
    _A("multicast_endpoint", None, conv.to_optional_str, report=True, param=False),
    _A("endpoint_owner", None, conv.to_optional_str, param=False),
    _A("endpoint_mode", None, conv.to_file_mode, param=False),
    # Larger than 2 GiB is no control message; 0 (or none) is the controller's default (1 MiB).
    _A("max_message_size", None, conv.to_int_between(0, conv.C_INT_MAX), param=False, live=True),
    _A("warmup_delay", 0, conv.to_duration, config_default=0.0, live=True),
    _A("umask", None, conv.to_umask, param=False, live=True),
    # the web dashboard, JSON API and /metrics (gcircus.httpd); reloadconfig turns it on, moves or guards it
    _A("httpd", False, conv.to_bool, live=True),
    _A("httpd_host", "localhost", conv.to_str, live=True),
    _A("httpd_port", 8080, conv.to_port, live=True),
    _A("httpd_close_outputs", False, conv.to_bool, param=False),
    _A("httpd_token", None, conv.to_optional_str, param=False, live=True),
    _A("httpd_token_file", None, conv.to_optional_str, param=False, live=True),
    _A("httpd_metrics_token", None, conv.to_optional_str, param=False, live=True),
    _A("httpd_user", None, conv.to_optional_str, param=False, live=True),
    _A("httpd_password", None, conv.to_optional_str, param=False, live=True),
    _A("debug", False, conv.to_bool, param=False),
    _A("debug_gc", False, conv.to_bool, param=False),
    _A("pidfile", None, conv.to_optional_str, param=False),
    _A("loglevel", None, conv.to_log_level, param=False, live=True),
    _A("logoutput", None, conv.to_optional_str, param=False),
    _A("loggerconfig", None, conv.to_optional_str, param=False),
    # text, or json: one JSON object per log line (gcircusd --log-format)
    _A("logformat", None, conv.to_log_format, param=False),
    _A("fqdn_prefix", None, conv.to_optional_str, param=False),
    # the default stream_backend of the watchers, read by the config builder (not an Arbiter keyword)
    _A("stream_backend", "gevent", conv.to_stream_backend, param=False),
    _A("curve_secret_key", None, conv.to_optional_str, param=False),
    _A("curve_allowed_keys", None, conv.to_optional_str, param=False),
    # Python API only
    _A("prereload_fn", None, None, config=API),
    _A("context", None, None, config=API),
    _A("loop", None, None, config=API),
    _A("plugins", None, None, config=API),
    _A("sockets", None, None, config=API),
    _A("handle_signals", None, None, config=API, param=False),
    _A("ssh_server", None, None, config=API, param=False),
    _A("proc_name", None, None, config=API, param=False),
)

#: [circus] keys the loader itself reads (not options of the arbiter).
CIRCUS_LOADER_KEYS = ("include", "include_dir")

#: What `globaloptions` reports.
GLOBAL_OPTIONS = tuple(option.report for option in ARBITER_OPTIONS.values() if option.report)


_S = Option
SOCKET_OPTIONS = _table(
    _S("host", "localhost", conv.to_str),
    _S("port", 8080, conv.to_port),
    _S("path", None, conv.to_optional_str),
    _S("family", "AF_INET", conv.to_socket_family),
    _S("type", "SOCK_STREAM", conv.to_socket_type),
    _S("proto", 0, conv.to_socket_proto),
    _S("backlog", 2048, conv.to_backlog),
    _S("so_reuseport", False, conv.to_bool),
    # Circus's INI default 8 read as decimal is 0o010; keep the same effective mask
    _S("umask", None, conv.to_umask, config_default=0o010),
    _S("replace", False, conv.to_bool),
    _S("blocking", False, conv.to_bool),
    _S("interface", None, conv.to_optional_str),
)

#: CircusSocket's keyword defaults.
SOCKET_DEFAULTS = {name: option.default for name, option in SOCKET_OPTIONS.items()}
