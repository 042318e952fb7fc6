"""The pump: one greenlet per child pipe, reading it to EOF and feeding a stream.

The pipe is made non-blocking and waited on by the hub through one persistent io watcher; each wake-up reads up
to 1 MiB. A pipe found full (a read returned its whole capacity) is enlarged once with F_SETPIPE_SZ, so only
chatty children cost the user's pipe-buffer quota (Linux shrinks every new pipe of a user past
``pipe-user-pages-soft`` to a single page: enlarging every pipe up front would hurt quiet ones). Every chunk
reaches the stream as Circus's ``{'data', 'pid', 'name'}`` dict; at EOF the stream's ``flush_partial(pid, name)``
is called if it has one (see :mod:`gcircus.stream.base`).

A child that writes faster than we read never monopolises the hub: after each MiB read without the pipe running
dry the pump lets every pending event be handled before reading on. A stream that raises is logged once per
incident and the pump keeps reading, so the child never blocks on a pipe nobody drains.

A stream that writes chunks to a file unchanged offers ``splice_from(fd, limit)`` (FileStream does, see
:mod:`gcircus.stream.splice`): while no tap listener wants to see the bytes, the pump asks it to move the pipe's
bytes into the file inside the kernel instead of reading them, chunk by chunk, and reads a chunk itself whenever
the stream answers None.
"""
import fcntl
import logging
import os

import gevent
from gevent.event import Event
from gevent.hub import get_hub

logger = logging.getLogger("gcircus")

#: Largest read; also the pipe size asked for when a pipe is found full.
CHUNK_SIZE = 1 << 20
PIPE_SIZE = 1 << 20
#: Bytes read without the pipe running dry after which the pump lets the hub run before reading on.
YIELD_AFTER = 1 << 20
#: How it lets the hub run: a timer that is already due when the hub next polls, so every pending event (a child's
#: exit, a command) is handled before this pump reads on. Not sleep(0): that only queues a callback, and the hub
#: runs up to 50 queued callbacks before polling again, so a pump feeding a line-framing stream delayed a child's
#: exit by half a second. Not idle(): it waits for a moment with no event pending, which a busy daemon may never have.
YIELD_SLEEP = 1e-6

_SETPIPE = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_GETPIPE = getattr(fcntl, "F_GETPIPE_SZ", 1032)


def pipe_capacity(fd):
    """The pipe's buffer size in bytes (Linux), or None where it cannot be asked."""
    try:
        return fcntl.fcntl(fd, _GETPIPE)
    except OSError:
        return None


def enlarge_pipe(fd, size=PIPE_SIZE):
    """Ask for a ``size``-byte pipe buffer; returns the capacity obtained (None if unknown)."""
    try:
        return fcntl.fcntl(fd, _SETPIPE, size)
    except OSError:
        return pipe_capacity(fd)    # EPERM past pipe-max-size or the user's quota: keep what we have


class OutputTap:
    """Lets one listener besides the stream see a watcher's output as it is read (the dashboard's tail view).

    ``listener(pid, name, data)`` gets every chunk, and ``data=b""`` once a pipe reaches EOF. With no listener a
    pump pays one attribute test per chunk, so a daemon nobody watches reads its pipes as fast as without the tap.
    """

    def __init__(self):
        self.listener = None
        self._failing = False

    def deliver(self, pid, name, data):
        listener = self.listener
        if listener is None:
            return
        try:
            listener(pid, name, data)
        except Exception:
            if not self._failing:   # once per incident, like a failing stream
                self._failing = True
                logger.exception("output tap %r failed; the stream still gets the output", listener)
        else:
            self._failing = False


