"""gcircus: Circus's API, config and wire protocol on one gevent hub."""
import os

__version__ = "0.1.0"

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
DEFAULT_PUBSUB = "tcp://127.0.0.1:5556"
DEFAULT_STATS = "tcp://127.0.0.1:5557"


def get_arbiter(watchers, controller=DEFAULT_ENDPOINT, pubsub_endpoint=DEFAULT_PUBSUB,
                stats_endpoint=None, env=None, name=None, context=None, background=False,
                stream_backend="gevent", plugins=None, check_delay=1.0, **kw):
    """Build an Arbiter from watcher dicts (or one command string, with watcher options in kw).

    `get_arbiter("myprogram", numprocesses=3)` is the shorthand of Circus's docs:
    one watcher running that command. A watcher's `name` defaults to the basename
    of its command. With background=True the arbiter runs in a thread and start()
    returns (gcircus.background).
    """
    from gcircus.arbiter import Arbiter
    from gcircus.background import ThreadedArbiter
    from gcircus.watcher import Watcher

    if isinstance(watchers, str):
        watcher_options = {key: kw.pop(key) for key in list(kw) if key not in _ARBITER_KEYS}
        watchers = [dict(watcher_options, cmd=watchers)]
    built = []
    for spec in watchers:
        spec = dict(spec)
        cmd = spec.pop("cmd")
        watcher_name = spec.pop("name", None) or os.path.basename(cmd.split()[0])
        spec.setdefault("stream_backend", stream_backend)
        built.append(Watcher(watcher_name, cmd, **spec))
    arbiter_class = ThreadedArbiter if background else Arbiter
    return arbiter_class(built, controller, pubsub_endpoint, check_delay=check_delay,
                         context=context, stats_endpoint=stats_endpoint, plugins=plugins, **kw)


_ARBITER_KEYS = frozenset((
    "prereload_fn", "loop", "sockets", "warmup_delay", "httpd", "httpd_host", "httpd_port",
    "statsd", "statsd_close_outputs", "multicast_endpoint", "debug", "debug_gc", "proc_name",
    "pidfile", "loglevel", "logoutput", "loggerconfig", "fqdn_prefix", "umask", "endpoint_owner",
    "ssh_server", "handle_signals", "curve_secret_key", "curve_allowed_keys", "endpoint_mode",
    "max_message_size", "stats_interval", "httpd_close_outputs", "httpd_token", "httpd_token_file",
    "httpd_metrics_token", "httpd_user", "httpd_password"))
