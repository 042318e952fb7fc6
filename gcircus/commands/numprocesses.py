"""numprocesses: processes of one watcher or of all."""
from gcircus.commands.base import Command, check_name, get_watcher


class NumProcesses(Command):
    name = "numprocesses"
    instant = True
    summary = "Count the processes"
    reference = """\
The number of processes a watcher tracks (all watchers without a name).

Message: {"command": "numprocesses", "properties": {"name": NAME}}
Reply: "numprocesses": N (and "watcher_name", echoing the name asked for)

    gcircusctl numprocesses [<name>]
"""
    optional_argument = ("name", "watcher (all if omitted)")

    def console(self, reply):
        if reply.get("status") == "error" or "numprocesses" not in reply:
            return super().console(reply)
        return str(reply["numprocesses"])

    def validate(self, props):
        super().validate(props)
        check_name(props, required=False)

    def execute(self, arbiter, props):
        if props.get("name") is None:
            return {"numprocesses": arbiter.numprocesses()}
        watcher = get_watcher(arbiter, props["name"])
        return {"numprocesses": len(watcher.processes), "watcher_name": props["name"]}


COMMAND = NumProcesses()
