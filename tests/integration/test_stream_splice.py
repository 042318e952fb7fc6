"""The splice fast path of FileStream end to end: real children, real pipes, real files, an in-process arbiter.

A FileStream writing chunks unchanged lets the pump splice the pipe into the file (one copy in the kernel) instead
of reading and writing. It must keep everything the write path guarantees: every byte once and in order, appends
shared with other writers of the same file, size rotation, a file truncated by logrotate's copytruncate continued
at its new end, and the read path whenever something must see the bytes (a dashboard tail, time_format) or the
kernel refuses splice. ``FileStream.bytes_spliced`` says which path each test went through.
"""
import hashlib
import logging
import os
import re
import signal
import subprocess

import pytest

from gcircus.stream import FileStream, ThreadedStream, WatchedFileStream
from gcircus.watcher import Watcher
from tests.conftest import LineStream, child_cmd
from tests.integration.test_streams_e2e import finished, numbered, read
from tests.reliability.test_output_flood import flood
from tests.support.wait import wait_until

MB = 1 << 20
FRAME = re.compile(r"^\d\d:\d\d:\d\d \[\d+\] \| ")


def flood_digest(size):
    digest = hashlib.sha256()
    for piece in flood.chunks(size):
        digest.update(piece)
    return digest.hexdigest()


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(MB), b""):
            digest.update(block)
    return digest.hexdigest()


def test_large_binary_output_is_spliced_byte_exact(run_arbiter, events, tmp_path):
    size = 48 * MB
    path = tmp_path / "flood.out"
    stream = FileStream(str(path))
    watcher = Watcher("flood", child_cmd("flood", size), respawn=False, stdout_stream={"stream": stream})
    run_arbiter([watcher])
    finished(watcher, events)
    assert os.path.getsize(path) == size
    assert file_digest(path) == flood_digest(size)
    assert stream.bytes_spliced == size     # every chunk took the fast path


@pytest.mark.parametrize("stderr_format", [None, "%H:%M:%S"], ids=["both-spliced", "stderr-framed"])
def test_stdout_and_stderr_streams_on_one_file_lose_nothing(run_arbiter, events, tmp_path, stderr_format):
    """Two streams, two descriptors, one file: a splice lands at the end the other stream's write left."""
    path = tmp_path / "both.log"
    out, err = FileStream(str(path)), FileStream(str(path), time_format=stderr_format)
    count = 60000
    watcher = Watcher("shared", child_cmd("numbered_lines", count, "--pad", 20), respawn=False,
                      stdout_stream={"stream": out}, stderr_stream={"stream": err})
    run_arbiter([watcher])
    finished(watcher, events)
    lines = read(path).decode().splitlines(keepends=True)
    if stderr_format:
        assert err.bytes_spliced == 0
        lines = [FRAME.sub("", line) for line in lines]
    else:
        assert err.bytes_spliced > 0
    assert out.bytes_spliced > 0
    for name in ("stdout", "stderr"):
        assert "".join(line for line in lines if line.startswith(name)) == numbered.expected(name, count, 20)


def test_size_rotation_through_splice_rotates_at_the_right_sizes(run_arbiter, events, tmp_path):
    path = tmp_path / "big.log"
    max_bytes = 3 * MB
    count, pad = 300000, 90         # ~32 MB of 106-byte lines: about ten files
    stream = FileStream(str(path), max_bytes=max_bytes, backup_count=30)
    watcher = Watcher("rotating", child_cmd("numbered_lines", count, "--pad", pad, "--only", "stdout"),
                      respawn=False, stdout_stream={"stream": stream})
    run_arbiter([watcher])
    finished(watcher, events)
    written = numbered.expected("stdout", count, pad).encode()
    backups = sorted((name for name in os.listdir(tmp_path) if name.startswith("big.log.")),
                     key=lambda name: -int(name.rsplit(".", 1)[1]))
    files = [str(tmp_path / name) for name in backups] + [str(path)]
    assert len(files) >= 10
    assert b"".join(read(name) for name in files) == written
    sizes = [os.path.getsize(name) for name in files]
    assert all(size < max_bytes for size in sizes), sizes
    # A file is rotated only when the next chunk (at most 1 MiB, what a pump moves at once) would not fit.
    assert all(size >= max_bytes - MB for size in sizes[:-1]), sizes
    assert stream.bytes_spliced > 0


def _first_batch_written(run_arbiter, name, stream, path, count=20000):
    """A child writing batch a to stream (a file at path), waiting for SIGUSR1 to write batch b; returns
    (watcher, batch a, batch b, release) once batch a is all in the file; release() lets batch b come."""
    notices = LineStream()
    watcher = Watcher(name, child_cmd("write_until_signalled", count, "--pad", 40), respawn=False,
                      stdout_stream={"stream": stream}, stderr_stream={"stream": notices})
    run_arbiter([watcher])
    batch_a = "".join(numbered.line("a", n, 40) for n in range(1, count + 1)).encode()
    batch_b = "".join(numbered.line("b", n, 40) for n in range(1, count + 1)).encode()
    notices.wait_for("batch-a")
    wait_until(lambda: os.path.getsize(path) == len(batch_a), 10, "the first batch in the file")
    return watcher, batch_a, batch_b, lambda: os.kill(notices.pids("batch-a")[0], signal.SIGUSR1)


def test_copytruncate_while_capturing_writes_at_the_new_end(run_arbiter, events, tmp_path):
    path = tmp_path / "app.log"
    stream = FileStream(str(path))
    watcher, batch_a, batch_b, release = _first_batch_written(run_arbiter, "truncated", stream, path)
    os.truncate(path, 0)                            # what logrotate's copytruncate does after its copy
    release()
    finished(watcher, events)
    assert read(path) == batch_b                    # at offset 0: no hole of NULs where batch a was
    assert stream.bytes_spliced == 2 * len(batch_a)


