"""The one way tests wait: on an event where there is one, on a polled condition with a
deadline where the kernel gives none; a missed deadline fails the test with every
greenlet's stack dumped, so a hang explains itself.

- wait_until(predicate, timeout, what, changed=None): on the test's hub. `changed` is a
  gevent Event set whenever the condition may have changed (a recorder's); without one
  the condition is polled every POLL seconds (process states, files: no event exists).
- wait_in_thread(predicate, timeout, what): the same from a thread that has no hub of
  its own to block on (background arbiters, plain-thread clients).
"""
import sys
import threading
import time

import gevent
import pytest

POLL = 0.02     # condition polling period when there is no event to wait on


def dump_greenlets(file=None):
    """Print every greenlet's stack (and each thread's) to stderr."""
    from gevent import util
    util.print_run_info(file=file or sys.stderr)


def fail_after(timeout, what, detail=None):
    dump_greenlets()
    message = "timed out after %ss waiting for %s" % (timeout, what)
    if detail is not None:
        message += "; %s" % (detail() if callable(detail) else detail)
    pytest.fail(message)


def wait_until(predicate, timeout=10, what="condition", changed=None, detail=None):
    """Wait until predicate() is true and return its value; fail with a dump at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            fail_after(timeout, what, detail)
        if changed is not None:
            changed.clear()
            if predicate():         # changed between the check and the clear
                continue
            changed.wait(min(remaining, 0.5))
        else:
            gevent.sleep(min(remaining, POLL))


def wait_in_thread(predicate, timeout=10, what="condition", detail=None):
    """wait_until for code outside the hub (another thread's objects): polls with real sleeps."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            fail_after(timeout, what, detail)
        pause.wait(POLL)
