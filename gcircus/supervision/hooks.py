"""Watcher hooks: resolving them and calling them with Circus's semantics.

A hook returns a truthy value to let the action go on. One that raises is logged,
announced by a `hook_failure` event, and counts as False unless its name is in
the ignore-failure set. A hook must never bring anything down.
"""
import logging
import time

import gevent
from greenlet import GreenletExit

from gcircus.aliases import import_dotted
from gcircus.converters import to_bool, to_hook_name

logger = logging.getLogger("gcircus")

ALWAYS_IGNORE_FAILURE = frozenset(("before_stop", "after_stop", "before_signal", "after_signal",
                                   "extended_stats"))


def resolve_name(name):
    """The hook callable named `pkg.mod.attr` or `pkg.mod:attr`; ImportError naming it."""
    return import_dotted(name, "hook")


def parse_hook_spec(spec):
    """(target, ignore_failure) from a callable, a name, 'name,bool' or a (target, bool) pair."""
    if isinstance(spec, (tuple, list)):
        target, ignore = (list(spec) + [False])[:2]
    elif isinstance(spec, str) and "," in spec:
        target, _, ignore = spec.partition(",")
        target = target.strip()
    else:
        target, ignore = spec, False
    return target, to_bool(ignore)


class Hooks:
    """The resolved hooks of one watcher."""

    def __init__(self, hooks=None):
        self.callables = {}
        self.ignore_failure = set(ALWAYS_IGNORE_FAILURE)
        for name, spec in (hooks or {}).items():
            self.set(name, spec)

    def set(self, name, spec):
        name = to_hook_name(name)
        target, ignore = parse_hook_spec(spec)
        function = resolve_name(target)
        if not callable(function):
            raise ValueError("hook %s: %r is not callable" % (name, target))
        self.callables[name] = function
        if ignore:
            self.ignore_failure.add(name)
        elif name not in ALWAYS_IGNORE_FAILURE:
            self.ignore_failure.discard(name)

    def __contains__(self, name):
        return name in self.callables

    def run(self, name, watcher, arbiter, publish, **extra):
        """Call hook `name` by keyword; True when none is configured (as Circus).

        publish(event, **fields) announces hook_success / hook_failure. A hook that
        raises (even SystemExit) is logged and counts as False, or True for the
        ignore-failure set; only greenlet kills and gevent timeouts go through.
        """
        function = self.callables.get(name)
        if function is None:
            return True
        probe = _HubProbe()
        try:
            result = function(watcher=watcher, arbiter=arbiter, hook_name=name, **extra)
        except (GreenletExit, gevent.Timeout):
            raise
        except (Exception, SystemExit) as error:
            logger.exception("hook %s of watcher %s failed", name, watcher.name)
            publish("hook_failure", name=name, error=str(error) or type(error).__name__)
            return name in self.ignore_failure
        finally:
            probe.report(name, watcher.name)
        publish("hook_success", name=name)
        return bool(result)


# A hook that takes longer than this while yielding to the hub is logged (for information: others ran
# meanwhile). One that holds the hub is the hub guard's to report: it names the hook and its stack.
SLOW_HOOK_THRESHOLD = 1.0


class _HubProbe:
    """Measures one hook call and tells whether the hub got to run during it (a callback queued on the
    hub has run by the time the hook returns)."""

    def __init__(self):
        self.hub_ran = False
        self.started = time.monotonic()
        self._callback = gevent.get_hub().loop.run_callback(self._mark)

    def _mark(self):
        self.hub_ran = True

    def report(self, hook_name, watcher_name):
        elapsed = time.monotonic() - self.started
        if not self.hub_ran:
            self._callback.stop()
        elif elapsed > SLOW_HOOK_THRESHOLD:
            logger.info("hook %s of watcher %s took %.2fs (it yielded to the hub meanwhile)",
                        hook_name, watcher_name, elapsed)


def call_extended_stats(watcher, pid, stats):
    """Run the watcher's extended_stats hook on one process's stats dict; returns the dict.

    Circus calls this hook positionally, `(watcher, arbiter, "extended_stats",
    pid=..., stats=...)`, and does not wrap it: it mutates `stats` in place, its
    return value is ignored, an exception fails the stats command and no hook
    event is published (as Circus).
    """
    function = watcher.hooks.callables.get("extended_stats")
    if function is not None:
        function(watcher, watcher.arbiter, "extended_stats", pid=pid, stats=stats)
    return stats
