"""From a loaded INI configuration (gcircus.config.load_config) to an Arbiter.

The arbiter keeps where it came from in one attribute, `arbiter.config_source` (a
gcircus.config.reload.ConfigSource): the file, the configuration applied last, the
command line's overrides, the stream backend and the loader's findings.
`reloadconfig` goes through it.
"""
from gcircus.arbiter import Arbiter
from gcircus.config.loader import check_loaded, load_config
from gcircus.config.objects import ARBITER_OPTION_KEYS, discard_watchers, sockets_from, watchers_from
from gcircus.config.parser import ConfigError
from gcircus.config.reload import ConfigSource


def arbiter_from_config(config, config_file=None, backend=None, command_line=None, handle_signals=None):
    """Build (not start) the Arbiter a loaded config describes; ConfigError, listing every
    problem, when the config has errors or a watcher or socket cannot be built (nothing is
    left half-built: a configuration runs whole or not at all).

    command_line: the [circus] keys gcircusd's options override ({key: value}); reloadconfig
    leaves them alone. handle_signals: True for gcircusd (its arbiter owns the process's signals);
    None lets the arbiter decide when it starts (see Arbiter)."""
    where = config_file or "the configuration"
    check_loaded(config, where, "nothing was started")
    circus = config["circus"]
    backend = backend or circus.get("stream_backend") or "gevent"
    errors = []
    watchers = watchers_from(config, backend, errors)
    sockets = sockets_from(config, errors)
    if errors:
        discard_watchers(watchers)
        raise ConfigError("%s: %d watcher(s) or socket(s) cannot be built, nothing was started:\n  %s" % (
            where, len(errors), "\n  ".join(errors)), errors)
    options = {key: circus[key] for key in ARBITER_OPTION_KEYS if key in circus}
    stats_endpoint = circus["stats_endpoint"] if circus.get("statsd") else None
    arbiter = Arbiter(
        watchers, circus["endpoint"], circus["pubsub_endpoint"],
        check_delay=circus["check_delay"], stats_endpoint=stats_endpoint,
        plugins=[dict(p) for p in config["plugins"]], sockets=sockets,
        warmup_delay=circus["warmup_delay"], httpd=circus.get("httpd", False),
        httpd_host=circus.get("httpd_host", "localhost"), httpd_port=circus.get("httpd_port", 8080),
        handle_signals=handle_signals, **options)
    arbiter.config_source = ConfigSource(config_file, config, command_line, backend)
    return arbiter


def load_arbiter(config_file, backend=None):
    """load_config + arbiter_from_config; ConfigError propagates (nothing is started)."""
    return arbiter_from_config(load_config(config_file), config_file, backend)
