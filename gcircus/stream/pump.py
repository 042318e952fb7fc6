"""The pump: one greenlet per child pipe, reading it to EOF and feeding a stream.

Reads large chunks cooperatively (the pipe is made non-blocking and waited on by
the hub) after enlarging the pipe buffer, so a chatty child rarely blocks on a
full pipe. Every chunk reaches the stream as Circus's `{'data', 'pid', 'name'}`
dict; at EOF, streams that frame lines are told to flush a partial last line.
"""
import errno
import fcntl
import logging
import os

import gevent
from gevent.os import make_nonblocking, nb_read

logger = logging.getLogger("gcircus")

CHUNK_SIZE = 1 << 20
PIPE_SIZE = 1 << 20


def _enlarge_pipe(fd):
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (OSError, AttributeError):
        pass  # above /proc/sys/fs/pipe-max-size for an unprivileged user: keep the default


class Pump:
    """Moves one pipe's bytes to a stream; owned by the Process whose pipe it reads."""

    def __init__(self, pipe, name, pid, stream, label=None):
        self.fd = pipe.fileno() if hasattr(pipe, "fileno") else pipe
        self._pipe = pipe
        self.name = name
        self.pid = pid
        self.stream = stream
        self.label = label or "%s:%s" % (pid, name)
        self.greenlet = None
        self.bytes_read = 0

    def start(self):
        _enlarge_pipe(self.fd)
        make_nonblocking(self.fd)
        self.greenlet = gevent.spawn(self._pump)
        self.greenlet.name = "pump[%s]" % self.label
        return self

    def _pump(self):
        """Owned by the Pump; lives until the pipe reaches EOF (the child and its heirs closed it)."""
        try:
            while True:
                try:
                    data = nb_read(self.fd, CHUNK_SIZE)
                except OSError as error:
                    if error.errno in (errno.EINTR, errno.EAGAIN):
                        continue
                    logger.error("reading %s failed: %s", self.label, error)
                    break
                if not data:
                    break
                self.bytes_read += len(data)
                self._deliver({"data": data, "pid": self.pid, "name": self.name})
            flush = getattr(self.stream, "flush_partial", None)
            if flush is not None:
                self._call(flush, self.pid, self.name)
        finally:
            self._close_pipe()

    def _deliver(self, chunk):
        self._call(self.stream, chunk)

    def _call(self, function, *args):
        try:
            function(*args)
        except Exception:
            logger.exception("stream %r failed on output of %s", self.stream, self.label)

    def _close_pipe(self):
        try:
            if hasattr(self._pipe, "close"):
                self._pipe.close()
            else:
                os.close(self.fd)
        except OSError:
            pass

    def join(self, timeout=None):
        """Wait until EOF was reached and delivered; True if it was within timeout."""
        if self.greenlet is None:
            return True
        self.greenlet.join(timeout)
        return self.greenlet.dead

    def kill(self):
        if self.greenlet is not None:
            self.greenlet.kill(block=False)
