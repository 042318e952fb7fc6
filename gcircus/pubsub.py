"""Event publishing: Circus's `watcher.<name>.<event>` messages on a zmq XPUB socket.

The socket is an XPUB, which is a PUB to its subscribers and also tells us which topic
prefixes they subscribed to: an event nobody subscribed to is not encoded nor sent (a
daemon that nobody listens to, the usual case, spends nothing on its events; a stop of
10,000 processes is 20,000 of them). Subscriptions that reached the socket before a
publish count for it, as they would for a PUB: a publish that matches none first takes
in any that are waiting. A send with NOBLOCK never waits (zmq drops past the
high-water mark), so any greenlet may publish directly without queueing. The socket is
a plain pyzmq one served by a SocketReader, not zmq.green's: a green send wraps every
call in a try / wait / re-check dance that cost more than the send itself.
In-process listeners (tests, embedding apps, the stats collector) get every event, as
plain Python calls.
"""
import json
import logging
import time

import gevent
import zmq
import zmq.green

from gcircus.endpoints import binding
from gcircus.endpoints.reader import SocketReader

logger = logging.getLogger("gcircus")
_SUBSCRIBE, _UNSUBSCRIBE = b"\x01", b"\x00"     # the first byte of what an XPUB receives from its subscribers


def normalize_topic_name(name):
    """Circus's topic spelling of a watcher name: lower case, spaces as underscores."""
    return name.lower().replace(" ", "_")


def event_topic(watcher_name, event):
    return "watcher.%s.%s" % (normalize_topic_name(watcher_name), event)


class Publisher:
    """Owns the event socket on `pubsub_endpoint` (None: in-process listeners only)."""

    def __init__(self, endpoint=None, context=None, bind_callback=None, options=None):
        self.endpoint = endpoint
        self.context = context
        self.options = options if options is not None else {}   # endpoint_owner / endpoint_mode
        self.socket = None
        self.listeners = []
        self.subscriptions = set()      # topic prefixes (bytes) at least one subscriber asked for
        self._bind_callback = bind_callback
        self._reader = None
        self._subscription_reader = None

    def start(self):
        if self.endpoint is None or self.socket is not None:
            return
        self.context = self.context or zmq.green.Context.instance()
        socket = zmq.Socket(self.context, zmq.XPUB)
        socket.linger = 0
        if self._bind_callback is not None:
            self._bind_callback(socket)
        try:
            self._bind(socket, self.endpoint)
        except OSError:
            socket.close()
            raise
        self.socket = socket
        self._reader = SocketReader(socket)
        self._subscription_reader = gevent.spawn(self._read_subscriptions)
        self._subscription_reader.name = "events subscriptions"

    def _read_subscriptions(self):
        reader = self._reader
        while True:
            self._take_subscription(reader.recv_multipart()[0].bytes)

    def _take_subscription(self, message):
        # (an XPUB passes the first subscription to a prefix and the unsubscription of its last subscriber,
        # a disconnection included; anything else a peer sends is no business of ours)
        if message[:1] == _SUBSCRIBE:
            self.subscriptions.add(message[1:])
        elif message[:1] == _UNSUBSCRIBE:
            self.subscriptions.discard(message[1:])

    def _take_waiting_subscriptions(self):
        frames = self._reader.recv_ready()
        while frames is not None:
            self._take_subscription(frames[0].bytes)
            frames = self._reader.recv_ready()

    def wanted(self, topic):
        """Whether some subscriber of the socket would receive topic (str) now."""
        if self.socket is None:
            return False
        if self.subscriptions and self._matches(topic):
            return True
        self._take_waiting_subscriptions()
        return bool(self.subscriptions) and self._matches(topic)

    def _matches(self, topic):
        subscriptions = self.subscriptions
        if b"" in subscriptions:
            return True
        encoded = topic.encode("utf-8")
        return any(encoded.startswith(prefix) for prefix in subscriptions)

    def rebind(self, endpoint):
        """Serve on endpoint instead: bind the new address before releasing the old one."""
        if self.socket is None:
            self.endpoint = endpoint
            return
        self._bind(self.socket, endpoint)
        old, self.endpoint = self.endpoint, endpoint
        try:
            self.socket.unbind(old)
        except zmq.ZMQError as error:
            logger.warning("cannot release old pubsub endpoint %s: %s", old, error)

    def _bind(self, socket, endpoint):
        try:
            binding.bind_endpoint(socket, endpoint, self.options)
        except OSError as error:
            raise OSError("pubsub_endpoint: %s" % error) from error

    def stop(self):
        if self._subscription_reader is not None:
            self._subscription_reader.kill(block=False)
            self._subscription_reader = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self.subscriptions.clear()
        if self.socket is not None:
            self.socket.close()
            self.socket = None
            binding.remove_ipc_file(self.endpoint)

    def add_listener(self, listener):
        """listener(topic: str, message: dict) is called for every event, in the publisher's greenlet."""
        self.listeners.append(listener)

    def remove_listener(self, listener):
        if listener in self.listeners:
            self.listeners.remove(listener)

    def publish(self, topic, message):
        if self.wanted(topic):
            try:
                self._reader.send_multipart([topic.encode("utf-8"), json.dumps(message).encode("utf-8")])
            except zmq.Again:
                pass  # PUB semantics: no subscriber keeping up means the event is dropped
            except zmq.ZMQError as error:
                logger.warning("cannot publish %s: %s", topic, error)
        for listener in list(self.listeners):
            try:
                listener(topic, message)
            except Exception:
                logger.exception("event listener %r failed on %s", listener, topic)

    def publish_watcher_event(self, watcher_name, event, **fields):
        fields.setdefault("time", time.time())
        self.publish(event_topic(watcher_name, event), fields)
