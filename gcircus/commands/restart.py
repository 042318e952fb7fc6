"""restart: restart every watcher, or those matching a name."""
from gcircus.commands._lifecycle import LifecycleCommand
from gcircus.commands.base import Deferred


class Restart(LifecycleCommand):
    name = "restart"
    summary = "Restart watchers"
    reference = """\
Restart the watchers whose name matches: stop them, then start them again.
Without a name the whole daemon restarts: one started from a configuration
file re-reads it and comes back in the same process (endpoints included);
otherwise every watcher is stopped and the autostart ones started again.

Message: {"command": "restart", "properties": {"name": NAME, "match": "glob", "waiting": false}}
Reply: ok; for one matching watcher with waiting,
       "info": {"stopped": [pids], "started": [pids], "kept": [pids]}.

    gcircusctl restart [<name>] [--match simple|glob|regex] [--waiting]
"""

    def execute(self, arbiter, props):
        watchers = self.selected(arbiter, props)
        if watchers is None:
            if arbiter.config_file is not None:
                # The arbiter closes its sockets: it restarts once the reply is out.
                return Deferred(finish=arbiter.restart)
            return Deferred(lambda: _restart_all(arbiter))
        if len(watchers) == 1:
            return Deferred(lambda: {"info": watchers[0].restart()})
        return Deferred(lambda: _restart_several(arbiter, watchers))


def _restart_all(arbiter):
    arbiter.stop_watchers()
    arbiter.start_watchers()


def _restart_several(arbiter, watchers):
    arbiter.stop_watchers(watchers, raise_error=True)
    arbiter.start_watchers(watchers)


COMMAND = Restart()
