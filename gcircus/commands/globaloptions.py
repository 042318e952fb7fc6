"""globaloptions: the arbiter's endpoints and check_delay."""
from gcircus.commands._options_output import format_options
from gcircus.commands.base import Command, check_type
from gcircus.exc import MessageError
from gcircus.options import GLOBAL_OPTIONS


class GlobalOptions(Command):
    name = "globaloptions"
    instant = True
    summary = "Show the arbiter's options"
    reference = """\
The arbiter's options: endpoint, pubsub_endpoint, stats_endpoint,
multicast_endpoint and check_delay (or only the one named by option).

Message: {"command": "globaloptions", "properties": {"option": NAME}}
Reply: "options": {key: value}

    gcircusctl globaloptions [<option>]
"""
    optional_argument = ("option", "only this option")

    def console(self, reply):
        return format_options(reply)

    def validate(self, props):
        super().validate(props)
        check_type(props, "option", (str, type(None)), "a string")

    def execute(self, arbiter, props):
        options = {key: _read(arbiter, key) for key in GLOBAL_OPTIONS}
        wanted = props.get("option")
        if wanted is None:
            return {"options": options}
        if wanted not in options:
            raise MessageError("%r not an existing option" % wanted)
        return {"options": {wanted: options[wanted]}}


def _read(arbiter, key):
    if hasattr(arbiter, key):
        return getattr(arbiter, key)
    return arbiter.options.get(key)


COMMAND = GlobalOptions()
