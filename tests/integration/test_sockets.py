"""Sockets: children serving on inherited fds, listsockets, unix
sockets (umask, replace, removal), so_reuseport, stdin_socket, a port in use,
sockets added and removed live."""
import errno
import logging
import os
import socket
import stat

import gevent
import pytest

from gcircus.sockets import CircusSocket, describe_sockets
from gcircus.watcher import Watcher
from tests.conftest import child_cmd
from tests.fixtures.http_client import http_get


def http_watcher(lines, name="web", fd="$(circus.sockets.web)", *args, **options):
    options.setdefault("use_sockets", True)
    return Watcher(name, child_cmd("http_worker", fd, *args), stdout_stream={"stream": lines},
                   min_uptime=0, **options)


def ready_fields(lines):
    """[(pid, port, inode)] from the workers' 'ready <pid> <port> <inode>' lines."""
    found = []
    for _, line in lines.lines:
        words = line.split()
        if words[:1] == ["ready"]:
            found.append((int(words[1]), words[2], int(words[3])))
    return found


def test_child_serves_http_on_its_socket_and_listsockets_reports_it(served_arbiter, call, lines):
    web = CircusSocket("web", host="127.0.0.1", port=0)
    watcher = http_watcher(lines)
    arbiter = served_arbiter([watcher], sockets=[web])
    assert web.port not in (0, None)           # the real ephemeral port, read back after bind
    lines.wait_for("ready")
    reply = http_get(("127.0.0.1", web.port))
    assert reply["pid"] in watcher.processes
    assert reply["port"] == web.port
    expected = [{"fd": web.fileno(), "name": "web", "backlog": 2048, "host": "127.0.0.1",
                 "port": web.port}]
    assert describe_sockets(arbiter.sockets) == expected
    assert call("listsockets")["sockets"] == expected


def test_the_fd_is_passed_only_with_use_sockets(run_arbiter, events):
    web = CircusSocket("web", host="127.0.0.1", port=0)
    watcher = Watcher("web", child_cmd("http_worker", "$(circus.sockets.web)"), use_sockets=False,
                      min_uptime=0, respawn=False)
    run_arbiter([watcher], sockets=[web])
    # Without use_sockets the child gets the fd number but not the fd: it fails at once.
    events.wait_count("watcher.web.reap", 1)
    reap = [m for t, m in events.events if t == "watcher.web.reap"][0]
    assert reap["exit_code"] != 0


def test_stdin_socket_puts_the_socket_on_fd_0(run_arbiter, lines):
    web = CircusSocket("web", host="127.0.0.1", port=0)
    watcher = http_watcher(lines, "stdin-web", "0", stdin_socket="web", use_sockets=False)
    run_arbiter([watcher], sockets=[web])
    lines.wait_for("ready")
    assert http_get(("127.0.0.1", web.port))["pid"] in watcher.processes


def test_sockets_are_listening_before_the_first_spawn(run_arbiter, events):
    web = CircusSocket("web", host="127.0.0.1", port=0)
    listening = []

    def before_spawn(watcher, arbiter, hook_name, **kw):
        probe = socket.socket()
        probe.settimeout(2)
        try:
            probe.connect(("127.0.0.1", web.port))   # completes from the listen backlog
            listening.append(True)
        finally:
            probe.close()
        return True

    watcher = Watcher("sleeper", "sleep 120", hooks={"before_spawn": before_spawn})
    run_arbiter([watcher], sockets=[web])
    assert listening == [True]


