"""Watcher hooks: resolving them and calling them with Circus's semantics (spec §7).

A hook returns a truthy value to let the action go on. One that raises is logged,
announced by a `hook_failure` event, and counts as False unless its name is in
the ignore-failure set. A hook must never bring anything down.
"""
import logging
import time

from gcircus.aliases import import_dotted

logger = logging.getLogger("gcircus")

HOOK_NAMES = ("before_start", "after_start", "before_stop", "after_stop", "before_spawn",
              "after_spawn", "before_signal", "after_signal", "before_reap", "after_reap",
              "extended_stats")
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
    if isinstance(ignore, str):
        ignore = ignore.strip().lower() in ("1", "true", "yes", "on")
    return target, bool(ignore)


class Hooks:
    """The resolved hooks of one watcher."""

    def __init__(self, hooks=None):
        self.callables = {}
        self.ignore_failure = set(ALWAYS_IGNORE_FAILURE)
        for name, spec in (hooks or {}).items():
            self.set(name, spec)

    def set(self, name, spec):
        if name not in HOOK_NAMES:
            raise ValueError("unknown hook %r (valid: %s)" % (name, ", ".join(HOOK_NAMES)))
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
        """Call hook `name`; True when none is configured. publish(event, **fields) announces it."""
        function = self.callables.get(name)
        if function is None:
            return True
        started = time.monotonic()
        try:
            result = function(watcher=watcher, arbiter=arbiter, hook_name=name, **extra)
        except Exception as error:
            logger.exception("hook %s of watcher %s failed", name, watcher.name)
            publish("hook_failure", name=name, error=str(error))
            return name in self.ignore_failure
        finally:
            elapsed = time.monotonic() - started
            if elapsed > 1.0:
                logger.warning("hook %s of watcher %s took %.1fs (it runs on the hub: it blocks everything)",
                               name, watcher.name, elapsed)
        publish("hook_success", name=name)
        return bool(result)
