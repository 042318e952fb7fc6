"""Pure converters: one value grammar for the INI loader and the wire.

Each converter takes one option's value and returns it typed, or raises ``ValueError`` whose message quotes the
offending value (``invalid integer 'abc'``).  The INI loader hands them strings; the wire hands them JSON values
(numbers, booleans, strings, lists, objects), so each also takes the native type it returns.  They know nothing
about files, sections or messages: the config loader prefixes the message with ``<file> [<section>] <key>:`` and
the controller turns it into an errno-3 reply naming the property.  Every number is range-checked here, so a value
the kernel or a C API would refuse later (a backlog >= 2**31, a port of 70000) is refused with one line up front.
Modelled on Supervisor's ``datatypes`` module.
"""
import math
import re
import resource
import signal
import socket

#: Hook names a watcher accepts; anything else is a typo.
HOOK_NAMES = (
    "before_start", "after_start", "before_stop", "after_stop", "before_spawn", "after_spawn",
    "before_signal", "after_signal", "before_reap", "after_reap", "extended_stats",
)

SOCKET_FAMILIES = ("AF_INET", "AF_INET6", "AF_UNIX")
SOCKET_TYPES = ("SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW", "SOCK_RDM", "SOCK_SEQPACKET")

# The largest value a C int holds: listen()'s backlog and other kernel-bound counts must fit in one.
C_INT_MAX = 2 ** 31 - 1

_TRUE_WORDS = frozenset(("yes", "true", "on", "1"))
_FALSE_WORDS = frozenset(("no", "false", "off", "0"))
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = r"{0}(?:\.{0})*".format(_IDENTIFIER)
# "pkg.mod.func" or "pkg.mod:func" / "pkg.mod:Class.method" (both forms are importable)
_DOTTED_NAME_RE = re.compile(r"^({0})(?::({0}))?$".format(_DOTTED))
# TERM, SIGTERM, SIGRTMIN+2, SIGRTMAX-1 (realtime signals are named by offset)
_SIGNAL_RE = re.compile(r"^(?:SIG)?([A-Z][A-Z0-9]*)(?:\s*([+-])\s*([0-9]+))?$")
_PY_VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+$")
# ASCII digits only: int() and float() also take "١" (Arabic-Indic one) and "1_000", which no one means in a
# config file or a command
_INTEGER_RE = re.compile(r"[-+]?[0-9]+")
_DECIMAL_RE = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
# Unlimited rlimit spellings; an empty value (or null on the wire) also means unlimited.
_UNLIMITED_WORDS = frozenset(("", "unlimited", "infinity"))
# setrlimit takes an unsigned 64-bit rlim_t whose all-ones value is RLIM_INFINITY
_RLIMIT_MAX = 2 ** 63 - 1


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def to_bool(value):
    """Return True/False for yes/true/on/1 and no/false/off/0 (any case), a JSON boolean, or the numbers 1/0."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError("invalid boolean %r (expected yes/no, true/false, on/off or 1/0)" % (value,))


def to_int(value):
    """Return a (decimal) integer; a JSON number must be whole."""
    if _is_number(value) and float(value).is_integer() and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER_RE.fullmatch(text):
            return int(text, 10)
    raise ValueError("invalid integer %r" % (value,))


def to_int_between(low, high, what="value"):
    """Return a converter accepting integers in low..high (either bound None: open)."""
    def convert(value):
        number = to_int(value)
        if (low is not None and number < low) or (high is not None and number > high):
            raise ValueError("invalid %s %r (%s)" % (what, value, _range_text(low, high)))
        return number
    return convert


def _range_text(low, high):
    if high is None:
        return "must be >= %d" % low
    if low is None:
        return "must be <= %d" % high
    return "must be between %d and %d" % (low, high)


#: An integer >= 0 (counts such as ``numprocesses``).
to_nonneg_int = to_int_between(0, None)
#: An integer >= 1.
to_positive_int = to_int_between(1, None)
#: listen()'s backlog: a C int the kernel caps at net.core.somaxconn.
to_backlog = to_int_between(0, C_INT_MAX, "backlog")


def to_retry_count(value):
    """Return a retry count: an integer >= 0, or -1 for "retry forever"."""
    number = to_int(value)
    if number < -1:
        raise ValueError("invalid retry count %r (must be >= 0, or -1 for unlimited)" % (value,))
    return number


def to_float(value):
    """Return a finite float; NaN and infinities are refused because they poison timer arithmetic."""
    if _is_number(value):
        number = float(value)
    elif isinstance(value, str) and _DECIMAL_RE.fullmatch(value.strip()):
        number = float(value.strip())
    elif isinstance(value, str) and value.strip().lower().lstrip("+-") in ("inf", "infinity", "nan"):
        number = math.nan
    else:
        raise ValueError("invalid number %r" % (value,))
    if not math.isfinite(number):
        raise ValueError("invalid number %r (must be finite)" % (value,))
    return number


def to_duration(value):
    """Return a duration in seconds: a finite float >= 0."""
    number = to_float(value)
    if number < 0:
        raise ValueError("invalid duration %r (must be >= 0)" % (value,))
    return number


def to_signum(value):
    """Return a signal number from ``15``, ``TERM``, ``SIGTERM``, ``sigterm``, ``SIGRTMIN+2`` or ``SIGRTMAX-1``."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("invalid signal %r" % (value,))
    text = str(value).strip()
    if isinstance(value, int):      # a signal.Signals too (its str() differs across versions)
        number = int(value)
    elif _INTEGER_RE.fullmatch(text):
        number = int(text)
    else:
        match = _SIGNAL_RE.match(text.upper())
        base = getattr(signal, "SIG" + match.group(1), None) if match else None
        # getattr could also find SIG_DFL/SIG_IGN-like names; only real Signals count
        if not isinstance(base, signal.Signals):
            raise ValueError("invalid signal %r" % (value,))
        offset = int(match.group(3) or 0)
        number = int(base) + (-offset if match.group(2) == "-" else offset)
    if number not in {int(sig) for sig in signal.valid_signals()}:
        raise ValueError("invalid signal %r" % (value,))
    return number


