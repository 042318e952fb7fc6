"""gcircusd: run an arbiter from a Circus INI file (argument parsing and process
plumbing only; the work is in gcircus.config.build and gcircus.arbiter)."""
import argparse
import contextlib
import errno
import logging
import os
import resource
import sys

from gcircus import __version__
from gcircus.converters import LOG_FORMATS, LOG_LEVELS, STREAM_BACKENDS

logger = logging.getLogger("gcircus")


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's, with the terminal's width read here: argparse makes a formatter at every add_argument
    (to check the metavar) and its own width lookup imports shutil, which imports the archive modules
    (bz2, lzma): memory the daemon would hold for as long as it runs."""

    def __init__(self, prog):
        super().__init__(prog, width=_terminal_columns() - 2)


def _terminal_columns():
    """shutil.get_terminal_size().columns: $COLUMNS, else the terminal on stdout, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", 0))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="gcircusd", description="Run the gcircus arbiter.",
                                     formatter_class=_HelpFormatter)
    parser.add_argument("config", nargs="?", help="configuration file (Circus INI format)")
    parser.add_argument("--backend", choices=STREAM_BACKENDS, default=None,
                        help="default stream_backend of every watcher (default: gevent)")
    parser.add_argument("--daemon", action="store_true", help="detach and run in the background")
    parser.add_argument("--pidfile", help="write the daemon's pid to this file")
    parser.add_argument("--log-level", dest="loglevel", type=str.lower,
                        choices=LOG_LEVELS)
    parser.add_argument("--log-output", dest="logoutput",
                        help="'-' or stdout, stderr, a file path, or syslog://host[:port]?facility")
    parser.add_argument("--logger-config", dest="loggerconfig",
                        help="logging configuration file (.ini, .json, .yaml) or 'default'")
    parser.add_argument("--log-format", dest="logformat", choices=LOG_FORMATS,
                        help="text (default), or json: one JSON object per line for log shippers")
    parser.add_argument("--subreaper", action="store_true",
                        help="adopt and reap orphaned descendants, as a container's PID 1 does "
                             "(always on when gcircusd is PID 1)")
    parser.add_argument("--version", action="version", version=__version__)
    return parser, parser.parse_args(argv)


def daemonize():
    """Double fork and setsid, close every inherited fd, 0/1/2 on /dev/null (as circusd).

    Runs before any gevent hub or zmq context exists and after the logging handlers were
    released, so no file object of ours loses its fd underneath it. The launching process
    stays until the daemon reports (StartupReport): it exits 0 once the daemon serves, 1
    with the reason when the daemon could not start. Returns the daemon's StartupReport."""
    read_fd, write_fd = os.pipe()
    if os.fork():
        os.close(write_fd)
        os._exit(StartupReport.wait(read_fd))
    os.close(read_fd)
    os.setsid()
    if os.fork():
        os._exit(0)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = 1024 if hard == resource.RLIM_INFINITY else hard
    os.closerange(3, write_fd)
    os.closerange(write_fd + 1, limit)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)
    return StartupReport(write_fd)


class StartupReport:
    """The detached daemon's word to its launcher: "ok" once it serves, or why it could not start."""

    def __init__(self, fd=None):
        self.fd = fd

    def send(self, error=None):
        if self.fd is None:
            return
        try:
            os.write(self.fd, ("error: %s" % error if error else "ok").encode("utf-8", "replace"))
        except OSError:
            pass        # the launcher is gone (killed): nobody to tell
        if not error:
            os.close(self.fd)
        # else the fd stays open until this process exits: the launcher's EOF then means "gone"
        self.fd = None

    @staticmethod
    def wait(read_fd):
        """The launcher's exit code: 0 when the daemon said ok; 1 (reason on stderr) otherwise."""
        chunks = []
        while True:
            chunk = os.read(read_fd, 4096)   # EOF: the daemon reported, or died without a word
            if not chunk:
                break
            chunks.append(chunk)
        text = b"".join(chunks).decode("utf-8", "replace")
        if text == "ok":
            return 0
        sys.stderr.write("gcircusd: %s\n" % (text[len("error: "):] if text.startswith("error: ")
                                              else "the daemon exited while starting; see its log"))
        sys.stderr.flush()
        return 1


