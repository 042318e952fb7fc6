"""A watcher's options over the wire: what `options` and `get` report, what `add`
and `set` accept, and what `set` does with each key.

Circus validates some `set` keys and then silently ignores them (respawn,
max_retry, copy_env, singleton, close_child_*, rlimit_*); here every accepted
key is applied. Keys that only new processes can honour trigger a
graceful reload of a running watcher.
"""
import contextlib
import resource
import time

from gcircus.supervision import cmdline
from gcircus.supervision import spawner
from gcircus.commands.base import parse_signal, to_bool, to_int, to_number
from gcircus.exc import MessageError
from gcircus.supervision.hooks import HOOK_NAMES, parse_hook_spec, resolve_name
from gcircus.options import REPORTED_OPTIONS

# Follow-up actions of `set`, weakest first: the strongest one needed is performed.
NOTHING, MANAGE, RELOAD = 0, 1, 2

_INTEGERS = ("numprocesses", "max_retry", "priority")
_NUMBERS = ("warmup_delay", "retry_in", "graceful_timeout", "min_uptime", "backoff_base", "backoff_max",
            "max_age", "max_age_variance")
_BOOLEANS = ("send_hup", "stop_children", "shell", "copy_env", "copy_path", "respawn", "singleton",
             "close_child_stdin", "close_child_stdout", "close_child_stderr", "use_sockets", "autostart",
             "on_demand", "die_with_daemon")
_STRINGS = ("cmd", "working_dir", "executable", "virtualenv", "virtualenv_py_ver", "stdin_socket")
_STREAMS = ("stdout_stream", "stderr_stream")

# Keys `set` changes in place; the rest of the accepted keys need new processes.
_MANAGE_KEYS = frozenset(("numprocesses", "warmup_delay", "send_hup", "stop_signal", "stop_children",
                          "graceful_timeout", "respawn", "max_retry", "retry_in", "singleton", "priority",
                          "autostart", "min_uptime", "backoff_base", "backoff_max", "hooks"))
_RELOAD_KEYS = frozenset(("working_dir", "uid", "gid", "shell", "shell_args", "env", "cmd", "args",
                          "max_age", "max_age_variance", "copy_env", "copy_path", "use_sockets",
                          "executable", "close_child_stdin", "close_child_stdout", "close_child_stderr"))
_SETTABLE = _MANAGE_KEYS | _RELOAD_KEYS | frozenset(_STREAMS)
# Constructor-only options: accepted by `add`, refused by `set`.
_ADD_ONLY = frozenset(("on_demand", "virtualenv", "virtualenv_py_ver", "stdin_socket", "die_with_daemon"))


def watcher_lock(watcher):
    """The watcher's command lock (commands on one watcher run one at a time)."""
    lock = watcher.command_lock
    return lock if lock is not None else contextlib.nullcontext()


# -- reading -----------------------------------------------------------------------------

def get_option(watcher, key):
    """The live value of a reported option or free-form option; KeyError if there is none."""
    if key in watcher.options:
        return watcher.options[key]
    if key not in REPORTED_OPTIONS:
        raise KeyError(key)
    if key in ("stdout_stream_conf", "stderr_stream_conf"):
        return getattr(watcher.streams, key.replace("_stream", ""), None)
    return getattr(watcher, key, None)


def get_options(watcher):
    """Every reported option and free-form option with its value, sorted by name."""
    names = set(REPORTED_OPTIONS) | set(watcher.options)
    return {name: get_option(watcher, name) for name in sorted(names)}


# -- validating ----------------------------------------------------------------------------

def validate_option(key, value, for_add=False):
    """The value converted for key; MessageError naming the key when it is refused."""
    if not isinstance(key, str):
        raise MessageError("unknown key %r" % (key,))
    base, _, sub = key.partition(".")
    if sub and base in _STREAMS:
        return value
    if sub and base == "hooks":
        return _check_hook(sub, value)
    if key.startswith("rlimit_"):
        return _check_rlimit(key, value)
    if key not in _SETTABLE and not (for_add and key in _ADD_ONLY):
        raise MessageError("unknown key %r" % key)
    return _convert(key, value)


def _convert(key, value):
    if key in _INTEGERS:
        return to_int(value, key)
    if key in _NUMBERS:
        return to_number(value, key)
    if key in _BOOLEANS:
        return to_bool(value, key)
    if key in _STRINGS:
        if not isinstance(value, str):
            raise MessageError("%r must be a string, not %r" % (key, value))
        if key == "cmd" and not value.strip():
            raise MessageError("'cmd' must not be empty")
        return value
    if key == "stop_signal":
        return parse_signal(value, key)
    if key in ("uid", "gid"):
        return _check_identity(key, value)
    if key in ("args", "shell_args"):
        if value is not None and not isinstance(value, (str, list)):
            raise MessageError("%r must be a string or a list, not %r" % (key, value))
        return value
    if key == "env":
        if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise MessageError("'env' must be an object of strings, not %r" % (value,))
        return value
    if key == "hooks":
        if not isinstance(value, dict):
            raise MessageError("'hooks' must be an object, not %r" % (value,))
        return {name: _check_hook(name, spec) for name, spec in value.items()}
    if key in _STREAMS:
        if not isinstance(value, dict) or not {"class", "filename", "stream"} & set(value):
            raise MessageError("%r must be an object with a 'class' key, not %r" % (key, value))
        return value
    return value


