"""From a loaded INI configuration (gcircus.config.load_config) to an Arbiter.

The arbiter keeps where it came from in one attribute, `arbiter.config_source` (a
gcircus.config.reload.ConfigSource): the file, the configuration applied last, the
command line's overrides, the stream backend and the loader's findings.
`reloadconfig` goes through it.
"""
from gcircus.arbiter import Arbiter
from gcircus.config.loader import load_config
from gcircus.config.objects import ARBITER_OPTION_KEYS, sockets_from, watchers_from
from gcircus.config.reload import ConfigSource


def arbiter_from_config(config, config_file=None, backend=None, command_line=None, handle_signals=None):
    """Build (not start) the Arbiter a loaded config describes.

    command_line: the [circus] keys gcircusd's options override ({key: value}); reloadconfig
    leaves them alone. handle_signals: True for gcircusd (its arbiter owns the process's signals);
    None lets the arbiter decide when it starts (see Arbiter)."""
    circus = config["circus"]
    backend = backend or circus.get("stream_backend") or "gevent"
    errors = list(config.get("errors", []))
    options = {key: circus[key] for key in ARBITER_OPTION_KEYS if key in circus}
    stats_endpoint = circus["stats_endpoint"] if circus.get("statsd") else None
    arbiter = Arbiter(
        watchers_from(config, backend, errors), circus["endpoint"], circus["pubsub_endpoint"],
        check_delay=circus["check_delay"], stats_endpoint=stats_endpoint,
        plugins=[dict(p) for p in config["plugins"]], sockets=sockets_from(config, errors),
        warmup_delay=circus["warmup_delay"], httpd=circus.get("httpd", False),
        httpd_host=circus.get("httpd_host", "localhost"), httpd_port=circus.get("httpd_port", 8080),
        handle_signals=handle_signals, **options)
    arbiter.config_source = ConfigSource(config_file, config, command_line, backend, errors)
    return arbiter


def load_arbiter(config_file, backend=None):
    """load_config + arbiter_from_config; ConfigError propagates (nothing is started)."""
    return arbiter_from_config(load_config(config_file), config_file, backend)