class PidFileError(Exception):
    """The pid file cannot be used; the message names the file and the reason."""


class PidFile:
    """`<pid>\\n`, mode 0644; a live other daemon's file is refused; removed only if still ours."""

    def __init__(self, path):
        self.path = os.path.abspath(path)

    def check(self):
        """Raise PidFileError unless create() can succeed (run before daemonising, too)."""
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise PidFileError("pidfile %s: directory %s does not exist" % (self.path, directory))
        if not os.access(directory, os.W_OK | os.X_OK):
            raise PidFileError("pidfile %s: directory %s is not writable" % (self.path, directory))
        other = self._read()
        if other and other != os.getpid() and _pid_alive(other):
            raise PidFileError("pid file '%s' names a running process (pid %d); "
                               "is another gcircusd running?" % (self.path, other))

    def create(self):
        self.check()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as error:
            raise PidFileError("pidfile %s: %s" % (self.path, error.strerror or error)) from error
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


@contextlib.contextmanager
def _loader_muted():
    """The loader logs its findings on `gcircus.config`; _report_config logs them once logging
    is set up (unconfigured, Python's last-resort handler would print them raw first)."""
    loader_log = logging.getLogger("gcircus.config")
    loader_log.disabled = True
    try:
        yield
    finally:
        loader_log.disabled = False


def _load(path):
    """The loaded config; ConfigError listing every problem when the file has any (the whole
    file is refused: a daemon running part of its configuration is found broken much later)."""
    from gcircus.config import check_loaded, load_config
    with _loader_muted():
        config = load_config(path)
    check_loaded(config, path, "nothing was started")
    return config


def _report_config(config):
    loader_log = logging.getLogger("gcircus.config")
    for message in config["warnings"]:
        loader_log.warning("%s", message)


def _logging_options(args, circus):
    """(level, output, logger config, format): the command line wins over [circus] (as circusd)."""
    return (args.loglevel or circus.get("loglevel") or "info",
            args.logoutput or circus.get("logoutput") or "-",
            args.loggerconfig or circus.get("loggerconfig"),
            args.logformat or circus.get("logformat") or "text")


def command_line_settings(args):
    """The [circus] keys the command line overrides, with their values (reloadconfig keeps them)."""
    given = {"loglevel": args.loglevel, "logoutput": args.logoutput,
             "loggerconfig": args.loggerconfig, "pidfile": args.pidfile, "stream_backend": args.backend,
             "logformat": args.logformat}
    return {key: value for key, value in given.items() if value is not None}


def _hub_reports_with_repr():
    """A gevent hub formats the context of an error it reports with pprint.saferepr unless told otherwise:
    the first hub imports pprint for it, and with it dataclasses, inspect, ast and dis (~0.9 MiB the daemon
    would hold for as long as it runs). repr says the same of what a hub reports (a greenlet, a watcher, a
    callback). Set before this process makes its first hub; gevent takes a list of callables."""
    import gevent
    gevent.config.format_context = [repr]


def main(argv=None):
    parser, args = parse_args(sys.argv[1:] if argv is None else argv)
    if not args.config:
        parser.print_usage()
        return 0
    del parser          # the parsed arguments are all that is used from here on, for as long as the daemon runs
    _hub_reports_with_repr()
    if not os.path.exists(args.config):
        return _fail("config file %s does not exist" % args.config)
    from gcircus.config import ConfigError
    from gcircus.logsetup import LoggingSetupError, configure_logging, release_handlers, shutdown_logging
    # Everything that can be refused is checked here, before --daemon detaches from the terminal.
    try:
        config = _load(args.config)
        circus = config["circus"]
        logging_options = _logging_options(args, circus)
        pidfile_path = args.pidfile or circus.get("pidfile")
        pidfile = PidFile(pidfile_path) if pidfile_path else None
        if pidfile is not None:
            pidfile.check()
        configure_logging(*logging_options)
        report = StartupReport()
        if args.daemon:
            release_handlers()
            report = daemonize()
            configure_logging(*logging_options)
    except (ConfigError, LoggingSetupError, PidFileError) as error:
        return _fail(str(error))
    _report_config(config)
    if pidfile is not None:
        try:
            pidfile.create()
        except PidFileError as error:   # checked above; something changed since
            logger.error("%s", error)
            report.send(str(error))
            return 1
    from gcircus.hosting.host import Host
    host = Host.from_environ(subreaper=args.subreaper, config_path=args.config)
    try:
        host.start()
    except OSError as error:
        logger.error("--subreaper: %s", error)
        report.send("--subreaper: %s" % error)
        return 1
    try:
        return _serve(args, config, report, host)
    finally:
        host.close()
        if pidfile is not None:
            pidfile.remove()
        # bounded: an output nobody reads must not keep the daemon from exiting
        shutdown_logging()


