"""`reloadconfig`: apply the configuration file's current content to a running arbiter.

Circus's diff with its gaps fixed: keys added or removed are changes, arbiter-level
settings are applied live where they can be (the rest are logged as needing a
restart), sockets and plugins follow their sections, and a file with a broken
section is refused whole.
"""
import logging
import os

from gcircus.config.loader import check_loaded, load_config
from gcircus.config.objects import ARBITER_OPTION_KEYS, discard_watchers, sockets_from, watchers_from
from gcircus.config.parser import ConfigError

logger = logging.getLogger("gcircus")

class ConfigSource:
    """Where an arbiter's configuration comes from, and what was applied last.

    path: the INI file (None for a config built in memory: nothing to reload);
    config: the loaded configuration applied last; command_line: the [circus] keys
    gcircusd's options override (reloadconfig leaves them alone); backend: the
    stream backend watchers get unless their section names one."""

    def __init__(self, path, config, command_line=None, backend=None):
        self.path = path
        self.config = config
        self.command_line = dict(command_line or {})
        self.backend = backend

    def check(self):
        """Load the file as it is now; ConfigError listing every problem if it has any."""
        config = load_config(self.path)
        check_loaded(config, self.path, "reloadconfig refused, nothing was changed")
        return config

    def reload(self, arbiter, config=None):
        """Apply the file's current content (or `config`, what check() returned) to arbiter."""
        return reload_config(arbiter, self, config)


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


def reload_config(arbiter, source, config=None):
    """Apply the config file's current content to a running arbiter; returns a summary.

    A file that cannot be read or parsed, that has a broken section, or whose new or changed
    watchers cannot be built raises ConfigError and nothing changes: applying the rest would
    remove the watcher whose section has a typo.
    """
    if config is None:
        config = source.check()
    plan = _WatcherPlan(arbiter, source.backend, config)    # builds before anything changes
    summary = {"settings": [], "sockets": {}, "watchers": {}, "plugins": {}}
    summary["settings"] = _apply_settings(arbiter, source, config["circus"])
    replaced_by_socket = _reload_sockets(arbiter, config, summary)
    summary["watchers"] = plan.apply(replaced_by_socket)
    _reload_plugins(arbiter, config, summary)
    source.config = config
    return summary


def _apply_settings(arbiter, source, new):
    """Apply the changed [circus] settings a running arbiter can take; warn about the rest."""
    old = source.config["circus"]
    changed = _changed_settings(old, new)
    command_line = source.command_line
    for key in changed:
        if key in command_line:
            logger.info("reloadconfig: [circus] %s changed; the command line's value %r stays in force",
                        key, command_line[key])
        elif key in _LIVE_SETTINGS:
            _LIVE_SETTINGS[key](arbiter, source, new[key])
            if key in ARBITER_OPTION_KEYS:
                arbiter.options[key] = new[key]
            logger.info("reloadconfig: [circus] %s is now %r", key, new[key])
        else:
            logger.warning("reloadconfig: [circus] %s changed; it takes effect at the next "
                           "restart of the daemon", key)
    return changed


def _set_umask(arbiter, source, value):
    arbiter.umask = value
    if value is None:
        logger.warning("reloadconfig: [circus] umask removed; the daemon keeps its current umask")
    else:
        os.umask(int(value))


def _set_loglevel(arbiter, source, value):
    from gcircus.logsetup import set_level
    loggerconfig = source.command_line.get("loggerconfig") or source.config["circus"].get("loggerconfig")
    if loggerconfig not in (None, "default"):
        logger.warning("reloadconfig: [circus] loglevel is not used: the logger config %s sets the "
                       "levels", loggerconfig)
    else:
        set_level(value or "info")


def _set_max_message_size(arbiter, source, value):
    from gcircus import controller as control
    target = arbiter.controller
    if target is not None:
        target.max_message_size = int(value or control.DEFAULT_MAX_MESSAGE_SIZE)


def _set_stats_interval(arbiter, source, value):
    from gcircus.stats.publisher import DEFAULT_INTERVAL
    streamer = arbiter.stats_streamer
    if streamer is not None:    # read at its next round
        streamer.interval = float(value or DEFAULT_INTERVAL)


def _set_httpd(key):
    return lambda arbiter, source, value: arbiter.set_httpd(**{key: value})


def _set_max_request_wait(arbiter, source, value):
    from gcircus import controller as control
    if arbiter.controller is not None:
        arbiter.controller.max_request_wait = float(value or control.DEFAULT_MAX_REQUEST_WAIT)


def _set_hub_stall_threshold(arbiter, source, value):
    arbiter.set_hub_stall_threshold(value)


