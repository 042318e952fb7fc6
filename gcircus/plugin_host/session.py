"""One run of one plugin instance, and its connection to the controller.

- PluginConnection: a zmq DEALER to the controller. Replies are matched to calls
  by id, so several greenlets of one plugin may call at once. It also speaks
  the raw socket calls (`send` then `recv` in the same greenlet) that Circus's
  own CircusPlugin.call makes on `self.client`, so a plugin subclassing
  Circus's class runs on it unchanged.
- PluginSession: connect, handle_init(), deliver events to handle_recv() until
  stopped or failed, handle_stop(), disconnect. A failure (handle_recv raised,
  or a task the plugin spawned did) ends the session with that exception.
- StandaloneSession: the same against a daemon's public endpoints, with a SUB
  socket for the events (CircusPlugin.start()).
"""
import json
import logging
import uuid

import gevent
import zmq.green as zmq
from gevent.event import AsyncResult, Event
from gevent.queue import Queue

from gcircus.exc import CallError
from gcircus.supervision.hub_guard import Slicer

logger = logging.getLogger("gcircus")

# Events waiting for a plugin that does not keep up; past this the oldest are dropped
# (as a zmq SUB past its high-water mark would).
MAX_QUEUED_EVENTS = 10000
# A call waits this long for its reply (the daemon answers every request; this
# bounds a plugin stuck on a daemon that went away). Plugin option `call_timeout`.
DEFAULT_CALL_TIMEOUT = 300.0


def queue_event(events, data, label, dropped):
    """Queue an event for handle_recv, never blocking: with MAX_QUEUED_EVENTS waiting the oldest is
    dropped (logged at the 1st, 100th and every 10,000th). Returns the count of dropped events."""
    if events.qsize() >= MAX_QUEUED_EVENTS:
        events.get_nowait()
        dropped += 1
        if dropped in (1, 100) or dropped % 10000 == 0:
            logger.warning("plugin %s does not keep up with events: %d dropped", label, dropped)
    events.put_nowait(data)
    return dropped


class _Stop:
    """End-of-session marker in an event queue (everything queued before it is delivered)."""


class _Failure:
    def __init__(self, error):
        self.error = error


STOP = _Stop()


