"""The writer thread behind the daemon's log and console output, on real pipes that nobody reads until the
test says so: records are dropped and counted (never waited for), bytes wait (never dropped), exit is bounded,
and a record is formatted later only when that cannot change what it says."""
import fcntl
import logging
import os

import gevent
import pytest

from gcircus.logsetup import FdSink, HubSafeHandler, _settle
from gcircus.stream.writer import WriterThread, log_lines_dropped
from tests.support.wait import wait_until

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


@pytest.fixture
def pipe():
    read_fd, write_fd = os.pipe()
    fcntl.fcntl(write_fd, F_SETPIPE_SZ, 4096)       # one page: a few lines fill it
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        try:
            os.close(fd)
        except OSError:
            pass


def read_available(read_fd):
    os.set_blocking(read_fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except BlockingIOError:
            return b"".join(chunks)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def handler_on(write_fd, writer):
    handler = HubSafeHandler(FdSink(write_fd, "utf-8"), writer)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def record(message, *args):
    return logging.LogRecord("gcircus", logging.INFO, __file__, 1, message, args, None)


def test_a_stuck_output_drops_records_counts_them_and_says_so_when_it_moves(pipe):
    read_fd, write_fd = pipe
    writer = WriterThread("test", max_records=10)
    handler = handler_on(write_fd, writer)
    before = log_lines_dropped()
    line = "x" * 100
    sent = 0
    while writer.dropped < 5:           # never blocks: the pipe fills, then the queue, then records are dropped
        handler.handle(record("%s %d", line, sent))
        sent += 1
    assert log_lines_dropped() - before == writer.dropped
    output = b""
    while b"log lines dropped" not in output:
        output += os.read(read_fd, 65536)
    handler.handle(record("after"))
    while not output.endswith(b"after\n"):
        output += os.read(read_fd, 65536)
    lines = output.decode().splitlines()
    notice = [line for line in lines if "dropped" in line]
    assert notice == ["%d log lines dropped while the log output was blocked" % (log_lines_dropped() - before)]
    written = [int(line.split()[1]) for line in lines if line.startswith("x")]
    assert written == list(range(len(written)))                     # in order, the oldest kept
    assert len(written) + log_lines_dropped() - before == sent      # every record written or counted
    assert lines.index(notice[0]) == len(written)                   # the count comes where the gap is


def test_flush_is_bounded_and_counts_what_is_still_queued(pipe):
    _read_fd, write_fd = pipe
    writer = WriterThread("test", max_records=1000)
    handler = handler_on(write_fd, writer)
    for number in range(200):
        handler.handle(record("line %d of a log whose output nobody reads", number))
    assert writer.flush(0.2) is False
    records, pending = writer.unwritten()
    assert 0 < records <= 200 and pending == 0     # the batch stuck in its write counts as unwritten


def test_bytes_wait_for_room_and_are_never_dropped(pipe):
    read_fd, write_fd = pipe
    writer = WriterThread("test", max_bytes=1000)
    chunks = [b"%05d" % number * 40 + b"\n" for number in range(100)]     # 201 bytes each

    def produce():
        for chunk in chunks:
            writer.write(write_fd, chunk)

    producer = gevent.spawn(produce)
    wait_until(lambda: writer.pending_bytes >= 1000 and not producer.dead, what="the producer to wait")
    ticks = gevent.spawn(lambda: [gevent.sleep(0.001) for _ in range(5)])
    ticks.join(5)
    assert ticks.dead and not producer.dead         # the hub runs on while the producer waits
    received = b""
    while len(received) < sum(map(len, chunks)):
        gevent.get_hub().wait(gevent.get_hub().loop.io(read_fd, 1))
        received += read_available(read_fd)
    producer.join(5)
    assert producer.dead and received == b"".join(chunks)


def test_arguments_that_can_change_are_rendered_when_logged():
    live = ["before"]
    mutable = record("state %s", live)
    _settle(mutable)
    live[0] = "after"
    assert (mutable.msg, mutable.args) == ("state ['before']", None)
    plain = record("pid %d %s", 42, "x")
    _settle(plain)
    assert (plain.msg, plain.args) == ("pid %d %s", (42, "x"))       # left to the writer thread
