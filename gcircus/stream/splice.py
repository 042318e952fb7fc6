"""Moving a child's pipe into a log file inside the kernel with splice(2).

read() + write() copies every byte twice in the daemon (pipe -> our buffer -> page cache) while a child writing
the file itself copies it once, so capturing through them tops out near half the speed of a direct write. splice
moves the pipe's pages into the file with one copy and no Python object per chunk.

Two hops, not one: a splice from a pipe into a file holds the pipe's lock for the whole file write, and the child,
wanting to write into that pipe meanwhile, waits on the lock, so the child's copy and ours would take turns rather
than run on two cores at once. So the bytes first go to a relay pipe of our own (pipe to pipe: page references
are moved, nothing is copied, the child's pipe is locked only that long) and from it to the file. One relay per
thread is enough: every splice of a thread runs to the end without yielding, and leaves the relay empty.

Linux refuses splice into a descriptor opened O_APPEND (EINVAL), and FileStream appends. So the file gets a second
descriptor without O_APPEND (reopened through ``/proc/self/fd``, hence the very same file even after a rename) and
each splice names its offset: the file's size, asked with fstat right before the splice. That keeps O_APPEND's
meaning for every writer that runs on the hub thread (stdout and stderr of one watcher, or several watchers, on the
same file: nothing yields between the fstat and the splice), and for a file truncated under us by logrotate's
copytruncate (the next bytes land at the new end, leaving no sparse hole). A process outside the daemon appending
to the same file at the same instant could interleave between the fstat and the splice; that is the one case where
plain appends would be safer, and it is detected after the fact (see :meth:`SpliceTarget.move`).
"""
import errno
import fcntl
import os
import termios

from gevent import monkey

_get_ident = monkey.get_original("_thread", "get_ident")    # the OS thread, not the greenlet

_MOVE = getattr(os, "SPLICE_F_MOVE", 1)      # a hint only; harmless
#: On the child's pipe: an empty pipe raises BlockingIOError rather than blocking the hub (the pump then waits for
#: it to be readable).
_NONBLOCK = _MOVE | getattr(os, "SPLICE_F_NONBLOCK", 2)
#: The relay's size, and so the most one splice moves: the pump's chunk.
RELAY_SIZE = 1 << 20
_SETPIPE = getattr(fcntl, "F_SETPIPE_SZ", 1031)
#: What splice answers when this kernel or this file's filesystem cannot take it: the stream goes back to
#: read/write for good. Any other error (a full disk, EIO) is the file's, and the write path reports it.
REFUSED = frozenset((errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV, errno.EBADF, errno.ESPIPE))


def splice_available():
    """Whether this platform has splice at all (Linux, Python 3.10+)."""
    return hasattr(os, "splice")


def pipe_bytes_ready(pipe_fd):
    """How many bytes the pipe holds right now (FIONREAD)."""
    return int.from_bytes(fcntl.ioctl(pipe_fd, termios.FIONREAD, b"\0\0\0\0"), "little", signed=True)


class SpliceRefused(Exception):
    """This file cannot be spliced into (``reason`` says why); the stream must use read/write instead."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class SpliceIncomplete(Exception):
    """Bytes were taken from the child's pipe but not all reached the file: ``error`` (an OSError) says why,
    ``taken`` how many were taken, ``unwritten`` holds those not written (the caller writes them another way).
    ``refused`` when splice does not work for this file at all."""

    def __init__(self, error, taken, unwritten):
        super().__init__(error)
        self.error = error
        self.taken = taken
        self.unwritten = unwritten
        self.refused = error.errno in REFUSED


class Relay:
    """A pipe of this process between the child's pipe and the file (see the module docstring); empty between
    splices."""

    def __init__(self):
        self.read_fd, self.write_fd = os.pipe()     # close-on-exec: children never inherit it
        self.pid = os.getpid()
        try:
            fcntl.fcntl(self.write_fd, _SETPIPE, RELAY_SIZE)
        except OSError:
            pass    # past pipe-max-size or the user's quota: smaller moves, nothing else changes

    def take(self, count):
        """Read ``count`` bytes back out of the relay (after a failed splice into the file)."""
        pieces = []
        while count > 0:
            piece = os.read(self.read_fd, count)
            if not piece:
                break
            pieces.append(piece)
            count -= len(piece)
        return b"".join(pieces)


_relays = {}


def relay_for_this_thread():
    key = _get_ident()
    relay = _relays.get(key)
    if relay is None or relay.pid != os.getpid():      # a forked child gets its own
        relay = _relays[key] = Relay()
    return relay


class SpliceTarget:
    """A second, non-appending descriptor of an open file, that splices pipe bytes at the file's end.

    ``source`` is the appending descriptor it was opened from; the owner closes this target whenever that
    descriptor is closed or replaced. ``raced`` becomes True when a splice found the file grown by more than it
    wrote: someone outside the daemon appends to it too.
    """

    def __init__(self, source_fd):
        self.source = source_fd
        self.raced = False
        try:
            self.fd = os.open("/proc/self/fd/%d" % source_fd, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError as err:
            raise SpliceRefused("cannot reopen it without O_APPEND: %s" % (err.strerror or err)) from None

    def move(self, pipe_fd, count):
        """Splice up to ``count`` bytes from the pipe to the end of the file; the count taken, 0 at the pipe's EOF.

        BlockingIOError when the pipe is empty; SpliceRefused when splice does not work here (nothing was taken);
        SpliceIncomplete when bytes were taken and not all written; any other OSError before anything was taken.
        """
        relay = relay_for_this_thread()
        try:
            taken = os.splice(pipe_fd, relay.write_fd, count, flags=_NONBLOCK)
        except (BlockingIOError, InterruptedError):
            raise
        except OSError as err:
            if err.errno in REFUSED:
                raise SpliceRefused("splice(2) failed: %s" % (err.strerror or err)) from None
            raise
        left = taken
        try:
            while left:
                end = os.fstat(self.fd).st_size
                written = os.splice(relay.read_fd, self.fd, left, offset_dst=end, flags=_MOVE)
                if written <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                if os.fstat(self.fd).st_size > end + written:
                    self.raced = True
                left -= written
        except OSError as err:
            raise SpliceIncomplete(err, taken, relay.take(left)) from None
        return taken

    def close(self):
        try:
            os.close(self.fd)
        except OSError:
            pass
