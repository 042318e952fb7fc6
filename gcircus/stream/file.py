"""File output: FileStream (with size rotation) and WatchedFileStream (follows an external logrotate).

Files are opened append-only in binary mode on a raw descriptor: each chunk is one ``write()`` with no buffer in
between, so the size used for rotation decisions is the file's real size and nothing sits in memory when the
daemon dies. Without ``time_format`` the bytes are written exactly as the child produced them; with it, every
line gets a ``<time> [<pid>] | `` prefix (see :class:`gcircus.stream.base.LineFramer`).

A write that fails (missing directory, EACCES, disk full) is logged once per incident, the chunk is dropped and the
descriptor closed; every later chunk tries to reopen, so writing resumes as soon as the path is usable again. No
error ever reaches the caller: a full disk must not stop the pump, and through it the child.

A rotation that fails (the directory became read-only, immutable or unreachable) costs nothing: the file already
open stays open and keeps receiving the output, past its size or period, until a later rotation succeeds. The
descriptor is only ever swapped for one already opened, never closed first in the hope of reopening.

Fast path: a FileStream that writes chunks unchanged (no ``time_format``, and a class that does not alter
``__call__`` or the write path) also offers ``splice_from(pipe_fd, limit)``, which the pump calls instead of
reading the pipe: the bytes go from the pipe to the file inside the kernel (see :mod:`gcircus.stream.splice`),
with the same size rotation, reopening and failure handling as a write. Whenever it cannot do exactly what the
write path would (a chunk that alone exceeds ``max_bytes`` must be cut at a newline, a file error), it returns
None and the pump reads that chunk and calls the stream as usual.
"""
import errno
import os
import stat
import time

from gcircus.stream.base import BaseStream, Incident, LineFramer, as_int, chunk_bytes, chunk_time, line_prefix, log
from gcircus.stream.splice import SpliceIncomplete, SpliceRefused, SpliceTarget, pipe_bytes_ready, splice_available

_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, 'O_CLOEXEC', 0)


