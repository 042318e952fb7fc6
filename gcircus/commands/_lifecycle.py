"""What start, stop and restart share: choosing watchers by name and match
method, and the arbiter-level variants for several watchers."""
import gevent

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


def start_several(arbiter, watchers):
    """One after another, highest priority first, with the arbiter's warmup_delay between."""
    for index, watcher in enumerate(sorted(watchers, key=lambda w: w.priority, reverse=True)):
        if index and arbiter.warmup_delay > 0:
            gevent.sleep(arbiter.warmup_delay)
        watcher.start()


def stop_several(watchers):
    """All at once (initiated lowest priority first); returns when every one has stopped."""
    jobs = [gevent.spawn(w.stop) for w in sorted(watchers, key=lambda w: w.priority)]
    gevent.joinall(jobs, raise_error=True)
