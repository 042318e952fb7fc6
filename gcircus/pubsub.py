"""Event publishing: Circus's `watcher.<name>.<event>` messages on a zmq PUB socket.

A PUB send with NOBLOCK never waits (zmq drops past the high-water mark), so any
greenlet may publish directly without queueing. The socket is a plain pyzmq one, not
zmq.green's: a green send wraps every call in a try / wait / re-check dance that cost
more than the send itself, and a NOBLOCK send on a PUB has nothing to wait for.
In-process listeners (tests, embedding apps, the stats collector) get the same events
as plain Python calls.
"""
import json
import logging
import time

import zmq
import zmq.green

from gcircus.endpoints import binding

logger = logging.getLogger("gcircus")
_NOBLOCK = int(zmq.NOBLOCK)     # ints, not the flag enums: enum arithmetic showed in the send's profile
_NOBLOCK_MORE = int(zmq.NOBLOCK) | int(zmq.SNDMORE)


def normalize_topic_name(name):
    """Circus's topic spelling of a watcher name: lower case, spaces as underscores."""
    return name.lower().replace(" ", "_")


def event_topic(watcher_name, event):
    return "watcher.%s.%s" % (normalize_topic_name(watcher_name), event)


class Publisher:
    """Owns the PUB socket on `pubsub_endpoint` (None: in-process listeners only)."""

    def __init__(self, endpoint=None, context=None, bind_callback=None, options=None):
        self.endpoint = endpoint
        self.context = context
        self.options = options if options is not None else {}   # endpoint_owner / endpoint_mode
        self.socket = None
        self.listeners = []
        self._bind_callback = bind_callback

    def start(self):
        if self.endpoint is None or self.socket is not None:
            return
        self.context = self.context or zmq.green.Context.instance()
        socket = zmq.Socket(self.context, zmq.PUB)
        socket.linger = 0
        if self._bind_callback is not None:
            self._bind_callback(socket)
        try:
            self._bind(socket, self.endpoint)
        except OSError:
            socket.close()
            raise
        self.socket = socket

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
        if self.socket is not None:
            try:
                body = json.dumps(message).encode("utf-8")
                # two sends, not send_multipart: its list handling and flag enums cost more than the sends
                self.socket.send(topic.encode("utf-8"), _NOBLOCK_MORE)
                self.socket.send(body, _NOBLOCK)
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
