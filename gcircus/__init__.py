"""gcircus: Circus's API, config and wire protocol on one gevent hub.

Logging: gcircus logs on `gcircus` and its children (`gcircus.config`, ...), and `gcircus`
hangs under Circus's `circus` logger. A logger configuration written for Circus
(`[logger_circus] qualname = circus`) gets every line gcircus writes, plugins logging
through `circus` included, while `logging.getLogger("gcircus")` still reaches them all and
the lines still say which one wrote them.
"""
import logging
import os

from gcircus.options import ARBITER_OPTIONS, DEFAULT_ENDPOINT, DEFAULT_PUBSUB, DEFAULT_STATS

__version__ = "0.1.0"

# Python names parents by dotted prefix only; `gcircus` becomes a child of `circus` by hand, once,
# before anything logs (gcircus's own loggers are all `gcircus` or below it).
logging.getLogger("gcircus").parent = logging.getLogger("circus")

__all__ = ["get_arbiter", "DEFAULT_ENDPOINT", "DEFAULT_PUBSUB", "DEFAULT_STATS", "__version__"]
_ARBITER = ARBITER_OPTIONS


def get_arbiter(watchers, controller=DEFAULT_ENDPOINT, pubsub_endpoint=DEFAULT_PUBSUB,
                stats_endpoint=None, env=None, name=None, context=None, background=False,
                stream_backend=_ARBITER["stream_backend"].default, plugins=None,
                check_delay=_ARBITER["check_delay"].default, **kw):
    """Build an Arbiter from watcher dicts (or one command string, with watcher options in kw).

    `get_arbiter("myprogram", numprocesses=3)` is the shorthand of Circus's docs:
    one watcher running that command. A watcher's `name` defaults to the basename
    of its command. With background=True the arbiter runs in a thread and start()
    returns (gcircus.background).
    """
    from gcircus.arbiter import Arbiter
    from gcircus.background import ThreadedArbiter
    from gcircus.watcher import Watcher

    if isinstance(watchers, str):
        watcher_options = {key: kw.pop(key) for key in list(kw) if key not in ARBITER_OPTIONS}
        watchers = [dict(watcher_options, cmd=watchers)]
    built = []
    for spec in watchers:
        spec = dict(spec)
        cmd = spec.pop("cmd")
        watcher_name = spec.pop("name", None) or os.path.basename(cmd.split()[0])
        spec.setdefault("stream_backend", stream_backend)
        built.append(Watcher(watcher_name, cmd, **spec))
    arbiter_class = ThreadedArbiter if background else Arbiter
    return arbiter_class(built, controller, pubsub_endpoint, check_delay=check_delay,
                         context=context, stats_endpoint=stats_endpoint, plugins=plugins, **kw)