def _check_identity(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, str)) and value is not None:
        raise MessageError("%r must be an integer or a string, not %r" % (key, value))
    try:
        (spawner.resolve_uid if key == "uid" else spawner.resolve_gid)(value)
    except ValueError as error:
        raise MessageError(str(error)) from None
    return value


def _check_hook(name, spec):
    if name not in HOOK_NAMES:
        raise MessageError("unknown hook %r" % name)
    if not isinstance(spec, (str, list)):
        raise MessageError("hook %s must be 'dotted.name[,ignore_failure]', not %r" % (name, spec))
    target, _ignore = parse_hook_spec(spec)
    try:
        resolve_name(target)
    except ImportError as error:
        raise MessageError(str(error)) from None
    return spec


def _check_rlimit(key, value):
    name = key[len("rlimit_"):]
    if not hasattr(resource, "RLIMIT_" + name.upper()):
        raise MessageError("unknown rlimit %r" % name)
    if value is None or value == "":
        return None
    return to_int(value, key)


def watcher_kwargs(options):
    """Watcher(...) keyword arguments from an `add` command's options (validated)."""
    kwargs, rlimits, hooks = {}, {}, {}
    streams = {name: {} for name in _STREAMS}
    for key, value in options.items():
        value = validate_option(key, value, for_add=True)
        base, _, sub = key.partition(".")
        if key.startswith("rlimit_"):
            rlimits[key[len("rlimit_"):]] = -1 if value is None else value
        elif sub and base == "hooks":
            hooks[sub] = value
        elif key == "hooks":
            hooks.update(value)
        elif sub and base in _STREAMS:
            streams[base][sub] = value
        elif key in _STREAMS:
            streams[key].update(value)
        else:
            kwargs[key] = value
    if rlimits:
        kwargs["rlimits"] = rlimits
    if hooks:
        kwargs["hooks"] = hooks
    kwargs.update((name, conf) for name, conf in streams.items() if conf)
    return kwargs


# -- applying --------------------------------------------------------------------------

def apply_options(watcher, options):
    """Validate every key, then apply each (an `updated` event per key); returns the action needed.

    Call with the watcher's lock held.
    """
    checked = [(key, value if key in watcher.options else validate_option(key, value))
               for key, value in options.items()]
    action = NOTHING
    for key, value in checked:
        try:
            action = max(action, set_option(watcher, key, value))
        except (ValueError, ImportError) as error:
            raise MessageError("cannot set %s: %s" % (key, error)) from None
        watcher.notify_event("updated", {"time": time.time()})
    return action


def set_option(watcher, key, value):
    """Apply one validated option; returns MANAGE or RELOAD."""
    if key in watcher.options:      # a free-form option (plugins read them): stored as given
        watcher.options[key] = value
        return MANAGE
    base, _, sub = key.partition(".")
    if base in _STREAMS:
        return _set_stream(watcher, base, sub, value)
    if base == "hooks":
        for name, spec in ({sub: value} if sub else value).items():
            watcher.hooks.set(name, spec)
        return MANAGE
    if key.startswith("rlimit_"):
        watcher.rlimits[key[len("rlimit_"):]] = -1 if value is None else value
        return RELOAD
    if key == "numprocesses" or key == "singleton":
        _check_singleton(watcher, key, value)
    if key == "env":
        value = dict(value)
    setattr(watcher, key, value)
    if key in ("env", "copy_env", "copy_path"):
        watcher.child_env = cmdline.build_env(watcher.env, watcher.copy_env, watcher.copy_path,
                                              watcher.virtualenv, watcher.virtualenv_py_ver)
    return RELOAD if key in _RELOAD_KEYS else MANAGE


def _check_singleton(watcher, key, value):
    singleton = value if key == "singleton" else watcher.singleton
    count = value if key == "numprocesses" else watcher.numprocesses
    if key == "numprocesses" and value < 0:
        raise MessageError("numprocesses must be 0 or more, not %d" % value)
    if singleton and count > 1:
        raise MessageError("watcher %s is a singleton: numprocesses must be 0 or 1" % watcher.name)


def _set_stream(watcher, name, sub, value):
    """Swap in a new stdout/stderr stream; running processes write to it from now on.

    Without a stream before, the processes have no pipe to read: only new ones
    (a reload) can use the new stream.
    """
    stream_name = name[:-len("_stream")]
    had_stream = getattr(watcher.streams, stream_name) is not None
    conf = dict(getattr(watcher.streams, stream_name + "_conf") or {})
    if sub:
        conf[sub] = value
    else:
        conf = dict(value)
    watcher.streams.replace(stream_name, conf)   # running pumps switch to the new stream
    return MANAGE if had_stream else RELOAD
