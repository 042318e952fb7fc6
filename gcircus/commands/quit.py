"""quit: stop every watcher, then the arbiter."""
from gcircus.commands.base import Command, Deferred


class Quit(Command):
    name = "quit"
    summary = "Stop every watcher, then the daemon"
    reference = """\
Stop every watcher (gracefully), then the arbiter itself; the daemon exits.

Message: {"command": "quit", "properties": {"waiting": false}}
Reply: ok (with waiting, once every watcher is stopped); the reply always
       leaves before the daemon closes its sockets.

    gcircusctl quit [--waiting]
"""
    waits = True
    read_only = False
    stops_arbiter = True

    def execute(self, arbiter, props):
        # stop_watchers runs in the request; arbiter.stop (which closes the controller)
        # runs in its own greenlet once the reply is out.
        arbiter.begin_stopping()
        return Deferred(arbiter.stop_watchers, finish=arbiter.stop)


COMMAND = Quit()