def to_umask(value):
    """Return an octal permission mask (``002``, ``0o022``, ``0``) as an int in 0..0o777.

    Circus parses socket umasks as decimal (``022`` -> 22); we read them as octal like every other umask.
    A JSON/Python integer is taken as the number it is (``0o22``).
    """
    return _octal_permissions(value, "umask")


def to_file_mode(value):
    """Return an octal file mode (``600``, ``0o660``; an integer as is) in 0..0o777 (ipc endpoint_mode)."""
    return _octal_permissions(value, "mode")


def _octal_permissions(value, what):
    if _is_number(value) and float(value).is_integer():
        number = int(value)
    else:
        text = str(value).strip().lower()
        digits = text[2:] if text.startswith("0o") else text
        try:
            number = int(digits, 8)
        except ValueError:
            raise ValueError("invalid octal %s %r" % (what, value)) from None
    if not 0 <= number <= 0o777:
        raise ValueError("invalid octal %s %r (must be between 0 and 777)" % (what, value))
    return number


def to_port(value):
    """Return a TCP/UDP port number; 0 asks the kernel for an ephemeral port."""
    number = to_int(value)
    if not 0 <= number <= 65535:
        raise ValueError("invalid port %r (must be between 0 and 65535)" % (value,))
    return number


def to_rlimit_name(name):
    """Return the lower-case rlimit name (``nofile``) after checking the platform knows ``RLIMIT_NOFILE``."""
    text = str(name).strip()
    if not text or not isinstance(getattr(resource, "RLIMIT_" + text.upper(), None), int):
        raise ValueError("unknown rlimit %r" % (name,))
    return text.lower()