# [circus] settings a running arbiter takes on without a restart, and how.
_LIVE_SETTINGS = {
    "check_delay": lambda arbiter, source, value: arbiter.set_check_delay(value),
    "warmup_delay": lambda arbiter, source, value: setattr(arbiter, "warmup_delay", float(value)),
    "umask": _set_umask,
    "loglevel": _set_loglevel,
    "max_message_size": _set_max_message_size,
    "stats_interval": _set_stats_interval,
    "hub_stall_threshold": _set_hub_stall_threshold,
    "max_request_wait": _set_max_request_wait,
    "endpoint": lambda arbiter, source, value: arbiter.rebind("endpoint", value),
    "pubsub_endpoint": lambda arbiter, source, value: arbiter.rebind("pubsub_endpoint", value),
}
_LIVE_SETTINGS.update((key, _set_httpd(key)) for key in (
    "httpd", "httpd_host", "httpd_port", "httpd_token", "httpd_token_file", "httpd_metrics_token", "httpd_user",
    "httpd_password"))


def _reload_sockets(arbiter, config, summary):
    old = {name: sock.config for name, sock in arbiter.sockets.items()}
    new = {spec["name"]: spec for spec in config["sockets"]}
    added, removed, changed = _diff_named(old, new)
    for name in removed + changed:
        arbiter.sockets.remove(name)
    errors = []
    for name in added + changed:
        for sock in sockets_from({"sockets": [new[name]]}, errors):
            # a socket that cannot bind is logged and kept unbound; the rest of the reload goes on
            if not arbiter.sockets.add(sock):
                errors.append("socket %s: cannot bind %s" % (name, sock.address))
    summary["sockets"] = {"added": added, "removed": removed, "changed": changed, "errors": errors}
    touched = set(removed + changed)
    return {w.name for w in arbiter.watchers
            if any("circus.sockets.%s" % name in (w.cmd + str(w.args or "")).lower() for name in touched)}


class _WatcherPlan:
    """The watcher side of a reload: built (not applied) first, so that a watcher that cannot be
    built refuses the reload while nothing has changed yet."""

    def __init__(self, arbiter, backend, config):
        self.arbiter = arbiter
        self.backend = backend
        self.old = {w.name: w.config_spec for w in arbiter.watchers if not w.name.startswith("plugin:")}
        self.new = {}
        for spec in config["watchers"]:
            built = dict(spec)
            if backend and "stream_backend" not in built:
                built["stream_backend"] = backend
            self.new[spec["name"]] = built
        self.added, self.removed, changed = _diff_named(self.old, self.new)
        self.resized = [name for name in changed
                        if self.old[name] and _only_numprocesses_differs(self.old[name], self.new[name])]
        self.replaced = [name for name in changed if name not in self.resized]
        errors = []
        self.fresh = watchers_from({"watchers": [self.new[n] for n in self.replaced + self.added]}, backend, errors)
        if errors:
            discard_watchers(self.fresh)
            raise ConfigError("reloadconfig refused, nothing was changed: %d watcher(s) cannot be built:\n  %s"
                              % (len(errors), "\n  ".join(errors)), errors)

    def apply(self, replaced_by_socket):
        """Remove, resize and replace watchers; those whose socket changed are rebuilt too."""
        arbiter = self.arbiter
        by_socket = sorted((replaced_by_socket & set(self.new) & set(self.old))
                           - set(self.replaced) - set(self.resized))
        for name in self.removed:
            arbiter.rm_watcher(name)
        for name in self.resized:
            watcher = arbiter.get_watcher(name)
            watcher.set_numprocesses(self.new[name]["numprocesses"])
            watcher.config_spec = self.new[name]
        for name in self.replaced + by_socket:
            arbiter.rm_watcher(name)
        errors = []
        fresh = self.fresh + watchers_from({"watchers": [self.new[n] for n in by_socket]}, self.backend, errors)
        for watcher in sorted(fresh, key=lambda w: w.priority, reverse=True):
            arbiter.add_existing_watcher(watcher)
            if watcher.autostart and not watcher.on_demand:
                watcher.start()
        return {"added": self.added, "removed": self.removed, "replaced": sorted(self.replaced + by_socket),
                "resized": self.resized, "errors": errors}


def _reload_plugins(arbiter, config, summary):
    old = {p.get("name"): p for p in arbiter.plugins}
    new = {p["name"]: dict(p) for p in config["plugins"]}
    added, removed, changed = _diff_named(old, new)
    arbiter.plugins = list(new.values())
    manager = arbiter.plugin_manager
    if manager is not None:
        manager.apply(added=[new[n] for n in added + changed], removed=removed + changed)
    summary["plugins"] = {"added": added, "removed": removed, "changed": changed}
