"""stop: stop every watcher, or those matching a name."""
from gcircus.commands._lifecycle import LifecycleCommand
from gcircus.commands.base import Deferred


class Stop(LifecycleCommand):
    name = "stop"
    summary = "Stop watchers"
    reference = """\
Stop the watchers whose name matches (every watcher without a name): each
process gets its stop signal, then SIGKILL after graceful_timeout.

Message: {"command": "stop", "properties": {"name": NAME, "match": "glob", "waiting": false}}
Reply: ok; for one matching watcher with waiting, "info": null once it is stopped.

    gcircusctl stop [<name>] [--match simple|glob|regex] [--waiting]
"""

    def execute(self, arbiter, props):
        watchers = self.selected(arbiter, props)
        if watchers is None:
            return Deferred(arbiter.stop_watchers)
        if len(watchers) == 1:
            return Deferred(lambda: _stop_one(watchers[0]))
        return Deferred(lambda: arbiter.stop_watchers(watchers, raise_error=True))


def _stop_one(watcher):
    watcher.stop()
    return {"info": None}   # Circus's reply shape: the stop carries no details


COMMAND = Stop()
