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
broken section (every problem is listed): then nothing is changed. The file
is checked before the reply, with or without waiting; a watcher that cannot
be built when the changes are applied also refuses the whole file (without
waiting that refusal is in the daemon's log).

    gcircusctl reloadconfig [--waiting]
"""
    waits = True
    read_only = False

    def execute(self, arbiter, props):
        # Checked before the reply, so the client hears about it (errno 3).
        if arbiter.config_file is None:
            raise MessageError("reloadconfig: this arbiter was not started from a configuration "
                               "file, there is nothing to re-read")

        config = arbiter.config_source.check()     # a broken file gets an error reply, not "ok"

        def reload():
            arbiter.reload_from_config(config)
        return Deferred(reload)


COMMAND = ReloadConfig()
