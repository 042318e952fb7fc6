"""What an isolated plugin's runner is handed: the address to connect to for a bound endpoint,
and its options as JSON in the environment (a bad variable is named, not a traceback)."""
import pytest

from gcircus.cli.plugin import config_from_env
from gcircus.plugin_host.isolated import local_endpoint


@pytest.mark.parametrize("bound,connect", [
    ("tcp://*:5555", "tcp://127.0.0.1:5555"),
    ("tcp://0.0.0.0:5555", "tcp://127.0.0.1:5555"),
    ("tcp://10.0.0.2:5555", "tcp://10.0.0.2:5555"),
    ("ipc:///run/gc/ctl.sock", "ipc:///run/gc/ctl.sock"),
])
def test_a_wildcard_bind_is_reached_on_loopback(bound, connect):
    assert local_endpoint(bound) == connect


def test_config_from_env():
    assert config_from_env("X", {}) == {}
    assert config_from_env("X", {"X": '{"port": 8125, "name": "plugin:p"}'}) == {"port": 8125, "name": "plugin:p"}
    with pytest.raises(ValueError, match="X is not valid JSON"):
        config_from_env("X", {"X": "{port"})
    with pytest.raises(ValueError, match="X must hold a JSON object"):
        config_from_env("X", {"X": "[1]"})
