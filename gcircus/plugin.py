"""The public plugin API: CircusPlugin, Circus's documented base class (same methods and hooks, so Circus plugins run unchanged).

A plugin is a subscriber: `handle_recv(data)` gets every `watcher.*` event as
`[topic_bytes, body_bytes]`, and `call`/`cast` send commands to the controller
exactly as a remote client would. gcircus runs each configured plugin as a
greenlet on the arbiter's hub (gcircus.plugin_host.manager); `start()` also runs one
stand-alone against a daemon's endpoints.

Everything a plugin does runs on the hub, so it must never block: use gevent's
sockets, `self.spawn`, `self.spawn_later` and `self.periodic` (greenlets and hub
timers, no threads). A task started that way that raises counts as a failure of
the plugin, which is logged and restarted with backoff.
"""
import json
import logging
import time
import uuid
from datetime import timedelta

import gevent
from gevent.pool import Group

from gcircus.client import cast_message, make_message
from gcircus.converters import human2bytes, to_bool, to_signum  # noqa: F401  (part of the plugin toolbox)

logger = logging.getLogger("gcircus")

__all__ = ["CircusPlugin", "Periodic", "PluginLoop", "make_message", "cast_message", "to_bool",
           "to_signum", "human2bytes"]


class Periodic:
    """Calls callback every `interval` seconds on the hub until stop() (tornado's PeriodicCallback
    shape). The first call comes one interval after start(); a call that overruns delays the next."""

    def __init__(self, plugin, interval, callback, *args, **kwargs):
        if interval <= 0:
            raise ValueError("a periodic interval must be positive, not %r" % (interval,))
        self.plugin = plugin
        self.interval = float(interval)
        self.callback = callback
        self.args, self.kwargs = args, kwargs
        self._greenlet = None

    def start(self):
        if self._greenlet is None or self._greenlet.dead:
            self._greenlet = self.plugin.spawn(self._periodic_loop)
            self._greenlet.name = "plugin-periodic[%s]" % getattr(self.callback, "__name__", "?")
        return self

    def _periodic_loop(self):
        """Owned by its Periodic; lives from start() until stop() or the plugin's end."""
        deadline = time.monotonic()
        while True:
            deadline += self.interval
            gevent.sleep(max(0.0, deadline - time.monotonic()))
            self.callback(*self.args, **self.kwargs)
            deadline = max(deadline, time.monotonic() - self.interval)

    def is_running(self):
        return self._greenlet is not None and not self._greenlet.dead

    def stop(self):
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None


class PluginLoop:
    """`self.loop` of a plugin: the IOLoop methods Circus plugins call, on gevent.

    Callbacks run in greenlets owned by the plugin, so they stop with it and an
    exception in one counts as a failure of the plugin.
    """

    READ, WRITE, ERROR = 1, 4, 8   # tornado's IOLoop event bits

    def __init__(self, plugin):
        self._plugin = plugin
        self._handlers = {}

    def time(self):
        return time.monotonic()

    def add_callback(self, callback, *args, **kwargs):
        return self._plugin.spawn(callback, *args, **kwargs)

    spawn_callback = add_callback

    def call_later(self, delay, callback, *args, **kwargs):
        return self._plugin.spawn_later(delay, callback, *args, **kwargs)

    def call_at(self, when, callback, *args, **kwargs):
        return self.call_later(when - self.time(), callback, *args, **kwargs)

    def add_timeout(self, deadline, callback, *args, **kwargs):
        if isinstance(deadline, timedelta):
            return self.call_later(deadline.total_seconds(), callback, *args, **kwargs)
        return self.call_at(deadline, callback, *args, **kwargs)

    def remove_timeout(self, handle):
        if handle is not None:
            handle.kill(block=False)

    def add_handler(self, fd, handler, events):
        """handler(fd, events) whenever fd is readable (events & READ) or writable (events & WRITE)."""
        fileno = fd if isinstance(fd, int) else fd.fileno()
        self.remove_handler(fileno)
        flags = (1 if events & self.READ else 0) | (2 if events & self.WRITE else 0)
        watcher = gevent.get_hub().loop.io(fileno, flags or 1)
        watcher.start(lambda: self._plugin.spawn(handler, fd, events))
        self._handlers[fileno] = watcher

    def remove_handler(self, fd):
        fileno = fd if isinstance(fd, int) else fd.fileno()
        watcher = self._handlers.pop(fileno, None)
        if watcher is not None:
            watcher.stop()
            watcher.close()

    def close(self, all_fds=False):
        for fileno in list(self._handlers):
            self.remove_handler(fileno)

    def start(self):
        raise RuntimeError("a gcircus plugin's loop is the arbiter's hub: it is already running")

    def stop(self):
        """Kept for Circus code that calls loop.stop(): the plugin's host decides when it ends."""


