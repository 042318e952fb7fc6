"""Watchers and sockets from their loaded config sections (spec dicts), each remembering
the spec it was built from so that reloadconfig can tell what changed."""
from gcircus.options import ARBITER_OPTIONS, VALUE
from gcircus.sockets import CircusSocket
from gcircus.watcher import Watcher

# [circus] keys that land in the Arbiter's `options` (the rest are named parameters; stream_backend is the
# watchers' default, which the config builder hands out itself).
ARBITER_OPTION_KEYS = tuple(name for name, option in ARBITER_OPTIONS.items()
                            if option.config == VALUE and not option.param and name != "stream_backend")


def build_watcher(spec, backend=None):
    """A Watcher from a config watcher dict; remembers the dict for reloadconfig."""
    spec = dict(spec)
    name, cmd = spec.pop("name"), spec.pop("cmd")
    if backend and "stream_backend" not in spec:
        spec["stream_backend"] = backend
    watcher = Watcher(name, cmd, **spec)
    watcher.config_spec = dict(spec, name=name, cmd=cmd)
    return watcher


def build_socket(spec):
    return CircusSocket.load_from_config(dict(spec))


def watchers_from(config, backend, errors):
    """The watchers of a loaded config; a watcher that cannot be built is reported in errors."""
    watchers = []
    for spec in config["watchers"]:
        try:
            watchers.append(build_watcher(spec, backend))
        except (ValueError, ImportError, KeyError, TypeError) as error:
            errors.append("[watcher:%s]: %s" % (spec.get("name"), error))
    return watchers


def sockets_from(config, errors):
    """The sockets of a loaded config; a socket that cannot be built is reported in errors."""
    sockets = []
    for spec in config["sockets"]:
        try:
            sockets.append(build_socket(spec))
        except (ValueError, OSError) as error:
            errors.append("[socket:%s]: %s" % (spec.get("name"), error))
    return sockets


def discard_watchers(watchers):
    """Release watchers built for a configuration that is refused (their streams are open)."""
    for watcher in watchers:
        watcher.streams.close()
        watcher.close()
