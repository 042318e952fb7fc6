"""Output streams end to end: real children, real pipes, real files, through an in-process arbiter (issue #3).

Every wait is on an event with a deadline: the watcher's `stop` event (respawn=False) says the child exited, the
watcher's pumps say its pipes reached EOF and were written out, and `Observed` streams announce what they wrote.
"""
import importlib.util
import logging
import os
import re
import signal
import threading
import time

import gevent
import gevent.event
import pytest

import gcircus.stream.pump
import gcircus.watcher
from gcircus.stream import FileStream, WatchedFileStream
from gcircus.watcher import Watcher
from tests.conftest import CHILDREN, LineStream, child_cmd
from tests.support.streams import FramedCounter
from tests.support.wait import wait_until

MB = 1 << 20
PREFIX = re.compile(r"^[^|]* \[(\d+)\] \| ", re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _child_module(name):
    spec = importlib.util.spec_from_file_location("child_" + name, os.path.join(CHILDREN, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


numbered = _child_module("numbered_lines")
utf8_child = _child_module("utf8_odd_chunks")


def observed(stream_class):
    """A subclass of stream_class that, after each chunk it handled, lets the test wait for what it has seen."""

    class Observed(stream_class):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            self.seen = bytearray()
            self._changed = gevent.event.Event()

        def __call__(self, chunk):
            super().__call__(chunk)
            self.seen += chunk["data"]
            self._changed.set()

        def wait_for(self, predicate, timeout=10, what="output"):
            wait_until(lambda: predicate(bytes(self.seen)), timeout, what, changed=self._changed,
                       detail=lambda: "saw %r" % bytes(self.seen[-200:]))

    Observed.__name__ = "Observed" + stream_class.__name__
    return Observed


def finished(watcher, events, count=1, timeout=20):
    """Wait until a respawn=False watcher stopped by itself and every pump wrote its pipe's last byte."""
    events.wait_count("watcher.%s.stop" % watcher.name, count, timeout)
    assert watcher.streams.drain(eof_timeout=5, delivery_timeout=5) == []


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def unframed(data):
    """Text of a time_format-framed file without its `<time> [<pid>] | ` prefixes."""
    return PREFIX.sub("", data.decode("utf-8"))


def open_fds_to(path):
    path = os.path.realpath(path)
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink("/proc/self/fd/" + fd) in (path, path + " (deleted)"):
                found.append(int(fd))
        except OSError:
            pass
    return found


# -- nothing lost ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("time_format", [None, "%H:%M:%S"])
def test_every_line_of_a_child_that_exits_at_once(run_arbiter, events, tmp_path, time_format):
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    watcher = Watcher("lines", child_cmd("numbered_lines", 10000), respawn=False,
                      stdout_stream={"class": "FileStream", "filename": str(out), "time_format": time_format},
                      stderr_stream={"class": "FileStream", "filename": str(err), "time_format": time_format})
    run_arbiter([watcher])
    finished(watcher, events)
    for path, name in ((out, "stdout"), (err, "stderr")):
        text = unframed(read(path)) if time_format else read(path).decode()
        assert text == numbered.expected(name, 10000)  # every line, in order, once


@pytest.mark.parametrize("time_format", [None, "%Y-%m-%d %H:%M:%S"])
def test_last_line_before_exit_is_captured_even_without_newline(run_arbiter, events, tmp_path, time_format):
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    watcher = Watcher("brief", child_cmd("last_words", "goodbye"), numprocesses=5, respawn=False,
                      stdout_stream={"filename": str(out), "time_format": time_format},
                      stderr_stream={"filename": str(err), "time_format": time_format})
    run_arbiter([watcher])
    finished(watcher, events)
    pids = [message["process_pid"] for topic, message in events.events if topic == "watcher.brief.spawn"]
    assert len(pids) == 5
    if time_format is None:
        data = read(out).decode()
        for pid in pids:
            assert "first line %d\ngoodbye" % pid in data
        assert data.count("goodbye") == 5 and read(err).decode() == "err: goodbye" * 5
    else:
        lines = read(out).decode().splitlines()
        for pid in pids:
            mine = [PREFIX.sub("", line) for line in lines if "[%d] | " % pid in line]
            assert mine == ["first line %d" % pid, "goodbye"]
        assert unframed(read(err)) == "err: goodbye\n" * 5


def test_stdout_and_stderr_share_one_file_stream(run_arbiter, events, tmp_path):
    path = tmp_path / "both.log"
    shared = FileStream(str(path))
    watcher = Watcher("shared", child_cmd("numbered_lines", 5000), respawn=False,
                      stdout_stream={"stream": shared}, stderr_stream={"stream": shared})
    run_arbiter([watcher])
    finished(watcher, events)
    lines = read(path).decode().splitlines(keepends=True)
    assert len(lines) == 10000
    for name in ("stdout", "stderr"):
        assert "".join(line for line in lines if line.startswith(name)) == numbered.expected(name, 5000)


# -- rotation ----------------------------------------------------------------------------------------------------

def test_size_rotation_keeps_the_exact_tail(run_arbiter, events, tmp_path):
    path = tmp_path / "big.log"
    count, pad = 200000, 90         # ~20 MB of 106-byte lines
    # Circus's class name and INI-style string values, as a Circus config would give them.
    conf = {"class": "circus.stream.FileStream", "filename": str(path), "max_bytes": str(MB),
            "backup_count": "3"}
    watcher = Watcher("rotating", child_cmd("numbered_lines", count, "--pad", pad, "--only", "stdout"),
                      respawn=False, stdout_stream=conf)
    run_arbiter([watcher])
    finished(watcher, events)
    files = [str(path) + suffix for suffix in (".3", ".2", ".1", "")]
    assert all(os.path.exists(name) for name in files) and not os.path.exists(str(path) + ".4")
    sizes = [os.path.getsize(name) for name in files]
    assert all(0 < size < MB for size in sizes), sizes
    written = numbered.expected("stdout", count, pad).encode()
    assert len(written) > 19 * MB
    kept = b"".join(read(name) for name in files)
    assert written.endswith(kept)


def test_renamed_log_file_is_followed_and_nothing_is_lost(run_arbiter, events, tmp_path):
    path = tmp_path / "app.log"
    rotated = tmp_path / "app.log.1"
    stream = observed(WatchedFileStream)(str(path))
    notices = LineStream()
    count = 20000
    watcher = Watcher("rotated", child_cmd("write_until_signalled", count, "--pad", 40), respawn=False,
                      stdout_stream={"stream": stream}, stderr_stream={"stream": notices})
    run_arbiter([watcher])
    stream.wait_for(bool, what="the first chunk")
    os.rename(path, rotated)                    # what logrotate does, while the child is writing
    notices.wait_for("batch-a")
    os.kill(notices.pids("batch-a")[0], signal.SIGUSR1)
    finished(watcher, events)
    old, new = read(rotated), read(path)
    batch_a = "".join(numbered.line("a", n, 40) for n in range(1, count + 1)).encode()
    batch_b = "".join(numbered.line("b", n, 40) for n in range(1, count + 1)).encode()
    assert old and old + new == batch_a + batch_b  # in order, once each, split where the rename happened
    assert new.endswith(batch_b)                # everything after the rename is in the new file


# -- text --------------------------------------------------------------------------------------------------------

TEXT_STREAMS = {
    "FileStream": lambda tmp: {"class": "FileStream", "filename": str(tmp / "%s.log")},
    "FileStream+time_format": lambda tmp: {"class": "FileStream", "filename": str(tmp / "%s.log"),
                                           "time_format": "%H:%M:%S"},
    "WatchedFileStream": lambda tmp: {"class": "WatchedFileStream", "filename": str(tmp / "%s.log"),
                                      "time_format": "%H:%M:%S"},
    "TimedRotatingFileStream": lambda tmp: {"class": "TimedRotatingFileStream", "filename": str(tmp / "%s.log"),
                                            "rotate_when": "D", "backup_count": "2"},
    "StdoutStream": lambda tmp: {"class": "StdoutStream"},
    "FancyStdoutStream": lambda tmp: {"class": "FancyStdoutStream", "color": "green"},
}


@pytest.mark.parametrize("read_size", [7, gcircus.stream.pump.CHUNK_SIZE], ids=["7-byte-reads", "large-reads"])
@pytest.mark.parametrize("kind", sorted(TEXT_STREAMS))
def test_multibyte_utf8_in_odd_chunks_arrives_intact(run_arbiter, events, tmp_path, capsys, monkeypatch,
                                                     kind, read_size):
    # The child's writes split characters; 7-byte pump reads split them again whatever the pipe coalesced.
    monkeypatch.setattr(gcircus.stream.pump, "CHUNK_SIZE", read_size)
    conf = TEXT_STREAMS[kind](tmp_path)
    on_console = "filename" not in conf
    stdout_conf = dict(conf, filename=conf["filename"] % "out") if not on_console else conf
    stderr_conf = dict(conf, filename=conf["filename"] % "err") if not on_console else {"class": "NullStream"}
    watcher = Watcher("utf8", child_cmd("utf8_odd_chunks"), respawn=False,
                      stdout_stream=stdout_conf, stderr_stream=stderr_conf)
    run_arbiter([watcher])
    finished(watcher, events)
    expected = utf8_child.TEXT
    if on_console:
        captured = [capsys.readouterr().out]
    else:
        captured = [read(tmp_path / "out.log").decode("utf-8"), read(tmp_path / "err.log").decode("utf-8")]
    for text in captured:
        if kind == "FancyStdoutStream":
            text = ANSI.sub("", text)
        if kind in ("FancyStdoutStream", "FileStream+time_format", "WatchedFileStream"):
            text = PREFIX.sub("", text)
        assert "\ufffd" not in text
        assert text == expected


# -- stop, start, failures ---------------------------------------------------------------------------------------

def test_stop_closes_file_streams_and_start_reopens_them(run_arbiter, events, tmp_path):
    path = tmp_path / "service.log"
    stream = observed(FileStream)(str(path))
    watcher = Watcher("service", child_cmd("ready_then_sleep"), stdout_stream={"stream": stream})
    run_arbiter([watcher])
    stream.wait_for(lambda seen: b"ready" in seen, what="ready")
    assert open_fds_to(path)
    watcher.stop()
    assert open_fds_to(path) == []              # stop closed the file
    os.unlink(path)                             # e.g. removed while the service was down
    watcher.start()
    assert path.exists() and open_fds_to(path)  # start reopened (recreated) it
    new_pid = next(iter(watcher.processes))
    stream.wait_for(lambda seen: ("ready %d" % new_pid).encode() in seen, what="second ready")
    assert read(path) == b"ready %d\n" % new_pid


def test_watcher_that_stops_by_itself_closes_its_files(run_arbiter, events, tmp_path):
    path = tmp_path / "once.log"
    watcher = Watcher("once", child_cmd("last_words", "done"), respawn=False,
                      stdout_stream={"filename": str(path)})
    run_arbiter([watcher])
    finished(watcher, events)
    assert watcher.streams.closer.join(5) is None and watcher.streams.closer.dead
    assert open_fds_to(path) == []
    assert read(path).endswith(b"done")


def test_unwritable_path_never_blocks_the_child_and_writing_resumes(run_arbiter, events, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="gcircus")
    directory = tmp_path / "not-yet"
    path = directory / "out.log"                # its directory is missing: every open fails (even as root)
    notices = LineStream()
    count = 40000                               # ~2.8 MB per batch: far more than the pipe holds
    watcher = Watcher("homeless", child_cmd("write_until_signalled", count, "--pad", 55), respawn=False,
                      stdout_stream={"filename": str(path)}, stderr_stream={"stream": notices})
    run_arbiter([watcher])
    notices.wait_for("batch-a", timeout=15)     # the child wrote everything: it was never stuck on a full pipe
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and str(path) in r.getMessage()]
    assert len(errors) == 1, [r.getMessage() for r in errors]  # once per incident, naming the file
    directory.mkdir()                           # the path is fixed
    os.kill(notices.pids("batch-a")[0], signal.SIGUSR1)
    finished(watcher, events)
    batch_b = "".join(numbered.line("b", n, 55) for n in range(1, count + 1)).encode()
    assert read(path).endswith(batch_b)         # writing resumed: all of the second batch is there
    assert "writing to %s again" % path in caplog.text


# -- the thread backend and the hub ------------------------------------------------------------------------------

class SlowStream:
    """A user's stream that blocks (time.sleep stands for a slow network or disk) in every write."""

    def __init__(self, delay=1.0):
        self.delay = float(delay)
        self.writing = threading.Event()
        self.writes_done = 0
        self.data = bytearray()

    def __call__(self, chunk):
        self.writing.set()
        time.sleep(self.delay)
        self.data += chunk["data"]
        self.writes_done += 1


def _wait_in_thread(event, timeout):
    """Wait on a threading.Event without blocking the hub."""
    return gevent.get_hub().threadpool.spawn(event.wait, timeout).get()


def _kill_and_see_respawn(events, watcher, spawns_before):
    os.kill(next(iter(watcher.processes)), signal.SIGKILL)
    events.wait_count("watcher.%s.spawn" % watcher.name, spawns_before + 1, timeout=5)


def test_blocking_stream_on_thread_backend_delays_no_respawn(run_arbiter, events):
    slow = Watcher("slow", child_cmd("ready_then_sleep"), min_uptime=0, stream_backend="thread",
                   stdout_stream={"class": "tests.integration.test_streams_e2e.SlowStream", "delay": "0.8"})
    other = Watcher("other", "sleep 120", min_uptime=0)
    run_arbiter([slow, other])
    stream = slow.streams.stdout.inner
    assert isinstance(stream, SlowStream)
    assert _wait_in_thread(stream.writing, 5), "the slow stream never got the child's output"
    assert stream.writes_done == 0              # its first write is sleeping right now
    _kill_and_see_respawn(events, other, 1)     # another watcher's process is replaced
    _kill_and_see_respawn(events, slow, 1)      # and the slow watcher's own
    assert stream.writes_done == 0              # both while that first 0.8 s write was still sleeping


def test_stop_waits_for_a_slow_stream_to_take_everything(run_arbiter, events, monkeypatch):
    # A short pipe-drain timeout: a pump busy with a slow stream must not be taken for a pipe held open.
    monkeypatch.setattr(gcircus.watcher, "PIPE_DRAIN_TIMEOUT", 0.2)
    notices = LineStream()
    count = 20000                               # ~1.4 MB: several chunks, each taking the stream 0.1 s
    watcher = Watcher("backlog", child_cmd("write_until_signalled", count, "--pad", 55), stream_backend="thread",
                      stdout_stream={"class": "tests.integration.test_streams_e2e.SlowStream", "delay": "0.1"},
                      stderr_stream={"stream": notices})
    run_arbiter([watcher])
    notices.wait_for("batch-a", timeout=15)     # all written to the pipe; most of it not yet to the stream
    stream = watcher.streams.stdout.inner
    watcher.stop()
    batch_a = "".join(numbered.line("a", n, 55) for n in range(1, count + 1)).encode()
    assert bytes(stream.data) == batch_a


def test_chatty_child_does_not_starve_other_watchers(run_arbiter, events, tmp_path):
    counter = FramedCounter(str(tmp_path / "chatty.log"), 8 * MB)
    chatty = Watcher("chatty", "yes 0123456789abcdef", stdout_stream={"stream": counter})
    other = Watcher("other", "sleep 120", min_uptime=0)
    run_arbiter([chatty, other])
    assert counter.reached.wait(10)             # the pump is busy: `yes` refills its pipe faster than we frame
    for round_number in range(1, 21):           # each kill is answered while the pump is busy
        os.kill(next(iter(other.processes)), signal.SIGKILL)
        events.wait_count("watcher.other.spawn", round_number + 1, timeout=5)
    # (how fast those respawns are under the flood: benchmarks/bench_hub_latency.py)
