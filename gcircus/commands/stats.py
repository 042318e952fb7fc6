"""stats: process information of the watchers (per process, with extended hook data when asked)."""
from gcircus.commands.base import Command, check_bool, check_name, convert_property, get_watcher
from gcircus.converters import to_int
from gcircus.exc import MessageError
from gcircus.supervision.hooks import call_extended_stats
from gcircus.supervision.sampler import ProcTable

_FIELDS = ("cmdline", "username", "nice", "mem_info1", "mem_info2", "cpu", "mem", "ctime")


class Stats(Command):
    name = "stats"
    summary = "Show process information"
    reference = """\
Process information (cpu, memory, age, wid, children...) of every watcher,
of one watcher, or of one of its processes. extended also calls the
watcher's extended_stats hook for each process.

Message: {"command": "stats", "properties": {"name": NAME, "process": PID, "extended": false}}
Reply: without name, "infos": {watcher: {pid: info}} and "backoff": {watcher:
       backoff} for the watchers that wait to respawn a crash loop (see status);
       with name, "name" and "info": {pid: info}, and "backoff" while the watcher
       waits; with process, "process" and "info": info.

    gcircusctl stats [--extended] [<name> [<pid>]]
"""

    def add_arguments(self, parser):
        parser.add_argument("--extended", action="store_true", help="include the extended_stats hook's data")
        parser.add_argument("name", nargs="?", help="watcher")
        parser.add_argument("process", nargs="?", type=int, help="one process of the watcher")

    def message(self, args):
        msg = super().message(args)
        props = msg["properties"]
        if args.name:
            props["name"] = args.name
        if args.process is not None:
            props["process"] = args.process
        if args.extended:
            props["extended"] = True
        return msg

    def console(self, reply):
        if reply.get("status") == "error":
            return super().console(reply)
        if "infos" in reply:
            backoff = reply.get("backoff") or {}
            return "\n".join(_format_watcher(name, infos) + _format_backoff(backoff.get(name))
                             for name, infos in sorted(reply["infos"].items()))
        if "process" in reply:
            return _format_process(reply["info"])
        return _format_watcher(reply.get("name"), reply.get("info") or {}) + _format_backoff(reply.get("backoff"))

    def validate(self, props):
        super().validate(props)
        check_name(props, required=False)
        check_bool(props, "extended")
        convert_property(props, "process", to_int)

    def execute(self, arbiter, props):
        if props.get("name") is None:
            table = ProcTable()     # one /proc scan for every watcher
            watchers = list(arbiter.watchers)
            reply = {"infos": {w.name: w.info(table) for w in watchers}}
            backoff = {w.name: w.backoff() for w in watchers if w.backoff() is not None}
            if backoff:
                reply["backoff"] = backoff      # as status: the watchers waiting to respawn
            return reply
        watcher = get_watcher(arbiter, props["name"])
        if props.get("process") is None:
            infos = watcher.info()
            if props["extended"]:
                for pid, info in infos.items():
                    _extend(watcher, pid, info)
            reply = {"name": props["name"], "info": infos}
            if watcher.backoff() is not None:
                reply["backoff"] = watcher.backoff()
            return reply
        pid = props["process"]
        process = watcher.processes.get(pid)
        if process is None:
            raise MessageError("process %r not found in %r" % (props["process"], props["name"]))
        info = process.info()
        if props["extended"]:
            _extend(watcher, pid, info)
        return {"process": props["process"], "info": info}


def _extend(watcher, pid, info):
    """Let the watcher's extended_stats hook add to info (a vanished process has a string)."""
    if isinstance(info, dict):
        call_extended_stats(watcher, pid, info)


def _format_backoff(backoff):
    if not backoff:
        return ""
    return "\n   backoff: crash %s in a row, spawn failure %s in a row, next try in %.1f s" % (
        backoff.get("crashes"), backoff.get("spawn_failures"), backoff.get("retry_in", 0.0))


def _format_watcher(name, infos):
    lines = ["%s:" % name]
    for _pid, info in sorted(infos.items(), key=lambda item: str(item[0])):
        lines.append(_format_process(info))
    return "\n".join(lines)


def _format_process(info, indent="", label=True):
    """`<pid>: <pid>  cmdline username nice rss vms cpu mem ctime`, children indented below."""
    if not isinstance(info, dict):
        return indent + str(info)
    fields = " ".join(str(info.get(field, "N/A")) for field in _FIELDS)
    prefix = "%s: " % info.get("pid") if label else ""
    line = "%s%s%s  %s" % (indent, prefix, info.get("pid"), fields)
    children = [_format_process(child, indent + "   ", label) for child in info.get("children") or []]
    return "\n".join([line] + children)


COMMAND = Stats()
