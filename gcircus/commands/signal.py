"""signal: send a signal to a watcher's processes or their children.

Unknown signal names are errno 3 (Circus: errno 5 with a traceback; a bad name is bad input).
"""
import psutil

from gcircus.commands.base import Command, check_bool, check_name, convert, convert_property, get_process_watcher
from gcircus.converters import to_int, to_signum
from gcircus.exc import MessageError


class Signal(Command):
    name = "signal"
    summary = "Send a signal to processes"
    reference = """\
Send a signal to every process of a watcher, or to one (pid). With childpid,
only that direct child of pid; with children, the direct children of each
target instead of the target; with recursive, the targets and all their
descendants. A pid that is not the watcher's is an error (as for kill; Circus
answered ok and did nothing).

Message: {"command": "signal", "properties": {"name": NAME, "signum": "HUP" | 1,
          "pid": PID, "childpid": PID, "children": false, "recursive": false}}
  signum: a number, or a name with or without SIG, any case (e.g. "hup", "SIGRTMIN+1")
Reply: ok

    gcircusctl signal <name> [<pid>] <signum> [--children] [--recursive] [--childpid PID]
"""
    properties = ("name", "signum")
    read_only = False

    def add_arguments(self, parser):
        parser.add_argument("name", help="watcher")
        parser.add_argument("target", nargs="+", metavar="[pid] signum", help="optional pid, then the signal")
        parser.add_argument("--children", action="store_true", help="signal the children of the processes")
        parser.add_argument("--recursive", action="store_true", help="signal the processes and all descendants")
        parser.add_argument("--childpid", type=int, help="only this direct child of <pid>")

    def message(self, args):
        if len(args.target) > 2:
            raise ValueError("signal takes [pid] signum, got %s" % " ".join(args.target))
        msg = super().message(args)
        props = msg["properties"]
        props.update(name=args.name, signum=args.target[-1])
        if len(args.target) == 2:
            props["pid"] = int(args.target[0])
        if args.childpid is not None:
            props["childpid"] = args.childpid
        if args.children:
            props["children"] = True
        if args.recursive:
            props["recursive"] = True
        return msg

    def validate(self, props):
        super().validate(props)
        check_name(props)
        props["signum"] = convert("signum", props["signum"], to_signum)
        for key in ("pid", "childpid"):
            convert_property(props, key, to_int)
        check_bool(props, "children")
        check_bool(props, "recursive")
        if props.get("childpid") is not None and props.get("pid") is None:
            raise MessageError("message invalid: 'childpid' needs 'pid'")

    def execute(self, arbiter, props):
        watcher = get_process_watcher(arbiter, props["name"], "signal")
        if props.get("pid") is not None:
            targets = [props["pid"]]
        else:
            targets = [p.pid for p in list(watcher.processes.values()) if p.is_alive()]
        if props.get("pid") is not None and props["pid"] not in watcher.processes:
            raise MessageError("process %s not found in %s" % (props["pid"], props["name"]))
        for pid in targets:
            if pid in watcher.processes:    # (one that exited since the list was taken is skipped)
                _signal_target(watcher, pid, props)
        return None


def _signal_target(watcher, pid, props):
    signum = props["signum"]
    if props.get("childpid") is not None:
        try:
            watcher.send_signal_child(pid, props["childpid"], signum)
        except psutil.NoSuchProcess:
            raise MessageError("process %s has no child %s" % (pid, props["childpid"])) from None
    elif props["children"]:
        watcher.send_signal_children(pid, signum, recursive=props["recursive"])
    else:
        watcher.send_signal(pid, signum)
        if props["recursive"]:
            watcher.send_signal_children(pid, signum, recursive=True)


COMMAND = Signal()
