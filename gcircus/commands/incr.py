"""incr: add processes to a watcher.

Unlike Circus (a bare `ok` without waiting), the reply always carries the new
numprocesses; with waiting it comes once the surplus processes are stopped.
"""
from gcircus.commands.base import Command, check_name, convert, get_process_watcher
from gcircus.converters import to_nonneg_int


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
        # a negative decr would add processes (and a negative incr remove them)
        props["nb"] = convert("nb", props.get("nb", 1), to_nonneg_int)

    def execute(self, arbiter, props):
        watcher = get_process_watcher(arbiter, props["name"], self.name, resize=True)
        if watcher.singleton:
            return {"numprocesses": watcher.numprocesses, "singleton": True}
        resize = watcher.incr if self.sign > 0 else watcher.decr
        return {"numprocesses": resize(props["nb"], wait=props["waiting"])}


COMMAND = Incr()
