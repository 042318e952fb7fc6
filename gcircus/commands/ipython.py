"""ipython: Circus opens an IPython kernel inside the daemon; gcircus does not
(running arbitrary code in the supervisor is an attack surface)."""
from gcircus.commands.base import Command


class IPython(Command):
    name = "ipython"
    summary = "Open a Python shell in the daemon (not available)"
    reference = """\
Circus starts an IPython kernel inside the daemon. gcircus answers that no
shell is available.

Message: {"command": "ipython"}
Reply: "shell": false, "msg": the reason

    gcircusctl ipython
"""

    def console(self, reply):
        if reply.get("status") == "error":
            return super().console(reply)
        return "error: %s" % reply.get("msg") if not reply.get("shell") else str(reply.get("shell"))

    def execute(self, arbiter, props):
        return {"shell": False, "msg": "ipython is not available in gcircus"}


COMMAND = IPython()
