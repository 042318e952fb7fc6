"""listen: events are not served on the command socket.

`gcircusctl listen` subscribes to the pub/sub endpoint instead (gcircus.cli).
"""
from gcircus.commands.base import Command
from gcircus.exc import MessageError


class Listen(Command):
    name = "listen"
    summary = "Print the events the daemon publishes"
    reference = """\
Print the events published on the pub/sub endpoint (default
tcp://127.0.0.1:5556), optionally only those whose topic starts with one of
the given prefixes, e.g. watcher.web. or watcher.web.spawn. Runs until
interrupted. Each event is printed as  b'<topic>': b'<json body>'.

Sent to the command socket, listen is answered with an error.

    gcircusctl [--endpoint PUBSUB] listen [<topic>...]
"""

    def add_arguments(self, parser):
        parser.add_argument("topics", nargs="*", help="topic prefixes (all events if omitted)")

    def execute(self, arbiter, props):
        raise MessageError("invalid message. use a pub/sub socket")


COMMAND = Listen()
