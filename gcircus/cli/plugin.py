"""gcircus-plugin: run one plugin as its own process against a daemon (Circus's circus-plugin).

gcircusd hosts plugins in its own hub; this runs one elsewhere — another machine, another
user, a plugin under development — talking to the daemon over its endpoints, as a
remote client would:

    gcircus-plugin --endpoint tcp://127.0.0.1:5555 --pubsub tcp://127.0.0.1:5556 \\
        --config path:/tmp/events.log:::summary_every:60 event_log.EventLog

It runs until SIGTERM or SIGINT, then the plugin's handle_stop() runs and it exits 0.

gcircusd also runs it for each plugin configured with `isolate = true`, handing over
the plugin's options (JSON, GCIRCUS_PLUGIN_CONFIG) and, when its endpoints use
CurveZMQ, the client keys it admits for the plugin (JSON, GCIRCUS_PLUGIN_CURVE) in
the environment, where they keep their types and stay out of `ps`.
"""
import argparse
import json
import logging
import os
import signal
import sys

from gcircus import DEFAULT_ENDPOINT, DEFAULT_PUBSUB, __version__

PROG = "gcircus-plugin"
logger = logging.getLogger("gcircus")


def parse_config(text):
    """Circus's `--config k1:v1:::k2:v2` (the value may hold ':'); ValueError names a bad pair."""
    config = {}
    for pair in (text or "").split(":::"):
        if not pair:
            continue
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise ValueError("--config: %r is not key:value" % pair)
        config[key] = value
    return config


def config_from_env(variable, environ=None):
    """The JSON object in environment variable `variable` ({} when unset); ValueError naming it."""
    text = (os.environ if environ is None else environ).get(variable)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ValueError("%s is not valid JSON: %s" % (variable, error)) from None
    if not isinstance(value, dict):
        raise ValueError("%s must hold a JSON object" % variable)
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=PROG, description="Run a gcircus (or Circus) plugin as its own process.")
    parser.add_argument("plugin", nargs="?", help="dotted name of the plugin class (circus.plugins.* work too)")
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="the daemon's control endpoint")
    parser.add_argument("--pubsub", default=DEFAULT_PUBSUB, help="the daemon's event endpoint")
    parser.add_argument("--config", default="", help="plugin options as key:value:::key2:value2")
    parser.add_argument("--check-delay", type=float, default=5.0, help="passed to the plugin (default 5)")
    parser.add_argument("--ssh", default=None, help="ssh server for the endpoints (user@host:port)")
    parser.add_argument("--log-level", default="info", help="critical, error, warning, info or debug")
    parser.add_argument("--log-output", default="-", help="a file, - (stdout), stderr or syslog://")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser, parser.parse_args(argv)


def main(argv=None):
    parser, args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.version:
        print("%s %s" % (PROG, __version__))
        return 0
    if not args.plugin:
        parser.print_usage()
        return 2
    from gcircus.aliases import import_dotted
    from gcircus.logsetup import LoggingSetupError, configure_logging
    try:
        configure_logging(args.log_level, args.log_output)
        # the daemon side sets these variables (imported here: `--version` needs none of it)
        from gcircus.plugin_host.isolated import PLUGIN_CONFIG_ENV, PLUGIN_CURVE_ENV
        config = dict(config_from_env(PLUGIN_CONFIG_ENV), **parse_config(args.config))
        curve = config_from_env(PLUGIN_CURVE_ENV)
        plugin_class = import_dotted(args.plugin, "plugin class")
        plugin = plugin_class(args.endpoint, args.pubsub, args.check_delay, args.ssh, **config)
    except (LoggingSetupError, ValueError, ImportError, TypeError) as error:
        print("%s: %s" % (PROG, error), file=sys.stderr)
        return 1
    import gevent
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, plugin.stop)
    logger.info("plugin %s running against %s", args.plugin, args.endpoint)
    if curve:
        plugin.start(curve=curve)
    else:
        plugin.start()      # a Circus plugin class may override start() without the curve argument
    logger.info("plugin %s stopped", args.plugin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
