"""status: the state of one watcher or of all."""
from gcircus.commands.base import Command, check_name, get_watcher


class Status(Command):
    name = "status"
    instant = True
    summary = "Show the state of watchers"
    reference = """\
A watcher's state: active, stopped, starting or stopping.

Message: {"command": "status", "properties": {"name": NAME}}
Reply: with a name, "status": STATE (it replaces "ok", as in Circus);
       without, "statuses": {name: STATE}.

    gcircusctl status [<name>]
"""
    optional_argument = ("name", "watcher (all if omitted)")

    def console(self, reply):
        if reply.get("status") == "error":
            return super().console(reply)   # Circus prints a bare "error" here; we keep the reason
        if "statuses" in reply:
            return "\n".join("%s: %s" % (name, state) for name, state in sorted(reply["statuses"].items()))
        return str(reply.get("status"))

    def validate(self, props):
        super().validate(props)
        check_name(props, required=False)

    def execute(self, arbiter, props):
        if props.get("name") is None:
            return {"statuses": {w.name: w.status() for w in arbiter.watchers}}
        return {"status": get_watcher(arbiter, props["name"]).status()}


COMMAND = Status()
