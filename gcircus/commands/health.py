"""health: is the daemon healthy (gcircus.hosting.health), for container and Kubernetes probes."""
from gcircus.commands.base import Command
from gcircus.hosting.health import health

# gcircusctl health's exit status when the daemon answers "unhealthy" (1: no answer, 3: an error reply)
EXIT_UNHEALTHY = 4


class Health(Command):
    name = "health"
    instant = True
    summary = "Say whether the daemon and its watchers are healthy (exit 0) or not (exit 4)"
    reference = """\
Healthy: the daemon serves and no watcher gave up (stopped for good by
max_retry or the Flapping plugin) or is backing off (crash-looping, or failing
to spawn). Watchers stopped on request are healthy.

Message: {"command": "health", "properties": {}}
Reply: "healthy": true|false, "problems": [text], "watchers": {name: "ok" or the problem}

gcircusctl health exits 0 when healthy, 4 when unhealthy (the problems on
stdout), 1 when the daemon does not answer, 3 on an error reply.

    gcircusctl health
"""

    def console(self, reply):
        if reply.get("status") == "error":
            return super().console(reply)
        if reply.get("healthy"):
            return "healthy"
        return "\n".join(["unhealthy"] + ["  %s" % problem for problem in reply.get("problems", [])])

    def exit_status(self, reply):
        return 0 if reply.get("healthy") else EXIT_UNHEALTHY

    def execute(self, arbiter, props):
        return health(arbiter)


COMMAND = Health()
