"""listsockets: the arbiter's listening sockets."""
import socket

from gcircus.commands.base import Command


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
        described = [_describe(sock) for sock in (arbiter.sockets or {}).values()]
        return {"sockets": sorted(described, key=lambda s: (s["fd"] is None, s["fd"] or 0))}


def _describe(sock):
    try:
        fd = sock.fileno()
    except (OSError, ValueError):
        fd = None
    entry = {"fd": fd, "name": sock.name, "backlog": getattr(sock, "backlog", None)}
    path = getattr(sock, "path", None)
    if path or getattr(sock, "family", None) == getattr(socket, "AF_UNIX", None):
        entry["path"] = path
    else:
        entry["host"] = getattr(sock, "host", None)
        entry["port"] = getattr(sock, "port", None)
    return entry


COMMAND = ListSockets()
