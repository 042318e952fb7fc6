"""What start, stop and restart share: choosing watchers by name and match method
(the arbiter starts and stops several watchers by priority: Arbiter.start_watchers and
Arbiter.stop_watchers)."""
from gcircus.commands.base import MATCH_METHODS, Command, check_name, check_type, match_watchers


class LifecycleCommand(Command):
    """A command on all watchers, or those whose name matches `name` (glob by default)."""

    waits = True
    read_only = False

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("name", nargs="?", help="watcher name or pattern (all watchers if omitted)")
        parser.add_argument("--match", choices=MATCH_METHODS, default="glob",
                            help="how name is matched (default: glob)")

    def message(self, args):
        msg = super().message(args)
        if args.name:
            msg["properties"].update(name=args.name, match=args.match)
        return msg

    def validate(self, props):
        super().validate(props)
        check_name(props, required=False)
        check_type(props, "match", str, "a string")

    def selected(self, arbiter, props):
        """None for every watcher, else the matching watchers by priority (errno 3 if none)."""
        if props.get("name") is None:
            return None
        return match_watchers(arbiter, props["name"], props.get("match") or "glob")
