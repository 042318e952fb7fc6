"""Output floods through a real gcircusd: every byte arrives, in order, and the daemon's memory stays bounded.

- binary: pseudo-random bytes (NULs, newlines, every value) written as fast as the pipe takes them, to a
  FileStream without time_format: the file must equal what the child wrote, byte for byte;
- newline-less text to a FileStream with time_format: a line that never ends is written out in 64 KiB pieces
  (each framed as a line), so it is never buffered whole; unframed, the file must equal what the child wrote.

The daemon's peak resident memory (VmHWM, which the kernel keeps for us) may grow by at most RSS_BOUND while
FLOOD + TEXT_FLOOD bytes pass: a pump or a stream that buffered the flood would grow by its size.
"""
import importlib.util
import os
import re

from tests.conftest import CHILDREN, child_cmd
from tests.e2e.daemon_support import call
from tests.support.wait import wait_in_thread

MIB = 1 << 20
FLOOD = 128 * MIB
TEXT_FLOOD = 32 * MIB
RSS_BOUND = 48 * MIB
PIECE = 64 * 1024       # gcircus.stream.base.MAX_PARTIAL_LINE: how a line with no end is written out

_spec = importlib.util.spec_from_file_location("child_flood", os.path.join(CHILDREN, "flood.py"))
flood = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(flood)


def memory_kib(pid, field):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def config(workdir):
    return """
[watcher:binary]
cmd = {binary}
autostart = false
respawn = false
stdout_stream.class = FileStream
stdout_stream.filename = {workdir}/binary.out

[watcher:text]
cmd = {text}
autostart = false
respawn = false
stdout_stream.class = FileStream
stdout_stream.filename = {workdir}/text.out
stdout_stream.time_format = %H:%M:%S
""".format(binary=child_cmd("flood", FLOOD), text=child_cmd("flood", TEXT_FLOOD, "--text"), workdir=workdir)


def same_as_flood(path, size, text=False):
    """Compare the file with what flood.py wrote, piece by piece; returns the offset of the first difference."""
    offset = 0
    with open(path, "rb") as handle:
        for expected in flood.chunks(size, text):
            if handle.read(len(expected)) != expected:
                return offset
            offset += len(expected)
        assert handle.read(1) == b"", "more bytes than the child wrote"
    return None


def unframe(path, unframed):
    """Write the text of a time_format file without its `<time> [<pid>] | ` prefixes and line ends."""
    prefix = re.compile(rb"^\d\d:\d\d:\d\d \[\d+\] \| ")
    with open(path, "rb") as framed, open(unframed, "wb") as out:
        for line in framed:
            match = prefix.match(line)
            assert match, "a line without its prefix: %r" % line[:80]
            assert line.endswith(b"\n") and len(line) - match.end() - 1 <= PIECE
            out.write(line[match.end():-1])


def framed_size(size, prefix_length):
    lines = -(-size // PIECE)
    return size + lines * (prefix_length + 1)


def test_floods_arrive_byte_exact_and_the_daemon_stays_small(gcircusd, workdir):
    daemon = gcircusd(config(workdir))
    pid = daemon.proc.pid
    baseline = memory_kib(pid, "VmRSS") * 1024
    binary, text = os.path.join(workdir, "binary.out"), os.path.join(workdir, "text.out")

    call(daemon.endpoint, "start", name="binary")
    wait_in_thread(lambda: os.path.exists(binary) and os.path.getsize(binary) >= FLOOD, 120,
                   "%d bytes in %s" % (FLOOD, binary))
    call(daemon.endpoint, "start", name="text")
    prefix_length = len("00:00:00 [%d] | " % call(daemon.endpoint, "list", name="text")["pids"][0])
    wait_in_thread(lambda: os.path.exists(text) and os.path.getsize(text) >= framed_size(TEXT_FLOOD, prefix_length),
                   120, "the framed text flood in %s" % text)
    peak = memory_kib(pid, "VmHWM") * 1024

    assert same_as_flood(binary, FLOOD) is None
    unframe(text, text + ".unframed")
    assert same_as_flood(text + ".unframed", TEXT_FLOOD, text=True) is None
    assert peak - baseline < RSS_BOUND, "the daemon grew by %.1f MiB while %d MiB passed" % (
        (peak - baseline) / MIB, (FLOOD + TEXT_FLOOD) // MIB)
    print("\nflood: %d MiB binary + %d MiB newline-less text, 0 bytes lost, daemon peak RSS +%.1f MiB"
          % (FLOOD // MIB, TEXT_FLOOD // MIB, (peak - baseline) / MIB))
