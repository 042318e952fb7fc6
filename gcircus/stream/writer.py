"""Writes that may block (a pipe nobody reads, a stalled journald, a hung NFS file), done by a real OS
thread so the hub never waits on an output.

A WriterThread takes two kinds of work, written in the order given:

- log records (`offer_record`): the hub only queues them and never waits. When `max_records` are already
  queued (the output is stuck) a record is dropped and counted; the first record queued once there is room
  again is preceded by one "N log lines dropped while the log output was blocked" record, and so is the end of
  the backlog when nothing more comes (so the count is written as soon as the output moves again).
- bytes (`write`): a watcher's output for the daemon's stdout. Nothing is dropped: once `max_bytes` wait to be
  written, the calling greenlet waits (the hub runs on) until the thread catches up, so the pump stops reading
  that child's pipe and the child waits on its own write. Backpressure, per stream.

One writer per file descriptor (`writer_for_fd`) keeps the daemon's log lines and watcher output on the same
stdout in the order they happened. The thread is a real one even in a monkey-patched program, and it writes
with os.write, holding no Python-level lock while it blocks: interpreter exit never waits for it, and a stuck
write cannot wedge the interpreter's own flush of sys.stdout at exit.
"""
import copy
import logging
import os
import select
import time

import gevent
from gevent import monkey
from gevent.event import Event

_start_thread, _allocate_lock = monkey.get_original("_thread", ["start_new_thread", "allocate_lock"])
_SimpleQueue = monkey.get_original("queue", "SimpleQueue")
_Empty = monkey.get_original("queue", "Empty")

#: Log records queued behind a slow output before new ones are dropped. An output that moves is emptied at
#: every wake-up of the thread (the whole backlog is formatted and written at once), and no hub produces 2,000
#: records between two of them; only a stuck (or very slow) output fills it. About 1 MB of records at most.
MAX_QUEUED_RECORDS = 2000
#: Watcher output accepted ahead of the thread before a pump waits: one pump read (1 MiB), so a reader of the
#: daemon's stdout that keeps up never makes a pump wait.
MAX_PENDING_BYTES = 1 << 20
#: Largest single write of watcher output: how often the thread can tell it is still making progress.
WRITE_PIECE = 1 << 16

_RECORDS, _BYTES, _MARK = "records", "bytes", "mark"

DROPPED_MESSAGE = "%d log lines dropped while the log output was blocked"


class DropTally:
    """Log records dropped by every writer of this process since it started (the daemon's `dstats`)."""

    def __init__(self):
        self.total = 0
        self._lock = _allocate_lock()

    def add(self, count=1):
        with self._lock:
            self.total += count


LOG_DROPS = DropTally()


def log_lines_dropped():
    return LOG_DROPS.total


_NOTICE = logging.LogRecord("gcircus", logging.WARNING, __file__, 0, DROPPED_MESSAGE, (0,), None)


def dropped_record(count):
    """The record that says `count` log lines were dropped (logged by "gcircus", as a warning).

    A copy of one made at import, not a new LogRecord: made in the writer thread, LogRecord() would ask
    threading for the current thread and so register the writer as a (dummy) Python thread, and gcircusd's
    fast exit (taken only when no other thread runs) would never be taken again."""
    record = copy.copy(_NOTICE)
    record.args = (count,)
    record.created = time.time()
    record.msecs = int(record.created * 1000) % 1000
    return record


