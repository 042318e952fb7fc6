"""The launch of a watcher's next process, worked out before it is needed.

On a respawn, what the hub does between the kernel's exit report and the replacement's fork is the latency
users see. Building a Process first (its options, working directory, argv) and then converting them for the C
spawn helper (argv to bytes, PATH lookup, environment to a list, identity) cost more on that path than the fork
itself. So after a spawn the watcher keeps a ReadyLaunch: the spawner's Launch of the same command with the same
options. The next spawn forks it at once and builds the Process around the child afterwards.

A ReadyLaunch holds only while what it was made from is unchanged: it keeps a copy of the watcher's options
that go into a process, and a spawn compares them first (one C-level attribute fetch and tuple comparison; maps
and lists are compared by value, so an option changed in place counts too). With no working_dir set, a process
runs in the daemon's current directory: the launch is taken only while the daemon is still in the directory it
was made in. Watchers whose argv differs from one process to the next (`$(circus.*)` variables), that hand
sockets to their processes (a fresh socket per process with so_reuseport) or that use their own process class
always take the ordinary path.
"""
import operator
import os

from gcircus.process import Process
from gcircus.supervision import cmdline

#: The watcher attributes a process's command and options come from.
_INPUTS = operator.attrgetter(
    "cmd", "args", "shell", "shell_args", "working_dir", "uid", "gid", "child_env", "rlimits", "executable",
    "use_sockets", "sockets", "stdin_socket", "close_child_stdin", "close_child_stdout", "close_child_stderr",
    "die_with_daemon", "process_class", "name", "streams.stdout", "streams.stderr")


def _snapshot(inputs):
    """inputs with their maps and lists copied: compared later by value, not against themselves."""
    return tuple(type(value)(value) if type(value) in (dict, list) else value for value in inputs)


class ReadyLaunch:
    """A prepared spawn: `launch` (a spawner Launch) and `options`, the keywords of the Process it becomes."""

    __slots__ = ("inputs", "launch", "options", "cwd")

    def __init__(self, inputs, launch, options, cwd):
        self.inputs = inputs
        self.launch = launch
        self.options = options
        self.cwd = cwd      # the daemon's directory it was made in, when no working_dir is set; else None

    def fits(self, watcher):
        """Whether this launch still is exactly what an ordinary spawn of watcher would start."""
        return _INPUTS(watcher) == self.inputs and (self.cwd is None or os.getcwd() == self.cwd)


def prepare_from(watcher, process, options):
    """The ReadyLaunch repeating process (just spawned by watcher with the Process keywords `options`), or None
    when the next process of watcher may differ from it in more than its wid and pid."""
    if (watcher.sockets or type(process) is not Process or watcher.process_class is not Process
            or cmdline.static_argv(watcher.cmd, watcher.args, watcher.shell, watcher.shell_args) is None):
        return None
    inputs = _snapshot(_INPUTS(watcher))
    options = dict(options, working_dir=process.working_dir)    # resolved once, not at every spawn
    return ReadyLaunch(inputs, process.prepare_launch(), options,
                       os.getcwd() if watcher.working_dir is None else None)
