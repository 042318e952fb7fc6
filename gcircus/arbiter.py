"""Arbiter: owns the watchers, the event publisher, the controller, sockets, stats,
plugins and the dashboard, all as greenlets of one gevent hub.

`start()` runs on the calling thread's hub and blocks until `stop()`; embed it with
`gevent.spawn(arbiter.start)` and `arbiter.wait_started()`. Every other public method
may be called from any thread: it runs on the arbiter's hub (gcircus.supervision.hubcall).
Signals: when start() blocks the program's main greenlet the arbiter is the program, and
SIGTERM/SIGINT/SIGQUIT stop it, SIGHUP reloads (as Circus). An arbiter embedded in an
application (started in a greenlet or a thread) installs no handler unless handle_signals=True:
the application owns its signals and calls `stop()` on its way out.

The greenlets, by owner (each named so; a hub dump reads like this tree):

    Arbiter.start()              the caller's greenlet; blocks until stop()
     ├─ arbiter[tick]             safety-net sweep every check_delay (exits are events, not ticks)
     ├─ arbiter[signal:quit]      a signal's request, run like the wire command
     ├─ controller                one io watcher on the ROUTER socket (endpoints/reader.py);
     │   └─ controller[request]   a greenlet per request that must wait (a watcher's lock)
     ├─ publisher                 no greenlet: PUB sends never block; in-process listeners
     ├─ watcher[NAME]             one per watcher: handles its processes' exits in order
     │   ├─ respawn[NAME]         a backoff before the next spawn of a crash loop
     │   ├─ kill:PID[NAME]        stopping one process: signal, wait, SIGKILL
     │   ├─ max_age[NAME]         retiring a process at max_age
     │   └─ pump                  one per child pipe, reading to EOF (supervision/output.py)
     ├─ stats                     samples every stats_interval (stats/publisher.py)
     ├─ on_demand                 read watchers on the sockets of stopped on_demand watchers
     ├─ plugin[NAME]              one runner per plugin (plugin_host/manager.py)
     └─ httpd                     gevent.pywsgi's accept loop, with httpd=True (httpd/server.py)
         ├─ httpd[GET /PATH]      a greenlet per connection (a page's event stream lives as long)
         ├─ httpd[sampler]        CPU/memory samples, only while a dashboard page is open
         └─ httpd[flush]          watcher updates for the pages, coalesced (httpd/live.py)
"""
import logging
import os
import signal
import threading

import gevent
from gevent.event import Event
from gevent.lock import RLock
from gevent.pool import Group

from gcircus.exc import ArgumentError, ConflictError
from gcircus.options import ARBITER_OPTIONS
from gcircus.pubsub import Publisher
from gcircus.sockets import SocketManager
from gcircus.supervision.hub_guard import DEFAULT_STALL_THRESHOLD, HubGuard
from gcircus.supervision.hubcall import current_hub, on_owner_hub
from gcircus.watcher import Watcher

logger = logging.getLogger("gcircus")

# Constructor defaults, written once in the option table.
_D = ARBITER_OPTIONS
# Processes each watcher checks per safety-net tick when no exit is waiting (round robin).
SWEEP_SLICE = 64

_SIGNAL_ACTIONS = {signal.SIGTERM: "quit", signal.SIGINT: "quit", signal.SIGQUIT: "quit",
                   signal.SIGHUP: "reload"}


