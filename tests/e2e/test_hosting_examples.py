"""The hosting examples run as their engines would run them: examples/systemd (the unit
files parsed, ExecStart run under a fake NOTIFY_SOCKET with the .socket unit's socket
passed in), examples/docker (ENTRYPOINT run with --subreaper standing in for PID 1, with
an orphan-making child, and its HEALTHCHECK) and examples/kubernetes (its probes)."""
import configparser
import json
import os
import re
import shlex
import shutil
import signal
import socket
import urllib.request

import psutil

from tests.conftest import child_cmd
from tests.e2e.conftest import run_gcircusctl
from tests.e2e.daemon_support import Daemon
from tests.fixtures.systemd import FakeNotifySocket, activation_wrapper
from tests.support.wait import wait_until

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "examples")


def unit_file(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str
    parser.read(os.path.join(EXAMPLES, "systemd", name))
    return parser


def gcircusctl_argv(argv):
    """An example's gcircusctl command line -> (its arguments, for run_gcircusctl)."""
    assert os.path.basename(argv[0]) == "gcircusctl", argv
    return argv[1:]


def rooted(text, root, paths):
    """text with the image's absolute paths moved under root."""
    for path in paths:
        text = text.replace(path, root + path)
    return text


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_systemd_service_and_socket_units(workdir):
    service, socket_unit = unit_file("gcircus.service"), unit_file("gcircus-web.socket")
    assert service["Service"]["Type"] == "notify" and service["Service"]["KillMode"] == "mixed"
    assert socket_unit["Socket"]["Service"] == "gcircus.service"
    name = socket_unit["Socket"]["FileDescriptorName"]
    host, port = socket_unit["Socket"]["ListenStream"].rsplit(":", 1)
    assert (host, port) == ("0.0.0.0", "80")
    listener = socket.socket()                  # systemd's socket; a free loopback port here
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    paths = ("/run/gcircus",)
    with open(os.path.join(EXAMPLES, "systemd", "gcircus.ini")) as handle:
        config = rooted(handle.read(), workdir, paths).replace(
            "/opt/app/web_worker.py", os.path.abspath(os.path.join(EXAMPLES, "web_worker.py")))
    os.makedirs(workdir + "/run/gcircus")
    config_path = os.path.join(workdir, "gcircus.ini")
    with open(config_path, "w") as handle:
        handle.write(config)
    exec_start = shlex.split(service["Service"]["ExecStart"])
    assert os.path.basename(exec_start[0]) == "gcircusd" and exec_start[-1] == "/etc/gcircus/gcircus.ini"
    notify = FakeNotifySocket(workdir)
    watchdog_usec = int(service["Service"]["WatchdogSec"]) * 1000000
    env = dict(os.environ, PYTHONUNBUFFERED="1", NOTIFY_SOCKET=notify.value, WATCHDOG_USEC=str(watchdog_usec))
    daemon = Daemon(config_path, *exec_start[1:-1], env=env, wrapper=activation_wrapper({listener.fileno(): name}),
                    pass_fds=[listener.fileno()])
    try:
        ready = notify.wait_for("READY=1")[-1]
        assert "STATUS=1 watchers: 1 active; 2 processes" in ready
        if ["WATCHDOG=1"] not in notify.received:       # the first ping goes out at start: no 15 s wait
            notify.wait_for("WATCHDOG=1", timeout=5, ignore=())
        reply = urllib.request.urlopen("http://127.0.0.1:%d/" % listener.getsockname()[1], timeout=10).read()
        assert reply.startswith(b"hello from worker")
        reload_argv = shlex.split(rooted(service["Service"]["ExecReload"], workdir, paths))
        assert run_gcircusctl(*gcircusctl_argv(reload_argv)).code == 0
        notify.wait_for("RELOADING=1")
        notify.wait_for("READY=1")
        assert daemon.stop(signal.SIGTERM) == 0             # KillMode=mixed: SIGTERM to gcircusd only
        notify.wait_for("STOPPING=1")
        assert "cannot bind" not in daemon.text()           # port 80 of the ini was never bound
    finally:
        daemon.kill()
        notify.close()
        listener.close()


def dockerfile():
    with open(os.path.join(EXAMPLES, "docker", "Dockerfile")) as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith("#")]


