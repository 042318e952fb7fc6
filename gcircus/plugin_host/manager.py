"""Plugins hosted by the arbiter: each `[plugin:NAME]` (API: plugins=[{'use': ...}])
runs as a greenlet on the hub, not as a process: no event is lost at startup and a
command is an in-process message.

- PluginManager: the arbiter service. Imports every plugin class at startup (an
  import failure is a startup error naming the class), registers one
  PluginWatcher per plugin, fans the arbiter's events out to them, and applies
  reloadconfig's plugin changes (`apply`).
- PluginWatcher: `plugin:NAME` in list/status/stats as in Circus: a watcher with
  no processes whose start/stop/restart start and stop the plugin.
- IsolatedPluginWatcher (plugin_host/isolated.py): a plugin with `isolate = true`,
  run in its own gcircus-plugin process instead.
- PluginRunner: one plugin's greenlet. Builds an instance, runs a PluginSession
  (events in through an in-process queue, calls and casts out through a DEALER
  on the controller's inproc endpoint), and when the plugin raises, logs it and
  starts a fresh instance after a backoff.
"""
import json
import logging
import time

import gevent
from gevent.queue import Queue

from gcircus.aliases import import_dotted
from gcircus.converters import to_bool
from gcircus.exc import CircusError
from gcircus.plugin_host.isolated import IsolatedPluginWatcher, PluginWatcherBase, wants_isolation
from gcircus.plugin_host.session import DEFAULT_CALL_TIMEOUT, PluginConnection, PluginSession, queue_event
from gcircus.supervision.backoff import backoff_delay
from gcircus.supervision.hubcall import on_owner_hub

logger = logging.getLogger("gcircus")

# stop() lets the plugin finish its queued events and handle_stop() this long, then kills it.
STOP_TIMEOUT = 5.0
DEFAULT_PRIORITY = 1   # plugins start before ordinary watchers (priority 0), as in Circus


class PluginLoadError(CircusError, ImportError):
    """A plugin's class cannot be imported (or is not a plugin)."""


def load_plugin_class(spec):
    """The class `spec['use']` names (Circus names aliased); PluginLoadError naming it."""
    use = spec.get("use")
    label = spec.get("name") or use
    if not use:
        raise PluginLoadError("plugin %s: no class given (use = package.module.Class)" % label)
    try:
        cls = import_dotted(use, "plugin class")
    except ImportError as error:
        raise PluginLoadError("plugin %s: %s" % (label, error)) from error
    if not isinstance(cls, type) or not callable(getattr(cls, "handle_recv", None)):
        raise PluginLoadError("plugin %s: %r is not a plugin class (a CircusPlugin subclass)"
                              % (label, use))
    return cls


def plugin_name(spec, taken=()):
    """The watcher name: the config's `name` (INI: `plugin:NAME`), else plugin:<class>."""
    if spec.get("name"):
        return spec["name"]
    base = "plugin:" + str(spec["use"]).replace(":", ".").rsplit(".", 1)[-1].lower()
    name, index = base, 1
    while name.lower() in taken:
        index += 1
        name = "%s-%d" % (base, index)
    return name


class PluginWatcher(PluginWatcherBase):
    """A plugin as the watcher `plugin:NAME`: no processes; start/stop run the plugin."""

    def __init__(self, name, spec, plugin_class, manager):
        super().__init__(name, spec["use"], numprocesses=0, singleton=True,
                         priority=int(spec.get("priority", DEFAULT_PRIORITY)),
                         autostart=to_bool(spec.get("autostart", True)))
        self.plugin_spec = dict(spec)
        self.plugin_class = plugin_class
        self.active = to_bool(spec.get("active", True))
        self.runner = PluginRunner(self, manager)

    def runs_processes(self):
        return False    # a plugin is a greenlet of the arbiter, never a process

    def _start_active(self):
        result = super()._start_active()
        if self.is_active() and not self.runner.running:
            self.runner.start()
        return result

    def stopping(self):
        self.runner.stop()

    @on_owner_hub
    def info(self, table=None):
        return {}

    def __repr__(self):
        return "<PluginWatcher %s %s %s>" % (self.name, self.plugin_spec.get("use"), self.state)


