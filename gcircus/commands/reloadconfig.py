"""reloadconfig: re-read the configuration file and apply the differences."""
from gcircus.commands.base import Command, Deferred
from gcircus.exc import MessageError


class ReloadConfig(Command):
    name = "reloadconfig"
    summary = "Re-read the configuration file and apply the changes"
    reference = """\
Re-read the configuration file the daemon was started with and apply what
changed: watchers, sockets and plugins added, removed or changed.

Message: {"command": "reloadconfig", "properties": {"waiting": false}}
Reply: ok (with waiting, once applied); an error when the arbiter was not
started from a configuration file, or when the file cannot be read or has a
broken section: then nothing is changed (without waiting the client already
has its ok, and the refusal is in the daemon's log).

    gcircusctl reloadconfig [--waiting]
"""
    waits = True
    read_only = False

    def execute(self, arbiter, props):
        # Checked before the reply, so the client hears about it (errno 3).
        if arbiter.config_file is None:
            raise MessageError("reloadconfig: this arbiter was not started from a configuration "
                               "file, there is nothing to re-read")

        def reload():
            arbiter.reload_from_config()
        return Deferred(reload)


COMMAND = ReloadConfig()
