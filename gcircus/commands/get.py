"""get: the values of some options of a watcher."""
from gcircus.commands._options_output import format_options
from gcircus.commands.base import Command, check_name, get_watcher
from gcircus.exc import MessageError
from gcircus.commands.watcher_options import get_option


class Get(Command):
    name = "get"
    instant = True
    summary = "Show chosen options of a watcher"
    reference = """\
The current values of some options of a watcher (see `options` for the names).

Message: {"command": "get", "properties": {"name": NAME, "keys": ["numprocesses", ...]}}
Reply: "options": {key: value}

    gcircusctl get <name> <key> [<key>...]
"""
    properties = ("name", "keys")

    def add_arguments(self, parser):
        parser.add_argument("name", help="watcher")
        parser.add_argument("keys", nargs="+", help="option names")

    def message(self, args):
        msg = super().message(args)
        msg["properties"].update(name=args.name, keys=args.keys)
        return msg

    def console(self, reply):
        return format_options(reply)

    def validate(self, props):
        super().validate(props)
        check_name(props)
        keys = props["keys"]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise MessageError("message invalid: 'keys' must be a list of strings")

    def execute(self, arbiter, props):
        watcher = get_watcher(arbiter, props["name"])
        options = {}
        for key in props["keys"]:
            try:
                options[key] = get_option(watcher, key)
            except KeyError:
                raise MessageError("%r option not found" % key) from None
        return {"options": options}


COMMAND = Get()
