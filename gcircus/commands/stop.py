"""stop: stop every watcher, or those matching a name."""
import gevent

from gcircus.commands._lifecycle import LifecycleCommand
from gcircus.commands.base import Deferred, check_type
from gcircus.exc import MessageError


class Stop(LifecycleCommand):
    name = "stop"
    summary = "Stop watchers"
    reference = """\
Stop the watchers whose name matches (every watcher without a name): each
process gets its stop signal, then SIGKILL after graceful_timeout.

Message: {"command": "stop", "properties": {"name": NAME, "match": "glob", "waiting": false}}
Reply: ok; for one matching watcher with waiting, "info": null once it is stopped.

A supervising plugin that stops a watcher because it cannot be kept up (Flapping
after its last retry) adds "gave_up": REASON: the watcher's health then says so,
and a critical watcher stops the daemon.

    gcircusctl stop [<name>] [--match simple|glob|regex] [--waiting]
"""

    def validate(self, props):
        super().validate(props)
        if check_type(props, "gave_up", str, "a string (why the watcher is given up)") is not None \
                and props.get("name") is None:
            raise MessageError("message invalid: 'gave_up' needs the 'name' of the watcher given up")

    def execute(self, arbiter, props):
        watchers = self.selected(arbiter, props)
        if watchers is None:
            return Deferred(arbiter.stop_watchers)
        gave_up = props.get("gave_up")
        if gave_up is not None:
            return Deferred(lambda: _give_up(watchers, gave_up))
        if len(watchers) == 1:
            return Deferred(lambda: _stop_one(watchers[0]))
        return Deferred(lambda: arbiter.stop_watchers(watchers, raise_error=True))


def _give_up(watchers, reason):
    """Stop each for good (Watcher.give_up), all at once; returns when every one has stopped."""
    gevent.joinall([gevent.spawn(watcher.give_up, reason) for watcher in watchers], raise_error=True)


def _stop_one(watcher):
    watcher.stop()
    return {"info": None}   # Circus's reply shape: the stop carries no details


COMMAND = Stop()
