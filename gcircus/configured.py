"""From a loaded INI configuration (gcircus.config) to a running Arbiter, and back
again on `reloadconfig`: the diff of spec §9.6 with Circus's gaps fixed — keys
added or removed are changes, arbiter-level settings are applied, sockets and
plugins follow their sections.
"""
import logging
import os

from gcircus.arbiter import Arbiter
from gcircus.config import ConfigError, load_config
from gcircus.watcher import Watcher

logger = logging.getLogger("gcircus")

# [circus] keys that are the Arbiter's own keyword options (the rest are named parameters).
_ARBITER_OPTION_KEYS = ("statsd", "statsd_close_outputs", "multicast_endpoint", "debug", "debug_gc",
                        "pidfile", "loglevel", "logoutput", "loggerconfig", "fqdn_prefix", "umask",
                        "endpoint_owner", "endpoint_mode", "max_message_size", "stats_interval",
                        "curve_secret_key", "curve_allowed_keys", "httpd_close_outputs")


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
    from gcircus.sockets import CircusSocket
    sock = CircusSocket.load_from_config(dict(spec))
    sock.config_spec = dict(spec)
    return sock


def _watchers_from(config, backend, errors):
    watchers = []
    for spec in config["watchers"]:
        try:
            watchers.append(build_watcher(spec, backend))
        except (ValueError, ImportError, KeyError, TypeError) as error:
            message = "watcher %s: %s (skipped)" % (spec.get("name"), error)
            logger.error(message)
            errors.append(message)
    return watchers


def _sockets_from(config, errors):
    sockets = []
    for spec in config["sockets"]:
        try:
            sockets.append(build_socket(spec))
        except (ValueError, OSError) as error:
            message = "socket %s: %s (skipped)" % (spec.get("name"), error)
            logger.error(message)
            errors.append(message)
    return sockets


def arbiter_from_config(config, config_file=None, backend=None, command_line=None):
    """Build (not start) the Arbiter a loaded config describes.

    command_line: the [circus] keys gcircusd's options override ({key: value}); reloadconfig
    leaves them alone."""
    circus = config["circus"]
    backend = backend or circus.get("stream_backend") or "gevent"
    errors = list(config.get("errors", []))
    options = {key: circus[key] for key in _ARBITER_OPTION_KEYS if key in circus}
    stats_endpoint = circus["stats_endpoint"] if circus.get("statsd") else None
    arbiter = Arbiter(
        _watchers_from(config, backend, errors), circus["endpoint"], circus["pubsub_endpoint"],
        check_delay=circus["check_delay"], stats_endpoint=stats_endpoint,
        plugins=[dict(p) for p in config["plugins"]], sockets=_sockets_from(config, errors),
        warmup_delay=circus["warmup_delay"], httpd=circus.get("httpd", False),
        httpd_host=circus.get("httpd_host", "localhost"), httpd_port=circus.get("httpd_port", 8080),
        **options)
    arbiter.config_file = config_file
    arbiter.config = config
    arbiter.stream_backend = backend
    arbiter.config_errors = errors
    arbiter.command_line = dict(command_line or {})
    return arbiter


def load_arbiter(config_file, backend=None):
    """load_config + arbiter_from_config; ConfigError propagates (nothing is started)."""
    return arbiter_from_config(load_config(config_file), config_file, backend)


# -- reloadconfig ------------------------------------------------------------------


def _changed_settings(old, new):
    return sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))


def _diff_named(old_specs, new_specs):
    """(added, removed, changed) names between two {name: spec} mappings."""
    added = sorted(set(new_specs) - set(old_specs))
    removed = sorted(set(old_specs) - set(new_specs))
    changed = sorted(name for name in set(old_specs) & set(new_specs)
                     if old_specs[name] != new_specs[name])
    return added, removed, changed


def _only_numprocesses_differs(old, new):
    keys = set(old) | set(new)
    return [key for key in keys if old.get(key) != new.get(key)] == ["numprocesses"]


def reload_config(arbiter):
    """Apply the config file's current content to a running arbiter; returns a summary.

    A file that cannot be read or parsed, or that has a broken section (which a fresh start
    would skip), raises ConfigError and nothing changes: applying the rest would remove the
    watcher whose section has a typo.
    """
    config = load_config(arbiter.config_file)
    if config["errors"]:
        raise ConfigError("reloadconfig refused, nothing was changed: %s has %d error(s): %s" % (
            arbiter.config_file, len(config["errors"]), "; ".join(config["errors"])), config["errors"])
    summary = {"settings": [], "sockets": {}, "watchers": {}, "plugins": {}}
    summary["settings"] = _apply_settings(arbiter, config["circus"])
    replaced_by_socket = _reload_sockets(arbiter, config, summary)
    _reload_watchers(arbiter, config, summary, replaced_by_socket)
    _reload_plugins(arbiter, config, summary)
    arbiter.config = config
    return summary