class PluginConnection:
    """A plugin's DEALER to the controller (inproc for hosted plugins)."""

    def __init__(self, context, endpoint, identity=None, timeout=DEFAULT_CALL_TIMEOUT, curve=None):
        self.context = context
        self.endpoint = endpoint
        self.identity = identity or uuid.uuid4().hex.encode("ascii")
        self.timeout = timeout
        self.curve = curve          # {'server', 'public', 'secret'} Z85 keys for a CurveZMQ daemon, or None
        self.socket = None
        self._waiters = {}          # request id -> AsyncResult
        self._raw_pending = {}      # greenlet -> request id (Circus-style send/recv)
        self._reader = None

    def open(self):
        if self.endpoint is None:
            return self
        socket = self.context.socket(zmq.DEALER)
        socket.setsockopt(zmq.IDENTITY, self.identity)
        socket.linger = 0
        use_curve(socket, self.curve)
        socket.connect(self.endpoint)
        self.socket = socket
        self._reader = gevent.spawn(self._reply_loop)
        self._reader.name = "plugin-replies[%s]" % self.endpoint
        return self

    def close(self):
        if self._reader is not None:
            # Wait for the reader to be gone before the close: a socket closed under a greenlet that has
            # just started waiting on it makes libev abort the process (libzmq closes the descriptor
            # from its own thread before the hub registers the waiter's watcher).
            self._reader.kill(timeout=5)
            self._reader = None
        if self.socket is not None:
            self.socket.close()
            self.socket = None
        for waiter in self._waiters.values():
            waiter.set_exception(CallError("the connection to the daemon was closed"))
        self._waiters.clear()

    def _reply_loop(self):
        """Owned by the connection; lives from open() to close(); hands each reply to its caller."""
        while True:
            try:
                frames = self.socket.recv_multipart()
            except zmq.ZMQError as error:
                if error.errno in (zmq.ETERM, zmq.ENOTSOCK):
                    return
                logger.warning("plugin connection: receive failed: %s", error)
                continue
            try:
                reply = json.loads(frames[-1])
            except ValueError:
                logger.warning("plugin connection: the daemon sent invalid JSON: %r", frames[-1][:200])
                continue
            waiter = self._waiters.pop(reply.get("id"), None) if isinstance(reply, dict) else None
            if waiter is not None:
                waiter.set(reply)   # a reply nobody waits for any more (timed out) is dropped

    def _send(self, message):
        if self.socket is None:
            raise CallError("not connected to a daemon (it has no controller endpoint)")
        try:
            self.socket.send(json.dumps(message).encode("utf-8"), zmq.NOBLOCK)
        except zmq.Again:
            raise CallError("the daemon's controller is not reachable") from None

    def call(self, message, timeout=None):
        """Send a request dict and return the reply dict; CallError on timeout."""
        mid = uuid.uuid4().hex
        waiter = AsyncResult()
        self._waiters[mid] = waiter
        try:
            self._send(dict(message, id=mid))
            return waiter.get(timeout=self.timeout if timeout is None else timeout)
        except gevent.Timeout:
            raise CallError("Timed out.") from None
        finally:
            self._waiters.pop(mid, None)

    def cast(self, message):
        self._send(dict(message, msg_type="cast"))

    # Circus's CircusPlugin.call is `client.send(json); return client.recv()`.
    def send(self, data, *args, **kwargs):
        message = json.loads(data)
        if message.get("msg_type") == "cast":
            self._send(message)
            return
        mid = uuid.uuid4().hex
        self._waiters[mid] = AsyncResult()
        self._raw_pending[gevent.getcurrent()] = mid
        self._send(dict(message, id=mid))

    def recv(self, *args, **kwargs):
        mid = self._raw_pending.pop(gevent.getcurrent(), None)
        if mid is None:
            raise CallError("recv() without a request sent by this greenlet")
        try:
            reply = self._waiters[mid].get(timeout=self.timeout)
        except gevent.Timeout:
            raise CallError("Timed out.") from None
        finally:
            self._waiters.pop(mid, None)
        reply["id"] = None   # Circus's plugins send no id, so their replies carry none
        return json.dumps(reply).encode("utf-8")


class PluginSession:
    """Runs one plugin instance until its event queue says STOP or it fails."""

    def __init__(self, plugin, connection, events, context=None, discard_on_stop=False):
        """discard_on_stop: stop() drops the events still queued (a process being stopped has no
        time for a backlog) instead of delivering them first."""
        self.plugin = plugin
        self.connection = connection
        self.events = events
        self.context = context
        self.discard_on_stop = discard_on_stop
        self.ready = Event()
        self._failure = None

    def run(self):
        """Returns when stopped; raises the plugin's exception when it failed."""
        plugin = self.plugin
        plugin.client = self.connection.open()
        plugin.context = self.context
        if hasattr(plugin, "_on_task_failure"):
            plugin._on_task_failure = self.fail
            plugin._host_stop = self.stop
        try:
            plugin.handle_init()
            plugin.running = True
            self.ready.set()
            # A queue that holds events hands them over without a turn of the hub: a backlog would
            # hold it (and, in a process of its own, keep a stop signal waiting) until it is worked off.
            slicer = Slicer()
            while True:
                if self.events.empty():
                    slicer.reset()      # the get() below gives the hub its turn
                item = self.events.get()
                if self._failure is not None:
                    raise self._failure
                if item is STOP:
                    return
                if not isinstance(item, _Failure):   # a stale one, from a previous session
                    plugin.handle_recv(item)
                    slicer.tick()
        finally:
            self._finish()

    def _finish(self):
        """Its greenlets end first (so closing what they use in handle_stop fails none of
        them), then handle_stop() — which may still call the daemon — then the connection."""
        plugin = self.plugin
        plugin.running = False
        if hasattr(plugin, "_kill_tasks"):
            plugin._kill_tasks()
        try:
            plugin.handle_stop()
        except Exception:
            logger.exception("plugin %s: handle_stop failed", _label(plugin))
        if not hasattr(plugin, "_kill_tasks"):
            _close_foreign_loop(plugin)
        self.connection.close()

    def stop(self):
        """End the session once the events queued so far are delivered (dropped, with discard_on_stop)."""
        if self.discard_on_stop:
            kept = [item for item in _drain(self.events) if isinstance(item, _Failure)]
            for item in kept:
                self.events.put(item)
        self.events.put(STOP)

    def fail(self, error):
        """A task of the plugin raised: end the session with that error, before further events."""
        if self._failure is None:
            self._failure = error
        self.events.put(_Failure(error))   # wakes the session if it waits for an event