def test_unix_socket_umask_replace_and_removal(tmp_path, run_arbiter, lines):
    path = str(tmp_path / "web.sock")
    wide_open = CircusSocket("web", path=path, umask=0)
    wide_open.bind_and_listen()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o777
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    # replace = false: an existing file is an error naming the socket and the path
    second = CircusSocket("second", path=path)
    with pytest.raises(OSError) as failure:
        second.bind_and_listen()
    assert failure.value.errno == errno.EEXIST
    assert "socket second: cannot bind %s" % path in str(failure.value)
    assert "already exists" in str(failure.value)
    second.close()
    assert os.path.exists(path)                 # a socket that failed never removes the file
    wide_open.close()
    assert not os.path.exists(path)

    # replace = true takes the path over; umask given as an octal string
    open(path, "w").close()
    web = CircusSocket("web", path=path, replace=True, umask="022")
    watcher = http_watcher(lines)
    arbiter = run_arbiter([watcher], sockets=[web])
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o755
    lines.wait_for("ready")
    assert http_get(path)["pid"] in watcher.processes
    assert describe_sockets(arbiter.sockets) == [{"fd": web.fileno(), "name": "web",
                                                  "backlog": 2048, "path": path}]
    arbiter.stop()
    assert not os.path.exists(path)


def test_a_replaced_unix_socket_does_not_remove_its_successor(tmp_path):
    path = str(tmp_path / "s.sock")
    first = CircusSocket("first", path=path)
    first.bind_and_listen()
    second = CircusSocket("second", path=path, replace=True)
    second.bind_and_listen()
    first.close()
    assert os.path.exists(path)
    second.close()
    assert not os.path.exists(path)


def test_so_reuseport_gives_each_process_its_own_socket(run_arbiter, lines):
    web = CircusSocket("web", host="127.0.0.1", port=0, so_reuseport=True)
    watcher = http_watcher(lines, numprocesses=3)
    run_arbiter([watcher], sockets=[web])
    assert web.port not in (0, None)           # the arbiter reserved a real port for all of them
    lines.wait_for("ready", 3)
    ready = ready_fields(lines)
    assert {port for _, port, _ in ready} == {str(web.port)}
    inodes = {inode for _, _, inode in ready}
    assert len(inodes) == 3 and os.fstat(web.fileno()).st_ino not in inodes
    # the parent closed its copies right after each spawn
    own_inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            own_inodes.add(os.stat("/proc/self/fd/" + fd).st_ino)
        except OSError:
            continue
    assert not inodes & own_inodes
    # the kernel spreads connections over the three listening sockets
    served = set()
    for _ in range(300):
        served.add(http_get(("127.0.0.1", web.port))["pid"])
        if len(served) == 3:
            break
    assert served == set(watcher.processes)


def test_a_port_in_use_is_reported_and_the_rest_starts(run_arbiter, caplog):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        busy = CircusSocket("web", host="127.0.0.1", port=port)
        free = CircusSocket("other", host="127.0.0.1", port=0)
        needs_busy = Watcher("web", child_cmd("http_worker", "$(circus.sockets.web)"),
                             use_sockets=True, max_retry=0)
        sleeper = Watcher("sleeper", "sleep 120")
        with caplog.at_level(logging.INFO, logger="gcircus"):
            arbiter = run_arbiter([needs_busy, sleeper], sockets=[busy, free])
        assert ("socket web: cannot bind 127.0.0.1:%d: [Errno 98] Address already in use" % port
                in caplog.text)
        assert "socket web is not bound" in caplog.text       # why its watcher cannot spawn
        assert needs_busy.is_stopped() and not needs_busy.processes
        assert sleeper.is_active() and free.fileno() >= 0
        assert [s["fd"] for s in describe_sockets(arbiter.sockets)] == [-1, free.fileno()]
    finally:
        blocker.close()


def test_sockets_added_and_removed_live(run_arbiter, lines):
    arbiter = run_arbiter([])
    web = CircusSocket("web", host="127.0.0.1", port=0)
    assert arbiter.sockets.add(web) is True
    arbiter.add_watcher("web", child_cmd("http_worker", "$(circus.sockets.web)"), use_sockets=True,
                        min_uptime=0, stdout_stream={"stream": lines}).start()
    lines.wait_for("ready")
    assert http_get(("127.0.0.1", web.port))["port"] == web.port
    arbiter.rm_watcher("web")
    port = web.port
    arbiter.sockets.remove("web")
    assert "web" not in arbiter.sockets and web.fileno() == -1
    with pytest.raises(OSError):
        with gevent.Timeout(5):
            http_get(("127.0.0.1", port))


