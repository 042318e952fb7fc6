"""systemd's notify protocol (Type=notify) and its watchdog, without libsystemd.

The protocol is one AF_UNIX datagram socket named by $NOTIFY_SOCKET (a path, or
'@name' for the abstract namespace); each datagram is newline-separated KEY=VALUE
lines. SystemdNotifier tells it what one daemon does across its arbiters (gcircusd
builds a new arbiter on `restart`):

- READY=1 once every autostart watcher has been started (the arbiter says "ready"),
  again after each reload;
- RELOADING=1 (with MONOTONIC_USEC, which systemd 253+ asks for) when a reload or
  reloadconfig begins, READY=1 when it is done;
- STOPPING=1 when the daemon begins to stop;
- STATUS=<watchers and processes>, refreshed when watchers start or stop;
- WATCHDOG=1 every WATCHDOG_USEC/2 from a greenlet of the hub. A hub held by
  anything (a blocking hook, plugin or stream) runs no greenlet, so the pings stop and
  systemd restarts the wedged daemon (WatchdogSec=): exactly the failure the watchdog
  is for.
"""
import errno
import logging
import os
import socket
import time

import gevent

logger = logging.getLogger("gcircus")

# STATUS= is refreshed at most this often: a crash loop must not become a datagram per exit.
STATUS_REFRESH = 0.5
# the environment systemd sets for the notify protocol; none of it is for our children
NOTIFY_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def notify_address(value):
    """The socket address of a $NOTIFY_SOCKET value; ValueError when we cannot use it."""
    if not value:
        raise ValueError("NOTIFY_SOCKET is empty")
    if value.startswith("@"):
        return "\0" + value[1:]           # Linux abstract namespace
    if value.startswith("/"):
        return value
    raise ValueError("NOTIFY_SOCKET=%r: only a socket path or an @abstract name is supported" % value)


def watchdog_interval(environ, pid):
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None when systemd asks none
    of this process (no WATCHDOG_USEC, or WATCHDOG_PID names another process)."""
    usec = environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    owner = environ.get("WATCHDOG_PID")
    if owner and owner.strip() != str(pid):
        return None
    try:
        value = int(usec)
    except ValueError:
        logger.warning("WATCHDOG_USEC=%r is not a number of microseconds: no watchdog pings", usec)
        return None
    return value / 2e6 if value > 0 else None


class NotifySocket:
    """Sends notify datagrams; never blocks and never raises (systemd may be gone)."""

    def __init__(self, address):
        self.address = address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setblocking(False)
        self._failing = False      # the last send failed: log the next failure no more

    def send(self, *lines):
        message = "\n".join(lines).encode("utf-8", "replace")
        try:
            self._sock.sendto(message, self.address)
        except OSError as error:
            if not self._failing:
                logger.warning("systemd notify socket: cannot send %s: %s", lines[0],
                               errno.errorcode.get(error.errno, error))
            self._failing = True
            return False
        if self._failing:
            logger.info("systemd notify socket: sending again")
        self._failing = False
        return True

    def close(self):
        self._sock.close()


def watcher_counts(arbiter):
    """The STATUS= text: watchers by state and the processes running."""
    states = {}
    for watcher in list(arbiter.watchers):
        state = "gave up" if watcher.gave_up else watcher.status()
        states[state] = states.get(state, 0) + 1
    parts = ", ".join("%d %s" % (count, state) for state, count in sorted(states.items()))
    return "%d watchers%s; %d processes" % (len(arbiter.watchers), ": " + parts if parts else "",
                                             arbiter.numprocesses())


class SystemdNotifier:
    """Speaks for one daemon to systemd: attach() each arbiter it runs, close() at exit."""

    def __init__(self, sock, watchdog_interval=None):
        self.sock = sock
        self.watchdog_interval = watchdog_interval
        self.arbiter = None
        self._stopping_sent = False
        self._watchdog = None
        self._status_update = None     # greenlet that sends the next STATUS=
        self._last_status = None

    @classmethod
    def from_environ(cls, environ=None):
        """A notifier when $NOTIFY_SOCKET is set (None otherwise); the notify variables are
        removed from environ so that no child mistakes itself for the notified service."""
        environ = os.environ if environ is None else environ
        value = environ.get("NOTIFY_SOCKET")
        interval = watchdog_interval(environ, os.getpid())
        for name in NOTIFY_VARIABLES:
            environ.pop(name, None)
        if value is None:
            return None
        try:
            address = notify_address(value)
        except ValueError as error:
            logger.warning("%s: not notifying systemd", error)
            return None
        return cls(NotifySocket(address), interval)

    def attach(self, arbiter):
        """Report on arbiter (one start of the daemon) from now on."""
        self.detach()
        self.arbiter = arbiter
        self._stopping_sent = False
        arbiter.lifecycle_listeners.append(self._on_lifecycle)
        arbiter.publisher.add_listener(self._on_event)
        self._start_watchdog()

    def detach(self):
        if self.arbiter is not None:
            if self._on_lifecycle in self.arbiter.lifecycle_listeners:
                self.arbiter.lifecycle_listeners.remove(self._on_lifecycle)
            self.arbiter.publisher.remove_listener(self._on_event)
            self.arbiter = None
        if self._status_update is not None:
            self._status_update.kill(block=False)
            self._status_update = None

    def close(self):
        """The daemon exits: no more pings, nothing more to say."""
        self.detach()
        if self._watchdog is not None:
            self._watchdog.kill(block=False)
            self._watchdog = None
        self.sock.close()

    # -- what the arbiter says -------------------------------------------------------

    def _on_lifecycle(self, arbiter, event):
        """Arbiter lifecycle listener (called in the arbiter's greenlet: only sends)."""
        if event == "ready":
            self._stopping_sent = False
            self._last_status = watcher_counts(arbiter)
            self.sock.send("READY=1", "STATUS=" + self._last_status)
            logger.debug("systemd notified: ready")
        elif event == "reloading":
            self.sock.send("RELOADING=1", "MONOTONIC_USEC=%d" % (time.monotonic() * 1e6),
                           "STATUS=reloading")
        elif event == "stopping" and not self._stopping_sent:
            self._stopping_sent = True
            self.sock.send("STOPPING=1", "STATUS=stopping")

    def _on_event(self, topic, message):
        """Publisher listener: a watcher started, stopped or was added/removed: refresh STATUS=."""
        if topic.rsplit(".", 1)[-1] in ("start", "stop", "add", "remove", "spawn", "reap") and \
                self._status_update is None:
            self._status_update = gevent.spawn_later(STATUS_REFRESH, self._send_status)
            self._status_update.name = "systemd[status]"

    def _send_status(self):
        self._status_update = None
        arbiter = self.arbiter
        if arbiter is None or arbiter.stopping:
            return
        status = watcher_counts(arbiter)
        if status != self._last_status:
            self._last_status = status
            self.sock.send("STATUS=" + status)

    # -- watchdog --------------------------------------------------------------------

    def _start_watchdog(self):
        if self.watchdog_interval is None or self._watchdog is not None:
            return
        logger.info("systemd watchdog: pinging every %.3gs", self.watchdog_interval)
        self._watchdog = gevent.spawn(self._watchdog_loop)
        self._watchdog.name = "systemd[watchdog]"

    def _watchdog_loop(self):
        """Owned by the notifier; lives from the first attach() until close(). It runs only
        when the hub runs it: a held hub silences it, which is what systemd must notice."""
        while True:
            self.sock.send("WATCHDOG=1")
            gevent.sleep(self.watchdog_interval)
