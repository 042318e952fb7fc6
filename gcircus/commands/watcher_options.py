"""A watcher's options over the wire: what `options` and `get` report, what `add`
and `set` accept, and what `set` does with each key — all read from the watcher
option table (gcircus.options), values converted by the converters config files
use (gcircus.converters).

Circus validates some `set` keys and then silently ignores them (respawn,
max_retry, copy_env, singleton, close_child_*, rlimit_*); here every accepted
key is applied. Keys that only new processes can honour trigger a graceful
reload of a running watcher.
"""
import contextlib
import time

from gcircus import converters as conv
from gcircus.commands.base import convert
from gcircus.exc import MessageError
from gcircus.options import MANAGE, RELOAD, REPORTED_OPTIONS, STREAM_OPTION_TYPES, WATCHER_OPTIONS
from gcircus.supervision import cmdline, spawner
from gcircus.supervision.hooks import parse_hook_spec, resolve_name

# Follow-up actions of `set`, weakest first: the strongest one needed is performed.
NOTHING = 0
__all__ = ["NOTHING", "MANAGE", "RELOAD", "watcher_lock", "get_option", "get_options", "validate_option",
           "watcher_kwargs", "apply_options", "set_option"]
_STREAMS = ("stdout_stream", "stderr_stream")
# The streams' reported names (stdout_stream_conf) are read from the watcher's streams, not attributes.
_REPORTED_STREAMS = {WATCHER_OPTIONS[name].report: name for name in _STREAMS}


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
    if key in _REPORTED_STREAMS:
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
        return convert(key, value, STREAM_OPTION_TYPES.get(sub, _as_given))
    if sub and base == "hooks":
        return _check_hook(sub, value)
    if key.startswith("rlimit_"):
        convert(key, key[len("rlimit_"):], conv.to_rlimit_name)
        return convert(key, value, conv.to_rlimit_value)
    option = WATCHER_OPTIONS.get(key)
    if option is None or option.convert is None or not (option.add if for_add else option.set):
        raise MessageError("unknown key %r" % key)
    value = convert(key, value, option.convert)
    if key in ("uid", "gid"):
        _check_identity(key, value)
    elif key == "hooks":
        value = {name: _check_hook(name, spec) for name, spec in value.items()}
    return value


def _as_given(value):
    return value


def _check_identity(key, value):
    """The user or group must exist here: a typo is refused now, not at the next spawn."""
    try:
        (spawner.resolve_uid if key == "uid" else spawner.resolve_gid)(value)
    except ValueError as error:
        raise MessageError(str(error)) from None


def _check_hook(name, spec):
    convert("hooks." + str(name), name, conv.to_hook_name)
    if not isinstance(spec, (str, list)):
        raise MessageError("hook %s must be 'dotted.name[,ignore_failure]', not %r" % (name, spec))
    try:
        target, _ignore = parse_hook_spec(spec)
    except ValueError as error:
        raise MessageError("hook %s: %s" % (name, error)) from None
    try:
        resolve_name(target)
    except ImportError as error:
        raise MessageError(str(error)) from None
    return spec


def watcher_kwargs(options):
    """Watcher(...) keyword arguments from an `add` command's options (validated)."""
    kwargs, rlimits, hooks = {}, {}, {}
    streams = {name: {} for name in _STREAMS}
    for key, value in options.items():
        value = validate_option(key, value, for_add=True)
        base, _, sub = key.partition(".")
        if key.startswith("rlimit_"):
            rlimits[key[len("rlimit_"):]] = value
        elif key == "rlimits":
            rlimits.update(value)
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
        watcher.rlimits[key[len("rlimit_"):]] = value
        return RELOAD
    if key == "rlimits":
        watcher.rlimits.update(value)
        return RELOAD
    option = WATCHER_OPTIONS[key]
    if not option.attribute:        # accepted and unused by the watcher: kept for plugins to read
        watcher.options[key] = value
        return option.set
    if key == "numprocesses" or key == "singleton":
        _check_singleton(watcher, key, value)
    setattr(watcher, key, value)
    if key in ("env", "copy_env", "copy_path"):
        watcher.child_env = cmdline.build_env(watcher.env, watcher.copy_env, watcher.copy_path,
                                              watcher.virtualenv, watcher.virtualenv_py_ver)
    return option.set


def _check_singleton(watcher, key, value):
    singleton = value if key == "singleton" else watcher.singleton
    count = value if key == "numprocesses" else watcher.numprocesses
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