def test_watched_file_renamed_while_splicing_continues_in_the_new_file(run_arbiter, events, tmp_path):
    path, rotated = tmp_path / "app.log", tmp_path / "app.log.1"
    stream = WatchedFileStream(str(path))
    watcher, batch_a, batch_b, release = _first_batch_written(run_arbiter, "renamed", stream, path)
    os.rename(path, rotated)                        # what logrotate does
    release()
    finished(watcher, events)
    assert read(rotated) == batch_a and read(path) == batch_b
    assert stream.bytes_spliced == 2 * len(batch_a)


def test_a_tap_listener_sees_every_byte_and_the_file_gets_them_too(run_arbiter, events, tmp_path):
    """The dashboard's tail view needs the bytes in Python: while it listens the pump reads and writes."""
    size = 8 * MB
    path = tmp_path / "tapped.out"
    stream = FileStream(str(path))
    watcher = Watcher("tapped", child_cmd("flood", size), respawn=False, stdout_stream={"stream": stream})
    seen = bytearray()
    watcher.streams.tap.listener = lambda pid, name, data: seen.extend(data)
    run_arbiter([watcher])
    finished(watcher, events)
    assert stream.bytes_spliced == 0
    assert hashlib.sha256(seen).hexdigest() == file_digest(path) == flood_digest(size)


@pytest.fixture
def append_only(tmp_path):
    """Make a file refuse being opened without O_APPEND (what the splice descriptor needs); appends still work.
    Root: the append-only attribute (chattr +a); others: no write permission left (the open file keeps writing)."""
    made = []

    def make(path):
        if os.geteuid() != 0:
            os.chmod(path, 0o444)
            return
        result = subprocess.run(["chattr", "+a", str(path)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip("chattr +a is not supported here: %s" % result.stderr.strip())
        made.append(path)

    yield make
    for path in made:
        subprocess.run(["chattr", "-a", str(path)], check=True)


def test_refused_splice_falls_back_to_write_and_says_so_once(run_arbiter, events, tmp_path, caplog, append_only):
    size = 8 * MB
    path = tmp_path / "refused.out"
    stream = FileStream(str(path))      # opened (O_APPEND) here, before the file refuses other opens
    append_only(path)
    watcher = Watcher("refused", child_cmd("flood", size), respawn=False, stdout_stream={"stream": stream})
    with caplog.at_level(logging.WARNING, logger="gcircus"):
        run_arbiter([watcher])
        finished(watcher, events)
    assert stream.bytes_spliced == 0
    assert file_digest(path) == flood_digest(size)
    notices = [record for record in caplog.records if "rather than splice" in record.getMessage()]
    assert len(notices) == 1 and str(path) in notices[0].getMessage()


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs: a real filesystem that runs out of space (needs root and the right to mount)."""
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % result.stderr.strip())
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=True)   # lazy: the arbiter may still hold the file


def test_disk_full_while_splicing_drops_output_and_resumes_when_space_returns(run_arbiter, events, caplog,
                                                                              small_disk):
    caplog.set_level(logging.WARNING, logger="gcircus")
    filler = small_disk / "filler"
    with open(filler, "wb") as handle:
        handle.write(b"\0" * (3 * MB))          # about 1 MiB left
    path = small_disk / "out.log"
    stream = FileStream(str(path))
    notices = LineStream()
    count = 40000                               # ~2.8 MB per batch: more than the disk has left
    watcher = Watcher("full", child_cmd("write_until_signalled", count, "--pad", 55), respawn=False,
                      stdout_stream={"stream": stream}, stderr_stream={"stream": notices})
    run_arbiter([watcher])
    notices.wait_for("batch-a", timeout=15)     # the child wrote everything: never stuck on a full pipe
    batch_a = "".join(numbered.line("a", n, 55) for n in range(1, count + 1)).encode()
    wait_until(lambda: "cannot write to %s" % path in caplog.text, 10, "the disk-full error")
    os.remove(filler)                           # space again
    os.kill(notices.pids("batch-a")[0], signal.SIGUSR1)
    finished(watcher, events)
    batch_b = "".join(numbered.line("b", n, 55) for n in range(1, count + 1)).encode()
    data = read(path)
    assert data.endswith(batch_b)               # writing resumed: all of the second batch is there
    kept = data[:-len(batch_b)]
    assert 0 < len(kept) < len(batch_a) and batch_a.startswith(kept)   # what fitted, in order, nothing else
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and str(path) in r.getMessage()]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "writing to %s again" % path in caplog.text
    assert stream.bytes_spliced >= len(batch_b)


def test_thread_backend_and_subclasses_that_see_chunks_never_splice(tmp_path):
    """A splice would bypass the thread's queue, or a subclass's own __call__: both take the read path."""
    class Counting(FileStream):
        def __call__(self, chunk):
            super().__call__(chunk)

    reader, writer = os.pipe()
    try:
        os.write(writer, b"data\n")
        assert Counting(str(tmp_path / "counted")).splice_from(reader, MB) is None
        assert ThreadedStream(FileStream(str(tmp_path / "threaded"))).splice_from is None
        plain = FileStream(str(tmp_path / "plain"))
        assert plain.splice_from(reader, MB) == 5 and read(tmp_path / "plain") == b"data\n"
        os.close(writer)
        writer = None
        assert plain.splice_from(reader, MB) == 0       # EOF
    finally:
        os.close(reader)
        if writer is not None:
            os.close(writer)
