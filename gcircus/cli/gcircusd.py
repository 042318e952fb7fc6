"""gcircusd: run an arbiter from a Circus INI file (argument parsing and process
plumbing only; the work is in gcircus.configured and gcircus.arbiter)."""
import argparse
import errno
import logging
import os
import sys

from gcircus import __version__

logger = logging.getLogger("gcircus")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="gcircusd", description="Run the gcircus arbiter.")
    parser.add_argument("config", nargs="?", help="configuration file (Circus INI format)")
    parser.add_argument("--backend", choices=("gevent", "thread"), default=None,
                        help="default stream_backend of every watcher (default: gevent)")
    parser.add_argument("--daemon", action="store_true", help="detach and run in the background")
    parser.add_argument("--pidfile", help="write the daemon's pid to this file")
    parser.add_argument("--log-level", dest="loglevel", type=str.lower,
                        choices=("critical", "error", "warning", "info", "debug"))
    parser.add_argument("--log-output", dest="logoutput",
                        help="'-' or stdout, stderr, a file path, or syslog://host[:port]?facility")
    parser.add_argument("--logger-config", dest="loggerconfig",
                        help="logging configuration file (.ini, .json, .yaml) or 'default'")
    parser.add_argument("--version", action="version", version=__version__)
    return parser, parser.parse_args(argv)


def daemonize():
    """Double fork and setsid before any gevent hub exists (Circus refused once gevent was
    imported: closing fds broke the hub; we have no hub yet, so nothing of ours is closed)."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)


class PidFile:
    """`<pid>\\n`, mode 0644; a live other daemon's file is refused; removed only if still ours."""

    def __init__(self, path):
        self.path = os.path.abspath(path)

    def create(self):
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise SystemExit("gcircusd: pidfile directory %s does not exist" % directory)
        other = self._read()
        if other and other != os.getpid() and _pid_alive(other):
            raise SystemExit("gcircusd: pid file '%s' names a running process (pid %d); "
                             "is another gcircusd running?" % (self.path, other))
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write("%d\n" % os.getpid())

    def _read(self):
        try:
            with open(self.path) as handle:
                return int(handle.read().strip() or 0)
        except (OSError, ValueError):
            return None

    def remove(self):
        if self._read() == os.getpid():
            os.unlink(self.path)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    return True


def _fail(message):
    sys.stderr.write("gcircusd: %s\n" % message)
    return 1


def main(argv=None):
    parser, args = parse_args(sys.argv[1:] if argv is None else argv)
    if not args.config:
        parser.print_usage()
        return 0
    if not os.path.exists(args.config):
        return _fail("config file %s does not exist" % args.config)
    if args.daemon:
        daemonize()
    from gcircus.config import ConfigError, load_config
    from gcircus.logsetup import LoggingSetupError, configure_logging
    loader_log = logging.getLogger("gcircus.config")
    loader_log.propagate = False  # its findings are logged below, once logging is set up
    try:
        config = load_config(args.config)
        circus = config["circus"]
        configure_logging(args.loglevel or circus.get("loglevel") or "info",
                          args.logoutput or circus.get("logoutput") or "-",
                          args.loggerconfig or circus.get("loggerconfig"))
    except (ConfigError, LoggingSetupError) as error:
        return _fail(str(error))
    finally:
        loader_log.propagate = True
    for message in config["warnings"]:
        logger.warning("config: %s", message)
    for message in config["errors"]:
        logger.error("config: %s (section skipped)", message)
    pidfile_path = args.pidfile or circus.get("pidfile")
    pidfile = PidFile(pidfile_path) if pidfile_path else None
    if pidfile is not None:
        pidfile.create()
    try:
        return _serve(args, config)
    finally:
        if pidfile is not None:
            pidfile.remove()


def _serve(args, config):
    """Run arbiters until one stops without asking for a restart."""
    from gcircus.config import ConfigError, load_config
    from gcircus.configured import arbiter_from_config
    while True:
        arbiter = arbiter_from_config(config, args.config, args.backend)
        try:
            arbiter.start()
        except (OSError, ImportError) as error:   # ImportError: a [plugin:NAME] class (PluginLoadError)
            logger.error("cannot start: %s", error)
            return 1
        if not arbiter.restart_requested:
            return 0
        logger.info("restarting from %s", args.config)
        try:
            config = load_config(args.config)
        except ConfigError as error:
            logger.error("restart: %s; keeping the previous configuration", error)


if __name__ == "__main__":
    sys.exit(main())
