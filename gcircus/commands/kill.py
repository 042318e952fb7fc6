"""kill: stop processes the way a watcher stop does, then replace them."""
import gevent

from gcircus.commands.base import Command, Deferred, check_name, convert_property, get_process_watcher
from gcircus.converters import to_duration, to_int, to_signum
from gcircus.exc import MessageError


class Kill(Command):
    name = "kill"
    summary = "Stop processes and let their watcher replace them"
    reference = """\
Stop the processes of a watcher (or one, pid): the stop signal (or signum),
then SIGKILL to the process tree after graceful_timeout. The watcher then
starts replacements, so kill amounts to restarting those processes.

Message: {"command": "kill", "properties": {"name": NAME, "pid": PID, "signum": "TERM",
          "graceful_timeout": 30, "waiting": false}}
Reply: ok (with waiting, once the processes are gone)

    gcircusctl kill <name> [<pid>] [--signum SIG] [--graceful_timeout SECONDS] [--waiting]
"""
    properties = ("name",)
    waits = True
    read_only = False

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("name", help="watcher")
        parser.add_argument("pid", nargs="?", type=int, help="only this process")
        parser.add_argument("--signum", help="signal to send instead of the stop signal")
        parser.add_argument("--graceful_timeout", type=float, help="seconds before SIGKILL")

    def message(self, args):
        msg = super().message(args)
        props = msg["properties"]
        props["name"] = args.name
        for key in ("pid", "signum", "graceful_timeout"):
            if getattr(args, key) is not None:
                props[key] = getattr(args, key)
        return msg

    def validate(self, props):
        super().validate(props)
        check_name(props)
        convert_property(props, "pid", to_int)
        convert_property(props, "signum", to_signum)
        convert_property(props, "graceful_timeout", to_duration)

    def execute(self, arbiter, props):
        watcher = get_process_watcher(arbiter, props["name"], "kill")
        if props.get("pid") is not None:
            process = watcher.processes.get(props["pid"])
            if process is None:
                raise MessageError("process %s not found in %s" % (props["pid"], props["name"]))
            processes = [process]
        else:
            processes = [p for p in list(watcher.processes.values()) if p.is_alive()]

        def kill_all():
            jobs = [gevent.spawn(_kill_and_replace, watcher, process, props) for process in processes]
            gevent.joinall(jobs, raise_error=True)
        return Deferred(kill_all)


def _kill_and_replace(watcher, process, props):
    watcher.kill_process(process, props.get("signum"), props.get("graceful_timeout"))
    watcher.manage_processes()


COMMAND = Kill()