class PluginRunner:
    """Runs one plugin; owned by its PluginWatcher."""

    def __init__(self, watcher, manager):
        self.watcher = watcher
        self.manager = manager
        self.events = None
        self.restarts = 0
        self.dropped = 0
        self.instance = None
        self._greenlet = None
        self._session = None
        self._stopping = False

    @property
    def running(self):
        return self._greenlet is not None and not self._greenlet.dead

    def start(self):
        self.events = Queue()   # before any yield: events from here on reach the plugin
        self._stopping = False
        self._greenlet = gevent.spawn(self._run_loop)
        self._greenlet.name = "plugin[%s]" % self.watcher.name

    def deliver(self, data):
        """Queue an event ([topic, body] bytes) for handle_recv; never blocks."""
        if self.events is not None:
            self.dropped = queue_event(self.events, data, self.watcher.name, self.dropped)

    def stop(self, timeout=STOP_TIMEOUT):
        greenlet = self._greenlet
        if greenlet is None:
            return
        self._stopping = True
        if greenlet is not gevent.getcurrent():
            if self._session is not None and not greenlet.dead:
                self._session.stop()
                greenlet.join(timeout)
            if not greenlet.dead:
                if self._session is not None:
                    logger.warning("plugin %s did not stop within %ss: killing it", self.watcher.name, timeout)
                greenlet.kill(block=True, timeout=timeout)
        self._greenlet = None
        self.events = None

    def _run_loop(self):
        """Owned by the PluginRunner; lives from start() to stop(); runs the plugin and
        starts a fresh instance, after a backoff, each time it fails."""
        failures = 0
        while not self._stopping:
            began = time.monotonic()
            try:
                self._run_once()
                break   # stopped (by us, or the plugin called its own stop())
            except Exception:
                logger.exception("plugin %s failed", self.watcher.name)
            if time.monotonic() - began >= self.watcher.min_uptime:
                failures = 0
            failures += 1
            self.restarts += 1
            delay = backoff_delay(failures, self.watcher.backoff_base, self.watcher.backoff_max)
            logger.warning("plugin %s: restarting it%s (restart %d)", self.watcher.name,
                           " in %.1fs" % delay if delay else "", self.restarts)
            gevent.sleep(delay)
        if not self._stopping:
            logger.info("plugin %s stopped itself", self.watcher.name)
            gevent.spawn(self.watcher.stop).name = "stop[%s]" % self.watcher.name

    def _run_once(self):
        plugin = self.manager.instantiate(self.watcher)
        self.instance = plugin
        context, endpoint = self.manager.controller_endpoint()
        timeout = float(self.watcher.plugin_spec.get("call_timeout", DEFAULT_CALL_TIMEOUT))
        connection = PluginConnection(context, endpoint, getattr(plugin, "_id", None), timeout)
        self._session = PluginSession(plugin, connection, self.events, context)
        try:
            self._session.run()
        finally:
            self._session = None


class PluginManager:
    """The arbiter's plugins (a service: start() at arbiter start, stop() at its end)."""

    def __init__(self, arbiter):
        self.arbiter = arbiter
        self.watchers = {}      # name -> PluginWatcher
        self._listening = False

    # -- lifecycle -------------------------------------------------------------------

    def start(self):
        """Import and register every configured plugin not registered yet (they start
        with the watchers, by priority). PluginLoadError leaves nothing registered."""
        specs = [dict(spec) for spec in self.arbiter.plugins]
        built = self._build(specs)
        for watcher in built:
            self._register(watcher)
        if not self._listening:
            self.arbiter.publisher.add_listener(self._on_event)
            self._listening = True
        return self

    def stop(self):
        """Stop the hosted plugins' runners (an isolated plugin's process stops with the watchers)."""
        for watcher in self._hosted():
            watcher.runner.stop()
        if self._listening:
            self.arbiter.publisher.remove_listener(self._on_event)
            self._listening = False

    def _build(self, specs):
        taken = {w.name.lower() for w in self.arbiter.watchers}
        built = []
        for spec in specs:
            name = plugin_name(spec, taken)
            if name in self.watchers:
                continue
            taken.add(name.lower())
            spec = dict(spec, name=name)
            cls = load_plugin_class(spec)
            if wants_isolation(spec):
                built.append(IsolatedPluginWatcher(name, spec, self.arbiter))
            else:
                built.append(PluginWatcher(name, spec, cls, self))
        return built

    def _hosted(self):
        """The plugins running on the hub (not isolated in their own process)."""
        return [watcher for watcher in list(self.watchers.values()) if isinstance(watcher, PluginWatcher)]

    def _register(self, watcher):
        self.arbiter.add_existing_watcher(watcher)
        self.watchers[watcher.name] = watcher

    def apply(self, added=(), removed=()):
        """reloadconfig: stop and drop the `removed` plugins (names), then register and
        start the `added` ones (plugin configs). Returns the errors (a plugin that
        cannot be loaded is skipped, the others go on)."""
        errors = []
        for name in removed:
            watcher = self.watchers.pop(name, None)
            if watcher is None:
                continue
            try:
                self.arbiter.rm_watcher(name)
            except KeyError:
                watcher.stop()   # already removed by an `rm`; make sure it is not running
        for spec in added:
            try:
                (watcher,) = self._build([dict(spec)])
            except (PluginLoadError, ValueError) as error:
                logger.error("reloadconfig: %s (skipped)", error)
                errors.append(str(error))
                continue
            self._register(watcher)
            if watcher.autostart and self.arbiter.started.is_set():
                watcher.start()
        return errors

    # -- what runners need -----------------------------------------------------------

    def instantiate(self, watcher):
        """A fresh instance of watcher's plugin class, built as Circus builds plugins."""
        config = {key: value for key, value in watcher.plugin_spec.items() if key != "use"}
        config["name"] = watcher.name
        arbiter = self.arbiter
        return watcher.plugin_class(arbiter.endpoint, arbiter.pubsub_endpoint, arbiter.check_delay,
                                    None, **config)

    def controller_endpoint(self):
        """(zmq context, inproc endpoint) of the controller, or (None, None) without one."""
        controller = self.arbiter.controller
        endpoint = None if controller is None else controller.inproc_endpoint
        if endpoint is None:
            logger.warning("the arbiter has no controller endpoint: plugins cannot call it")
            return None, None
        return controller.context, endpoint

    def _on_event(self, topic, message):
        """Publisher listener (must not block): one encoding, handed to every plugin."""
        if not self.watchers or not topic.startswith("watcher."):
            return
        hosted = self._hosted()     # isolated plugins subscribe to the public event endpoint themselves
        if not hosted:
            return
        data = [topic.encode("utf-8"), json.dumps(message).encode("utf-8")]
        for watcher in hosted:
            watcher.runner.deliver(list(data))   # each plugin its own list: handle_recv may change it
