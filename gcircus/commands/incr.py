"""incr: add processes to a watcher.

Unlike Circus (a bare `ok` without waiting), the reply always carries the new
numprocesses; with waiting it comes once the surplus processes are stopped.
"""
from gcircus.commands.base import Command, check_name, get_watcher, to_int
from gcircus.exc import MessageError


class Incr(Command):
    name = "incr"
    summary = "Add processes to a watcher"
    sign = 1
    reference = """\
Add nb processes (default 1) to a watcher.

Message: {"command": "incr", "properties": {"name": NAME, "nb": 1, "waiting": false}}
Reply: "numprocesses": the new configured count (with "singleton": true, unchanged,
       for a singleton watcher).

    gcircusctl incr <name> [<nb>] [--waiting]
"""
    properties = ("name",)
    waits = True
    read_only = False

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("name", help="watcher")
        parser.add_argument("nb", nargs="?", type=int, default=1, help="how many (default 1)")

    def message(self, args):
        msg = super().message(args)
        msg["properties"].update(name=args.name, nb=args.nb)
        return msg

    def console(self, reply):
        if reply.get("status") == "error" or "numprocesses" not in reply:
            return super().console(reply)
        if reply.get("singleton"):
            return "singleton watcher: numprocesses stays %s" % reply["numprocesses"]
        return str(reply["numprocesses"])

    def validate(self, props):
        super().validate(props)
        check_name(props)
        props["nb"] = to_int(props.get("nb", 1), "nb")
        if props["nb"] < 0:
            # a negative decr would add processes (and a negative incr remove them)
            raise MessageError("message invalid: 'nb' must not be negative, not %d" % props["nb"])

    def execute(self, arbiter, props):
        watcher = get_watcher(arbiter, props["name"])
        if watcher.singleton:
            return {"numprocesses": watcher.numprocesses, "singleton": True}
        resize = watcher.incr if self.sign > 0 else watcher.decr
        return {"numprocesses": resize(props["nb"], wait=props["waiting"])}


COMMAND = Incr()
