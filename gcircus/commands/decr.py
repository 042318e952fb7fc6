"""decr: remove processes from a watcher, never below 0."""
from gcircus.commands.incr import Incr


class Decr(Incr):
    name = "decr"
    summary = "Remove processes from a watcher"
    sign = -1
    reference = """\
Remove nb processes (default 1) from a watcher; the count stops at 0. The
oldest processes are stopped first, as in Circus.

Message: {"command": "decr", "properties": {"name": NAME, "nb": 1, "waiting": false}}
Reply: "numprocesses": the new configured count (with "singleton": true, unchanged,
       for a singleton watcher).

    gcircusctl decr <name> [<nb>] [--waiting]
"""


COMMAND = Decr()
