"""options: every option of a watcher with its value."""
from gcircus.commands._options_output import format_options
from gcircus.commands.base import Command, check_name, get_watcher
from gcircus.commands.watcher_options import get_options


class Options(Command):
    name = "options"
    instant = True
    summary = "Show every option of a watcher"
    reference = """\
Every option of a watcher with its current value, free-form options included.

Message: {"command": "options", "properties": {"name": NAME}}
Reply: "options": {key: value}

    gcircusctl options <name>
"""
    properties = ("name",)

    def add_arguments(self, parser):
        parser.add_argument("name", help="watcher")

    def message(self, args):
        msg = super().message(args)
        msg["properties"]["name"] = args.name
        return msg

    def console(self, reply):
        return format_options(reply)

    def validate(self, props):
        super().validate(props)
        check_name(props)

    def execute(self, arbiter, props):
        return {"options": get_options(get_watcher(arbiter, props["name"]))}


COMMAND = Options()
