"""dstats: process information of the daemon itself."""
import gc
import os

import gevent
import greenlet
import psutil

from gcircus.commands.base import Command
from gcircus.stream.writer import log_lines_dropped
from gcircus.supervision.procinfo import get_info

# cpu_percent compares two samples; the first is taken this long before the second.
CPU_SAMPLE_INTERVAL = 0.01


class DStats(Command):
    name = "dstats"
    summary = "Show the daemon's own process information"
    reference = """\
Process information of the daemon itself (cpu sampled over 10 ms).

Message: {"command": "dstats"}
Reply: "info": {pid, cpu, mem, mem_info1, mem_info2, ctime, username, nice,
       create_time, age, cmdline, children: []}, "hub": {"stalls": N,
       "longest_stall": seconds, "last_stall": {seconds, culprit, time} or null,
       "stall_threshold": seconds, "greenlets": N} (turns of the hub that held it past the
       threshold; greenlets alive in the daemon, to see that none leaks), "log": {"dropped": N}
       (log lines dropped because the log output was blocked)

    gcircusctl dstats
"""

    def console(self, reply):
        if reply.get("status") == "error" or "info" not in reply:
            return super().console(reply)
        from gcircus.commands.stats import _format_process
        info = dict(reply["info"])
        children = info.pop("children", None) or []
        lines = ["Main Process:", _format_process(dict(info, children=[]), "    ", label=False)]
        if children:
            lines.append("Children:")
            lines.extend(_format_process(child, "    ", label=False) for child in children)
        hub = reply.get("hub")
        if hub:
            lines.append("Hub stalls: %s (longest %.0f ms)" % (hub["stalls"], hub["longest_stall"] * 1000))
        dropped = (reply.get("log") or {}).get("dropped")
        if dropped:
            lines.append("Log lines dropped (output blocked): %s" % dropped)
        return "\n".join(lines)

    def execute(self, arbiter, props):
        process = psutil.Process(os.getpid())
        process.cpu_percent(None)
        gevent.sleep(CPU_SAMPLE_INTERVAL)   # a green pause: psutil's own interval would block the hub
        info = get_info(process, interval=None)
        info["children"] = []
        return {"info": info, "hub": _hub_figures(arbiter.hub_guard), "log": {"dropped": log_lines_dropped()}}


def _hub_figures(guard):
    # one pass over the collector's objects (a few ms; dstats is a rare diagnostic)
    greenlets = sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet.greenlet) and obj)
    if guard is None:
        return {"stalls": 0, "longest_stall": 0.0, "last_stall": None, "stall_threshold": 0.0,
                "greenlets": greenlets}
    last = guard.last_stall
    return {"stalls": guard.stalls, "longest_stall": round(guard.longest_stall, 3),
            "last_stall": last.as_dict() if last is not None else None,
            "stall_threshold": guard.threshold, "greenlets": greenlets}


COMMAND = DStats()
