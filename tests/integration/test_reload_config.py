"""reload_config on a running arbiter built from an INI file: sockets and watchers
follow the edited file, and a socket that cannot bind does not stop the rest."""
import socket

import gevent
import pytest

from gcircus.config import load_config
from gcircus.configured import arbiter_from_config, reload_config


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def from_file(tmp_path):
    started = []

    def start(text):
        path = tmp_path / "gcircus.ini"
        path.write_text(text)
        arbiter = arbiter_from_config(load_config(str(path)), config_file=str(path))
        arbiter.handle_signals = False
        greenlet = gevent.spawn(arbiter.start)
        started.append((arbiter, greenlet))
        assert arbiter.wait_started(15)
        return arbiter, path

    yield start
    for arbiter, greenlet in started:
        with gevent.Timeout(60, False):
            arbiter.stop()
        greenlet.join(10)


CIRCUS = "[circus]\nendpoint = tcp://127.0.0.1:%d\npubsub_endpoint = tcp://127.0.0.1:%d\ncheck_delay = 60\n" % (
    free_port(), free_port())


def socket_section(name, port):
    return "[socket:%s]\nhost = 127.0.0.1\nport = %d\n" % (name, port)


def test_sockets_follow_the_file_and_a_bind_failure_is_reported(from_file):
    keep, old, moved, taken = free_port(), free_port(), free_port(), socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        watcher = "[watcher:web]\ncmd = sleep 120 $(circus.sockets.moving)\nuse_sockets = true\n"
        arbiter, path = from_file(CIRCUS + socket_section("keep", keep) + socket_section("moving", old)
                                  + socket_section("gone", free_port()) + watcher
                                  + "[watcher:other]\ncmd = sleep 121\n")
        kept_socket, gone_socket = arbiter.sockets["keep"], arbiter.sockets["gone"]
        web_pids = [p.pid for p in arbiter.get_watcher("web").processes.values()]
        path.write_text(CIRCUS + socket_section("keep", keep) + socket_section("moving", moved)
                        + socket_section("busy", taken.getsockname()[1]) + watcher
                        + "[watcher:other]\ncmd = sleep 121\nnumprocesses = 2\n")
        summary = reload_config(arbiter)
        assert summary["sockets"]["added"] == ["busy"] and summary["sockets"]["removed"] == ["gone"]
        assert summary["sockets"]["changed"] == ["moving"]
        assert any("busy" in error for error in summary["sockets"]["errors"])
        assert arbiter.sockets["keep"] is kept_socket
        assert gone_socket.fileno() == -1 and "gone" not in arbiter.sockets
        assert arbiter.sockets["moving"].getsockname()[1] == moved
        # the watcher that uses the moved socket was replaced; the rest of the file was applied too
        assert not set(web_pids) & {p.pid for p in arbiter.get_watcher("web").processes.values()}
        assert len(arbiter.get_watcher("other").processes) == 2
    finally:
        taken.close()
