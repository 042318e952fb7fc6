"""Server-Sent Events: one capped queue per connected browser, and the channels that fan messages out to them.

A message is encoded once (``encode``) and the same bytes are queued for every client of its channel. A client
that does not read (a stalled browser, a slow link) never blocks whoever publishes and never grows memory without
bound: past ``MAX_QUEUED_BYTES`` its messages are dropped and a gap marker counts them; when the client catches
up it gets a ``missed`` event saying how many it lost (and, on the dashboard's stream, a fresh snapshot), so the
page can say so instead of silently showing stale data.
"""
import json
import time
from collections import deque

from gevent.event import Event

#: Bytes one client may have queued; past that its new messages are dropped (and counted).
MAX_QUEUED_BYTES = 1 << 20
#: Seconds between keep-alive comments on an idle stream: a browser that went away is noticed when one fails.
KEEPALIVE = 15.0


def encode(kind, data):
    """One SSE message: ``event: kind`` and ``data`` as compact JSON (JSON never holds a raw newline)."""
    return b"event: %s\ndata: %s\n\n" % (kind.encode("ascii"), json.dumps(data, separators=(",", ":"),
                                                                          default=str).encode("utf-8"))


class _Gap:
    """Stands in the queue where messages were dropped; counts them."""

    __slots__ = ("count",)

    def __init__(self):
        self.count = 1


class Client:
    """One browser's stream. ``push`` never blocks; ``messages()`` is the WSGI body that writes the queue out.

    filter: called with each message's key (a channel-specific value, e.g. the pid of an output line batch);
    a message whose filter answers False is not queued. resync: returns extra bytes sent after a ``missed``
    event (the dashboard's snapshot), or None.
    """

    def __init__(self, first=(), filter=None, resync=None, max_bytes=None):
        self.queue = deque(first)
        self.queued_bytes = sum(len(item) for item in self.queue)
        self.max_bytes = MAX_QUEUED_BYTES if max_bytes is None else max_bytes
        self.filter = filter
        self.resync = resync
        self.dropped = 0
        self.closed = False
        self.on_close = None
        self._ready = Event()
        if self.queue:
            self._ready.set()

    def push(self, message, key=None):
        """Queue message unless filtered out; returns False when it had to be dropped."""
        if self.closed or (self.filter is not None and not self.filter(key)):
            return True
        self._ready.set()
        if self.queue and isinstance(self.queue[-1], _Gap):
            self.queue[-1].count += 1       # still behind: the gap grows
        elif self.queued_bytes + len(message) > self.max_bytes:
            self.queue.append(_Gap())
        else:
            self.queue.append(message)
            self.queued_bytes += len(message)
            return True
        self.dropped += 1
        return False

    def close(self):
        """End the stream (the server stops): the writer returns once it wakes up."""
        self.closed = True
        self._ready.set()

    def messages(self):
        """The response body: queued messages as they come, a keep-alive comment when idle."""
        try:
            yield b"retry: 2000\n\n"
            while not self.closed:
                if not self.queue:
                    self._ready.clear()
                    if not self._ready.wait(KEEPALIVE):
                        yield b": keep-alive %d\n\n" % int(time.time())
                        continue
                while self.queue and not self.closed:
                    item = self.queue.popleft()
                    if isinstance(item, _Gap):
                        yield encode("missed", {"messages": item.count})
                        extra = self.resync() if self.resync is not None else None
                        if extra:
                            yield extra
                        continue
                    self.queued_bytes -= len(item)
                    yield item
        finally:
            self.closed = True
            if self.on_close is not None:
                self.on_close(self)


class Channel:
    """A set of clients that get the same messages (the event log, one watcher's output...)."""

    def __init__(self):
        self.clients = set()
        self.dropped_total = 0      # messages some client could not take (gcircus_httpd_sse_dropped_total)

    def __bool__(self):
        return bool(self.clients)

    def add(self, client):
        self.clients.add(client)
        client.on_close = self._forget
        return client

    def _forget(self, client):
        self.clients.discard(client)

    def publish(self, message, key=None):
        """Queue one encoded message for every client (nothing to do, and nothing encoded, without clients)."""
        for client in list(self.clients):
            if not client.push(message, key):
                self.dropped_total += 1

    def close(self):
        for client in list(self.clients):
            client.close()
        self.clients.clear()
