"""A plugin with `isolate = true`: its own process, not a greenlet on the arbiter's hub.

The plugin runs under the `gcircus-plugin` runner (gcircus.cli.plugin) as the
watcher `plugin:NAME`, as Circus runs every plugin: one process, respawned with the
crash-loop backoff every watcher has when it dies, stopped with the daemon. It talks
to the daemon over the public endpoints like any client, so a plugin that blocks
(time.sleep, a blocking HTTP or database call) holds only its own process.

The runner gets the plugin's options as JSON in the environment (PLUGIN_CONFIG_ENV)
rather than on the command line: values keep their types, may contain anything, and
do not show in `ps`. When the daemon's endpoints use CurveZMQ, the daemon admits a key
pair made for the plugin and hands it over the same way (PLUGIN_CURVE_ENV).
"""
import json
import logging
import sys

import zmq

from gcircus.converters import to_bool
from gcircus.exc import CircusError
from gcircus.supervision.hubcall import on_owner_hub
from gcircus.watcher import Watcher

logger = logging.getLogger("gcircus")

PLUGIN_CONFIG_ENV = "GCIRCUS_PLUGIN_CONFIG"
PLUGIN_CURVE_ENV = "GCIRCUS_PLUGIN_CURVE"
HANDOVER_VARIABLES = (PLUGIN_CONFIG_ENV, PLUGIN_CURVE_ENV)
# What the runner's process gets to finish its events and handle_stop() after SIGTERM before SIGKILL
# (a hosted plugin gets the same before it is killed).
STOP_TIMEOUT = 5.0
# Keys of a plugin's section that configure how it runs, not the plugin: not passed to it.
HOST_KEYS = ("use", "isolate")


class IsolationError(CircusError, ValueError):
    """A plugin cannot run isolated as configured."""


def wants_isolation(spec):
    """spec's `isolate` as a bool; IsolationError naming the plugin for a value that is not one."""
    try:
        return to_bool(spec.get("isolate", False))
    except ValueError:
        raise IsolationError("plugin %s: isolate = %r is not a boolean (true or false)"
                             % (spec.get("name") or spec.get("use"), spec.get("isolate"))) from None


def local_endpoint(endpoint):
    """The address a process on this machine connects to for a bound endpoint (`*` or 0.0.0.0: loopback)."""
    for wildcard in ("tcp://*:", "tcp://0.0.0.0:"):
        if endpoint.startswith(wildcard):
            return "tcp://127.0.0.1:" + endpoint[len(wildcard):]
    return endpoint


class PluginWatcherBase(Watcher):
    """What every `plugin:NAME` watcher shares, hosted or isolated: `active` (an inactive plugin does not
    start) and a reload that is a restart (two instances of a plugin would both act on the same events)."""

    def is_plugin(self):
        return True

    @on_owner_hub
    def start(self):
        if not self.active:
            logger.info("plugin %s is inactive (active = false): not started", self.name)
            return {"started": [], "kept": []}
        return self._start_active()

    def _start_active(self):
        return Watcher.start(self)

    @on_owner_hub
    def reload(self, graceful=True, sequential=False):
        if self.is_stopped():
            return dict(self.start(), stopped=[])
        return self.restart()


class IsolatedPluginWatcher(PluginWatcherBase):
    """`plugin:NAME` running the plugin in a gcircus-plugin process (one, for ever respawned)."""

    def __init__(self, name, spec, arbiter):
        self.plugin_spec = dict(spec)
        self.active = to_bool(spec.get("active", True))
        self.curve_keys = None          # {'server', 'public', 'secret'}: what the daemon admits, under CurveZMQ
        endpoint, pubsub = arbiter.endpoint, arbiter.pubsub_endpoint
        if not endpoint or not pubsub:
            raise IsolationError("plugin %s: isolate = true needs the daemon's endpoint and pubsub_endpoint "
                                 "(the plugin's process connects to them)" % name)
        config = {key: value for key, value in spec.items() if key not in HOST_KEYS}
        config["name"] = name
        try:
            # handed to each process it spawns, kept out of its env: `options` and the dashboard show that
            self.handover = {PLUGIN_CONFIG_ENV: json.dumps(config)}
        except (TypeError, ValueError) as error:
            raise IsolationError("plugin %s: its options cannot be passed to its own process: %s"
                                 % (name, error)) from None
        super().__init__(name, sys.executable, args=self._runner_args(arbiter, spec["use"]),
                         numprocesses=1, singleton=True, copy_env=True, copy_path=True,
                         priority=int(spec.get("priority", 1)), autostart=to_bool(spec.get("autostart", True)),
                         graceful_timeout=STOP_TIMEOUT)

    @staticmethod
    def _runner_args(arbiter, use):
        args = ["-m", "gcircus.cli.plugin",
                "--endpoint", local_endpoint(arbiter.endpoint), "--pubsub", local_endpoint(arbiter.pubsub_endpoint),
                "--check-delay", str(arbiter.check_delay)]
        # the plugin logs where the daemon does (a file is opened for appending; "-" is the daemon's stdout)
        if arbiter.options.get("loglevel"):
            args += ["--log-level", str(arbiter.options["loglevel"])]
        if arbiter.options.get("logoutput"):
            args += ["--log-output", str(arbiter.options["logoutput"])]
        return args + [use]

    def _start_active(self):
        self._admit()
        return super()._start_active()

    def _security(self):
        controller = None if self.arbiter is None else self.arbiter.controller
        return None if controller is None else controller.security

    def _admit(self):
        """Under CurveZMQ, have the daemon admit a key pair for the plugin and hand it over (with the
        server's key). Done at each start: the controller (and its keys) may be new since the last one."""
        security = self._security()
        server = None if security is None else security.public_key.decode("ascii")
        if self.curve_keys is None or self.curve_keys["server"] != server:
            self.forget_key()
            if server is None:
                self.handover.pop(PLUGIN_CURVE_ENV, None)
            else:
                public, secret = zmq.curve_keypair()
                self.curve_keys = {"server": server, "public": public.decode("ascii"),
                                   "secret": secret.decode("ascii")}
                self.handover[PLUGIN_CURVE_ENV] = json.dumps(self.curve_keys)
        if self.curve_keys is not None and security.allowed_keys is not None:
            security.allowed_keys.add(self.curve_keys["public"].encode("ascii"))

    def spawn_process(self, after_fork=None, hand_over_cpu=False):
        # child_env is rebuilt from env when `set` changes it: the hand-over goes in at each spawn
        env = {key: value for key, value in self.child_env.items() if key not in HANDOVER_VARIABLES}
        self.child_env = dict(env, **self.handover)
        return super().spawn_process(after_fork, hand_over_cpu)

    def close(self):
        super().close()
        self.forget_key()

    def forget_key(self):
        """No longer admit the plugin's key (it is removed, or the daemon's keys changed)."""
        security = self._security()
        if self.curve_keys is not None and security is not None and security.allowed_keys is not None:
            security.allowed_keys.discard(self.curve_keys["public"].encode("ascii"))
        self.curve_keys = None

    def __repr__(self):
        return "<IsolatedPluginWatcher %s %s %s>" % (self.name, self.plugin_spec.get("use"), self.state)
