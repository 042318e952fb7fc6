"""WatchDog: kills processes that stop sending heartbeats (Circus's plugin); the
watcher then replaces them.

Options: loop_rate (60 s), watchers_regex (`.*`), msg_regex
(`^(?P<pid>.*);(?P<timestamp>.*)$`), max_count (3), ip (127.0.0.1), port
(1664), watchers_stop_signal, watchers_graceful_timeout.

Each monitored process sends UDP datagrams to ip:port, at least every
loop_rate seconds, that msg_regex decodes into at least a `pid`. A process
silent for loop_rate * max_count seconds gets a `kill` (with the optional
signal and graceful timeout).

The pids to watch come from `spawn`/`reap` events, plus a discovery (`list`)
when the plugin starts, so a restarted plugin knows the running processes.
Unlike Circus's, a datagram that does not match msg_regex is logged and
ignored (Circus's plugin raised), and killing several processes in one loop
works (Circus's changed its dict while iterating over it).
"""
import logging
import re
import time

from gevent import socket

from gcircus.plugin import CircusPlugin, to_signum

logger = logging.getLogger("gcircus")


class WatchDog(CircusPlugin):
    name = "watchdog"

    def __init__(self, endpoint, pubsub_endpoint, check_delay, ssh_server=None, **config):
        super().__init__(endpoint, pubsub_endpoint, check_delay, ssh_server, **config)
        self.loop_rate = float(config.get("loop_rate", 60))
        self.watchers_regex = config.get("watchers_regex", ".*")
        self.msg_regex = re.compile(config.get("msg_regex", "^(?P<pid>.*);(?P<timestamp>.*)$"))
        self.max_count = int(config.get("max_count", 3))
        self.watchdog_ip = config.get("ip", "127.0.0.1")
        self.watchdog_port = int(config.get("port", 1664))
        self.stop_signal = config.get("watchers_stop_signal")
        if self.stop_signal:
            self.stop_signal = to_signum(self.stop_signal)
        self.graceful_timeout = config.get("watchers_graceful_timeout")
        if self.graceful_timeout:
            self.graceful_timeout = float(self.graceful_timeout)
        self.pid_status = {}    # pid (str) -> {"watcher": name, "last_activity": time}
        self.sock = None

    def handle_init(self):
        self._bind_socket()
        self._discover_monitored_pids()
        self.periodic(self.loop_rate, self.look_after)     # stops with the plugin

    def handle_stop(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _bind_socket(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((self.watchdog_ip, self.watchdog_port))
        except OSError as error:
            self.sock.close()
            self.sock = None
            raise OSError("watchdog: cannot bind UDP %s:%s: %s"
                          % (self.watchdog_ip, self.watchdog_port, error)) from None
        logger.info("watchdog listening on UDP %s:%s", self.watchdog_ip, self.watchdog_port)
        self.spawn(self._receive_loop)

    def _receive_loop(self):
        """Owned by the plugin; lives while it runs; notes every heartbeat."""
        while self.sock is not None:
            data, _ = self.sock.recvfrom(1024)
            self.receive_heartbeat(data)

    def receive_heartbeat(self, data):
        heartbeat = self._decode(data)
        if heartbeat is None or "pid" not in heartbeat:
            logger.warning("watchdog: heartbeat %r does not match %s", data[:100], self.msg_regex.pattern)
            return
        status = self.pid_status.get(heartbeat["pid"])
        if status is None:
            logger.debug("watchdog: heartbeat from a process it does not watch: %s", heartbeat)
            return
        status["last_activity"] = time.time()

    def _decode(self, data):
        match = self.msg_regex.match(data.decode("utf-8", "replace").strip())
        return match.groupdict() if match is not None else None

    def _match_watcher_name(self, name):
        return re.match(self.watchers_regex, name) is not None

    def handle_recv(self, data):
        watcher, action, body = self.split_data(data)
        if action not in ("spawn", "reap") or not self._match_watcher_name(watcher):
            return
        try:
            message = self.load_message(body)
        except ValueError:
            logger.error("watchdog: invalid JSON in event %s: %r", action, body)
            return
        if "process_pid" not in message:
            return
        pid = str(message["process_pid"])
        if action == "spawn":
            self.pid_status[pid] = {"watcher": watcher, "last_activity": time.time()}
        else:
            self.pid_status.pop(pid, None)

    def _discover_monitored_pids(self):
        """The running processes of the monitored watchers (events cover the later ones)."""
        for watcher in self.call("list").get("watchers", []):
            if not self._match_watcher_name(watcher) or watcher.startswith("plugin:"):
                continue
            for pid in self.call("list", name=watcher).get("pids", []):
                self.pid_status.setdefault(str(pid), {"watcher": watcher, "last_activity": time.time()})

    def look_after(self):
        """Kill every process silent for loop_rate * max_count seconds."""
        too_old = time.time() - self.loop_rate * self.max_count
        for pid, status in list(self.pid_status.items()):
            if status["last_activity"] >= too_old:
                continue
            logger.info("watchdog: watcher %s, pid %s sent no heartbeat: killing it", status["watcher"], pid)
            props = {"name": status["watcher"], "pid": int(pid)}
            if self.stop_signal:
                props["signum"] = self.stop_signal
            if self.graceful_timeout:
                props["graceful_timeout"] = self.graceful_timeout
            self.cast("kill", **props)
            del self.pid_status[pid]
