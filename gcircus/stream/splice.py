"""Moving a child's pipe into a log file inside the kernel with splice(2).

read() + write() copies every byte twice in the daemon (pipe -> our buffer -> page cache) while a child writing
the file itself copies it once, so capturing through them tops out near half the speed of a direct write. splice
moves the pipe's pages into the file with one copy and no Python object per chunk.

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

#: SPLICE_F_NONBLOCK: an empty pipe raises BlockingIOError rather than blocking the hub (the pump then waits for
#: it to be readable). SPLICE_F_MOVE is only a hint (kept: harmless, and the kernel may use it again).
FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
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
        """Splice up to ``count`` bytes from the pipe to the end of the file; 0 at the pipe's EOF.

        BlockingIOError when the pipe is empty; SpliceRefused when splice does not work here; any other OSError
        is the file's (nothing was taken from the pipe then: splice consumes only what it wrote).
        """
        end = os.fstat(self.fd).st_size
        try:
            moved = os.splice(pipe_fd, self.fd, count, offset_dst=end, flags=FLAGS)
        except (BlockingIOError, InterruptedError):
            raise
        except OSError as err:
            if err.errno in REFUSED:
                raise SpliceRefused("splice(2) failed: %s" % (err.strerror or err)) from None
            raise
        if moved and os.fstat(self.fd).st_size > end + moved:
            self.raced = True
        return moved

    def close(self):
        try:
            os.close(self.fd)
        except OSError:
            pass
