"""The log directory becomes unusable mid-run: plain and rotating file streams lose no line.

A child writes a first batch of numbered lines, the directory is then broken, the child writes a second batch
(~1 MB, enough for dozens of size rotations) and exits. Every line of both batches must be in the stream's files
exactly once: when a rotation cannot happen the stream keeps writing to the file it has open.

Two ways to break the directory, both of which stop root too (tests run as root; chmod does not stop root):
- "immutable": ``chattr +i`` on the directory: no entry can be created, renamed or removed in it (rotation's
  renames fail) while the open file stays writable. Skipped where the attribute cannot be set (no
  CAP_LINUX_IMMUTABLE, or a file system without it); for a non-root run a plain ``chmod 0o500`` does the same.
- "replaced": the directory is moved away and a regular file takes its name, so every path in it fails with
  ENOTDIR (nothing can be opened there), while the open file lives on under the new name.
"""
import logging
import os
import signal
import subprocess
import time

import pytest

from gcircus.stream import FileStream, TimedRotatingFileStream
from gcircus.watcher import Watcher
from tests.conftest import LineStream, child_cmd
from tests.support.wait import wait_until

COUNT = 20000           # lines per batch: ~0.5 MB each, far more than a pipe holds
PAD = 10
MAX_BYTES = 32 * 1024   # size rotation every ~1,200 lines


def line(tag, number):
    # tests/fixtures/children/numbered_lines.py's format, which write_until_signalled writes
    return "%s %06d %s" % (tag, number, "." * PAD)


class BrokenDirectory:
    """Breaks ``directory`` one way; ``files()`` lists where its files are now; ``repair()`` undoes it."""

    def __init__(self, directory, how):
        self.directory = str(directory)
        self.how = how
        self.moved = self.directory + ".moved"
        self.broken = False

    def break_it(self):
        if self.how == "replaced":
            os.rename(self.directory, self.moved)
            with open(self.directory, "w") as handle:
                handle.write("not a directory\n")
        elif os.geteuid() != 0:
            os.chmod(self.directory, 0o500)
        else:
            result = subprocess.run(["chattr", "+i", self.directory], capture_output=True, text=True)
            if result.returncode != 0:
                pytest.skip("cannot make a directory immutable here: %s" % result.stderr.strip())
        self.broken = True

    def repair(self):
        if not self.broken:
            return
        self.broken = False
        if self.how == "replaced":
            os.remove(self.directory)
            os.rename(self.moved, self.directory)
        elif os.geteuid() != 0:
            os.chmod(self.directory, 0o700)
        else:
            subprocess.run(["chattr", "-i", self.directory], check=True)

    def location(self):
        return self.moved if self.broken and self.how == "replaced" else self.directory

    def lines(self):
        """Every line of the stream's files, oldest file first (without time_format a chunk, and so a line, may
        straddle a rotation: the files are joined before splitting)."""
        where = self.location()
        names = os.listdir(where)
        suffixes = [name[len("out.log."):] for name in names if name.startswith("out.log.")]
        # size rotation: out.log.N is older than out.log.N-1; time rotation: the suffix is the period's start
        oldest_first = sorted(suffixes, key=lambda suffix: -int(suffix) if len(suffix) < 8 else int(suffix))
        data = b""
        for name in ["out.log." + suffix for suffix in oldest_first] + ["out.log"] * ("out.log" in names):
            with open(os.path.join(where, name), "rb") as handle:
                data += handle.read()
        return data.decode().splitlines()


def _stream(kind, path):
    if kind == "plain":
        return FileStream(str(path))
    if kind == "size-rotating":
        return FileStream(str(path), max_bytes=MAX_BYTES, backup_count=1000)
    return TimedRotatingFileStream(str(path), rotate_when="S", rotate_interval=1)


@pytest.mark.parametrize("how", ["immutable", "replaced"])
@pytest.mark.parametrize("kind", ["plain", "size-rotating", "time-rotating"])
def test_no_line_is_lost_while_the_log_directory_is_unusable(run_arbiter, events, tmp_path, caplog, kind, how):
    caplog.set_level(logging.WARNING, logger="gcircus")
    logs = tmp_path / "logs"
    logs.mkdir()
    broken = BrokenDirectory(logs, how)
    stream = _stream(kind, logs / "out.log")
    notices = LineStream()
    watcher = Watcher("logger", child_cmd("write_until_signalled", COUNT, "--pad", PAD), respawn=False,
                      stdout_stream={"stream": stream}, stderr_stream={"stream": notices})
    run_arbiter([watcher])
    try:
        notices.wait_for("batch-a", timeout=30)
        wait_until(lambda: len(broken.lines()) >= COUNT, 30, "the first batch in the files",
                   detail=lambda: "%d lines" % len(broken.lines()))
        broken.break_it()
        if kind == "time-rotating":
            # a rotation falls due while the directory is broken: the second batch runs into it
            started = time.time()
            wait_until(lambda: time.time() >= started + 1.01, 5, "the next one-second period")
        os.kill(notices.pids("batch-a")[0], signal.SIGUSR1)
        events.wait_count("watcher.logger.stop", 1, timeout=60)
        assert watcher.streams.drain(eof_timeout=5, delivery_timeout=5) == []
        found = broken.lines()
    finally:
        broken.repair()
    expected = [line(tag, n) for tag in "ab" for n in range(1, COUNT + 1)]
    lost = sorted(set(expected) - set(found))
    assert not lost, "%d of %d lines lost (first: %s)" % (len(lost), len(expected), lost[:3])
    assert len(found) == len(expected), "%d lines written twice" % (len(found) - len(expected))
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert not dropped, dropped      # nothing claims a loss that did not happen, nor hides one that did