def _write_all(fd, data):
    """os.write until everything is written (a regular file may accept a short write, e.g. near a full disk)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def drop_options(stream, options, names, reason):
    """Remove FileStream options that a subclass does not honour, saying so rather than ignoring them silently."""
    dropped = sorted(name for name in names if options.pop(name, None) is not None)
    if dropped:
        log.warning('%s: ignoring %s (%s)', type(stream).__name__, ', '.join(dropped), reason)


def _new_temp_file():
    import tempfile     # here: only a stream without a filename needs it
    fd, path = tempfile.mkstemp(prefix='gcircus-', suffix='.log')
    os.close(fd)
    return path


class FileStream(BaseStream):
    """Append a process's output to a file, optionally rotating it by size.

    :param filename: the file; default a new temporary file (its name is in ``filename``).
    :param max_bytes: rotate before a write would make the file reach this size; 0 (default) never rotates.
    :param backup_count: how many rotated files (``filename.1`` newest ... ``filename.N`` oldest) to keep. With
        ``max_bytes`` set and ``backup_count`` 0 the file is truncated when full. (Circus instead reopens the same
        file in append mode, so the "rotation" does nothing and then repeats on every write.)
    :param time_format: strftime format; when set each line is written as ``<time> [<pid>] | <line>``.

    Rotation happens only between writes, so a chunk is never split across two files unless it alone is at least
    ``max_bytes`` long; such a chunk is cut at its last newline that fits (or at ``max_bytes`` if none does), and
    no byte is lost or written twice. No file ever exceeds ``max_bytes``.

    The file is opened by the constructor and by ``open()``. A chunk that arrives after ``close()`` reopens it:
    late output is kept rather than dropped, and the next ``close()`` closes the file again.
    """

    def __init__(self, filename=None, max_bytes=0, backup_count=0, time_format=None, **kw):
        super().__init__(**kw)
        self.filename = os.fspath(filename) if filename is not None else _new_temp_file()
        self.max_bytes = as_int(max_bytes, 'max_bytes', minimum=0)
        self.backup_count = as_int(backup_count, 'backup_count', minimum=0)
        self.time_format = time_format or None
        self._framer = LineFramer() if self.time_format else None
        self._fd = None
        self._identity = None       # (st_dev, st_ino) of the open file
        # True while the open file was renamed away by a rotation (it is now ``filename.1``) and no new file could
        # be opened at ``filename`` yet: writing goes on there, and every write first tries the open again.
        self._detached = False
        self._write_failure = Incident()
        self._rotation_failure = Incident()
        # The splice fast path: only for bytes written as they came, by a class whose write path is ours (a user
        # subclass overriding __call__ to change or observe the chunks must see every one of them).
        self._splice_usable = (splice_available() and self._framer is None
                               and type(self).__call__ is FileStream.__call__ and type(self)._emit is FileStream._emit
                               and type(self)._write_payload is FileStream._write_payload)
        self._splice_target = None  # a SpliceTarget on self._fd, opened at the first splice
        self._regular = False       # the open file is a regular file (not a FIFO or a device: those get write())
        #: Bytes the splice fast path moved into the file; the others went through write().
        self.bytes_spliced = 0
        self.open()

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def open(self):
        if self._fd is None:
            try:
                self._open_fd()
            except OSError as err:
                self._write_failure.failed('cannot open %s: %s; its output is dropped until it can be opened',
                                           self.filename, err)

    def close(self):
        if self._framer is not None:
            for (pid, _name), lines in self._framer.drain():
                self._emit(self._render(pid, time.time(), lines))
        self._close_fd()

    # -- writing -----------------------------------------------------------------------------------------------

    def __call__(self, chunk):
        if self._framer is None:
            payload = chunk_bytes(chunk)
        else:
            payload = self._render(chunk.get('pid'), chunk_time(chunk), self._framer.feed(chunk))
        if payload:
            self._emit(payload)

    def _render(self, pid, when, lines):
        if not lines:
            return b''
        prefix = line_prefix(self.time_format, pid, when)
        return (prefix + ('\n' + prefix).join(lines) + '\n').encode('utf-8')

    def _emit(self, payload):
        try:
            if self._fd is None:
                self._open_fd()
            self._write_payload(payload)
        except OSError as err:
            self._write_failure.failed('cannot write to %s: %s; its output is dropped until it is writable again',
                                       self.filename, err)
            self._close_fd()    # so the next chunk retries the open
        else:
            self._write_failure.recovered('writing to %s again', self.filename)

    def _write_payload(self, payload):
        """Write one rendered chunk to the open file."""
        self._before_write()
        if self.max_bytes > 0:
            self._write_with_size_rotation(payload)
        else:
            _write_all(self._fd, payload)

    def _before_write(self):
        """Run before every write or splice; subclasses add their reopen/rotation policy here."""
        if self._detached:
            self._reattach()

    # -- the splice fast path ----------------------------------------------------------------------------------

    def splice_from(self, pipe_fd, limit):
        """Move up to ``limit`` bytes from the pipe to the file in the kernel; the count moved, 0 at EOF.

        None when this chunk must take the read/write path instead (the caller then reads it and calls the
        stream); BlockingIOError when the pipe is empty. Never raises anything else.
        """
        if not self._splice_usable:
            return None
        try:
            if self._fd is None:
                self._open_fd()
            self._before_write()
            if not self._regular:
                return None
            count = self._splice_count(pipe_fd, limit)
            if count is None:
                return None
            if self._splice_target is None:
                self._splice_target = SpliceTarget(self._fd)
            moved = self._splice_target.move(pipe_fd, count)
        except (BlockingIOError, InterruptedError):
            raise
        except SpliceRefused as refused:
            self._stop_splicing('%s' % refused.reason)
            return None
        except SpliceIncomplete as incomplete:
            # Taken from the pipe, not all written: the rest goes through the write path (which reports a failure
            # its own way), so nothing is lost or reordered.
            if incomplete.refused:
                self._stop_splicing('splice(2) failed: %s' % (incomplete.error.strerror or incomplete.error))
            self.bytes_spliced += incomplete.taken - len(incomplete.unwritten)
            if incomplete.unwritten:
                self._emit(incomplete.unwritten)
            return incomplete.taken
        except OSError:
            return None     # the write path takes this chunk, and reports the error its own way
        if self._splice_target.raced:
            self._stop_splicing('another process appends to it too')
        self.bytes_spliced += moved
        self._write_failure.recovered('writing to %s again', self.filename)
        return moved

    def _splice_count(self, pipe_fd, limit):
        """How many bytes to splice now, after rotating by size if they would not fit; None when the write path
        must handle the chunk (it alone is at least max_bytes, so it is cut at a newline)."""
        if self.max_bytes <= 0:
            return limit
        # The write path rotates before a chunk that would not fit, so it must know the chunk's size first: what
        # the pipe holds is what a read would return.
        count = min(pipe_bytes_ready(pipe_fd), limit)
        if count == 0:
            return None     # empty or at EOF: a read tells which, and takes what arrived meanwhile
        size = os.fstat(self._fd).st_size
        if size + count < self.max_bytes:
            return count
        if size > 0 and not self._rotate():
            return count    # keeping the output matters more than the size limit, as on the write path
        return count if count < self.max_bytes else None

    def _stop_splicing(self, reason):
        self._splice_usable = False
        self._drop_splice_target()
        log.warning('%s: writing with write() rather than splice() from now on: %s', self.filename, reason)

    def _drop_splice_target(self):
        target, self._splice_target = self._splice_target, None
        if target is not None:
            target.close()

    def _write_with_size_rotation(self, payload):
        limit = self.max_bytes
        # fstat rather than a counter: another writer (say stderr's stream on the same file) also appends to it.
        size = os.fstat(self._fd).st_size
        start, end = 0, len(payload)
        while start < end:
            if size + (end - start) < limit:
                _write_all(self._fd, memoryview(payload)[start:])
                return
            if size > 0:
                if not self._rotate():
                    # Keeping the output matters more than the size limit; the next write tries again.
                    _write_all(self._fd, memoryview(payload)[start:])
                    return
                size = 0
                continue
            # An empty file and still too much: this chunk alone is at least max_bytes, so it has to be split.
            cut = payload.rfind(b'\n', start, start + limit) + 1 or start + limit
            _write_all(self._fd, memoryview(payload)[start:cut])
            size, start = cut - start, cut

    def _rotate(self):
        """Start a new file: shift ``name`` -> ``name.1`` -> ... -> ``name.<backup_count>`` and open a new ``name``
        (with backup_count 0, empty the file instead). False if that failed: the file already open then stays open
        and keeps receiving the output (past max_bytes) until a later rotation works."""
        try:
            if self.backup_count == 0:
                os.ftruncate(self._fd, 0)       # O_APPEND: the next write lands at offset 0
            elif not self._detached:
                self._shift_backups()
                self._detached = True           # the open file is now name.1; a new name is opened below
        except OSError as err:
            self._rotation_failure.failed('cannot rotate %s: %s; writing on to it past max_bytes until rotation '
                                          'works', self.filename, err)
            return False
        if self._detached and not self._reattach():
            return False
        self._rotation_failure.recovered('rotating %s again', self.filename)
        return True

    def _shift_backups(self):
        for number in range(self.backup_count - 1, 0, -1):
            older = '%s.%d' % (self.filename, number)
            if os.path.exists(older):
                os.replace(older, '%s.%d' % (self.filename, number + 1))
        if os.path.exists(self.filename):      # someone may have removed it meanwhile
            os.replace(self.filename, self.filename + '.1')

    def _reattach(self):
        """After a rotation renamed the open file away: open the new file; True once it is open."""
        try:
            self._open_fd()
        except OSError as err:
            self._rotation_failure.failed('cannot open a new %s after rotating it: %s; writing on to %s.1 '
                                          'meanwhile', self.filename, err, self.filename)
            return False
        self._rotation_failure.recovered('rotating %s again', self.filename)
        return True

    # -- descriptor --------------------------------------------------------------------------------------------

    def _open_fd(self, truncate=False):
        """Open ``filename`` and make it the file written to; the one open before is closed only afterwards, so a
        failed open (OSError) leaves the stream writing where it was."""
        fd = os.open(self.filename, _OPEN_FLAGS | (os.O_TRUNC if truncate else 0), 0o666)
        info = os.fstat(fd)
        previous = self._fd
        self._drop_splice_target()
        self._fd, self._identity, self._detached = fd, (info.st_dev, info.st_ino), False
        self._regular = stat.S_ISREG(info.st_mode)
        if previous is not None:
            self._close_descriptor(previous)

    def _close_fd(self):
        self._drop_splice_target()
        fd, self._fd = self._fd, None
        if fd is not None:
            self._close_descriptor(fd)

    def _close_descriptor(self, fd):
        try:
            os.close(fd)
        except OSError as err:
            log.warning('error closing %s: %s', self.filename, err)

    def __repr__(self):
        return '<%s %s>' % (type(self).__name__, self.filename)


class WatchedFileStream(FileStream):
    """Append to a file that an external tool (logrotate) may rename or delete.

    Before each write the path is stat()ed; if it is gone or is now another file (device/inode changed) the stream
    reopens it, so the write lands in the new file. Lines already handed to the old file stay there; none is lost.

    :param filename: the file to write.
    :param time_format: as for :class:`FileStream`.
    """

    def __init__(self, filename=None, time_format=None, **kw):
        drop_options(self, kw, ('max_bytes', 'backup_count'), 'rotation is left to the external tool')
        super().__init__(filename, time_format=time_format, **kw)

    def _before_write(self):
        try:
            info = os.stat(self.filename)
            current = (info.st_dev, info.st_ino)
        except OSError:
            current = None
        if current != self._identity:
            try:
                self._open_fd()
            except OSError as err:
                # the old file (renamed, or deleted) is still open: better there than nowhere
                self._rotation_failure.failed('cannot reopen %s: %s; writing on to the file open before', self.filename,
                                              err)
            else:
                self._rotation_failure.recovered('reopened %s', self.filename)
