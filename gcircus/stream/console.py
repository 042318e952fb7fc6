"""Terminal output: StdoutStream (plain text) and FancyStdoutStream (coloured, prefixed lines).

Both write to whatever ``sys.stdout`` is at the time of the write (pytest's capture, a redirected stdout), and
decode UTF-8 per (pid, name) so a character split across chunks prints whole. A stdout with a file descriptor is
written by that fd's writer thread (gcircus.stream.writer), shared with the daemon's log lines so both keep their
order: a stdout nobody reads never holds the hub, the pump of this stream waits instead (the child then waits on
its own pipe) and nothing is lost. An in-memory stdout is written at once. A failing stdout (closed, broken pipe)
is logged once and otherwise ignored.
"""
import random
import sys
import time

from gcircus.stream.base import (BaseStream, Incident, IncrementalText, LineFramer, chunk_bytes, chunk_key,
                                 chunk_time, is_eof, line_prefix)
from gcircus.stream.writer import writer_for_fd


#: A stdout that took nothing for this long while output waits for it is stuck (a reader that is merely slow
#: takes some at least every few milliseconds).
OUTPUT_STUCK_AFTER = 1.0


class _ConsoleStream(BaseStream):

    def __init__(self, **kw):
        super().__init__(**kw)
        self._write_failure = Incident()

    def _print(self, text):
        if not text:
            return
        out = sys.stdout
        if out is None:         # no stdout at all (pythonw, some daemonised setups)
            return
        fd = _fd_of(out)
        if fd is not None:
            writer = writer_for_fd(fd)
            # a failure is known once the thread tried: reported at the next chunk
            self._report(writer.failure)
            writer.write(fd, text.encode(getattr(out, 'encoding', None) or 'utf-8', 'replace'))
            return
        try:
            out.write(text)
            out.flush()
        except (OSError, ValueError) as err:      # ValueError: write to a closed file
            self._report(err)
        else:
            self._report(None)

    @property
    def output_blocked(self):
        """Our output waits on a stdout that has not moved for OUTPUT_STUCK_AFTER seconds (a stop gives up
        on what is left rather than wait for it)."""
        fd = _fd_of(sys.stdout) if sys.stdout is not None else None
        return fd is not None and writer_for_fd(fd).stalled(OUTPUT_STUCK_AFTER)

    def _report(self, failure):
        if failure is not None:
            self._write_failure.failed('%s: cannot write to stdout: %s', type(self).__name__, failure)
        else:
            self._write_failure.recovered('%s: writing to stdout again', type(self).__name__)


def _fd_of(out):
    try:
        return out.fileno()
    except (AttributeError, OSError, ValueError):     # in memory (a test's capture), or closed
        return None


class StdoutStream(_ConsoleStream):
    """Write the decoded output to the daemon's stdout, as is (no prefix, no line framing)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self._text = IncrementalText()

    def __call__(self, chunk):
        self._print(self._text.decode(chunk_key(chunk), chunk_bytes(chunk), final=is_eof(chunk)))

    def close(self):
        self._print(''.join(self._text.decode(key, b'', final=True) for key in self._text.keys()))


class FancyStdoutStream(_ConsoleStream):
    """Write each non-empty line to stdout as ``<time> [<pid>] | <line>``, in a colour per stream.

    :param color: one of :attr:`colors`; anything else (or nothing) picks one at random.
    :param time_format: strftime format of the time (default ``%Y-%m-%d %H:%M:%S``).
    """

    colors = ('red', 'green', 'yellow', 'blue', 'magenta', 'cyan', 'white')
    default_time_format = '%Y-%m-%d %H:%M:%S'

    def __init__(self, color=None, time_format=None, **kw):
        super().__init__(**kw)
        self.color = color if color in self.colors else random.choice(self.colors)
        self.time_format = time_format if time_format is not None else self.default_time_format
        # ANSI SGR: reset, foreground 30+n, black background.
        self._start = '\x1b[0;3%d;40m' % (self.colors.index(self.color) + 1)
        self._framer = LineFramer()

    def __call__(self, chunk):
        self._print_lines(chunk.get('pid'), chunk_time(chunk), self._framer.feed(chunk))

    def close(self):
        for (pid, _name), lines in self._framer.drain():
            self._print_lines(pid, time.time(), lines)

    def _print_lines(self, pid, when, lines):
        lines = [line for line in lines if line]
        if lines:
            head = self._start + line_prefix(self.time_format, pid, when)
            self._print(''.join('%s%s\x1b[0m\n' % (head, line) for line in lines))
