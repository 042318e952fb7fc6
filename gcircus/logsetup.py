"""Daemon logging as circusd does it: outputs `-`/stdout/stderr, a file path (reopened
after external rotation), `syslog://`, or a logging config file; as Circus's text lines,
or as one JSON object per line (`--log-format json`) for log shippers.

The handler configure_logging installs never writes on the hub: it queues the record for a
real OS thread (gcircus.stream.writer), so an output nobody reads (a full pipe, a stalled
journald, a hung NFS file) cannot stop supervision. Behind a stuck output records are dropped
and counted, and a line says how many once it moves again. A `loggerconfig` file is the
user's own logging, applied as written: its handlers write synchronously, on the hub.
Embedded arbiters keep their host application's logging untouched.
"""
import json
import logging
import os
import select
import sys
import time
from urllib.parse import urlparse

from gcircus.config.parser import check_regular_file
from gcircus.converters import LOG_FORMATS, LOG_LEVELS
from gcircus.stream.writer import WriterThread, fd_writers, write_all, writer_for_fd

LOG_FORMAT = "%(asctime)s %(name)s[%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
SYSLOG_DATE_FORMAT = "%b %d %H:%M:%S"
#: At exit, how long the log (and watcher output bound for stdout) may take to be written: an output that does
#: not move in that time is stuck, and the daemon exits without the rest rather than hang.
EXIT_FLUSH_TIMEOUT = 2.0

