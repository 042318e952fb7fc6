"""set: change options of a watcher.

Every accepted key is applied (Circus ignores several), each one
announced by an `updated` event; then the watcher manages its processes, or
reloads gracefully when a key needs new processes (cmd, env, uid...).
"""
import textwrap

from gcircus.commands.base import Command, Deferred, check_name, get_process_watcher, get_watcher
from gcircus.converters import to_rlimit_value
from gcircus.exc import MessageError
from gcircus.commands.watcher_options import MANAGE, RELOAD, apply_options, watcher_lock
from gcircus.options import STREAM_OPTION_TYPES, WATCHER_OPTIONS

_SETTABLE = [name for name, option in WATCHER_OPTIONS.items() if option.set]


def convert_option(key, value):
    """A command-line value as the JSON value `set` expects for key, read by the option's converter
    (the daemon converts it again: other clients send what they like). ValueError when it is refused."""
    if key == "hooks":      # before_start:pkg.mod.fn,after_stop:pkg.mod.fn2
        pairs = [item.split(":", 1) for item in value.split(",") if item]
        if not all(len(pair) == 2 for pair in pairs):
            raise ValueError("hooks must be written name:dotted.name[,name:dotted.name...]")
        return dict(pairs)
    if key == "env":        # A=1,B=2 (Circus's circusctl crashes on this one)
        pairs = [item.split("=", 1) for item in value.split(",") if item]
        if not all(len(pair) == 2 for pair in pairs):
            raise ValueError("env must be written NAME=value[,NAME=value...]")
        return dict(pairs)
    base, _, sub = key.partition(".")
    if sub and base in ("stdout_stream", "stderr_stream"):
        return STREAM_OPTION_TYPES.get(sub, str)(value)
    if key.startswith("rlimit_"):
        return to_rlimit_value(value)
    option = WATCHER_OPTIONS.get(key)
    if option is None or option.convert is None or not option.set:
        return value        # the daemon names what it does not know
    return option.convert(value)


class Set(Command):
    name = "set"
    summary = "Change options of a watcher"
    reference = """\
Change options of a watcher. Keys:
%s,
hooks.<hook>, stdout_stream.<key>, stderr_stream.<key>, rlimit_<name>.
Keys that need new processes reload a running watcher:
%s.

Message: {"command": "set", "properties": {"name": NAME, "options": {key: value},
          "waiting": false}}
Reply: ok (with waiting, once processes are managed or reloaded)

    gcircusctl set <name> <key> <value> [<key> <value>...] [--waiting]
""" % ("\n".join(textwrap.wrap(", ".join(_SETTABLE), 78)),
       "\n".join(textwrap.wrap(", ".join(name for name in _SETTABLE if WATCHER_OPTIONS[name].set == RELOAD), 78)))
    properties = ("name", "options")
    waits = True
    read_only = False

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("name", help="watcher")
        parser.add_argument("pairs", nargs="+", metavar="key value", help="option names and values")

    def message(self, args):
        if len(args.pairs) % 2:
            raise ValueError("set takes key value pairs, got an odd number of words")
        options = {}
        for key, value in zip(args.pairs[::2], args.pairs[1::2]):
            options[key] = convert_option(key, value)
        msg = super().message(args)
        msg["properties"].update(name=args.name, options=options)
        return msg

    def validate(self, props):
        super().validate(props)
        check_name(props)
        if not isinstance(props["options"], dict):
            raise MessageError("message invalid: 'options' must be an object")

    def execute(self, arbiter, props):
        if "numprocesses" in props["options"]:
            watcher = get_process_watcher(arbiter, props["name"], "set numprocesses", resize=True)
        else:
            watcher = get_watcher(arbiter, props["name"])
        with watcher_lock(watcher):
            action = apply_options(watcher, props["options"])

        def follow_up():
            with watcher_lock(watcher):
                if action == RELOAD and not watcher.is_stopped():
                    watcher.reload(graceful=True)
                elif action >= MANAGE:
                    watcher.manage_processes(wait=props["waiting"])
        return Deferred(follow_up)


COMMAND = Set()
