"""What every wire command shares: the Command base class, property checking,
watcher lookup, and Deferred, the marker for operations that may finish after
the reply (Circus's asynchronous commands: `waiting` decides whether the reply waits for the work).

A command module holds the client half (argparse flags, building the message,
formatting the reply for humans) above the daemon half (validate, execute).
"""
import re
from fnmatch import fnmatch

from gcircus.client import make_message
from gcircus.converters import to_bool
from gcircus.exc import MessageError


class Deferred:
    """Work the controller runs after validation, before or after the reply (the `waiting` property).

    Without `waiting` the client gets `ok` at once and `run` goes on in the
    background; with `waiting` the reply carries run's result. `finish`, if
    given, runs in a fresh greenlet once the reply is out (used by quit, whose
    reply must leave before the sockets close).
    """

    def __init__(self, run=None, finish=None):
        self.run = run or (lambda: None)
        self.finish = finish


class Command:
    """One wire command. Subclasses set the class attributes and override the halves they need."""

    name = None            # the wire name (= the module name)
    summary = ""           # one line, listed by `gcircusctl --help`
    reference = ""         # the text of `gcircusctl --help <name>`
    properties = ()        # required properties
    waits = False          # accepts `waiting` / `--waiting`
    read_only = True       # never waits on a watcher (documentation and tests)
    instant = False        # answers at once, never yields: served inline by the controller's reader
    stops_arbiter = False  # quit: the arbiter starts stopping as the request is read, before queued work
    optional_argument = None   # (property, help): one optional positional, sent only when given

    # -- client half --------------------------------------------------------------

    def add_arguments(self, parser):
        """Add this command's positional arguments and flags to an argparse parser."""
        if self.waits:
            parser.add_argument("--waiting", action="store_true", help="wait until the operation is done")
        if self.optional_argument:
            key, text = self.optional_argument
            parser.add_argument(key, nargs="?", help=text)

    def message(self, args):
        """The request for parsed gcircusctl arguments."""
        props = {}
        if self.waits and getattr(args, "waiting", False):
            props["waiting"] = True
        if self.optional_argument and getattr(args, self.optional_argument[0], None):
            props[self.optional_argument[0]] = getattr(args, self.optional_argument[0])
        return make_message(self.name, **props)

    def console(self, reply):
        """Human output for a reply (gcircusctl without --json)."""
        if reply.get("status") == "error":
            return "error: %s" % reply.get("reason")
        return "ok"

    def exit_status(self, reply):
        """gcircusctl's exit status for a reply that is not an error (0; health says 4 for no)."""
        return 0

    # -- daemon half --------------------------------------------------------------

    def validate(self, props):
        for key in self.properties:
            if key not in props:
                raise MessageError("message invalid %r is missing" % key)
        if self.waits:
            check_bool(props, "waiting")

    def execute(self, arbiter, props):
        """Run the command; return a result dict, None, or a Deferred."""
        raise NotImplementedError


# -- property checks (errno 3 on failure) ---------------------------------------------

def convert(key, value, converter):
    """converter(value), with the converters of config files (gcircus.converters): one value grammar.

    Its ValueError becomes the errno-3 reply naming the property."""
    try:
        return converter(value)
    except ValueError as error:
        raise MessageError("message invalid: %r: %s" % (key, error)) from None


def convert_property(props, key, converter):
    """props[key] converted in place when present and not null; returns it (None when absent)."""
    if props.get(key) is not None:
        props[key] = convert(key, props[key], converter)
    return props.get(key)


def check_bool(props, key, default=False):
    """props[key] as a bool (default when absent); normalises props in place."""
    if key not in props or props[key] is None:
        props[key] = default
    props[key] = convert(key, props[key], to_bool)
    return props[key]


def check_type(props, key, kinds, description, required=False):
    """Fail with errno 3 unless props[key] (when present) is one of kinds."""
    if key not in props:
        if required:
            raise MessageError("message invalid %r is missing" % key)
        return None
    value = props[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
        raise MessageError("message invalid: %r must be %s, not %r" % (key, description, value))
    return value


def _as_tuple(kinds):
    return kinds if isinstance(kinds, tuple) else (kinds,)


def check_name(props, required=True):
    return check_type(props, "name", str, "a string", required=required)


# -- watcher lookup ---------------------------------------------------------------------

def get_watcher(arbiter, name):
    try:
        return arbiter.get_watcher(name)
    except KeyError:
        raise MessageError("program %s not found" % name) from None


def get_process_watcher(arbiter, name, command, resize=False):
    """get_watcher for a command acting on processes: errno 3 naming a plugin's watcher as such.

    resize: the command changes the process count, which no plugin's is (an isolated plugin
    runs one process, which signal and kill may target)."""
    watcher = get_watcher(arbiter, name)
    if not watcher.runs_processes():
        raise MessageError("%s is a plugin, not a watcher of processes: %s does not apply to it"
                           % (watcher.name, command))
    if resize and watcher.is_plugin():
        raise MessageError("%s is a plugin running as one process (isolate = true): %s does not apply to it"
                           % (watcher.name, command))
    return watcher


MATCH_METHODS = ("simple", "glob", "regex")


def match_watchers(arbiter, name, method="glob"):
    """Watchers whose name matches (case-insensitive), by priority; errno 3 when none does."""
    if method not in MATCH_METHODS:
        raise MessageError("unknown match method %s" % method)
    pattern = name.lower()
    if method == "simple":
        return [get_watcher(arbiter, name)]
    if method == "glob":
        found = [w for w in arbiter.iter_watchers() if fnmatch(w.name.lower(), pattern)]
    else:
        try:
            regex = re.compile(pattern)
        except re.error as error:
            raise MessageError("invalid regex %r: %s" % (name, error)) from None
        found = [w for w in arbiter.iter_watchers() if regex.match(w.name.lower())]
    if not found:
        raise MessageError("program %s not found" % name)
    return found