def to_rlimit_value(value):
    """Return an rlimit value; empty, null, ``unlimited``, ``infinity`` or -1 mean ``RLIM_INFINITY``."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _UNLIMITED_WORDS):
        return resource.RLIM_INFINITY
    number = to_int(value)
    if number == -1:
        return resource.RLIM_INFINITY
    if not 0 <= number <= _RLIMIT_MAX:
        raise ValueError("invalid rlimit %r (must be between 0 and %d, or empty for unlimited)"
                         % (value, _RLIMIT_MAX))
    return number


def to_dotted_name(value):
    """Return an importable dotted name, ``pkg.mod.attr`` or ``pkg.mod:attr``, checked for shape only.

    Nothing is imported here: importing runs code, which is the daemon's decision, not the parser's.
    """
    text = str(value).strip()
    match = _DOTTED_NAME_RE.match(text)
    # a bare "func" names no module to import it from
    if match is None or ("." not in match.group(1) and match.group(2) is None):
        raise ValueError("invalid dotted name %r (expected package.module.attribute)" % (value,))
    return text


def to_hook_name(name):
    """Return a hook name after checking it is one the watcher calls."""
    text = str(name).strip()
    if text not in HOOK_NAMES:
        raise ValueError("unknown hook %r (expected one of %s)" % (name, ", ".join(HOOK_NAMES)))
    return text


def to_hook_spec(value):
    """Return ``(dotted_name, ignore_failure)`` from ``dotted.name`` or ``dotted.name, true``."""
    parts = [part.strip() for part in str(value).split(",")]
    if len(parts) > 2:
        raise ValueError("invalid hook %r (expected dotted.name[,bool])" % (value,))
    try:
        dotted = to_dotted_name(parts[0])
        ignore_failure = to_bool(parts[1]) if len(parts) == 2 else False
    except ValueError as error:
        raise ValueError("invalid hook %r (expected dotted.name[,bool]): %s" % (value, error)) from None
    return dotted, ignore_failure


def to_socket_family(value):
    """Return ``AF_INET``, ``AF_INET6`` or ``AF_UNIX`` from that name (any case, ``AF_`` optional) or its number."""
    return _socket_constant(value, "AF_", SOCKET_FAMILIES, "socket family")


def to_socket_type(value):
    """Return a socket type name (``SOCK_STREAM``, ``SOCK_DGRAM``, ...) from a name (``SOCK_`` optional) or number."""
    return _socket_constant(value, "SOCK_", SOCKET_TYPES, "socket type")


def _socket_constant(value, prefix, names, what):
    if _is_number(value):
        found = [name for name in names if getattr(socket, name, None) == value]
        text = found[0] if found else ""
    else:
        text = str(value).strip().upper()
        if text and not text.startswith(prefix):
            text = prefix + text
    if text not in names:
        raise ValueError("invalid %s %r (expected one of %s)" % (what, value, ", ".join(names)))
    return text


def to_socket_proto(value):
    """Return a protocol number, or the protocol name for ``getprotobyname`` at bind time."""
    if _is_number(value):
        return to_int_between(0, C_INT_MAX, "protocol")(value)
    text = str(value).strip()
    if _INTEGER_RE.fullmatch(text):
        return to_int_between(0, C_INT_MAX, "protocol")(text)
    if not re.match(r"^[A-Za-z][A-Za-z0-9_.+-]*$", text):
        raise ValueError("invalid protocol %r" % (value,))
    return text


def to_python_version(value):
    """Return a ``X.Y`` Python version string (``virtualenv_py_ver``); empty or null means "not set"."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not _PY_VERSION_RE.match(text):
        raise ValueError("invalid python version %r (expected X.Y)" % (value,))
    return text


def to_word_list(value):
    """Return the whitespace-separated words of a value (``include`` patterns)."""
    return str(value).split()


def to_choice(choices):
    """Return a converter accepting only the given (lower-case) words."""
    def convert(value):
        word = str(value).strip().lower()
        if word not in choices:
            raise ValueError("invalid value %r (expected one of %s)" % (value, ", ".join(choices)))
        return word
    return convert


