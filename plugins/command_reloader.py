"""CommandReloader: restarts a watcher when its executable changes on disk
(Circus's plugin of the same name).

Option: loop_rate (1 s).

Every loop_rate seconds: `list` (plugins skipped), then for each watcher `get
cmd`; the executable is the command's first word, looked up on the daemon's
PATH when it has no slash; its real path and mtime are remembered, and when
either changed since the previous loop the watcher is restarted. Circus's
plugin took the whole command line for a path, so a command with arguments
broke it; here a watcher whose executable cannot be found is skipped.
"""
import logging
import os
import shlex
import shutil

from gcircus.plugin import CircusPlugin

logger = logging.getLogger("gcircus")


def executable_of(cmd):
    """The real path of the program cmd runs, or None when it cannot be found."""
    try:
        words = shlex.split(cmd)
    except ValueError:
        words = cmd.split()
    if not words:
        return None
    program = words[0] if "/" in words[0] else shutil.which(words[0])
    if program is None or not os.path.exists(program):
        return None
    return os.path.realpath(program)


class CommandReloader(CircusPlugin):
    name = "command_reloader"

    def __init__(self, *args, **config):
        super().__init__(*args, **config)
        self.loop_rate = float(self.config.get("loop_rate", 1))
        self.cmd_files = {}     # watcher -> {"path": real path, "mtime": its mtime}

    def handle_init(self):
        self.periodic(self.loop_rate, self.look_after)     # stops with the plugin

    def handle_recv(self, data):
        """Events are not needed: the binaries are checked on the timer."""

    def is_modified(self, watcher, mtime, path):
        known = self.cmd_files.get(watcher)
        return known is not None and (known["mtime"] != mtime or known["path"] != path)

    def look_after(self):
        watchers = [name for name in self.call("list").get("watchers", []) if not name.startswith("plugin:")]
        for name in list(self.cmd_files):
            if name not in watchers:
                del self.cmd_files[name]
        for name in watchers:
            options = self.call("get", name=name, keys=["cmd"]).get("options") or {}
            path = executable_of(options.get("cmd") or "")
            if path is None:
                self.cmd_files.pop(name, None)
                continue
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue
            if self.is_modified(name, mtime, path):
                logger.info("command_reloader: %s changed, restarting watcher %s", path, name)
                self.call("restart", name=name)
            self.cmd_files[name] = {"path": path, "mtime": mtime}
