"""CircusClient and CircusConsumer: Circus's client API for the command and event
endpoints, usable against gcircus and Circus daemons alike.

Both block only what they should: the calling thread when it has no gevent
hub, only the calling greenlet when it has one (zmq.green) — so a client can
share a hub with an arbiter, a plugin or a web app.
"""
import json
import time

import zmq
import zmq.green
from greenlet import getcurrent

from gcircus import DEFAULT_ENDPOINT, DEFAULT_PUBSUB
from gcircus.endpoints import curve
from gcircus.exc import CallError

from gevent._hub_local import get_hub_if_exists


def make_message(command, **props):
    """A request body (the id is added when it is sent); the one builder of every client, plugin and command."""
    return {"command": command, "properties": props}


def _unique_id():
    """A random uuid4 in hex, as Circus's clients send (uuid is imported here: the daemon loads this module
    for make_message only, and never needs it)."""
    import uuid
    return uuid.uuid4().hex


def cast_message(command, **props):
    """A fire-and-forget request body (the controller sends no reply)."""
    return {"command": command, "msg_type": "cast", "properties": props}


class _StopWaiting(Exception):
    """Thrown into a greenlet waiting on a socket that another greenlet stopped."""


def _zmq_for(green):
    """zmq.green when asked, or by default when this thread runs a gevent hub."""
    if green is None:
        green = get_hub_if_exists() is not None
    return zmq.green if green else zmq


class _Endpoint:
    """A socket connected to an endpoint, created on first use in the caller's flavour."""

    socket_type = None

    def __init__(self, context, endpoint, ssh_server, ssh_keyfile, curve_server_key, curve_client_key,
                 green):
        self.context = context
        self.endpoint = endpoint
        self.ssh_server = ssh_server
        self.ssh_keyfile = ssh_keyfile
        self.curve_server_key = curve_server_key
        self.curve_client_key = curve_client_key
        self.green = green
        self._zmq = None
        self._socket = None
        self._waiters = []            # (greenlet, its hub or None) of each caller in _poll right now
        self._close_pending = False   # stop() came while one was waiting: the last waiter closes

    def _get_socket(self):
        if self._socket is None:
            self._zmq = _zmq_for(self.green)
            context = self.context or zmq.Context.instance()
            socket = self._zmq.Socket(context, self.socket_type)
            socket.linger = 0
            self._configure(socket)
            if self.curve_server_key is not None:
                curve.configure_client(socket, self.curve_server_key, self.curve_client_key)
            try:
                self._connect(socket)
            except BaseException:
                socket.close()
                raise
            self._socket = socket
        return self._socket

    def _connect(self, socket):
        """Connect (through an ssh tunnel with ssh_server); CallError naming what is wrong."""
        try:
            if self.ssh_server:
                from zmq import ssh
                ssh.tunnel_connection(socket, self.endpoint, self.ssh_server, keyfile=self.ssh_keyfile)
            else:
                socket.connect(self.endpoint)
        except ImportError as error:
            raise CallError("ssh tunnels need paramiko or pexpect (pip install 'gcircus[ssh]'): %s"
                            % error) from None
        except zmq.ZMQError as error:
            raise CallError("cannot connect to %s: %s" % (self.endpoint, error)) from None

    def _configure(self, socket):
        """Socket options to set before connecting."""

    def _poll(self, timeout):
        """Wait up to timeout seconds (None: forever) for something to read; True if there is
        (False too when stop() ended the wait: the caller then finds the socket gone)."""
        poller = self._zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        waiter = (getcurrent(), get_hub_if_exists() if self._zmq is zmq.green else None)
        self._waiters.append(waiter)
        try:
            while True:
                try:
                    return bool(poller.poll(None if timeout is None else max(timeout, 0) * 1000))
                except zmq.ZMQError as error:
                    if error.errno != zmq.EINTR:
                        raise
        except _StopWaiting:
            return False
        finally:
            self._waiters.remove(waiter)
            if self._close_pending and not self._waiters:
                self._close()

    def stop(self):
        """Close the socket. A greenlet of this hub waiting on it is woken and closes it itself; a
        waiter in another thread closes it when its wait ends. Closing it under a green waiter would be
        fatal: libzmq closes the descriptor from its own thread, and libev aborts the process when the
        waiter's just-started watcher then meets a closed descriptor."""
        if not self._waiters:
            self._close()
            return
        self._close_pending = True
        hub = get_hub_if_exists()
        for greenlet, waiter_hub in self._waiters:
            if waiter_hub is not None and waiter_hub is hub and greenlet is not getcurrent():
                hub.loop.run_callback(self._wake, greenlet)

    def _wake(self, greenlet):
        if any(waiting is greenlet for waiting, _ in self._waiters):     # not already gone on its own
            greenlet.throw(_StopWaiting)

    def _close(self):
        self._close_pending = False
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    close = stop

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


