"""on_demand watchers: started when a client first connects to their socket.

A stopped on_demand watcher has one read watcher on the hub (`loop.io(fd, READ)`)
per socket it uses; a pending connection makes the fd readable, the read watchers
are dropped and the watcher is started. When it stops again (its processes died,
or a `stop` command) it is armed again. No polling, no select loop: the kernel
wakes the hub.

A watcher is started on demand at most once per `min_uptime` (a process that
dies at once while a connection waits must not become a hub-speed crash loop).
"""
import logging
import time

import gevent

from gcircus.sockets.usage import sockets_used_by

logger = logging.getLogger("gcircus")

READ = 1
# When a start on demand fails (a hook said no), the waiting connection would wake
# us again at once: try again after this long.
RETRY_FAILED_START = 1.0
_WATCHED_EVENTS = ("start", "stop", "add", "remove")


class OnDemandStarter:
    """Owned by the arbiter's SocketManager; lives from arbiter start to stop."""

    def __init__(self, arbiter, sockets):
        self.arbiter = arbiter
        self.sockets = sockets
        self._armed = {}          # watcher -> [io watchers]
        self._starting = set()    # watchers a start greenlet is starting
        self._later = {}          # watcher -> greenlet that arms it after a pause
        self._last_start = {}     # watcher -> monotonic time of its last start on demand
        self._running = False

    def start(self):
        self._running = True
        self.arbiter.publisher.add_listener(self._on_event)
        self.refresh()

    def stop(self):
        self._running = False
        self.arbiter.publisher.remove_listener(self._on_event)
        for watcher in list(self._armed):
            self._disarm(watcher)
        for greenlet in self._later.values():
            greenlet.kill(block=False)
        self._later.clear()

    def _on_event(self, topic, message):
        """Publisher listener: any start/stop/add/remove may change who waits for a connection."""
        if topic.startswith("watcher.") and topic.rsplit(".", 1)[-1] in _WATCHED_EVENTS:
            self.refresh()

    def refresh(self):
        """Arm exactly the stopped on_demand watchers, on the sockets they use now."""
        for watcher in list(self._armed):
            self._disarm(watcher)
        if not self._running:
            return
        watchers = [w for w in self.arbiter.watchers if w.on_demand]
        for watcher in list(self._later):
            if watcher not in watchers:
                self._later.pop(watcher).kill(block=False)
        for watcher in watchers:
            if watcher.is_stopped() and watcher not in self._starting and watcher not in self._later:
                self._arm_when_allowed(watcher)

    def _arm_when_allowed(self, watcher):
        since = time.monotonic() - self._last_start.get(watcher, float("-inf"))
        pause = max(0.0, watcher.min_uptime - since)
        if pause > 0:
            self._arm_later(watcher, pause)
        else:
            self._arm(watcher)

    def _arm_later(self, watcher, pause):
        def arm():
            self._later.pop(watcher, None)
            self.refresh()
        if watcher not in self._later:
            self._later[watcher] = gevent.spawn_later(pause, arm)
            self._later[watcher].name = "on_demand[%s]" % watcher.name

    def _arm(self, watcher):
        names = sockets_used_by(watcher, self.sockets) or list(self.sockets)
        fds = [self.sockets[name].fileno() for name in names if name in self.sockets]
        fds = [fd for fd in fds if fd >= 0]
        if not fds:
            logger.warning("on_demand watcher %s has no bound socket to wait on", watcher.name)
            return
        loop = gevent.get_hub().loop
        armed = []
        for fd in fds:
            io = loop.io(fd, READ)
            io.start(self._readable, watcher)
            armed.append(io)
        self._armed[watcher] = armed
        logger.debug("on_demand watcher %s waits for a connection on fds %s", watcher.name, fds)

    def _disarm(self, watcher):
        for io in self._armed.pop(watcher, ()):
            io.stop()
            io.close()

    def _readable(self, watcher):
        """Hub callback (must not block): a client is waiting, start the watcher in a greenlet."""
        self._disarm(watcher)
        if not self._running or self.arbiter.stopping:
            return
        self._starting.add(watcher)
        self._last_start[watcher] = time.monotonic()
        greenlet = gevent.spawn(self._start, watcher)
        greenlet.name = "on_demand.start[%s]" % watcher.name

    def _start(self, watcher):
        logger.info("on_demand watcher %s: a client connected, starting it", watcher.name)
        try:
            watcher.start()
        except Exception:
            logger.exception("on_demand start of watcher %s failed", watcher.name)
        finally:
            self._starting.discard(watcher)
        if self._running and watcher.is_stopped():
            logger.warning("on_demand watcher %s did not start; waiting %ss before the next try",
                           watcher.name, RETRY_FAILED_START)
            self._arm_later(watcher, RETRY_FAILED_START)
