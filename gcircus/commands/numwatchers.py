"""numwatchers: how many watchers the arbiter has."""
from gcircus.commands.base import Command


class NumWatchers(Command):
    name = "numwatchers"
    instant = True
    summary = "Count the watchers"
    reference = """\
The number of watchers.

Message: {"command": "numwatchers"}
Reply: "numwatchers": N

    gcircusctl numwatchers
"""

    def console(self, reply):
        if reply.get("status") == "error" or "numwatchers" not in reply:
            return super().console(reply)
        return str(reply["numwatchers"])

    def execute(self, arbiter, props):
        return {"numwatchers": arbiter.numwatchers()}


COMMAND = NumWatchers()
