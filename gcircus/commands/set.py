"""set: change options of a watcher.

Every accepted key is applied (Circus ignores several), each one
announced by an `updated` event; then the watcher manages its processes, or
reloads gracefully when a key needs new processes (cmd, env, uid...).
"""
from gcircus.commands.base import Command, Deferred, check_name, get_watcher, to_bool
from gcircus.exc import MessageError
from gcircus.commands.watcher_options import MANAGE, RELOAD, apply_options, watcher_lock

_INT_KEYS = ("numprocesses", "max_retry", "priority", "stdout_stream.max_bytes", "stderr_stream.max_bytes",
             "stdout_stream.backup_count", "stderr_stream.backup_count")
_FLOAT_KEYS = ("warmup_delay", "retry_in", "graceful_timeout", "max_age", "max_age_variance", "min_uptime",
               "backoff_base", "backoff_max")
_BOOL_KEYS = ("send_hup", "stop_children", "shell", "copy_env", "copy_path", "respawn", "singleton",
              "close_child_stdin", "close_child_stdout", "close_child_stderr", "use_sockets", "autostart")


def convert_option(key, value):
    """A command-line value as the JSON value `set` expects for key."""
    if key in _INT_KEYS or key.startswith("rlimit_"):
        return int(value)
    if key in _FLOAT_KEYS:
        return float(value)
    if key in _BOOL_KEYS:
        return to_bool(value, key)
    if key == "hooks":      # before_start:pkg.mod.fn,after_stop:pkg.mod.fn2
        pairs = [item.split(":", 1) for item in value.split(",") if item]
        if not all(len(pair) == 2 for pair in pairs):
            raise ValueError("hooks must be written name:dotted.name[,name:dotted.name...]")
        return dict(pairs)
    if key == "env":        # A=1,B=2 (Circus's circusctl crashes on this one)
        pairs = [item.split("=", 1) for item in value.split(",") if item]
        if not all(len(pair) == 2 for pair in pairs):
            raise ValueError("env must be written NAME=value[,NAME=value...]")
        return dict(pairs)
    return value


class Set(Command):
    name = "set"
    summary = "Change options of a watcher"
    reference = """\
Change options of a watcher. Keys: numprocesses, warmup_delay, working_dir,
uid, gid, send_hup, stop_signal, stop_children, shell, shell_args, env, cmd,
args, copy_env, copy_path, use_sockets, retry_in, max_retry, graceful_timeout,
max_age, max_age_variance, respawn, singleton, priority, autostart,
close_child_stdin/stdout/stderr, min_uptime, backoff_base, backoff_max,
hooks, hooks.<hook>, stdout_stream(.<key>), stderr_stream(.<key>), rlimit_<name>.
Keys that need new processes (cmd, args, env, uid, ...) reload a running watcher.

Message: {"command": "set", "properties": {"name": NAME, "options": {key: value},
          "waiting": false}}
Reply: ok (with waiting, once processes are managed or reloaded)

    gcircusctl set <name> <key> <value> [<key> <value>...] [--waiting]
"""
    properties = ("name", "options")
    waits = True
    read_only = False

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("name", help="watcher")
        parser.add_argument("pairs", nargs="+", metavar="key value", help="option names and values")

    def message(self, args):
        if len(args.pairs) % 2:
            raise ValueError("set takes key value pairs, got an odd number of words")
        options = {}
        for key, value in zip(args.pairs[::2], args.pairs[1::2]):
            options[key] = convert_option(key, value)
        msg = super().message(args)
        msg["properties"].update(name=args.name, options=options)
        return msg

    def validate(self, props):
        super().validate(props)
        check_name(props)
        if not isinstance(props["options"], dict):
            raise MessageError("message invalid: 'options' must be an object")

    def execute(self, arbiter, props):
        watcher = get_watcher(arbiter, props["name"])
        with watcher_lock(watcher):
            action = apply_options(watcher, props["options"])

        def follow_up():
            with watcher_lock(watcher):
                if action == RELOAD and not watcher.is_stopped():
                    watcher.reload(graceful=True)
                elif action >= MANAGE:
                    watcher.manage_processes(wait=props["waiting"])
        return Deferred(follow_up)


COMMAND = Set()
