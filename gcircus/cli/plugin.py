"""gcircus-plugin: run one plugin as its own process against a daemon (Circus's circus-plugin).

gcircusd hosts plugins in its own hub; this runs one elsewhere — another machine, another
user, a plugin under development — talking to the daemon over its endpoints, as a
remote client would:

    gcircus-plugin --endpoint tcp://127.0.0.1:5555 --pubsub tcp://127.0.0.1:5556 \\
        --config path:/tmp/events.log:::summary_every:60 event_log.EventLog

It runs until SIGTERM or SIGINT, then the plugin's handle_stop() runs and it exits 0.
"""
import argparse
import logging
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
        config = parse_config(args.config)
        plugin_class = import_dotted(args.plugin, "plugin class")
        plugin = plugin_class(args.endpoint, args.pubsub, args.check_delay, args.ssh, **config)
    except (LoggingSetupError, ValueError, ImportError, TypeError) as error:
        print("%s: %s" % (PROG, error), file=sys.stderr)
        return 1
    import gevent
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, plugin.stop)
    logger.info("plugin %s running against %s", args.plugin, args.endpoint)
    plugin.start()
    logger.info("plugin %s stopped", args.plugin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