def _drain(queue):
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


def _label(plugin):
    config = getattr(plugin, "config", None) or {}
    return config.get("name") or getattr(plugin, "name", "") or type(plugin).__name__


def _close_foreign_loop(plugin):
    """A plugin built on Circus's own base class made a tornado IOLoop it never runs here."""
    loop = getattr(plugin, "loop", None)
    close = getattr(loop, "close", None)
    if close is not None:
        try:
            close(all_fds=False)
        except Exception:
            logger.debug("plugin %s: closing its unused IOLoop failed", _label(plugin), exc_info=True)


def use_curve(socket, curve):
    """Make socket a CurveZMQ client with the keys curve holds (Z85 'server', 'public', 'secret'), if any."""
    if curve:
        socket.curve_serverkey = curve["server"].encode("ascii")
        socket.curve_publickey = curve["public"].encode("ascii")
        socket.curve_secretkey = curve["secret"].encode("ascii")


class StandaloneSession:
    """CircusPlugin.start(): run a plugin against a daemon's public endpoints.

    curve: the client keys for a daemon whose endpoints use CurveZMQ (see use_curve)."""

    def __init__(self, plugin, curve=None):
        self.plugin = plugin
        self.context = zmq.Context.instance()
        self.events = Queue()
        self.curve = curve
        self.dropped = 0            # events dropped because the plugin did not keep up
        self._sub = None
        self._reader = None
        timeout = float(plugin.config.get("call_timeout", DEFAULT_CALL_TIMEOUT))
        connection = PluginConnection(self.context, plugin.endpoint, plugin._id, timeout, curve)
        # a stand-alone plugin's events come from a SUB socket, which drops them anyway past its
        # high-water mark: a stop (SIGTERM to the runner) does not wait for a backlog
        self.session = PluginSession(plugin, connection, self.events, self.context, discard_on_stop=True)

    def run(self):
        self._sub = self.context.socket(zmq.SUB)
        self._sub.linger = 0
        self._sub.setsockopt(zmq.SUBSCRIBE, b"watcher.")
        use_curve(self._sub, self.curve)
        self._sub.connect(self.plugin.pubsub_endpoint)
        self._reader = gevent.spawn(self._event_loop)
        self._reader.name = "plugin-events[%s]" % self.plugin.pubsub_endpoint
        try:
            self.session.run()
        finally:
            self._reader.kill(timeout=5)     # gone before the close: see PluginConnection.close
            self._sub.close()

    def _event_loop(self):
        """Owned by the session; lives while it runs; queues each event for handle_recv."""
        label = _label(self.plugin)
        while True:
            frames = self._sub.recv_multipart()
            if len(frames) == 2:
                self.dropped = queue_event(self.events, frames, label, self.dropped)

    def stop(self):
        self.session.stop()
