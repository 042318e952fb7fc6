"""A watcher's output: its stdout/stderr streams (built from their config mappings, opened on start, closed on
stop) and the pumps that carry its processes' pipes to them. The stream classes live in gcircus.stream.

Pumps belong here rather than to the process list because a pump outlives its process: a child that exits is
reaped at once (its replacement must not wait), while its pump goes on reading the pipe to EOF. ``drain()`` waits
for every pump still running — including those of processes already reaped — so a stop closes the streams only
after the last byte has been written.
"""
import logging
import time

import gevent

from gcircus.stream.pump import OutputTap, Pump

logger = logging.getLogger("gcircus")

#: How long a drain waits for a stream to take output already read from a pipe at EOF (a slow user stream run by
#: the 'thread' backend); only a stream stuck for longer than this is abandoned.
DELIVERY_TIMEOUT = 30.0


def _build(conf, backend):
    if not conf:
        return None
    from gcircus.stream import get_stream  # the stream package imports this module's users
    return get_stream(conf, backend)


class WatcherStreams:
    """Holds the two streams, the mappings they came from (reported by `options`) and the live pumps."""

    def __init__(self, stdout_conf=None, stderr_conf=None, backend="gevent"):
        self.backend = backend
        self.stdout_conf = dict(stdout_conf) if stdout_conf else None
        self.stderr_conf = dict(stderr_conf) if stderr_conf else None
        self.stdout = _build(self.stdout_conf, backend)
        self.stderr = _build(self.stderr_conf, backend)
        self.pumps = set()
        self.closer = None      # the greenlet of the last close_when_drained()
        self.tap = OutputTap()  # what the pumps also show to a listener (the dashboard), when there is one

    def _each(self):
        seen = set()
        for stream in (self.stdout, self.stderr):
            if stream is not None and id(stream) not in seen:
                seen.add(id(stream))
                yield stream

    # -- pumps -------------------------------------------------------------------------------------------------

    def attach(self, process, owner):
        """Start a pump on each pipe of ``process`` that has a stream; they are also listed in process.pumps."""
        for name, pipe, stream in (("stdout", process.stdout, self.stdout),
                                   ("stderr", process.stderr, self.stderr)):
            if pipe is None or stream is None:
                continue
            pump = Pump(pipe, name, process.pid, stream, "%s:%s:%s" % (owner, process.pid, name), self.tap).start()
            process.pumps += (pump,)
            self.pumps.add(pump)
            pump.greenlet.link(lambda _greenlet, pump=pump: self.pumps.discard(pump))

    def drain(self, eof_timeout, delivery_timeout=DELIVERY_TIMEOUT):
        """Wait until every pump has delivered its pipe's last byte; detach those that cannot finish.

        A pipe not at EOF ``eof_timeout`` seconds after its process was stopped is held open by a descendant that
        outlived it: that pump is killed (what was read is already written). The pumps are waited on together
        (one deadline each for EOF and for delivery, not one per pump). Returns the pumps detached.
        """
        eof_deadline = time.monotonic() + eof_timeout
        delivery_deadline = eof_deadline + delivery_timeout
        detached = []
        for pump in sorted(self.pumps, key=lambda p: p.label):
            now = time.monotonic()
            if pump.drain(max(0.0, eof_deadline - now), max(0.0, delivery_deadline - now)):
                continue
            if pump.output_blocked:
                logger.warning("%s: its output is blocked (the daemon's stdout is not read); detaching it with "
                               "output still unwritten", pump.label)
            elif pump.reached_eof.is_set() or pump.delivering:
                logger.warning("%s: the stream is still busy with the last output after %ss; detaching it",
                               pump.label, eof_timeout + delivery_timeout)
            else:
                logger.warning("%s: still open %ss after its process ended (a descendant holds it); "
                               "detaching it", pump.label, eof_timeout)
            pump.kill()
            detached.append(pump)
        return detached

    def close_when_drained(self, eof_timeout, still_stopped):
        """Close the streams once every pump has finished, unless ``still_stopped()`` is false by then.

        For a watcher that stopped by itself (its last process exited with respawn off): the exit is handled at
        once and this greenlet finishes the job a stop() does, without holding up the watcher's commands.
        """
        def close_after_drain():
            """Owned by WatcherStreams; lives until the pumps are drained (at most eof + delivery timeouts)."""
            self.drain(eof_timeout)
            if still_stopped():     # a start meanwhile reopened the streams for new processes
                self.close()
        self.closer = gevent.spawn(close_after_drain)
        self.closer.name = "close-streams"
        return self.closer

    # -- streams -----------------------------------------------------------------------------------------------

    def open(self):
        for stream in self._each():
            opener = getattr(stream, "open", None)
            if opener is not None:
                opener()

    def close(self):
        for stream in self._each():
            closer = getattr(stream, "close", None)
            if closer is not None:
                closer()

    def replace(self, name, conf):
        """Swap the stdout or stderr stream for one built from conf; the old one is closed.

        Running pumps of that pipe switch to the new stream (without one, they read on and discard).
        """
        new = _build(conf, self.backend)
        old = getattr(self, name)
        setattr(self, name, new)
        setattr(self, name + "_conf", dict(conf) if conf else None)
        for pump in self.pumps:
            if pump.name == name:
                pump.stream = new
        if old is not None and old is not new and hasattr(old, "close"):
            old.close()
        return new
