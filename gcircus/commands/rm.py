"""rm: remove a watcher, stopping it unless nostop."""
from gcircus.commands.base import Command, Deferred, check_bool, check_name, get_watcher


class Rm(Command):
    name = "rm"
    summary = "Remove a watcher"
    reference = """\
Remove a watcher from the arbiter. Its processes are stopped first, unless
nostop is true: they then keep running, no longer managed.

Message: {"command": "rm", "properties": {"name": NAME, "nostop": false, "waiting": false}}
Reply: ok (with waiting, once the watcher is stopped).

    gcircusctl rm [--nostop] [--waiting] <name>
"""
    properties = ("name",)
    waits = True
    read_only = False

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--nostop", action="store_true", help="leave the processes running")
        parser.add_argument("name", help="watcher to remove")

    def message(self, args):
        # Circus's circusctl drops --nostop and --waiting here; we send them.
        msg = super().message(args)
        msg["properties"]["name"] = args.name
        if args.nostop:
            msg["properties"]["nostop"] = True
        return msg

    def validate(self, props):
        super().validate(props)
        check_name(props)
        check_bool(props, "nostop")

    def execute(self, arbiter, props):
        watcher = get_watcher(arbiter, props["name"])

        def remove():
            arbiter.rm_watcher(watcher.name, nostop=props["nostop"])
        return Deferred(remove)


COMMAND = Rm()
