"""Serving a zmq socket on the gevent hub without zmq.green's per-call machinery.

zmq.green wraps every send and recv in a try / wait / re-check dance with a fresh
timeout and flag enums each time; for a controller answering thousands of small
requests a second that was most of its CPU. Here the socket is a plain one, and one
io watcher on its ZMQ_FD wakes a single reader greenlet when it may look again. The
fd is edge-triggered: it only says "the socket's state changed", and any send or
EVENTS read may consume that news, so the reader reads EVENTS before it waits and a
send made while the reader waits re-checks EVENTS on its behalf.

The watcher's callback switches straight into the waiting reader (no Event, whose
set() costs one more pass through the hub's callbacks), and the reader asks EVENTS
before each receive instead of letting a receive fail: a failed receive raises,
and building zmq.Again cost more than the question.
"""
import gevent
import zmq
from gevent.hub import Waiter
from zmq.backend import Socket as _BackendSocket

_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE = int(zmq.SNDMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
# The backend's methods, called on our (sugar) socket: the sugar layer's multipart loops
# and option-name enums are per-call Python we do not need for two frames.
_get = _BackendSocket.get
_send = _BackendSocket.send
_recv = _BackendSocket.recv


class SocketReader:
    """One reader greenlet's view of a plain zmq socket; sends may come from any greenlet
    (NOBLOCK sends never yield, so they never interleave)."""

    def __init__(self, socket):
        self.socket = socket
        self.waits = 0      # how many times recv_multipart had to wait (the hub ran meanwhile)
        self._waiter = None     # the reader's Waiter while it waits, else None
        self._watcher = gevent.get_hub().loop.io(socket.getsockopt(zmq.FD), 1)
        self._watcher.start(self._wake)

    def _wake(self):
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.switch(None)

    def recv_ready(self):
        """The next message (frames, copy=False) if one is there now, else None; never waits."""
        socket = self.socket
        while _get(socket, _EVENTS) & _POLLIN:
            try:
                frame = _recv(socket, _NOBLOCK, False)
            except zmq.Again:
                continue        # someone else took it between the question and the receive
            frames = [frame]
            while frame.more:   # the rest of a message is there once its first frame is
                frame = _recv(socket, _NOBLOCK, False)
                frames.append(frame)
            return frames
        return None

    def recv_multipart(self):
        """The next message (frames, copy=False); waits on the hub, never blocks it."""
        while True:
            frames = self.recv_ready()
            if frames is not None:
                return frames
            self.waits += 1
            waiter = self._waiter = Waiter()
            try:
                waiter.get()
            finally:
                self._waiter = None

    def send_multipart(self, frames):
        """Send at once (zmq.Again if the socket cannot take it now)."""
        socket = self.socket
        last = len(frames) - 1
        for index, frame in enumerate(frames):
            _send(socket, frame, _NOBLOCK | _SNDMORE if index < last else _NOBLOCK)
        # the send may have taken in waiting requests, and the fd's news of them with it
        if self._waiter is not None and _get(socket, _EVENTS) & _POLLIN:
            gevent.get_hub().loop.run_callback(self._wake)

    def close(self):
        """Stop watching the fd (before the socket itself is closed)."""
        self._watcher.stop()
        self._watcher.close()
