"""list: the watchers' names, or one watcher's live pids."""
from gcircus.commands.base import Command, check_name, get_watcher


class List(Command):
    name = "list"
    instant = True
    summary = "List the watchers, or the pids of one watcher"
    reference = """\
Without a name: the names of all watchers, sorted and lower-cased.
With a name: the pids of that watcher's running processes.

Message: {"command": "list", "properties": {"name": NAME}}
Reply: "watchers": [names]  or  "pids": [pids]

    gcircusctl list [<name>]
"""
    optional_argument = ("name", "watcher whose pids to list")

    def console(self, reply):
        if reply.get("status") == "error":
            return super().console(reply)
        if "pids" in reply:
            return ",".join(str(pid) for pid in reply["pids"])
        return ",".join(reply.get("watchers", []))

    def validate(self, props):
        super().validate(props)
        check_name(props, required=False)

    def execute(self, arbiter, props):
        if props.get("name") is None:
            return {"watchers": sorted(w.name.lower() for w in arbiter.watchers)}
        watcher = get_watcher(arbiter, props["name"])
        return {"pids": [p.pid for p in list(watcher.processes.values()) if p.is_alive()]}


COMMAND = List()
