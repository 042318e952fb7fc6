"""start: start every watcher, or those matching a name."""
from gcircus.commands._lifecycle import LifecycleCommand
from gcircus.commands.base import Deferred


class Start(LifecycleCommand):
    name = "start"
    summary = "Start watchers"
    reference = """\
Start the watchers whose name matches (all autostart watchers without a name).

Message: {"command": "start", "properties": {"name": NAME, "match": "glob", "waiting": false}}
  match: simple (exact), glob (default) or regex
Reply: ok; for one matching watcher with waiting, "info": {"started": [pids], "kept": [pids]}.

    gcircusctl start [<name>] [--match simple|glob|regex] [--waiting]
"""

    def execute(self, arbiter, props):
        watchers = self.selected(arbiter, props)
        if watchers is None:
            return Deferred(arbiter.start_watchers)
        if len(watchers) == 1:
            return Deferred(lambda: {"info": watchers[0].start()})
        return Deferred(lambda: arbiter.start_watchers(watchers))


COMMAND = Start()
