"""The watcher option table: every option's name and default, written once.

Watcher's constructor keeps Circus's positional signature (so its defaults also
appear there; tests/unit/test_options.py checks both agree); everything else —
options reported by `options`/`get`, config defaults — reads from here.
"""
import signal

WATCHER_DEFAULTS = {
    "numprocesses": 1,
    "warmup_delay": 0.0,
    "working_dir": None,
    "shell": False,
    "shell_args": None,
    "uid": None,
    "gid": None,
    "max_retry": 5,
    "send_hup": False,
    "stop_signal": signal.SIGTERM,
    "stop_children": False,
    "env": None,
    "graceful_timeout": 30.0,
    "prereload_fn": None,
    "rlimits": None,
    "executable": None,
    "stdout_stream": None,
    "stderr_stream": None,
    "stream_backend": "gevent",
    "priority": 0,
    "singleton": False,
    "use_sockets": False,
    "copy_env": False,
    "copy_path": False,
    "max_age": 0,
    "max_age_variance": 30,
    "hooks": None,
    "respawn": True,
    "autostart": True,
    "on_demand": False,
    "virtualenv": None,
    "virtualenv_py_ver": None,
    "stdin_socket": None,
    "close_child_stdin": True,
    "close_child_stdout": False,
    "close_child_stderr": False,
    # Ours, so a crash loop costs nothing: a process must live min_uptime to count as started. The first
    # faster death is replaced at once; the n-th in a row waits backoff_base * 2**(n-2),
    # capped at backoff_max.
    "min_uptime": 1.0,
    "backoff_base": 0.1,
    "backoff_max": 30.0,
    # Ours: the kernel SIGKILLs the processes if the daemon dies (SIGKILL, OOM killer), so a restarted
    # daemon never finds them running beside its new ones; false lets them outlive a crash.
    "die_with_daemon": True,
}

# What `options` and `get` report (Circus's list), besides free-form options.
REPORTED_OPTIONS = (
    "numprocesses", "warmup_delay", "working_dir", "uid", "gid", "send_hup", "stop_signal",
    "stop_children", "shell", "shell_args", "env", "max_retry", "cmd", "args", "respawn",
    "graceful_timeout", "executable", "use_sockets", "priority", "copy_env", "singleton",
    "stdout_stream_conf", "on_demand", "stderr_stream_conf", "max_age", "max_age_variance",
    "close_child_stdin", "close_child_stdout", "close_child_stderr",
    "min_uptime", "backoff_base", "backoff_max", "die_with_daemon",
)