def start_container_example(workdir, daemons):
    """Lay out the image's files under workdir as its COPY/RUN lines do, add an orphan-making
    watcher, and run the ENTRYPOINT with --subreaper (what being PID 1 gives gcircusd)."""
    lines = dockerfile()
    paths = ("/app", "/etc/gcircus", "/run/gcircus")
    for line in lines:
        words = line.split()
        if words[0] == "COPY" and words[1] != ".":
            target = rooted(words[-1], workdir, paths)
            os.makedirs(target if target.endswith("/") else os.path.dirname(target), exist_ok=True)
            for source in words[1:-1]:
                shutil.copy(os.path.join(EXAMPLES, os.pardir, source), target)
        elif words[:3] == ["RUN", "mkdir", "-p"]:
            os.makedirs(rooted(words[3], workdir, paths))
    entrypoint = json.loads(next(line for line in lines if line.startswith("ENTRYPOINT"))[len("ENTRYPOINT"):])
    assert entrypoint[0] == "gcircusd" and entrypoint[-1] == "/etc/gcircus/gcircus.ini"
    config_path = rooted(entrypoint[-1], workdir, paths)
    with open(config_path) as handle:
        config = rooted(handle.read(), workdir, paths).replace("port = 8080", "port = %d" % free_port())
    with open(config_path, "w") as handle:
        handle.write(config + "\n[watcher:orphans]\ncmd = %s 100\n" % child_cmd("orphan_maker"))
    daemon = daemons(config_path, "--subreaper", *entrypoint[1:-1])
    daemon.wait_for("Arbiter now waiting for commands")
    return daemon, lines, paths


def test_docker_image_runs_gcircusd_as_pid_1(workdir, daemons):
    daemon, lines, paths = start_container_example(workdir, daemons)
    daemon.wait_for("adopted", count=100)            # 100 grandchildren orphaned, adopted, exited
    wait_until(lambda: _zombies_and_children(daemon) == (0, 4), 20, "every orphan to be collected",
               detail=lambda: _zombies_and_children(daemon))
    healthcheck = next(line for line in lines if line.startswith("HEALTHCHECK"))
    probe = json.loads(healthcheck[healthcheck.index("CMD") + 3:])
    assert run_gcircusctl(*gcircusctl_argv(rooted_argv(probe, workdir, paths))).code == 0
    assert daemon.stop(signal.SIGTERM) == 0          # docker stop
    log = [json.loads(line) for line in daemon.output if line.startswith("{")]
    assert log and all({"time", "level", "logger", "message"} <= set(entry) for entry in log)


def test_kubernetes_probes(workdir, daemons):
    daemon, _, paths = start_container_example(workdir, daemons)
    with open(os.path.join(EXAMPLES, "kubernetes", "pod.yaml")) as handle:
        probes = [json.loads(match) for match in re.findall(r"command: (\[.*\])", handle.read())]
    assert len(probes) == 2
    for probe in probes:
        result = run_gcircusctl(*gcircusctl_argv(rooted_argv(probe, workdir, paths)))
        assert (result.code, result.out) == (0, "healthy")
    assert daemon.stop(signal.SIGTERM) == 0


def rooted_argv(argv, root, paths):
    return [rooted(word, root, paths) for word in argv]


def _zombies_and_children(daemon):
    """(zombies among the daemon's children, how many children it has)."""
    try:
        children = psutil.Process(daemon.proc.pid).children()
    except psutil.NoSuchProcess:
        return None
    zombies = 0
    for child in children:
        try:
            zombies += child.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            pass
    return zombies, len(children)


def test_readme_links_every_hosting_example():
    with open(os.path.join(EXAMPLES, os.pardir, "README.md")) as handle:
        readme = handle.read()
    for example in ("systemd/gcircus.service", "systemd/gcircus-web.socket", "docker/Dockerfile",
                    "kubernetes/pod.yaml"):
        assert "(examples/%s)" % example in readme
        assert os.path.exists(os.path.join(EXAMPLES, example))
    assert os.path.exists(os.path.join(EXAMPLES, os.pardir, "docs", "hosting.md"))
