"""Shared fixtures: an arbiter on the test's own hub, an event recorder, child
programs, and a guard that fails any test leaving a child process behind."""
import os
import sys
import time

import gevent
import psutil
import pytest

from tests.support.wait import dump_greenlets, wait_until  # noqa: F401  (dump_greenlets: used by test modules)

CHILDREN = os.path.join(os.path.dirname(__file__), "fixtures", "children")
PYTHON = sys.executable


def child_cmd(script, *args):
    """Command line running tests/fixtures/children/<script>.py with this interpreter."""
    parts = [PYTHON, os.path.join(CHILDREN, script + ".py")] + [str(a) for a in args]
    return " ".join(parts)


class EventRecorder:
    """Records (topic, message) events from a publisher; waits for them with deadlines."""

    def __init__(self):
        self.events = []
        self._changed = gevent.event.Event()

    def __call__(self, topic, message):
        self.events.append((topic, message))
        self._changed.set()

    def topics(self, prefix=""):
        return [topic for topic, _ in self.events if topic.startswith(prefix)]

    def count(self, topic):
        return sum(1 for t, _ in self.events if t == topic)

    def wait_for(self, predicate, timeout=10, what="event"):
        """Wait until predicate(events) is true; fail with the events seen and a greenlet dump."""
        wait_until(lambda: predicate(self.events), timeout, what, changed=self._changed,
                   detail=lambda: "saw %s" % [t for t, _ in self.events][-20:])
        return self.events

    def wait_count(self, topic, n, timeout=10):
        return self.wait_for(lambda evs: sum(1 for t, _ in evs if t == topic) >= n, timeout,
                             "%d x %s" % (n, topic))


class LineStream:
    """A stream (stdout_stream={'stream': LineStream()}) collecting children's output lines;
    tests wait on it, event-driven, instead of polling files."""

    def __init__(self):
        self.lines = []
        self._partial = {}
        self._changed = gevent.event.Event()

    def __call__(self, chunk):
        key = (chunk["pid"], chunk["name"])
        text = self._partial.pop(key, b"") + chunk["data"]
        *complete, rest = text.split(b"\n")
        if rest:
            self._partial[key] = rest
        self.lines.extend((chunk["pid"], line.decode("utf-8", "replace")) for line in complete)
        self._changed.set()

    def count(self, word):
        return sum(1 for _, line in self.lines if line.split()[:1] == [word])

    def pids(self, word):
        return [int(line.split()[1]) for _, line in self.lines if line.split()[:1] == [word]]

    def wait_for(self, word, count=1, timeout=10):
        wait_until(lambda: self.count(word) >= count, timeout, "%d x %r" % (count, word),
                   changed=self._changed, detail=lambda: "output: %s" % self.lines[-20:])


@pytest.fixture
def lines():
    return LineStream()


@pytest.fixture
def events():
    return EventRecorder()


# Every arbiter a test runs is watched by its hub guard: a turn of the hub longer than this
# fails the test (unless it is marked `stalls_hub`: it blocks the hub on purpose). Far above
# what any of our own work takes (a few ms at a time), so a loaded CI machine is no false alarm.
SUITE_STALL_THRESHOLD = 1.0


@pytest.fixture
def run_arbiter(events, request):
    """run_arbiter(watchers, **kw) -> a started Arbiter on this hub, stopped at teardown; the
    test fails if any turn of the hub held it past SUITE_STALL_THRESHOLD."""
    from gcircus.arbiter import Arbiter
    started = []

    def run(watchers, endpoint=None, pubsub_endpoint=None, **kw):
        kw.setdefault("check_delay", 60)
        kw.setdefault("handle_signals", False)
        kw.setdefault("hub_stall_threshold", SUITE_STALL_THRESHOLD)
        arbiter = Arbiter(watchers, endpoint, pubsub_endpoint, **kw)
        arbiter.publisher.add_listener(events)
        greenlet = gevent.spawn(arbiter.start)
        started.append((arbiter, greenlet))
        if not arbiter.wait_started(15):
            greenlet.join(0.1)
            if greenlet.exception is not None:
                raise greenlet.exception
            pytest.fail("arbiter did not start within 15s")
        return arbiter

    yield run
    stalls = [(arbiter, arbiter.hub_stalls()) for arbiter, _ in started]
    for arbiter, greenlet in started:
        with gevent.Timeout(60, False):
            arbiter.stop()
        greenlet.join(10)
    if request.node.get_closest_marker("stalls_hub") is None:
        for arbiter, count in stalls:
            last = arbiter.hub_guard.last_stall
            assert not count, "the hub stalled %d times; the last: %s" % (count, last and last.as_dict())


PR_SET_CHILD_SUBREAPER = 36


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False,
                     help="also run the long reliability cases (marked slow)")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long reliability case, run only with --slow")
    config.addinivalue_line("markers", "stalls_hub: the test blocks the hub on purpose (no stall check)")
    """Make the test process a child subreaper: a grandchild orphaned by a test (its parent died
    first) is re-parented to us instead of pid 1, so no_child_left_behind still sees it."""
    import ctypes
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass    # not Linux: the guard only sees processes that keep their parent


def _descendants():
    try:
        return {p.pid: p for p in psutil.Process().children(recursive=True)}
    except psutil.NoSuchProcess:
        return {}


@pytest.fixture(autouse=True)
def no_child_left_behind():
    """Every test must leave no process it started behind."""
    before = set(_descendants())
    yield
    deadline = time.monotonic() + 5
    leftovers = {}
    while time.monotonic() < deadline:
        leftovers = {pid: p for pid, p in _descendants().items()
                     if pid not in before and _alive(p)}
        if not leftovers:
            return
        gevent.sleep(0.05)  # a polled condition with a deadline: the kernel gives no event here
    for proc in leftovers.values():
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    pytest.fail("processes left behind: %s" % [
        (p.pid, _cmdline(p)) for p in leftovers.values()])


def _alive(proc):
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _cmdline(proc):
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return "?"
