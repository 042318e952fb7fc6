"""add: create a watcher, optionally starting it."""
from gcircus.commands.base import Command, Deferred, check_bool, check_type, convert, convert_property
from gcircus.exc import ArgumentError, MessageError
from gcircus.commands.watcher_options import watcher_kwargs
from gcircus.options import WATCHER_OPTIONS


class Add(Command):
    name = "add"
    summary = "Create a new watcher"
    reference = """\
Add a watcher to the arbiter, stopped unless --start is given.

Message: {"command": "add", "properties": {"name": NAME, "cmd": CMD,
          "args": [...] or "...", "options": {...}, "start": false, "waiting": false}}
  options: watcher options (numprocesses, env, hooks, stdout_stream.class, rlimit_nofile, ...)
Reply: ok; with start and waiting, the started and kept pids.

    gcircusctl add [--start] [--waiting] <name> <cmd...>
"""
    properties = ("name", "cmd")
    waits = True
    read_only = False

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--start", action="store_true", help="start the watcher at once")
        parser.add_argument("name", help="name of the new watcher")
        parser.add_argument("cmd", nargs="+", help="command line to run")

    def message(self, args):
        msg = super().message(args)
        msg["properties"].update(name=args.name, cmd=" ".join(args.cmd), start=args.start)
        return msg

    def validate(self, props):
        super().validate(props)
        check_type(props, "name", str, "a string")
        if not props["name"].strip():
            raise MessageError("message invalid: 'name' must not be empty")
        # with no program to run the watcher would stay "starting" for ever
        props["cmd"] = convert("cmd", props["cmd"], WATCHER_OPTIONS["cmd"].convert)
        convert_property(props, "args", WATCHER_OPTIONS["args"].convert)
        check_type(props, "options", (dict, type(None)), "an object")
        check_bool(props, "start")

    def execute(self, arbiter, props):
        options = dict(props.get("options") or {})
        options.pop("cmd", None)
        args = props.get("args")
        if args is None:
            args = options.pop("args", None)
        else:
            options.pop("args", None)
        kwargs = watcher_kwargs(options)
        _check_endpoint_owner(arbiter, kwargs)
        try:
            watcher = arbiter.add_watcher(props["name"], props["cmd"], args=args, **kwargs)
        except (ValueError, ImportError) as error:    # the options describe no watcher that can exist
            raise ArgumentError("cannot add watcher %s: %s" % (props["name"], error)) from error
        if props["start"]:
            return Deferred(watcher.start)
        return None


def _check_endpoint_owner(arbiter, kwargs):
    """With an owned ipc endpoint, new watchers run as that owner only (whoever may
    reach the endpoint must not gain another user's rights)."""
    owner = (arbiter.options or {}).get("endpoint_owner")
    endpoint = arbiter.endpoint or ""
    if owner and endpoint.startswith("ipc://") and str(kwargs.get("uid")) != str(owner):
        raise MessageError("uid does not match endpoint_owner")


COMMAND = Add()