class CircusClient(_Endpoint):
    """Sends commands to an arbiter's controller (DEALER) and waits for the matching reply.

    :param endpoint: the controller's endpoint (default tcp://127.0.0.1:5555).
    :param timeout: seconds to wait for a reply; `CallError('Timed out.')` after that.
    :param curve_server_key: the server's public key (Z85 or certificate file) to use CurveZMQ;
        curve_client_key: this client's secret certificate file or (public, secret).
    :param green: force zmq.green (True) or plain blocking zmq (False); default: green
        when the calling thread runs a gevent hub.
    """

    socket_type = zmq.DEALER

    def __init__(self, context=None, endpoint=DEFAULT_ENDPOINT, timeout=5.0, ssh_server=None,
                 ssh_keyfile=None, curve_server_key=None, curve_client_key=None, green=None):
        super().__init__(context, endpoint, ssh_server, ssh_keyfile, curve_server_key, curve_client_key,
                         green)
        self.timeout = timeout
        self.identity = _unique_id().encode("ascii")

    def _configure(self, socket):
        socket.identity = self.identity

    def call(self, cmd):
        """Send a command (a dict) and return the reply (a dict); CallError on timeout."""
        if not isinstance(cmd, dict):
            raise CallError("call() takes a dict, not %s" % type(cmd).__name__)
        message = dict(cmd)
        message.setdefault("id", _unique_id())
        socket = self._send(message)
        deadline = time.monotonic() + self.timeout
        while True:
            ready = self._poll(deadline - time.monotonic())
            if self._socket is None:
                raise CallError("the client was stopped while waiting for the reply")
            if not ready:
                raise CallError("Timed out.")
            raw = socket.recv()
            try:
                reply = json.loads(raw)
            except ValueError:
                raise CallError("invalid reply: %r" % raw[:200]) from None
            # A late reply to an earlier, timed-out call: not ours, keep waiting.
            if isinstance(reply, dict) and reply.get("id") == message["id"]:
                return reply

    def send_message(self, command, **props):
        return self.call(make_message(command, **props))

    def cast(self, command, **props):
        """Send a command that gets no reply (msg_type cast)."""
        self._send(cast_message(command, **props))

    def _send(self, message):
        socket = self._get_socket()
        try:
            socket.send(json.dumps(message).encode("utf-8"), zmq.NOBLOCK)
        except zmq.Again:
            raise CallError("Timed out.") from None   # the send queue is full: nobody is reading
        except (TypeError, ValueError) as error:
            raise CallError("cannot encode the message: %s" % error) from None
        return socket


class CircusConsumer(_Endpoint):
    """Iterates over (topic, body) byte pairs published on an arbiter's events endpoint.

    :param topics: topic prefixes to subscribe to (str or bytes); None or [''] for all.
    :param timeout: seconds between checks that the consumer was not stopped.
    """

    socket_type = zmq.SUB

    def __init__(self, topics, context=None, endpoint=DEFAULT_PUBSUB, ssh_server=None, timeout=1.0,
                 ssh_keyfile=None, curve_server_key=None, curve_client_key=None, green=None):
        super().__init__(context, endpoint, ssh_server, ssh_keyfile, curve_server_key, curve_client_key,
                         green)
        self.topics = [b""] if topics is None else [t.encode("utf-8") if isinstance(t, str) else t
                                                    for t in topics]
        self.timeout = timeout
        self._stopped = False

    def _configure(self, socket):
        for topic in self.topics:
            socket.setsockopt(zmq.SUBSCRIBE, topic)

    def connect(self):
        """Subscribe now (events published before this are not seen); also re-opens a stopped consumer."""
        self._stopped = False
        self._get_socket()
        return self

    def __iter__(self):
        return self.iter_messages()

    def iter_messages(self):
        """(topic, body) pairs until stop() — which another greenlet or thread may call at any time."""
        while not self._stopped:
            try:
                message = self.recv(self.timeout)
            except zmq.ZMQError:
                if self._stopped:     # stop() closed the socket under us
                    return
                raise
            if message is not None:
                yield message

    def recv(self, timeout=None):
        """The next (topic, body), or None when timeout seconds pass first."""
        socket = self._get_socket()
        if not self._poll(timeout) or self._socket is None:     # None: stopped while waiting
            return None
        frames = socket.recv_multipart()
        return frames[0], frames[1] if len(frames) > 1 else b""

    def stop(self):
        self._stopped = True
        super().stop()