class CircusPlugin:
    """Base class of plugins (Circus's signature and hooks).

    Options:

    - **endpoint** -- the controller's endpoint
    - **pubsub_endpoint** -- the event endpoint
    - **check_delay** -- the arbiter's check_delay
    - **ssh_server** -- accepted for compatibility (hosted plugins need none)
    - **config** -- the [plugin:NAME] section (values as strings), including `name`
    """
    name = ""

    def __init__(self, endpoint, pubsub_endpoint, check_delay, ssh_server=None, **config):
        self.daemon = True
        self.config = config
        self.active = to_bool(config.get("active", True))
        self.endpoint = endpoint
        self.pubsub_endpoint = pubsub_endpoint
        self.check_delay = check_delay
        self.ssh_server = ssh_server
        self._id = uuid.uuid4().hex.encode("ascii")
        self.running = False
        self.context = None
        self.client = None          # the connection to the controller, given by the host
        self.loop = PluginLoop(self)
        self._tasks = Group()
        self._on_task_failure = None
        self._host_stop = None      # ends the current run; set by whoever runs the plugin

    # -- talking to the daemon -------------------------------------------------------

    def call(self, command, **props):
        """Send command to the daemon and return its reply (a dict, as the wire has it)."""
        return self._connection().call(make_message(command, **props))

    def cast(self, command, **props):
        """Send command to the daemon without waiting for (or getting) a reply."""
        self._connection().cast(cast_message(command, **props))

    def _connection(self):
        if self.client is None:
            raise RuntimeError("plugin %s is not connected to a daemon (not started)" % self._label())
        return self.client

    # -- greenlets and timers (no threads) -------------------------------------------

    def spawn(self, function, *args, **kwargs):
        """Run function in a greenlet owned by the plugin: killed when it stops; if it raises,
        the plugin is restarted."""
        greenlet = gevent.Greenlet(function, *args, **kwargs)
        greenlet.link_exception(self._task_failed)
        self._tasks.start(greenlet)
        return greenlet

    def spawn_later(self, seconds, function, *args, **kwargs):
        """spawn(), seconds from now; kill the returned greenlet to cancel."""
        greenlet = gevent.Greenlet(function, *args, **kwargs)
        greenlet.link_exception(self._task_failed)
        self._tasks.add(greenlet)
        greenlet.start_later(max(0.0, float(seconds)))
        return greenlet

    def periodic(self, interval, callback, *args, **kwargs):
        """A started Periodic calling callback every interval seconds (stop() it to end)."""
        return Periodic(self, interval, callback, *args, **kwargs).start()

    def _task_failed(self, greenlet):
        if self._on_task_failure is not None:
            self._on_task_failure(greenlet.exception)
        else:
            logger.error("plugin %s: task %r failed: %r", self._label(), greenlet, greenlet.exception)

    def _kill_tasks(self, timeout=1.0):
        current = gevent.getcurrent()
        tasks = [greenlet for greenlet in list(self._tasks) if greenlet is not current]
        for greenlet in tasks:
            greenlet.unlink(self._task_failed)
        gevent.killall(tasks, block=True, timeout=timeout)
        self.loop.close()

    def _label(self):
        return self.config.get("name") or self.name or type(self).__name__

    # -- methods to override ---------------------------------------------------------

    def handle_recv(self, data):
        """Receives every event published by the daemon: data = [topic_bytes, body_bytes]."""
        raise NotImplementedError()

    def handle_stop(self):
        """Called right before the plugin is stopped."""

    def handle_init(self):
        """Called right before the plugin starts receiving events (it may already call/cast)."""

    # -- helpers ---------------------------------------------------------------------

    @staticmethod
    def split_data(data):
        """(watcher_name, action, body) of an event: b'watcher.web.spawn' -> ('web', 'spawn', body)."""
        topic, body = data
        if isinstance(topic, bytes):
            topic = topic.decode("utf-8", "replace")
        parts = topic.split(".")
        return parts[1], parts[2], body

    @staticmethod
    def load_message(body):
        """The event body as a dict."""
        return json.loads(body)

    # -- stand-alone run (the arbiter hosts plugins itself; this is for running one elsewhere) --

    def start(self, curve=None):
        """Run against `endpoint` / `pubsub_endpoint` until stop() (blocks this greenlet).

        curve: {'server', 'public', 'secret'} Z85 keys when the daemon's endpoints use CurveZMQ."""
        if not self.active:
            raise ValueError("Will not start an inactive plugin")
        from gcircus.plugin_host.session import StandaloneSession
        StandaloneSession(self, curve).run()

    def stop(self):
        """End the run: a hosted plugin gets the events queued so far first, a stand-alone (or
        isolated) one ends after the event it handles; then handle_stop() is called and the
        connection closes."""
        if self._host_stop is not None:
            self._host_stop()