class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time (UTC, ISO 8601 with milliseconds), level,
    logger, message, pid, and exc (the formatted traceback) when there is one."""

    def format(self, record):
        entry = {
            "time": "%s.%03dZ" % (self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), record.msecs),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # a message with newlines stays on one line: json escapes them
        return json.dumps(entry, ensure_ascii=False, default=str)


JsonFormatter.converter = time.gmtime


class LoggingSetupError(ValueError):
    """The logging options cannot be applied; the message names the option and value."""


def _syslog_handler(output):
    from logging.handlers import SysLogHandler  # here: a daemon logging to stdout never loads it
    url = urlparse(output)
    facility_name = (url.query or "user").lower()
    facility = SysLogHandler.facility_names.get(facility_name)
    if facility is None:
        raise LoggingSetupError("log output %r: unknown syslog facility %r" % (output, facility_name))
    if url.netloc:
        address = (url.hostname, url.port or 514)
    else:
        address = url.path or "/dev/log"
    try:
        return SysLogHandler(address=address, facility=facility)
    except OSError as error:
        raise LoggingSetupError("log output %r: %s" % (output, error)) from error


# -- sinks: what the writer thread hands a batch of records to -------------------------------------------------

def _lines(formatter, records):
    lines = []
    for record in records:
        try:
            lines.append(formatter.format(record))
        except Exception as error:     # a bad format string in someone's log call: say so, keep the rest
            lines.append("unformattable log record %r %r: %s" % (record.msg, record.args, error))
    return "".join(line + "\n" for line in lines)


class FdSink:
    """Formatted lines written to a file descriptor the daemon inherited (its stdout or stderr)."""

    def __init__(self, fd, encoding):
        self.fd = fd
        self.encoding = encoding
        self.formatter = None

    def emit(self, records):
        try:
            write_all(self.fd, _lines(self.formatter, records).encode(self.encoding, "backslashreplace"))
        except OSError:
            pass    # a closed or broken stdout: nobody to tell (the log is where we would)

    def close(self):
        pass        # not ours to close


class WatchedFileSink:
    """Formatted lines appended to a file, reopened when logrotate (or anyone) moved or removed it."""

    def __init__(self, path):
        self.path = path
        self.formatter = None
        self._fd = None
        self._identity = None
        self._failing = False     # a failure is told once, until a write succeeds again
        self._open()

    def _open(self):
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        status = os.fstat(fd)
        old, self._fd, self._identity = self._fd, fd, (status.st_dev, status.st_ino)
        if old is not None:
            os.close(old)

    def _reopen_if_moved(self):
        """A file that cannot be reopened (its directory unwritable) leaves the old one in use: still written."""
        try:
            status = os.stat(self.path)
            identity = (status.st_dev, status.st_ino)
        except FileNotFoundError:
            identity = None
        if identity != self._identity:
            self._open()

    def emit(self, records):
        problem = None
        try:
            self._reopen_if_moved()
        except OSError as error:
            problem = "cannot reopen the log %s (still writing to the file it replaced): %s" % (
                self.path, error.strerror or error)
        try:
            write_all(self._fd, _lines(self.formatter, records).encode("utf-8", "backslashreplace"))
        except OSError as error:
            problem = "cannot write the log to %s: %s" % (self.path, error.strerror or error)
        if problem is not None and not self._failing:
            _tell_stderr("gcircusd: %s\n" % problem)
        elif problem is None and self._failing:
            _tell_stderr("gcircusd: writing the log to %s again\n" % self.path)
        self._failing = problem is not None

    def close(self):
        pass        # the writer thread may be in a write to it: the process's exit closes it


class SyslogSink:
    """Records sent by a SysLogHandler (priority from the level), called from the writer thread only."""

    def __init__(self, handler):
        self.handler = handler

    @property
    def formatter(self):
        return self.handler.formatter

    @formatter.setter
    def formatter(self, formatter):
        self.handler.setFormatter(formatter)

    def emit(self, records):
        for record in records:
            self.handler.emit(record)    # emit, not handle: the thread takes no lock exit would wait on

    def close(self):
        self.handler.close()


# Argument types whose value cannot change after the log call: a record holding only these is formatted
# later by the writer thread and still says what was true when it was logged.
_SETTLED_TYPES = frozenset((str, int, float, bool, type(None), bytes))


def _settle(record):
    """Make the record safe to format later, in another thread, as cheaply as possible on the hub.

    Arguments that are all of _SETTLED_TYPES stay as they are (formatting them is the writer's work).
    Anything else (a dict, a list, an object whose str() reads live state) is rendered into the message
    now: formatted later it could show a later state, or be iterated while the hub changes it. A
    traceback is formatted by the writer: its frames' line numbers are fixed when it is caught, and
    the source lines it reads from disk are better read off the hub."""
    args = record.args
    if args and (type(args) is not tuple or not all(type(arg) in _SETTLED_TYPES for arg in args)):
        record.msg = record.getMessage()
        record.args = None
    elif type(record.msg) is not str:
        record.msg = str(record.msg)


class HubSafeHandler(logging.Handler):
    """The handler configure_logging installs: emit() only settles the record and queues it for the
    sink's writer thread (a full queue drops it, counted); it never formats or writes on the hub."""

    def __init__(self, sink, writer):
        super().__init__()
        self.sink = sink
        self.writer = writer
        self.closed = False

    def setFormatter(self, fmt):
        super().setFormatter(fmt)
        self.sink.formatter = fmt

    def emit(self, record):
        try:
            _settle(record)
        except Exception:
            self.handleError(record)
            return
        self.writer.offer_record(record, self.sink)

    def close(self, flush=True):
        """Write what is queued, waiting at most EXIT_FLUSH_TIMEOUT (see flush_at_exit); once."""
        if not self.closed:
            self.closed = True
            if flush:
                flush_at_exit([self.writer])
            self.sink.close()
        super().close()


def flush_at_exit(writers, timeout=EXIT_FLUSH_TIMEOUT):
    """Let the writer threads finish, for `timeout` seconds in all; what they could not write is counted in
    one line on stderr (if stderr has room: it may be the stuck output)."""
    deadline = time.monotonic() + timeout
    records = output = 0
    for writer in writers:
        if not writer.flush(deadline - time.monotonic()):
            stuck_records, stuck_bytes = writer.unwritten()
            records += stuck_records
            output += stuck_bytes
    if records:
        _tell_stderr("gcircusd: %d log lines not written: the log output was blocked at exit\n" % records)
    if output:
        _tell_stderr("gcircusd: %d bytes of watcher output not written: stdout was blocked at exit\n" % output)


def shutdown_logging(timeout=EXIT_FLUSH_TIMEOUT):
    """At exit: flush the daemon's log and the watcher output bound for its stdout/stderr, within timeout."""
    root = logging.getLogger()
    handlers = [handler for handler in root.handlers if isinstance(handler, HubSafeHandler)]
    writers = [handler.writer for handler in handlers]
    flush_at_exit(writers + [writer for writer in fd_writers() if writer not in writers], timeout)
    for handler in handlers:
        root.removeHandler(handler)
        handler.close(flush=False)      # flushed just above, under the one deadline


def _tell_stderr(text):
    """Write a short line to fd 2 only if it has room now: never wait on it."""
    try:
        _readable, writable, _errors = select.select([], [2], [], 0)
        if writable:
            os.write(2, text.encode("utf-8", "backslashreplace"))
    except (OSError, ValueError):
        pass


def _fd_of(stream):
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):     # an in-memory stream (a test's capture)
        return None