#: The levels of ``loglevel`` (the logging module's names, lower case).
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
to_log_level = to_choice(LOG_LEVELS)
#: ``stream_backend``: output streams pumped by the hub or by threads.
STREAM_BACKENDS = ("gevent", "thread")
to_stream_backend = to_choice(STREAM_BACKENDS)
#: ``logformat`` / ``--log-format``: Circus's text lines, or one JSON object per line.
LOG_FORMATS = ("text", "json")
to_log_format = to_choice(LOG_FORMATS)


# -- strings and structured values (INI gives strings; the wire also gives lists and objects) ------------

def to_str(value):
    """Return a string as given."""
    if not isinstance(value, str):
        raise ValueError("invalid text %r (must be a string)" % (value,))
    return value


def to_command(value):
    """Return a command line: a string with something in it."""
    if not to_str(value).strip():
        raise ValueError("invalid command %r (must not be empty)" % (value,))
    return value


def to_optional_str(value):
    """Return a string, or None for an empty one or null ("not set")."""
    if value is None or value == "":
        return None
    return to_str(value)


def to_args(value):
    """Return command arguments: a string (split like a shell would, later), a list of strings, or None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise ValueError("invalid arguments %r (must be a string or a list of strings)" % (value,))


def to_identity(value):
    """Return a user or group for uid/gid: a name, an id >= 0, or None ("the daemon's own")."""
    if value is None or value == "":
        return None
    if _is_number(value):
        return to_int_between(0, 2 ** 32 - 2, "id")(value)
    if isinstance(value, str):
        return value
    raise ValueError("invalid user or group %r (must be a name or a number)" % (value,))


def to_env(value):
    """Return an environment mapping: an object of strings."""
    if not isinstance(value, dict) or not all(
            isinstance(key, str) and isinstance(item, str) for key, item in value.items()):
        raise ValueError("invalid environment %r (must be an object of strings)" % (value,))
    return dict(value)


def to_stream_conf(value):
    """Return a stdout/stderr stream configuration: an object naming its ``class`` (or a filename or stream)."""
    if not isinstance(value, dict) or not {"class", "filename", "stream"} & set(value):
        raise ValueError("invalid stream %r (must be an object with a 'class' key)" % (value,))
    return dict(value)


def to_hooks(value):
    """Return ``{hook name: spec}`` from an object whose keys are hook names (each spec checked elsewhere)."""
    if not isinstance(value, dict):
        raise ValueError("invalid hooks %r (must be an object of hook name: dotted.name)" % (value,))
    for name in value:
        to_hook_name(name)
    return dict(value)


def to_rlimits(value):
    """Return ``{rlimit name: limit}`` from an object such as ``{"nofile": 1024, "core": null}``."""
    if not isinstance(value, dict):
        raise ValueError("invalid rlimits %r (must be an object of rlimit name: limit)" % (value,))
    return {to_rlimit_name(name): to_rlimit_value(limit) for name, limit in value.items()}


_BYTE_UNITS = {"B": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6, "Z": 7, "Y": 8}


def human2bytes(text):
    """'9.77K' -> 10004, '2G' -> 2147483648, '512' -> 512 (1024-based; the inverse of `stats` mem_info)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([BKMGTPEZY]?)B?\s*", str(text), re.IGNORECASE)
    if match is None:
        raise ValueError("cannot interpret %r as a number of bytes (e.g. 512, 10K, 1.5G)" % (text,))
    value, unit = match.groups()
    return int(float(value) * 1024 ** _BYTE_UNITS[unit.upper() or "B"])


_HUMAN_UNITS = "KMGTPEZY"


def bytes2human(n):
    """1023 -> '1023B', 10000 -> '9.77K' (1024-based, two decimals)."""
    if n < 1024:
        return "%dB" % n
    value = float(n)
    for unit in _HUMAN_UNITS:
        value /= 1024.0
        if value < 1024.0 or unit == _HUMAN_UNITS[-1]:
            return "%.2f%s" % (value, unit)
    return "%dB" % n  # unreachable: the loop always returns
