"""The option table is the single source of defaults: the constructor must agree with it."""
import inspect
import signal

from gcircus.options import REPORTED_OPTIONS, WATCHER_DEFAULTS
from gcircus.watcher import Watcher, to_signum


def test_constructor_defaults_match_the_table():
    for name, parameter in inspect.signature(Watcher.__init__).parameters.items():
        if name in WATCHER_DEFAULTS:
            assert parameter.default == WATCHER_DEFAULTS[name], name


def test_seed_signature_order():
    names = list(inspect.signature(Watcher.__init__).parameters)[1:]
    assert names[:24] == [
        "name", "cmd", "args", "numprocesses", "warmup_delay", "working_dir", "shell", "uid",
        "max_retry", "gid", "send_hup", "env", "stopped", "graceful_timeout", "prereload_fn",
        "rlimits", "executable", "stdout_stream", "stderr_stream", "stream_backend", "priority",
        "singleton", "use_sockets", "copy_env"]


def test_every_reported_option_is_an_attribute():
    watcher = Watcher("x", "true")
    for name in REPORTED_OPTIONS:
        if not name.endswith("_conf") and name not in ("cmd", "args"):
            assert hasattr(watcher, name), name


def test_free_form_options_are_kept():
    watcher = Watcher("x", "true", **{"flapping.max_retry": "3"})
    assert watcher.options == {"flapping.max_retry": "3"}


def test_signal_parsing():
    assert to_signum("term") == to_signum("SIGTERM") == to_signum(15) == to_signum("15") == signal.SIGTERM
    import pytest
    with pytest.raises(ValueError, match="'BOGUS'"):
        to_signum("BOGUS")


def test_backoff_doubles_from_the_second_failure_and_is_capped():
    watcher = Watcher("x", "true", backoff_base=0.1, backoff_max=1.0)
    delays = []
    for failures in range(1, 8):
        watcher._failures = failures
        delays.append(watcher._backoff_delay())
    assert delays == [0.0, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
