"""Pure converters from configuration strings to typed values.

Each converter takes the raw string of one option and returns the typed value, or raises ``ValueError`` whose
message quotes the offending value (``invalid integer 'abc'``).  They know nothing about files or sections: the
config loader prefixes the message with ``<file> [<section>] <key>:`` so the operator sees where the value came
from.  Modelled on Supervisor's ``datatypes`` module; shared by the INI loader and by command validation.
"""
import math
import re
import resource
import signal

#: Hook names a watcher accepts (Circus's); anything else is a typo.
HOOK_NAMES = (
    "before_start", "after_start", "before_stop", "after_stop", "before_spawn", "after_spawn",
    "before_signal", "after_signal", "before_reap", "after_reap", "extended_stats",
)

SOCKET_FAMILIES = ("AF_INET", "AF_INET6", "AF_UNIX")
SOCKET_TYPES = ("SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW", "SOCK_RDM", "SOCK_SEQPACKET")

_TRUE_WORDS = frozenset(("yes", "true", "on", "1"))
_FALSE_WORDS = frozenset(("no", "false", "off", "0"))
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = r"{0}(?:\.{0})*".format(_IDENTIFIER)
# "pkg.mod.func" or "pkg.mod:func" / "pkg.mod:Class.method" (Circus accepts both forms)
_DOTTED_NAME_RE = re.compile(r"^({0})(?::({0}))?$".format(_DOTTED))
_SIGNAL_RE = re.compile(r"^(?:SIG)?([A-Z][A-Z0-9]*)(?:\+(\d+))?$")
_PY_VERSION_RE = re.compile(r"^\d+\.\d+$")
# Unlimited rlimit spellings; an empty value also means unlimited (as Circus).
_UNLIMITED_WORDS = frozenset(("", "unlimited", "infinity"))


def to_bool(value):
    """Return True/False for yes/true/on/1 and no/false/off/0 (any case); anything else is an error."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError("invalid boolean %r (expected yes/no, true/false, on/off or 1/0)" % (value,))


def to_int(value):
    """Return a (decimal) integer."""
    try:
        return int(str(value).strip(), 10)
    except ValueError:
        raise ValueError("invalid integer %r" % (value,)) from None


def to_nonneg_int(value):
    """Return an integer >= 0 (counts such as ``numprocesses``)."""
    number = to_int(value)
    if number < 0:
        raise ValueError("invalid value %r (must be >= 0)" % (value,))
    return number


def to_retry_count(value):
    """Return a retry count: an integer >= 0, or -1 for "retry forever"."""
    number = to_int(value)
    if number < -1:
        raise ValueError("invalid retry count %r (must be >= 0, or -1 for unlimited)" % (value,))
    return number


def to_float(value):
    """Return a finite float; NaN and infinities are refused because they poison timer arithmetic."""
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ValueError("invalid number %r" % (value,)) from None
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
    """Return a signal number from ``15``, ``TERM``, ``SIGTERM``, ``sigterm`` or ``SIGRTMIN+2``."""
    text = str(value).strip()
    if isinstance(value, int) and not isinstance(value, bool):   # a signal.Signals too (its str() differs across versions)
        number = int(value)
    elif text.isdigit():
        number = int(text)
    else:
        match = _SIGNAL_RE.match(text.upper())
        base = getattr(signal, "SIG" + match.group(1), None) if match else None
        # getattr could also find SIG_DFL/SIG_IGN-like names; only real Signals count
        if not isinstance(base, signal.Signals):
            raise ValueError("invalid signal %r" % (value,))
        number = int(base) + int(match.group(2) or 0)
    if number not in {int(sig) for sig in signal.valid_signals()}:
        raise ValueError("invalid signal %r" % (value,))
    return number


def to_umask(value):
    """Return an octal permission mask (``002``, ``0o022``, ``0``) as an int in 0..0o777.

    Circus parses socket umasks as decimal (``022`` -> 22); we read them as octal like every other umask.
    """
    return _octal_permissions(value, "umask")


def to_file_mode(value):
    """Return an octal file mode (``600``, ``0o660``) as an int in 0..0o777 (ipc endpoint_mode)."""
    return _octal_permissions(value, "mode")


def _octal_permissions(value, what):
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
    """Return an rlimit value; empty, ``unlimited``, ``infinity`` or -1 mean ``RLIM_INFINITY``."""
    text = str(value).strip()
    if text.lower() in _UNLIMITED_WORDS:
        return resource.RLIM_INFINITY
    number = to_int(text)
    if number == -1:
        return resource.RLIM_INFINITY
    if number < 0:
        raise ValueError("invalid rlimit %r (must be >= 0, or empty for unlimited)" % (value,))
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
    """Return ``AF_INET``, ``AF_INET6`` or ``AF_UNIX`` (any case accepted)."""
    return _pick(value, SOCKET_FAMILIES, "socket family")


def to_socket_type(value):
    """Return one of the socket type names ``SOCK_STREAM``, ``SOCK_DGRAM``, ... (any case accepted)."""
    return _pick(value, SOCKET_TYPES, "socket type")


def to_socket_proto(value):
    """Return a protocol number, or the protocol name for ``getprotobyname`` at bind time."""
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    if not re.match(r"^[A-Za-z][A-Za-z0-9_.+-]*$", text):
        raise ValueError("invalid protocol %r" % (value,))
    return text


def to_python_version(value):
    """Return a ``X.Y`` Python version string (``virtualenv_py_ver``)."""
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


def _pick(value, names, what):
    text = str(value).strip().upper()
    if text not in names:
        raise ValueError("invalid %s %r (expected one of %s)" % (what, value, ", ".join(names)))
    return text