def _apply_settings(arbiter, new):
    """Apply the changed [circus] settings a running arbiter can take; warn about the rest."""
    old = arbiter.config["circus"]
    changed = _changed_settings(old, new)
    command_line = getattr(arbiter, "command_line", None) or {}
    for key in changed:
        if key in command_line:
            logger.info("reloadconfig: [circus] %s changed; the command line's value %r stays in force",
                        key, command_line[key])
        elif key in _LIVE_SETTINGS:
            _LIVE_SETTINGS[key](arbiter, new[key])
            if key in _ARBITER_OPTION_KEYS:
                arbiter.options[key] = new[key]
            logger.info("reloadconfig: [circus] %s is now %r", key, new[key])
        else:
            logger.warning("reloadconfig: [circus] %s changed; it takes effect at the next "
                           "restart of the daemon", key)
    return changed


def _set_umask(arbiter, value):
    arbiter.umask = value
    if value is None:
        logger.warning("reloadconfig: [circus] umask removed; the daemon keeps its current umask")
    else:
        os.umask(int(value))


def _set_loglevel(arbiter, value):
    from gcircus.logsetup import set_level
    command_line = getattr(arbiter, "command_line", None) or {}
    loggerconfig = command_line.get("loggerconfig") or arbiter.config["circus"].get("loggerconfig")
    if loggerconfig not in (None, "default"):
        logger.warning("reloadconfig: [circus] loglevel is not used: the logger config %s sets the "
                       "levels", loggerconfig)
    else:
        set_level(value or "info")


def _set_max_message_size(arbiter, value):
    from gcircus import controller as control
    target = arbiter.controller
    if target is not None:
        target.max_message_size = int(value or control.DEFAULT_MAX_MESSAGE_SIZE)


def _set_stats_interval(arbiter, value):
    from gcircus.stats.publisher import DEFAULT_INTERVAL
    streamer = getattr(arbiter, "stats_streamer", None)
    if streamer is not None:    # read at its next round
        streamer.interval = float(value or DEFAULT_INTERVAL)


# [circus] settings a running arbiter takes on without a restart, and how.
_LIVE_SETTINGS = {
    "check_delay": lambda arbiter, value: arbiter.set_check_delay(value),
    "warmup_delay": lambda arbiter, value: setattr(arbiter, "warmup_delay", float(value)),
    "umask": _set_umask,
    "loglevel": _set_loglevel,
    "max_message_size": _set_max_message_size,
    "stats_interval": _set_stats_interval,
    "endpoint": lambda arbiter, value: arbiter.rebind("endpoint", value),
    "pubsub_endpoint": lambda arbiter, value: arbiter.rebind("pubsub_endpoint", value),
}


def _reload_sockets(arbiter, config, summary):
    old = {name: getattr(sock, "config_spec", None) for name, sock in arbiter.sockets.items()}
    new = {spec["name"]: spec for spec in config["sockets"]}
    added, removed, changed = _diff_named(old, new)
    for name in removed + changed:
        arbiter.sockets.remove(name)
    errors = []
    for name in added + changed:
        for sock in _sockets_from({"sockets": [new[name]]}, errors):
            # a socket that cannot bind is logged and kept unbound; the rest of the reload goes on
            if not arbiter.sockets.add(sock):
                errors.append("socket %s: cannot bind %s" % (name, getattr(sock, "address", "?")))
    summary["sockets"] = {"added": added, "removed": removed, "changed": changed, "errors": errors}
    touched = set(removed + changed)
    return {w.name for w in arbiter.watchers
            if any("circus.sockets.%s" % name in (w.cmd + str(w.args or "")).lower() for name in touched)}


def _reload_watchers(arbiter, config, summary, replaced_by_socket):
    old = {w.name: getattr(w, "config_spec", None) for w in arbiter.watchers
           if not w.name.startswith("plugin:")}
    backend = getattr(arbiter, "stream_backend", None)
    new = {}
    for spec in config["watchers"]:
        built = dict(spec)
        if backend and "stream_backend" not in built:
            built["stream_backend"] = backend
        new[spec["name"]] = built
    added, removed, changed = _diff_named(old, new)
    changed = sorted(set(changed) | (replaced_by_socket & set(new) & set(old)))
    resized = [name for name in changed if old[name] and _only_numprocesses_differs(old[name], new[name])]
    for name in removed:
        arbiter.rm_watcher(name)
    for name in resized:
        watcher = arbiter.get_watcher(name)
        watcher.set_numprocesses(new[name]["numprocesses"])
        watcher.config_spec = new[name]
    replaced = [name for name in changed if name not in resized]
    for name in replaced:
        arbiter.rm_watcher(name)
    errors = []
    fresh = _watchers_from({"watchers": [new[n] for n in replaced + added]}, backend, errors)
    for watcher in sorted(fresh, key=lambda w: w.priority, reverse=True):
        arbiter.add_existing_watcher(watcher)
        if watcher.autostart and not watcher.on_demand:
            watcher.start()
    summary["watchers"] = {"added": added, "removed": removed, "replaced": replaced,
                           "resized": resized, "errors": errors}


def _reload_plugins(arbiter, config, summary):
    old = {p.get("name"): p for p in arbiter.plugins}
    new = {p["name"]: dict(p) for p in config["plugins"]}
    added, removed, changed = _diff_named(old, new)
    arbiter.plugins = list(new.values())
    manager = getattr(arbiter, "plugin_manager", None)
    if manager is not None:
        manager.apply(added=[new[n] for n in added + changed], removed=removed + changed)
    summary["plugins"] = {"added": added, "removed": removed, "changed": changed}
