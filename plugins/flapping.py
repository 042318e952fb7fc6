"""Flapping: stops a watcher whose processes keep dying, and starts it again later
(Circus's plugin of the same name).

Options (each may be overridden per watcher with a `flapping.<option>` watcher
option): attempts (2), window (1 s), retry_in (7 s), max_retry (5; -1 = retry
for ever), active (true).

When `attempts` processes of a watcher died within `window` seconds, the
watcher is stopped and started again `retry_in` seconds later; after
`max_retry` such retries it stays stopped, given up (its `stop` carries
`gave_up`: `gcircusctl health` reports it, and a `critical` watcher stops the daemon).

Where this differs from Circus's plugin:
- only crashes count: a process the daemon was asked to stop (its `kill` event
  precedes its `reap`: stop, restart, reload, decr, kill, max_age) is not a
  failure, and an operator's `stop` resets the watcher's history;
- the window slides over the last `attempts` deaths (Circus drops its whole
  history when one window is too long, and can miss a loop);
- durations are not reduced by check_delay: gcircus respawns at once, not at
  the next check;
- the later start is a hub timer, not a thread, and is cancelled when the
  plugin stops or the watcher is removed.
"""
import logging
import time

from gcircus.plugin import CircusPlugin, to_bool

logger = logging.getLogger("gcircus")

INFINITE_RETRY = -1
_TYPES = {"attempts": int, "max_retry": int, "window": float, "retry_in": float}


class Flapping(CircusPlugin):
    name = "flapping"

    def __init__(self, endpoint, pubsub_endpoint, check_delay, ssh_server=None, **config):
        super().__init__(endpoint, pubsub_endpoint, check_delay, ssh_server, **config)
        self.attempts = int(config.get("attempts", 2))
        self.window = float(config.get("window", 1))
        self.retry_in = float(config.get("retry_in", 7))
        self.max_retry = int(config.get("max_retry", 5))
        self.timelines = {}     # watcher -> times of its last deaths
        self.tries = {}         # watcher -> retries so far
        self.timers = {}        # watcher -> pending start
        self.configs = {}       # watcher -> its flapping.* options
        self.killed = {}        # watcher -> pids the daemon was asked to stop
        self.stopping = set()   # watchers we stopped ourselves (their `stop` event is ours)

    def handle_stop(self):
        for timer in self.timers.values():
            timer.kill(block=False)
        self.timers.clear()

    def handle_recv(self, data):
        watcher, action, body = self.split_data(data)
        if action == "kill":
            self.killed.setdefault(watcher, set()).add(self.load_message(body).get("process_pid"))
        elif action == "reap":
            pid = self.load_message(body).get("process_pid")
            if pid in self.killed.get(watcher, ()):
                self.killed[watcher].discard(pid)    # asked for: not a crash
                return
            self.timelines.setdefault(watcher, []).append(time.monotonic())
            self.check(watcher)
        elif action == "stop":
            self.killed.pop(watcher, None)
            if watcher in self.stopping:
                self.stopping.discard(watcher)
            else:
                self.reset(watcher)                 # the operator (or max_retry) stopped it
        elif action == "updated":
            self.update_conf(watcher)
        elif action == "remove":
            self.reset(watcher)
            self.configs.pop(watcher, None)

    def update_conf(self, watcher):
        reply = self.call("options", name=watcher)
        conf = {}
        for key, value in (reply.get("options") or {}).items():
            prefix, _, option = key.partition(".")
            if prefix != self.name or not option:
                continue
            try:
                conf[option] = _TYPES[option](value) if option in _TYPES else value
            except ValueError:
                logger.warning("flapping: watcher %s: bad %s = %r, ignored", watcher, key, value)
        self.configs[watcher] = conf
        return conf

    def _conf(self, watcher, option):
        conf = self.configs[watcher] if watcher in self.configs else self.update_conf(watcher)
        return conf.get(option, getattr(self, option, None))

    def reset(self, watcher):
        self.timelines[watcher] = []
        self.tries[watcher] = 0
        timer = self.timers.pop(watcher, None)
        if timer is not None:
            timer.kill(block=False)

    def check(self, watcher):
        if not to_bool(self._conf(watcher, "active")):
            return
        attempts = self._conf(watcher, "attempts")
        timeline = self.timelines[watcher][-attempts:]
        self.timelines[watcher] = timeline
        if len(timeline) < attempts:
            return
        if timeline[-1] - timeline[0] > self._conf(watcher, "window"):
            self.tries[watcher] = 0     # dying, but not fast: the past retries are forgiven
            return
        tries = self.tries.get(watcher, 0)
        max_retry = self._conf(watcher, "max_retry")
        self.timelines[watcher] = []
        self.stopping.add(watcher)
        if tries < max_retry or max_retry == INFINITE_RETRY:
            retry_in = self._conf(watcher, "retry_in")
            self.tries[watcher] = tries + 1
            logger.info("%s: flapping detected: retry in %ss (attempt number %s)", watcher, retry_in,
                        tries + 1)
            self.cast("stop", name=watcher)
            previous = self.timers.pop(watcher, None)
            if previous is not None:
                previous.kill(block=False)
            self.timers[watcher] = self.spawn_later(retry_in, self._start, watcher)
        else:
            logger.info("%s: flapping detected: reached max retry limit, stopping it", watcher)
            self.tries[watcher] = 0
            # gave_up: the watcher is stopped for good (a critical one then stops the daemon)
            self.cast("stop", name=watcher,
                      gave_up="flapping: %d deaths within %ss, %d retries" % (
                          self._conf(watcher, "attempts"), self._conf(watcher, "window"), tries))

    def _start(self, watcher):
        self.timers.pop(watcher, None)
        self.cast("start", name=watcher)
