"""Serving a zmq socket on the gevent hub without zmq.green's per-call machinery.

zmq.green wraps every send and recv in a try / wait / re-check dance with a fresh
timeout and flag enums each time; for a controller answering thousands of small
requests a second that was most of its CPU. Here the socket is a plain one, and one
io watcher on its ZMQ_FD tells a single reader greenlet when to look again. The fd is
edge-triggered: it only says "the socket's state changed", and any send or EVENTS read
may consume that news, so whoever touches the socket re-checks EVENTS afterwards.
"""
import gevent
import gevent.event
import zmq

_NOBLOCK = int(zmq.NOBLOCK)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)


class SocketReader:
    """One reader greenlet's view of a plain zmq socket; sends may come from any greenlet
    (NOBLOCK sends never yield, so they never interleave)."""

    def __init__(self, socket):
        self.socket = socket
        self._readable = gevent.event.Event()
        self.waits = 0      # how many times recv_multipart had to wait (the hub ran meanwhile)
        self._watcher = gevent.get_hub().loop.io(socket.getsockopt(zmq.FD), 1)
        self._watcher.start(self._readable.set)

    def recv_multipart(self):
        """The next message (frames, copy=False); waits on the hub, never blocks it."""
        socket = self.socket
        while True:
            try:
                return socket.recv_multipart(_NOBLOCK, copy=False)
            except zmq.Again:
                pass
            self._readable.clear()
            if socket.getsockopt(_EVENTS) & _POLLIN:
                continue        # arrived between the recv and the clear
            self.waits += 1
            self._readable.wait()

    def send_multipart(self, frames):
        """Send at once (zmq.Again if the socket cannot take it now)."""
        self.socket.send_multipart(frames, _NOBLOCK)
        # the send may have taken in waiting requests, and the fd's news of them with it
        if self.socket.getsockopt(_EVENTS) & _POLLIN:
            self._readable.set()

    def close(self):
        """Stop watching the fd (before the socket itself is closed)."""
        self._watcher.stop()
        self._watcher.close()
