"""Daemon logging as circusd does it: outputs `-`/stdout/stderr, a file path (reopened
after external rotation), `syslog://`, or a logging config file; as Circus's text lines,
or as one JSON object per line (`--log-format json`) for log shippers."""
import json
import logging
import os
import sys
import time
from urllib.parse import urlparse

from gcircus.config.parser import check_regular_file
from gcircus.converters import LOG_FORMATS, LOG_LEVELS

LOG_FORMAT = "%(asctime)s %(name)s[%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
SYSLOG_DATE_FORMAT = "%b %d %H:%M:%S"
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
    from logging.handlers import SysLogHandler  # here, as below: a daemon logging to stdout never loads them
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


def _handler_for(output):
    if output in ("-", "stdout"):
        # Circus sent `-` to stderr despite its name; we write where the name says.
        return logging.StreamHandler(sys.stdout), DATE_FORMAT
    if output == "stderr":
        return logging.StreamHandler(sys.stderr), DATE_FORMAT
    if output.startswith("syslog://"):
        return _syslog_handler(output), SYSLOG_DATE_FORMAT
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise LoggingSetupError("log output %r: directory %s does not exist" % (output, directory))
    from logging.handlers import WatchedFileHandler
    # WatchedFileHandler reopens the file when logrotate moves it away.
    return WatchedFileHandler(output), DATE_FORMAT


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