class Arbiter:
    """Controls a list of watchers (Circus's signature and options).

    endpoint / pubsub_endpoint: the controller's ROUTER and the event PUB socket
    (None disables either). check_delay: period of the safety-net sweep that reaps
    exits the hub might have missed and enforces counts — exits themselves are
    handled the moment they happen. stats_endpoint, plugins and sockets are wired by
    gcircus.stats, gcircus.plugin_host.manager and gcircus.sockets. httpd=True serves the
    web dashboard, the JSON API and /metrics on httpd_host:httpd_port (gcircus.httpd;
    credentials in the httpd_token / httpd_token_file / httpd_user / httpd_password /
    httpd_metrics_token options).
    """

    def __init__(self, watchers, endpoint, pubsub_endpoint, check_delay=_D["check_delay"].default,
                 prereload_fn=None, context=None, loop=None, stats_endpoint=None, plugins=None, sockets=None,
                 warmup_delay=_D["warmup_delay"].default, httpd=_D["httpd"].default,
                 httpd_host=_D["httpd_host"].default, httpd_port=_D["httpd_port"].default, **options):
        self.watchers = []
        self._watchers_by_name = {}
        self.endpoint = endpoint
        self.pubsub_endpoint = pubsub_endpoint
        self.check_delay = float(check_delay)
        self.prereload_fn = prereload_fn
        self.context = context
        if loop is not None and not hasattr(loop, "run_callback"):
            raise ArgumentError("loop must be a gevent loop (gcircus runs on gevent's hub)")
        self.loop = loop
        self.stats_endpoint = stats_endpoint
        self.plugins = list(plugins or [])
        self.sockets = SocketManager(sockets or [])
        self.warmup_delay = float(warmup_delay)
        self.httpd, self.httpd_host, self.httpd_port = httpd, httpd_host, httpd_port
        self.options = options
        self.umask = options.get("umask")
        self.handle_signals = options.get("handle_signals")   # None: only when start() is the program
        self.publisher = Publisher(pubsub_endpoint, context, options=options)
        self.controller = None
        self.services = []       # started components with a stop(): controller, stats, plugins...
        self.started = Event()
        self._stopped = Event()
        self._stopping = False
        self._releasing = False     # stop() is under way (begin_stopping alone does not release)
        self._lock = RLock()     # guards the watcher list (add/rm), not the watchers themselves
        self._tick = None
        self._greenlets = Group()    # every greenlet the arbiter spawns (tick, signals, stops)
        self._tick_changed = Event()     # set_check_delay wakes the tick loop
        self._signal_handlers = []
        self._hub = None         # the hub start() runs on; public methods run there
        self.config_source = None    # a gcircus.config.ConfigSource when built from an INI file
        self.stats_streamer = None
        self.plugin_manager = None
        self.http_server = None      # the gcircus.httpd.HttpServer while httpd is on and serving
        self.restart_requested = False
        self.hub_guard = None        # measures the hub while the arbiter runs (see hub_stalls())
        self._stopping_event = Event()   # set with _stopping: cuts warmup pauses short
        # callables (arbiter, event) told "ready", "reloading" and "stopping" (systemd's notify protocol)
        self.lifecycle_listeners = []
        self.critical_failure = None     # why a critical watcher stopped the arbiter, once one did
        for watcher in watchers or []:
            self._register(watcher)

    # -- watchers --------------------------------------------------------------------

    def _register(self, watcher):
        key = watcher.name.lower()
        if key in self._watchers_by_name:
            raise ConflictError("a watcher named %r already exists" % watcher.name)
        watcher.arbiter = self
        watcher.publisher = self.publisher
        watcher.sockets = self.sockets
        self.watchers.append(watcher)
        self._watchers_by_name[key] = watcher

    @on_owner_hub
    def iter_watchers(self, reverse=True):
        """Watchers by priority, highest first (lowest first with reverse=False)."""
        return sorted(self.watchers, key=lambda w: w.priority, reverse=reverse)

    @on_owner_hub
    def get_watcher(self, name):
        """The watcher called name (case-insensitive); KeyError if there is none."""
        return self._watchers_by_name[name.lower()]

    @on_owner_hub
    def add_watcher(self, name, cmd, **kw):
        """Create, register and return a new watcher (start it yourself, or via `add start=true`)."""
        if name.lower() in self._watchers_by_name:
            raise ConflictError("a watcher named %r already exists" % name)
        return self.add_existing_watcher(Watcher(name, cmd, **kw))

    @on_owner_hub
    def add_existing_watcher(self, watcher):
        """Register a Watcher built elsewhere (reloadconfig, plugins); publishes `add`."""
        with self._lock:
            self._register(watcher)
        watcher._event("add")
        return watcher

    @on_owner_hub
    def rm_watcher(self, name, nostop=False):
        """Stop (unless nostop) and remove a watcher; KeyError if unknown."""
        with self._lock:
            watcher = self.get_watcher(name)
            self.watchers.remove(watcher)
            del self._watchers_by_name[watcher.name.lower()]
        watcher._event("remove")
        if not nostop:
            watcher.stop()
        watcher.close()
        return watcher

    @on_owner_hub
    def numprocesses(self):
        """Processes running across all watchers."""
        return sum(len(w.processes) for w in self.watchers)

    @on_owner_hub
    def numwatchers(self):
        """How many watchers the arbiter has."""
        return len(self.watchers)

    # -- lifecycle -------------------------------------------------------------------

    def initialize(self):
        """Bind the event and control endpoints and the sockets; runs before any spawn."""
        if self.umask is not None:
            os.umask(int(self.umask))
        self.publisher.start()
        self.sockets.start(self)  # binds all (a failure is logged) and arms on_demand watchers
        if self.endpoint is not None:
            from gcircus.controller import Controller
            self.controller = Controller(self, self.endpoint, self.context)
            self.controller.start()
            self.services.append(self.controller)
        self._start_stats()
        self._start_discovery()
        self._start_plugins()
        self._start_httpd()

    def _hub_stall_threshold(self):
        threshold = self.options.get("hub_stall_threshold")
        return DEFAULT_STALL_THRESHOLD if threshold is None else float(threshold)

    def _start_hub_guard(self):
        if self.hub_guard is None:
            self.hub_guard = HubGuard(self._hub_stall_threshold())
        self.hub_guard.set_threshold(self._hub_stall_threshold())

    @on_owner_hub
    def set_hub_stall_threshold(self, threshold):
        """Change the stall threshold (seconds; None: the default, 0: no guard); applies now
        when called on the running arbiter's hub, else at the next start()."""
        self.options["hub_stall_threshold"] = threshold
        if self.hub_guard is not None and self._hub is not None and self.on_own_hub() \
                and not self._stopped.is_set():
            self.hub_guard.set_threshold(self._hub_stall_threshold())

    @on_owner_hub
    def hub_stalls(self):
        """How many turns of the hub held it longer than the stall threshold since start()."""
        return self.hub_guard.stalls if self.hub_guard is not None else 0

    def _start_stats(self):
        from gcircus.stats import stats_endpoint_of
        if stats_endpoint_of(self) is None:
            self.stats_streamer = None
            return
        from gcircus.stats.publisher import start_stats     # a daemon without stats never loads it
        self.stats_streamer = start_stats(self)
        if self.stats_streamer is not None:
            self.services.append(self.stats_streamer)

    def _start_discovery(self):
        """Circus's multicast discovery, only when multicast_endpoint is set (and there is a controller)."""
        if self.options.get("multicast_endpoint") and self.endpoint is not None:
            from gcircus.endpoints.discovery import DiscoveryResponder
            self.services.append(DiscoveryResponder(self.options["multicast_endpoint"],
                                                    lambda: self.endpoint).start())

    def _start_plugins(self):
        """The same plugin manager serves every start of one arbiter (reloadconfig changes it)."""
        if self.plugin_manager is None:
            if not self.plugins:
                return
            from gcircus.plugin_host.manager import PluginManager
            self.plugin_manager = PluginManager(self)
        self.services.append(self.plugin_manager.start())

    def _start_httpd(self):
        """The dashboard is an extra: one that cannot start (port in use, unreadable token file) is logged and
        the daemon supervises on; reloadconfig can fix its settings."""
        if not self.httpd or self.http_server is not None:
            return
        from gcircus.httpd import HttpServer    # a daemon without the dashboard never loads it
        try:
            server = HttpServer(self, self.httpd_host, self.httpd_port).start()
        except (OSError, ValueError) as error:
            logger.error("the dashboard cannot start on %s:%s: %s", self.httpd_host, self.httpd_port, error)
            return
        self.http_server = server
        self.services.append(server)

    @on_owner_hub
    def set_httpd(self, **settings):
        """Change httpd, httpd_host, httpd_port or the httpd_* credential options of a running arbiter."""
        for key in ("httpd", "httpd_host", "httpd_port"):
            if key in settings:
                setattr(self, key, settings.pop(key))
        self.options.update(settings)
        server = self.http_server
        if self._hub is None or self._stopping:
            return
        if not self.httpd:
            if server is not None:
                self.services.remove(server)
                self.http_server = None
                server.stop()
        elif server is None:
            self._start_httpd()
        else:
            try:
                server.reconfigure(self.httpd_host, self.httpd_port, self.options)
            except (OSError, ValueError) as error:
                logger.error("the dashboard keeps its previous settings: %s", error)

    def start(self):
        """Start every autostart watcher by priority and serve until stop(); blocks.

        Runs on the calling thread's hub, which owns the arbiter until the next start():
        calls from other threads are run there."""
        self._hub = gevent.get_hub()
        # Built on the hub that uses them: a lock or event already used elsewhere (by a call
        # made in the caller's thread before start) belongs to that thread's hub.
        self._lock = RLock()
        self._stopped = Event()
        self._tick_changed = Event()
        self._stopping_event = Event()
        self._stopping = self._releasing = False
        for watcher in self.watchers:
            watcher.rebind_hub()
        self._start_hub_guard()
        try:
            self.initialize()
        except Exception:
            self._release()
            raise
        self._install_signal_handlers()
        self._start_tick()
        self.start_watchers()
        logger.info("Arbiter now waiting for commands")
        self.started.set()
        self.announce("ready")
        self._stopped.wait()

    @property
    def config_file(self):
        """The INI file this arbiter was built from, or None."""
        return None if self.config_source is None else self.config_source.path

    @property
    def stopping(self):
        """True from the moment stop() begins: mutating commands are refused from then on."""
        return self._stopping

    @on_owner_hub
    def wait_started(self, timeout=None):
        """Wait until start() serves (True), or timeout seconds (False)."""
        return self.started.wait(timeout)

    @on_owner_hub
    def start_watchers(self, watchers=None):
        """Start watchers one after another, highest priority first, warmup_delay between two.

        watchers=None: every autostart watcher (on_demand ones wait for a connection)."""
        if watchers is None:
            watchers = [w for w in self.watchers if w.autostart and not w.on_demand]
        for index, watcher in enumerate(sorted(watchers, key=lambda w: w.priority, reverse=True)):
            if self._stopping:
                return
            if index and not self.pause(self.warmup_delay):
                return
            watcher.start()

    @on_owner_hub
    def pause(self, seconds):
        """Wait `seconds` unless the arbiter starts stopping; False if it did (a stop never
        waits a warmup out)."""
        if seconds > 0:
            self._stopping_event.wait(seconds)
        return not self._stopping

    @on_owner_hub
    def begin_stopping(self):
        """Mark the arbiter stopping, at once and without yielding: from here on nothing
        spawns, mutating commands are refused and warmup pauses end. stop() does the rest."""
        announce = not self._stopping
        if not self._stopping:
            logger.info("Arbiter stopping: every watcher is stopped, then the control plane")
        self._stopping = True
        self._stopping_event.set()
        if announce:
            # a restart from the config file is a reload to whoever watches the daemon
            self.announce("reloading" if self.restart_requested else "stopping")

    @on_owner_hub
    def stop_watchers(self, watchers=None, raise_error=False):
        """Stop watchers (all by default) concurrently, initiated lowest priority first; returns
        once every one has stopped (raise_error: then re-raise the first failure)."""
        if watchers is None:
            watchers = self.watchers
        jobs = [self._spawn_greenlet("stop:%s" % w.name, w.stop)
                for w in sorted(watchers, key=lambda w: w.priority)]
        gevent.joinall(jobs, raise_error=raise_error)

    def _spawn_greenlet(self, name, function, *args):
        """A named greenlet owned by the arbiter (ended by stop())."""
        greenlet = gevent.Greenlet(function, *args)
        greenlet.name = "arbiter[%s]" % name
        self._greenlets.add(greenlet)
        greenlet.start()
        return greenlet

    @on_owner_hub
    def set_check_delay(self, check_delay):
        """Change the sweep's period now, running or not (<= 0 turns the sweep off)."""
        self.check_delay = float(check_delay)
        if self._tick is not None and not self._tick.dead:
            self._tick_changed.set()
        elif self._hub is not None and not self._stopped.is_set() and not self._stopping:
            self._start_tick()

    def _start_tick(self):
        if self.check_delay > 0 and (self._tick is None or self._tick.dead):
            self._tick_changed.clear()
            self._tick = self._spawn_greenlet("tick", self._tick_loop)

    def _tick_loop(self):
        """Owned by the arbiter; runs every check_delay until stop(). A safety net only."""
        while not self._stopping and self.check_delay > 0:
            if self._tick_changed.wait(self.check_delay):   # a new check_delay: wait again with it
                self._tick_changed.clear()
                continue
            # Exits are events: the sweep is for one the hub never reported. A child waiting to be collected
            # (one waitid for the whole daemon) means a full sweep; otherwise each watcher checks a slice of
            # its processes per tick, so a tick's cost does not grow with the number of children.
            limit = None if _exit_waiting() else SWEEP_SLICE
            for watcher in list(self.watchers):
                try:
                    watcher.reap_and_manage_processes(limit)
                except Exception:
                    logger.exception("management of watcher %s failed", watcher.name)

    @on_owner_hub
    def stop(self):
        """Stop every watcher, then the control plane; start() returns afterwards.

        Idempotent: a second call waits for a stop in progress, and once stopped the
        arbiter spawns nothing (watcher commands that would spawn raise ConflictError)
        until the next start()."""
        if self._releasing:
            self._stopped.wait()
            return
        self._releasing = True
        self.begin_stopping()
        try:
            self.stop_watchers()
        finally:
            self._release()

    def owner_hub(self):
        """The hub this arbiter runs on (None before the first start, or once it is gone)."""
        hub = self._hub
        if hub is None or hub.dead or hub.loop is None:
            return None
        return hub

    def on_own_hub(self):
        """True when called on the arbiter's hub (or when it has none): from its thread, or in a
        monkey-patched program from any greenlet (threading idents are per greenlet there, hubs are not)."""
        hub = self.owner_hub()
        return hub is None or current_hub() is hub

    def _leave_hub(self):
        """The hub start() ran on is going away (a background thread ends): replace what is bound to
        it with fresh objects, which the hub of whoever uses them next takes over."""
        self._hub = None
        self._lock = RLock()
        self._stopped = Event()
        self._stopped.set()
        self._tick_changed = Event()
        self._stopping_event = Event()
        self._stopping_event.set()
        self.started = Event()
        self._greenlets = Group()
        for watcher in self.watchers:
            watcher.rebind_hub()

    def _release(self):
        current = gevent.getcurrent()      # stop() may itself run in one of ours (a signal's)
        for greenlet in list(self._greenlets):
            if greenlet is not current:
                greenlet.kill(block=False)
        self._tick = None
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception:
                logger.exception("stopping %r failed", service)
        self.services = []
        self.controller = None
        self.http_server = None
        self.publisher.stop()
        self.sockets.stop()
        for watcher in self.watchers:
            watcher.close()
        for handler in self._signal_handlers:
            handler.cancel()
        self._signal_handlers = []
        if self.hub_guard is not None:
            self.hub_guard.stop()
        self.started.clear()
        self._stopped.set()

    @on_owner_hub
    def reload(self, graceful=True, sequential=False):
        """prereload_fn, reopen log files, then reload every watcher by priority."""
        if self._stopping:
            return
        self.announce("reloading")
        try:
            if self.prereload_fn is not None:
                self.prereload_fn(self)
            _reopen_log_files()
            logger.info("reloading all watchers")
            for watcher in self.iter_watchers():
                watcher.reload(graceful=graceful, sequential=sequential)
            logger.info("all watchers reloaded")
        finally:
            self._announce_ready_again()

    @on_owner_hub
    def restart(self):
        """Full restart. Built from a config file: stop, and let gcircusd build a new arbiter
        from the file (new arbiter-level settings apply). Otherwise: stop and start every watcher."""
        if self.config_file is not None:
            self.restart_requested = True
            self.stop()
            return
        self.stop_watchers()
        self.start_watchers()

    @on_owner_hub
    def reload_from_config(self, config=None):
        """Apply the config file's current content, or `config` (what config_source.check() loaded
        from it), as the `reloadconfig` command does."""
        if self.config_file is None:
            raise ArgumentError("this arbiter was not started from a config file: nothing to reload")
        self.announce("reloading")
        try:
            return self.config_source.reload(self, config)
        finally:
            self._announce_ready_again()

    def announce(self, event):
        """Tell the lifecycle listeners (systemd notify): "ready", "reloading" or "stopping"."""
        for listener in list(self.lifecycle_listeners):
            try:
                listener(self, event)
            except Exception:
                logger.exception("lifecycle listener %r failed on %s", listener, event)

    def _announce_ready_again(self):
        if self.started.is_set() and not self._stopping:
            self.announce("ready")

    def watcher_gave_up(self, watcher):
        """A watcher stopped for good without being asked (watcher.gave_up says why). A critical
        one stops the arbiter: critical_failure says why, and gcircusd exits non-zero."""
        if not watcher.critical or self._stopping or self.critical_failure is not None:
            return
        self.critical_failure = "critical watcher %s gave up: %s" % (watcher.name, watcher.gave_up)
        logger.critical("%s; stopping every watcher and the daemon", self.critical_failure)
        # not in the caller's greenlet: it holds the watcher's lock
        self._spawn_greenlet("critical:%s" % watcher.name, self.stop)

    @on_owner_hub
    def rebind(self, key, endpoint):
        """Move the controller ('endpoint') or publisher ('pubsub_endpoint') to a new address."""
        setattr(self, key, endpoint)
        target = self.publisher if key == "pubsub_endpoint" else self.controller
        if target is not None:
            target.rebind(endpoint)

    # -- signals ---------------------------------------------------------------------

    def _install_signal_handlers(self):
        """When asked, or by default when start() blocks the main thread's main greenlet (nothing
        else runs there: the arbiter is the program). An embedding application owns its signals:
        SIGTERM must stop its arbiter *and* end the application, which only the application can do."""
        handle = self.handle_signals
        if handle is None:
            handle = threading.current_thread() is threading.main_thread() and gevent.getcurrent().parent is None
        if not handle:
            return
        for signum, action in _SIGNAL_ACTIONS.items():
            self._signal_handlers.append(gevent.signal_handler(signum, self._on_signal, signum, action))

    def _on_signal(self, signum, action):
        """Signal handlers only post the request; it runs like the wire command would."""
        logger.info("got signal %s: %s", signal.Signals(signum).name, action)
        if action == "quit":
            self.begin_stopping()    # now, before any queued work runs: nothing spawns from here on
        self._spawn_greenlet("signal:%s" % action, self.stop if action == "quit" else self.reload)

    def __repr__(self):
        return "<Arbiter %d watchers>" % len(self.watchers)


def _exit_waiting():
    """Whether some child of the daemon has exited and not been collected yet (it stays collectable)."""
    try:
        return os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return False


def _reopen_log_files():
    for handler in logging.getLogger("gcircus").handlers + logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                handler.close()
                handler.stream = handler._open()
            finally:
                handler.release()
