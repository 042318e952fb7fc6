"""The wire commands, one module each (the module name is the wire name), and
their registry: Circus's 25 commands, and `health` (ours: the probe answer)."""
import importlib

NAMES = (
    "add", "decr", "dstats", "get", "globaloptions", "health", "incr", "ipython", "kill", "list", "listen",
    "listsockets", "numprocesses", "numwatchers", "options", "quit", "reload", "reloadconfig",
    "restart", "rm", "set", "signal", "start", "stats", "status", "stop",
)

_registry = {}


def get_commands():
    """{name: Command instance} for every wire command (imported on first use)."""
    if not _registry:
        for name in NAMES:
            module = importlib.import_module("gcircus.commands." + name)
            _registry[name] = module.COMMAND
    return _registry


def get_command(name):
    """The Command called name, or None."""
    return get_commands().get(name)