def _serve(args, config, report, host):
    """Run arbiters until one stops without asking for a restart; the first start is reported.
    Exit status: 0 stopped as asked, 1 could not start, 3 a critical watcher gave up."""
    import gevent
    from gcircus.config import ConfigError
    from gcircus.config.build import arbiter_from_config
    from gcircus.hosting.host import EXIT_CRITICAL
    from gcircus.supervision.fdlimit import fds_needed, raise_open_files_limit
    from gcircus.plugin_host.isolated import IsolationError
    previous = None     # the configuration to go back to when a restart's cannot be built
    while True:
        try:
            arbiter = arbiter_from_config(config, args.config, args.backend,
                                          command_line=command_line_settings(args), handle_signals=True)
        except ConfigError as error:
            if previous is None:
                logger.error("cannot start: %s", error)
                report.send("cannot start: %s" % error)
                return 1
            logger.error("restart: %s; keeping the previous configuration", error)
            config, previous = previous, None
            continue
        logger.info("gcircusd %s starting (pid %d, config %s): %s", __version__, os.getpid(), args.config,
                    _endpoints(arbiter))
        raise_open_files_limit(fds_needed(arbiter.watchers))
        host.attach(arbiter)
        if report.fd is not None:
            gevent.spawn(_report_when_serving, arbiter, report)
        try:
            arbiter.start()
        # ImportError: a [plugin:NAME] class (PluginLoadError); IsolationError: an isolated one it cannot connect
        except (OSError, ImportError, IsolationError) as error:
            logger.error("cannot start: %s", error)
            report.send("cannot start: %s" % error)
            return 1
        finally:
            report.send("the daemon stopped while starting; see its log")
        if arbiter.critical_failure is not None:
            logger.error("exiting with status %d: %s", EXIT_CRITICAL, arbiter.critical_failure)
            return EXIT_CRITICAL
        if not arbiter.restart_requested:
            logger.info("gcircusd %s exiting (pid %d)", __version__, os.getpid())
            return 0
        logger.info("restarting from %s", args.config)
        try:
            config, previous = _load(args.config), config
        except ConfigError as error:
            logger.error("restart: %s; keeping the previous configuration", error)
        else:
            _report_config(config)


def _endpoints(arbiter):
    """`control X, events Y[, stats Z][, multicast M][, dashboard D]`: where operators and tools reach
    this daemon."""
    dashboard = "http://%s:%s" % (arbiter.httpd_host, arbiter.httpd_port) if arbiter.httpd else None
    found = [("control", arbiter.endpoint), ("events", arbiter.pubsub_endpoint),
             ("stats", arbiter.stats_endpoint), ("multicast", arbiter.options.get("multicast_endpoint")),
             ("dashboard", dashboard)]
    return ", ".join("%s %s" % (what, where) for what, where in found if where)


def _report_when_serving(arbiter, report):
    arbiter.started.wait()
    report.send()


def run(argv=None):
    """The gcircusd command: main(), then the exit.

    By then every process is stopped, every stream flushed and closed, every socket closed: tearing the
    interpreter down (every module and object, tens of ms with hundreds of processes' worth of them) would
    only delay the exit that `quit`, systemd and container runtimes wait for. So the atexit functions run and
    the process ends at once, unless a thread some plugin or hook left running is still at work (the
    interpreter's own exit waits for it then, as always)."""
    code = main(argv)
    import atexit
    import threading
    if threading.active_count() == 1:
        atexit._run_exitfuncs()     # logging's shutdown among them (handlers flushed and closed)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code if isinstance(code, int) else 1)
    return code


if __name__ == "__main__":
    sys.exit(run())
