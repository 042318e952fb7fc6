"""The wire commands, one module each (the module name is the wire name), and
their registry: Circus's 25 commands, and `health` (ours: the probe answer)."""
import importlib

NAMES = (
    "add", "decr", "dstats", "get", "globaloptions", "health", "incr", "ipython", "kill", "list", "listen",
    "listsockets", "numprocesses", "numwatchers", "options", "quit", "reload", "reloadconfig",
    "restart", "rm", "set", "signal", "start", "stats", "status", "stop",
)

_registry = {}


def get_command(name):
    """The Command called name, or None. Its module is imported on first use, and only it: a daemon
    answering `status` does not hold `signal` and `dstats` (and the psutil they import) in memory."""
    command = _registry.get(name)
    if command is None and name in NAMES:
        command = _registry[name] = importlib.import_module("gcircus.commands." + name).COMMAND
    return command


def get_commands():
    """{name: Command instance} for every wire command."""
    return {name: get_command(name) for name in NAMES}
