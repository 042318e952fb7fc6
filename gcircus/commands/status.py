"""status: the state of one watcher or of all."""
from gcircus.commands.base import Command, check_name, get_watcher


class Status(Command):
    name = "status"
    instant = True
    summary = "Show the state of watchers"
    reference = """\
A watcher's state: active, stopped, starting, stopping, or backoff: active,
but its processes keep dying younger than min_uptime and the next respawn
waits for the backoff.

Message: {"command": "status", "properties": {"name": NAME}}
Reply: with a name, "status": STATE (it replaces "ok", as in Circus);
       without, "statuses": {name: STATE}. A watcher in backoff is also
       described in "backoff" ({"crashes", "spawn_failures", "delay",
       "retry_at", "retry_in"}; without a name, {name: that}).

    gcircusctl status [<name>]
"""
    optional_argument = ("name", "watcher (all if omitted)")

    def console(self, reply):
        if reply.get("status") == "error":
            return super().console(reply)   # Circus prints a bare "error" here; we keep the reason
        if "statuses" in reply:
            backoff = reply.get("backoff") or {}
            return "\n".join("%s: %s" % (name, _describe(state, backoff.get(name)))
                             for name, state in sorted(reply["statuses"].items()))
        return _describe(reply.get("status"), reply.get("backoff"))

    def validate(self, props):
        super().validate(props)
        check_name(props, required=False)

    def execute(self, arbiter, props):
        if props.get("name") is None:
            watchers = list(arbiter.watchers)
            reply = {"statuses": {w.name: w.status() for w in watchers}}
            backoff = {w.name: w.backoff() for w in watchers if w.backoff() is not None}
            if backoff:
                reply["backoff"] = backoff
            return reply
        watcher = get_watcher(arbiter, props["name"])
        reply = {"status": watcher.status()}
        if watcher.backoff() is not None:
            reply["backoff"] = watcher.backoff()
        return reply


def _describe(state, backoff):
    """`backoff (crash 5 in a row, next try in 3.2 s)` for a watcher in backoff, else the state."""
    if not backoff:
        return str(state)
    if backoff.get("crashes"):
        streak = "crash %d in a row" % backoff["crashes"]
    else:
        streak = "spawn failure %d in a row" % backoff.get("spawn_failures", 0)
    return "%s (%s, next try in %.1f s)" % (state, streak, backoff.get("retry_in", 0.0))


COMMAND = Status()