class Pump:
    """Moves one pipe's bytes to a stream; owned by the Process whose pipe it reads.

    ``reached_eof`` is set when the pipe is at end of file (every holder of its write end closed it);
    ``join()`` waits until that EOF was also delivered to the stream.
    """

    def __init__(self, pipe, name, pid, stream, label=None, tap=None):
        self.fd = pipe.fileno() if hasattr(pipe, "fileno") else pipe
        self._pipe = pipe
        self.name = name
        self.pid = pid
        self.stream = stream
        self.label = label or "%s:%s" % (pid, name)
        self.greenlet = None
        self.bytes_read = 0
        self.reached_eof = Event()
        self._capacity = None
        self._failing = False
        self.delivering = False     # inside the stream call (a slow stream holds the pump there)
        self.tap = tap              # an OutputTap, or None

    def start(self):
        os.set_blocking(self.fd, False)
        self._capacity = pipe_capacity(self.fd)
        self.greenlet = gevent.spawn(self._pump)
        self.greenlet.name = "pump[%s]" % self.label
        return self

    def _pump(self):
        """Owned by the Pump; lives until the pipe reaches EOF (the child and its heirs closed it) or kill()."""
        readable = get_hub().loop.io(self.fd, 1)
        unyielded = 0   # bytes read since this greenlet last let the hub run
        try:
            while True:
                try:
                    data = None     # stays None when the stream moved the chunk itself
                    count = self._splice()
                    if count is None:
                        data = os.read(self.fd, CHUNK_SIZE)
                        count = len(data)
                except BlockingIOError:
                    unyielded = 0
                    get_hub().wait(readable)
                    continue
                except InterruptedError:
                    continue
                except OSError as error:
                    logger.error("reading the %s of %s failed: %s", self.name, self.label, error)
                    break
                if not count:
                    break
                self.bytes_read += count
                if data is not None:
                    stream = self.stream    # may be swapped (set stdout_stream) or removed while we run
                    if stream is not None:
                        self._call(stream, {"data": data, "pid": self.pid, "name": self.name})
                    if self.tap is not None and self.tap.listener is not None:
                        self.tap.deliver(self.pid, self.name, data)
                self._grow_if_full(count)
                unyielded += count
                if unyielded >= YIELD_AFTER:
                    unyielded = 0
                    gevent.sleep(YIELD_SLEEP)
            self.reached_eof.set()
            if self.tap is not None and self.tap.listener is not None:
                self.tap.deliver(self.pid, self.name, b"")
            flush = getattr(self.stream, "flush_partial", None)
            if flush is not None:
                self._call(flush, self.pid, self.name)
        finally:
            readable.close()
            self._close_pipe()

    def _splice(self):
        """Let the stream move the next chunk itself (see the module docstring): the count moved (0 at EOF), or
        None when the pump must read it. BlockingIOError when the pipe is empty."""
        stream = self.stream    # may be swapped (set stdout_stream) or removed while we run
        if stream is None or (self.tap is not None and self.tap.listener is not None):
            return None
        splice_from = getattr(stream, "splice_from", None)
        if splice_from is None:
            return None
        return splice_from(self.fd, CHUNK_SIZE)

    def _grow_if_full(self, size):
        """The read emptied a full pipe: the child is chatty, give it a larger pipe (asked once)."""
        if self._capacity is not None and size >= self._capacity:
            self._capacity = None
            enlarge_pipe(self.fd)

    def _call(self, function, *args):
        self.delivering = True
        try:
            function(*args)
        except Exception:
            if not self._failing:   # once per incident: a broken stream must not flood the log
                self._failing = True
                logger.exception("stream %r failed on the %s of %s; its output is dropped until it works "
                                 "again", self.stream, self.name, self.label)
        else:
            if self._failing:
                self._failing = False
                logger.warning("stream %r works again for the %s of %s", self.stream, self.name, self.label)
        finally:
            self.delivering = False

    def _close_pipe(self):
        try:
            if hasattr(self._pipe, "close"):
                self._pipe.close()
            else:
                os.close(self.fd)
        except OSError:
            pass

    @property
    def done(self):
        return self.greenlet is None or self.greenlet.dead

    def join(self, timeout=None):
        """Wait until EOF was reached and delivered; True if it was within timeout."""
        if self.greenlet is None:
            return True
        self.greenlet.join(timeout)
        return self.greenlet.dead

    def drain(self, eof_timeout, delivery_timeout=None):
        """Wait for EOF and its delivery; True when the stream has everything, False if the caller should give up.

        The pipe gets ``eof_timeout`` seconds to reach EOF: one still open and silent after that is held by a
        descendant that outlived the process (it may never close). A pump that is instead busy handing a chunk to
        a slow stream (the 'thread' backend) is still draining what the process wrote: it gets up to
        ``delivery_timeout`` more to reach EOF, and then as long again to deliver the end.
        """
        if self.done:
            return True
        if not self.reached_eof.wait(eof_timeout):
            if not self.delivering or self.output_blocked or not self.reached_eof.wait(delivery_timeout):
                return False
        return self.join(delivery_timeout)

    @property
    def output_blocked(self):
        """The stream waits on an output that does not move (the daemon's stdout nobody reads): a stop gives
        up on it at once rather than after the delivery timeout (a stream may say so; most have no output
        of that kind)."""
        return bool(getattr(self.stream, "output_blocked", False))

    def kill(self):
        """Stop reading (the pipe is closed; a partial line held by the stream is released by its close())."""
        if self.greenlet is not None:
            self.greenlet.kill(block=False)

    def __repr__(self):
        return "<Pump %s %d bytes%s>" % (self.label, self.bytes_read, " eof" if self.reached_eof.is_set() else "")