def write_all(fd, data):
    """os.write until every byte is written (a signal or a non-blocking fd may cut a write short)."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except InterruptedError:
            continue
        except BlockingIOError:        # someone made the fd non-blocking: wait for room like a blocking write
            select.select([], [fd], [])
            continue
        view = view[written:]


class WriterThread:
    """A real thread that writes what the hub hands it, in order; see the module docstring."""

    def __init__(self, name, max_records=MAX_QUEUED_RECORDS, max_bytes=MAX_PENDING_BYTES):
        self.name = name
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.pid = os.getpid()        # a forked child gets writers of its own (threads do not survive fork)
        self.queued_records = 0       # records queued and not written yet
        self.pending_bytes = 0        # bytes queued and not written yet
        self.dropped = 0              # records dropped since the last drop notice was queued
        self.failure = None           # why the last byte write failed; None once one succeeds
        self.progress_at = time.monotonic()   # when the thread last woke up or finished a write
        self._drop_sink = None        # the sink the dropped records were for (the notice goes there)
        self._jobs = _SimpleQueue()
        self._mutex = _allocate_lock()
        self._space_waiters = []      # (hub, Event) of greenlets waiting for pending bytes to go down
        self._started = False

    # -- producers (the hub) -------------------------------------------------------------------------------------

    def offer_record(self, record, sink):
        """Queue `record` for `sink.emit([records])`; never blocks. False when it was dropped (queue full)."""
        with self._mutex:
            if self.queued_records >= self.max_records:
                self.dropped += 1
                self._drop_sink = sink
                LOG_DROPS.add()
                return False
            if self.dropped:
                self._put_locked((_RECORDS, sink, dropped_record(self.dropped)))
                self.queued_records += 1
                self.dropped = 0
            self.queued_records += 1
            self._put_locked((_RECORDS, sink, record))
        return True

    def write(self, fd, data):
        """Queue `data` for fd; the calling greenlet waits while `max_bytes` are already waiting."""
        while True:
            with self._mutex:
                if self.pending_bytes < self.max_bytes:
                    self.pending_bytes += len(data)
                    self._put_locked((_BYTES, fd, data))
                    return
                waiter = (gevent.get_hub(), Event())
                self._space_waiters.append(waiter)
            try:
                waiter[1].wait()
            finally:
                with self._mutex:
                    if waiter in self._space_waiters:
                        self._space_waiters.remove(waiter)

    def flush(self, timeout):
        """Block the calling thread until everything queued so far is written, at most `timeout` seconds;
        True when it was. For exit and close only: it does block."""
        if not self._started or self.pid != os.getpid():
            return True
        done = _allocate_lock()
        done.acquire()
        self._jobs.put((_MARK, None, done))
        return done.acquire(timeout=max(0.0, timeout))

    def stalled(self, seconds):
        """True when producers of bytes wait for room and the thread has not written for `seconds`: the
        output is stuck, not slow (a stop then gives up on it rather than wait for it)."""
        with self._mutex:
            return self.pending_bytes >= self.max_bytes and time.monotonic() - self.progress_at >= seconds

    def unwritten(self):
        """(records, bytes) still queued, records dropped included."""
        with self._mutex:
            return self.queued_records + self.dropped, self.pending_bytes

    def _put_locked(self, job):
        self._jobs.put(job)
        if not self._started:
            self._started = True
            _start_thread(self._write_loop, ())

    # -- the thread ----------------------------------------------------------------------------------------------

    def _write_loop(self):
        """Owned by this WriterThread; a real OS thread living as long as the process (it holds no lock the
        interpreter's exit waits for). Takes the whole backlog at each wake-up and writes it in order."""
        while True:
            batch = [self._jobs.get()]
            self.progress_at = time.monotonic()
            while True:
                try:
                    batch.append(self._jobs.get_nowait())
                except _Empty:
                    break
            start = 0
            while start < len(batch):
                kind, target, _payload = batch[start]
                end = start + 1
                if kind != _MARK:       # consecutive jobs for the same target go out together
                    while end < len(batch) and batch[end][0] == kind and batch[end][1] == target:
                        end += 1
                self._run(kind, target, [job[2] for job in batch[start:end]])
                start = end
            self._notice_drops()

    def _run(self, kind, target, payloads):
        """One group of jobs; whatever fails, the accounting is done (or producers would wait for ever)."""
        if kind == _MARK:
            payloads[0].release()
        elif kind == _RECORDS:
            try:
                target.emit(payloads)
            except Exception:       # a sink reports its own failures; the thread must live on regardless
                pass
            finally:
                self.progress_at = time.monotonic()
                with self._mutex:
                    self.queued_records -= len(payloads)
        else:
            try:
                data = b"".join(payloads)
                for start in range(0, len(data), WRITE_PIECE):
                    write_all(target, data[start:start + WRITE_PIECE])
                    self.progress_at = time.monotonic()
                self.failure = None
            except Exception as error:
                self.failure = "%s" % (getattr(error, "strerror", None) or error)
            finally:
                self._release_bytes(sum(len(data) for data in payloads))

    def _release_bytes(self, count):
        with self._mutex:
            self.pending_bytes -= count
            waiters = self._space_waiters if self.pending_bytes < self.max_bytes else []
            self._space_waiters = [] if waiters else self._space_waiters
        for hub, event in waiters:
            try:
                hub.loop.run_callback_threadsafe(event.set)
            except Exception:       # that hub is gone (its thread ended): nobody waits there any more
                pass

    def _notice_drops(self):
        """The backlog is written and records were dropped meanwhile: say how many, now."""
        with self._mutex:
            count, sink = (self.dropped, self._drop_sink) if self.dropped and not self.queued_records else (0, None)
            if count:
                self.dropped = 0
        if count:
            try:
                sink.emit([dropped_record(count)])
            except Exception:
                pass


_registry_lock = _allocate_lock()
_fd_writers = {}


def writer_for_fd(fd):
    """The WriterThread of this process for file descriptor fd (stdout's log lines and watcher output share
    it, so they keep their order)."""
    with _registry_lock:
        writer = _fd_writers.get(fd)
        if writer is None or writer.pid != os.getpid():
            writer = _fd_writers[fd] = WriterThread("fd %d" % fd)
        return writer


def fd_writers():
    with _registry_lock:
        return [writer for writer in _fd_writers.values() if writer.pid == os.getpid()]