def test_load_from_config_takes_the_config_dicts():
    config = {"name": "web", "host": "127.0.0.1", "port": 0, "path": None, "family": "AF_INET",
              "type": "SOCK_STREAM", "proto": "tcp", "backlog": 12, "so_reuseport": False,
              "umask": 0o010, "replace": False, "blocking": True, "interface": None}
    sock = CircusSocket.load_from_config(config)
    assert (sock.family, sock.socktype, sock.proto) == (socket.AF_INET, socket.SOCK_STREAM, 6)
    assert sock.config == config
    sock.bind_and_listen()
    try:
        assert sock.getblocking() is True and sock.backlog == 12 and sock.port > 0
    finally:
        sock.close()
    unix = CircusSocket.load_from_config({"name": "u", "path": "/tmp/x.sock", "host": None,
                                          "port": None, "family": "AF_UNIX", "umask": "002"})
    assert unix.is_unix and (unix.host, unix.port, unix.umask) == (None, None, 0o002)


def test_ipv6_socket():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    sock = CircusSocket("v6", host="::1", port=0, family="AF_INET6")
    try:
        sock.bind_and_listen()
    except OSError as error:
        pytest.skip("no IPv6 loopback here: %s" % error)
    try:
        assert sock.host == "::1" and sock.port > 0
        assert describe_sockets([sock])[0]["host"] == "::1"
    finally:
        sock.close()


def test_datagram_sockets_are_bound_not_listened_on():
    sock = CircusSocket("udp", host="127.0.0.1", port=0, type="SOCK_DGRAM", proto="udp")
    sock.bind_and_listen()
    try:
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.sendto(b"ping", ("127.0.0.1", sock.port))
        sender.close()
        sock.setblocking(True)
        sock.settimeout(5)
        assert sock.recv(16) == b"ping"
    finally:
        sock.close()


def test_interface_binds_to_a_device():
    sock = CircusSocket("lo", host="127.0.0.1", port=0, interface="lo")
    try:
        sock.bind_and_listen()
    except PermissionError:
        pytest.skip("SO_BINDTODEVICE needs CAP_NET_RAW here")
    try:
        device = sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16)
        assert device.rstrip(b"\0") == b"lo"
    finally:
        sock.close()
    with pytest.raises(OSError, match="socket nodev: cannot bind"):
        CircusSocket("nodev", host="127.0.0.1", port=0, interface="no-such-dev0").bind_and_listen()


def test_a_bind_error_names_the_resolved_address():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        sock = CircusSocket("web", host="localhost", port=blocker.getsockname()[1])
        with pytest.raises(OSError) as failure:
            sock.bind_and_listen()
        assert str(failure.value) == (
            "socket web: cannot bind 127.0.0.1:%d: [Errno 98] Address already in use"
            % blocker.getsockname()[1])
        assert sock.fileno() == -1
    finally:
        blocker.close()


def test_socket_sections_of_an_ini_file_become_working_sockets(tmp_path):
    from gcircus.config import load_config
    path = str(tmp_path / "u.sock")
    ini = tmp_path / "circus.ini"
    ini.write_text("[circus]\ncheck_delay = 5\n"
                   "[socket:Web]\nhost = 127.0.0.1\nport = 0\nbacklog = 64\nso_reuseport = true\n"
                   "[socket:unix]\npath = %s\numask = 000\nreplace = true\n" % path)
    config = load_config(str(ini))
    sockets = {spec["name"]: CircusSocket.load_from_config(spec) for spec in config["sockets"]}
    assert set(sockets) == {"web", "unix"}                  # names lower-cased, as Circus
    web, unix = sockets["web"], sockets["unix"]
    assert (web.backlog, web.so_reuseport, web.family) == (64, True, socket.AF_INET)
    assert (unix.umask, unix.replace, unix.host, unix.port) == (0, True, None, None)
    for sock in (web, unix):
        sock.bind_and_listen()
    try:
        assert web.port > 0
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o777
    finally:
        web.close()
        unix.close()
    assert not os.path.exists(path)
