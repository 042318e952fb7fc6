"""listsockets: the arbiter's listening sockets."""
from gcircus.commands.base import Command
from gcircus.sockets.usage import describe_sockets


class ListSockets(Command):
    name = "listsockets"
    instant = True
    summary = "List the arbiter's sockets"
    reference = """\
The sockets the arbiter holds for its watchers, sorted by file descriptor.

Message: {"command": "listsockets"}
Reply: "sockets": [{"fd", "name", "backlog", "host", "port"} or {"fd", "name", "backlog", "path"}]

    gcircusctl listsockets
"""

    def console(self, reply):
        if reply.get("status") == "error":
            return super().console(reply)
        lines = []
        for sock in reply.get("sockets", []):
            where = sock["path"] if "path" in sock else "%s:%s" % (sock.get("host"), sock.get("port"))
            lines.append("%s:socket '%s' at %s" % (sock.get("fd"), sock.get("name"), where))
        return "\n".join(lines)

    def execute(self, arbiter, props):
        return {"sockets": describe_sockets(arbiter.sockets)}


COMMAND = ListSockets()
