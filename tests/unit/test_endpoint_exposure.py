"""When a root daemon's control endpoint lets every local user in (warned about at start)."""
import os

from gcircus.endpoints.binding import root_exposure


def test_tcp_without_curve_is_exposed_only_for_root():
    assert root_exposure("tcp://127.0.0.1:5555", secured=False, euid=0) == "a TCP endpoint without CurveZMQ"
    assert root_exposure("tcp://127.0.0.1:5555", secured=False, euid=1000) is None
    assert root_exposure("tcp://127.0.0.1:5555", secured=True, euid=0) is None


def test_ipc_socket_files_are_judged_by_their_mode(tmp_path):
    socket_file = tmp_path / "ctl.sock"      # stat() is all that is asked of it
    socket_file.touch()
    endpoint = "ipc://%s" % socket_file
    os.chmod(socket_file, 0o600)
    assert root_exposure(endpoint, secured=False, euid=0) is None
    os.chmod(socket_file, 0o755)            # others may not write: they cannot connect
    assert root_exposure(endpoint, secured=False, euid=0) is None
    os.chmod(socket_file, 0o777)
    assert root_exposure(endpoint, secured=False, euid=0) == "an ipc socket file every user may write to (mode 777)"
    assert root_exposure("ipc://@gcircus-ctl", secured=False, euid=0) == \
        "an abstract ipc socket (it has no file permissions)"
