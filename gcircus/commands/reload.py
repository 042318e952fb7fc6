"""reload: replace the processes of one watcher or of all."""
from gcircus.commands.base import Command, Deferred, check_bool, check_name, get_watcher


class Reload(Command):
    name = "reload"
    summary = "Replace the processes of a watcher, or of all"
    reference = """\
Reload a watcher (every watcher without a name, by priority). A graceful
reload starts the new processes before stopping the old ones (or sends SIGHUP
with send_hup); sequential replaces them one at a time; graceful=false is a
restart.

Message: {"command": "reload", "properties": {"name": NAME, "graceful": true,
          "sequential": false, "waiting": false}}
Reply: ok; for a named watcher with waiting,
       "info": {"stopped": [pids], "started": [pids], "kept": [pids]}.

    gcircusctl reload [<name>] [--terminate] [--sequential] [--waiting]
"""
    waits = True
    read_only = False

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("name", nargs="?", help="watcher to reload (all if omitted)")
        parser.add_argument("--terminate", action="store_true", help="stop then start (not graceful)")
        parser.add_argument("--sequential", action="store_true", help="replace one process at a time")

    def message(self, args):
        msg = super().message(args)
        props = msg["properties"]
        if args.name:
            props["name"] = args.name
        props.update(graceful=not args.terminate, sequential=args.sequential)
        return msg

    def validate(self, props):
        super().validate(props)
        check_name(props, required=False)
        check_bool(props, "graceful", default=True)
        check_bool(props, "sequential")

    def execute(self, arbiter, props):
        graceful, sequential = props["graceful"], props["sequential"]
        if props.get("name") is None:
            return Deferred(lambda: arbiter.reload(graceful=graceful, sequential=sequential))
        watcher = get_watcher(arbiter, props["name"])
        return Deferred(lambda: {"info": watcher.reload(graceful=graceful, sequential=sequential)})


COMMAND = Reload()
