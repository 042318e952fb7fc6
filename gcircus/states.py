"""Watcher states and the transitions allowed between them.

Dependency-free on purpose: the watcher, the controller and the tests all reason
about states through this table, and it must never import the runtime.
"""
from enum import Enum


class WatcherState(str, Enum):
    """A watcher's lifecycle state; the value is Circus's wire spelling."""

    STOPPED = "stopped"
    STARTING = "starting"
    ACTIVE = "active"
    STOPPING = "stopping"

    def __str__(self):
        return self.value


# Each legal move, with the reason it exists.
ALLOWED_TRANSITIONS = {
    # STOPPED -> STARTING: start() was asked for.
    (WatcherState.STOPPED, WatcherState.STARTING),
    # STARTING -> ACTIVE: processes spawned and after_start agreed.
    (WatcherState.STARTING, WatcherState.ACTIVE),
    # STARTING -> STOPPING: before/after_start or the first spawns failed.
    (WatcherState.STARTING, WatcherState.STOPPING),
    # ACTIVE -> STOPPING: stop(), or max_retry exhausted by a crash loop.
    (WatcherState.ACTIVE, WatcherState.STOPPING),
    # STOPPING -> STOPPED: every process is gone.
    (WatcherState.STOPPING, WatcherState.STOPPED),
    # ACTIVE -> STOPPED: respawn=False / on_demand watcher whose last process died.
    (WatcherState.ACTIVE, WatcherState.STOPPED),
}


class IllegalTransition(RuntimeError):
    """Raised when code asks for a move the table does not allow: a bug, not bad input."""


def check_transition(current, target):
    """Raise IllegalTransition unless current -> target is in the table."""
    if (current, target) not in ALLOWED_TRANSITIONS:
        raise IllegalTransition("watcher cannot go from %s to %s" % (current, target))