def _handler_for(output):
    """(handler, date format) for a --log-output value; LoggingSetupError naming what is wrong."""
    if output in ("-", "stdout", "stderr"):
        # Circus sent `-` to stderr despite its name; we write where the name says.
        stream = sys.stderr if output == "stderr" else sys.stdout
        fd = _fd_of(stream)
        if fd is None:      # in memory: a write cannot block, and there is no fd to hand a thread
            return logging.StreamHandler(stream), DATE_FORMAT
        sink = FdSink(fd, getattr(stream, "encoding", None) or "utf-8")
        return HubSafeHandler(sink, writer_for_fd(fd)), DATE_FORMAT
    if output.startswith("syslog://"):
        return HubSafeHandler(SyslogSink(_syslog_handler(output)), WriterThread("syslog")), SYSLOG_DATE_FORMAT
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise LoggingSetupError("log output %r: directory %s does not exist" % (output, directory))
    try:
        sink = WatchedFileSink(output)
    except OSError as error:
        raise LoggingSetupError("log output %r: %s" % (output, error.strerror or error)) from error
    return HubSafeHandler(sink, WriterThread("log file")), DATE_FORMAT


def _load_logger_config(path):
    if path == "default":
        return False
    if not os.path.exists(path):
        raise LoggingSetupError("logger config %r does not exist" % path)
    problem = check_regular_file(path)
    if problem is not None:
        raise LoggingSetupError("logger config %r: %s" % (path, problem))
    from logging.config import fileConfig
    lower = path.lower()
    try:
        if lower.endswith((".ini", ".cfg", ".conf")):
            fileConfig(path, disable_existing_loggers=False)
        elif lower.endswith(".json"):
            with open(path) as handle:
                _dict_config(json.load(handle))
        elif lower.endswith((".yaml", ".yml")):
            try:
                import yaml
            except ImportError:
                raise LoggingSetupError("logger config %r is YAML, but PyYAML is not installed "
                                        "(pip install pyyaml)" % path) from None
            with open(path) as handle:
                _dict_config(yaml.safe_load(handle))
        else:
            raise LoggingSetupError("logger config %r: use a .ini, .json or .yaml file" % path)
    except LoggingSetupError:
        raise
    except Exception as error:
        raise LoggingSetupError("logger config %r is invalid: %s" % (path, _with_causes(error))) from error
    return True


def _with_causes(error):
    """The error's message followed by its causes' (dictConfig says "Unable to configure handler 'x'";
    why, e.g. "No module named 'raven'", is in the exception it chains)."""
    messages = []
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        text = str(error) or type(error).__name__
        if text not in messages:
            messages.append(text)
        error = error.__cause__ or error.__context__
    return ": ".join(messages)


def _dict_config(config):
    """dictConfig, keeping gcircus's loggers (already created) enabled unless the file says
    otherwise: dictConfig's own default would silence every one of them."""
    if isinstance(config, dict):
        config = dict(config)
        config.setdefault("disable_existing_loggers", False)
    from logging.config import dictConfig
    dictConfig(config)


def _level_number(level):
    level = (level or "info").lower()
    if level not in LOG_LEVELS:
        raise LoggingSetupError("log level %r: use one of %s" % (level, ", ".join(LOG_LEVELS)))
    return getattr(logging, level.upper())


def set_level(level):
    """Change the level configure_logging applied (reloadconfig); LoggingSetupError for a bad name."""
    logging.getLogger().setLevel(_level_number(level))


def release_handlers():
    """Flush, close and detach every handler (before daemonising closes all file descriptors)."""
    loggers = [logging.getLogger()] + [entry for entry in logging.Logger.manager.loggerDict.values()
                                       if isinstance(entry, logging.Logger)]
    for each in loggers:
        for handler in list(each.handlers):
            each.removeHandler(handler)
            try:
                handler.flush()
                handler.close()
            except (OSError, ValueError):
                pass


def configure_logging(level="info", output="-", logger_config=None, log_format="text"):
    """Apply the daemon's logging options; raises LoggingSetupError naming the bad option."""
    number = _level_number(level)
    if (log_format or "text") not in LOG_FORMATS:
        raise LoggingSetupError("log format %r: use one of %s" % (log_format, ", ".join(LOG_FORMATS)))
    if logger_config and _load_logger_config(logger_config):
        return
    handler, date_format = _handler_for(output or "-")
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(LOG_FORMAT, date_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(number)
