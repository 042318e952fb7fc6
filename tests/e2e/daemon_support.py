"""Running a real gcircusd in tests: write a config, start it, wait for its log lines."""
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time

import psutil

from gcircus.supervision import spawner
from tests.support.wait import wait_in_thread

READY = "Arbiter now waiting for commands"


def short_tmpdir():
    """ipc:// paths must stay short (108 bytes): a fresh dir under /tmp."""
    return tempfile.mkdtemp(prefix="gc-", dir="/tmp")


def wait_for_file(path, predicate, timeout=20):
    """Wait until predicate(file text) holds: a child writes the file on its own schedule,
    and no event tells us when (the file may not even exist yet)."""
    last = [None]

    def reached():
        try:
            with open(path) as handle:
                last[0] = handle.read()
        except FileNotFoundError:
            last[0] = None
        return last[0] if last[0] is not None and predicate(last[0]) else None

    return wait_in_thread(reached, timeout, "%s to reach the expected content" % path,
                          detail=lambda: "last read: %r" % (last[0],))


class Program:
    """A subprocess whose merged stdout/stderr is read line by line with deadlines."""

    def __init__(self, command, env=None, cwd=None, pass_fds=()):
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd,
                                     env=env or dict(os.environ, PYTHONUNBUFFERED="1"), pass_fds=pass_fds)
        self.output = []
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self._buffer = b""

    def _read_some(self, timeout):
        if not self._selector.select(timeout):
            return False
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            return None
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        self.output.extend(line.decode("utf-8", "replace") for line in lines)
        return True

    def wait_for(self, text, timeout=20, count=1):
        """Wait for `count` output lines containing text; AssertionError with the output on failure."""
        deadline = time.monotonic() + timeout
        while sum(text in line for line in self.output) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._read_some(remaining) is None:
                raise AssertionError("%s never printed %r (%d times); output:\n%s"
                                     % (self.proc.args[-1], text, count, self.text()))
        return True

    def drain(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read_some(deadline - time.monotonic()) is not None:
            pass
        return self.text()

    def text(self):
        return "\n".join(self.output + [self._buffer.decode("utf-8", "replace")])

    def children(self, timeout=10):
        return settled_children(self.proc.pid, timeout)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal the daemon and return its exit code once it has exited."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.drain(1)
        return code

    def kill(self):
        if self.proc.poll() is None:
            children = self.children()
            own_before = {child.pid for child in psutil.Process().children()}
            self.proc.kill()          # first, or it would replace the children killed below
            self.proc.wait(10)
            # Its processes outlive it (unless die_with_daemon), re-parented to us (tests run as a subreaper), and
            # so does one it was still spawning, not listed above.
            orphans = [child for child in psutil.Process().children() if child.pid not in own_before]
            for child in children + orphans:
                try:
                    child.kill()
                except psutil.NoSuchProcess:
                    pass
        self._selector.close()
        self.proc.stdout.close()


def settled_children(pid, timeout=10):
    """The descendants of process pid, once none is still on its way to its own program: a process is
    spawned through exec wrappers (setpriv, prlimit) and runs its program one exec later, with no event
    to wait on. Before its first exec it shows the daemon's own command line (vfork shares its memory),
    and an exec in progress can show an empty one."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            daemon = psutil.Process(pid)
            daemon_cmdline = daemon.cmdline()
            children = daemon.children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        if not any(_on_its_way(child, pid, daemon_cmdline) for child in children) or time.monotonic() > deadline:
            return children
        time.sleep(0.01)


def _on_its_way(process, daemon_pid, daemon_cmdline):
    """Whether process has not reached its own program yet (a zombie has: it is reported as it is)."""
    try:
        cmdline = process.cmdline()
        if not cmdline:
            return process.status() != psutil.STATUS_ZOMBIE
        if cmdline[:1] in ([spawner.SETPRIV], [spawner.PRLIMIT]):
            return True
        # a child of the daemon not exec'd yet; deeper descendants may run their parent's command line
        return process.ppid() == daemon_pid and cmdline == daemon_cmdline
    except psutil.Error:
        return False        # gone: nothing to wait for


class Daemon(Program):
    """A gcircusd subprocess."""

    def __init__(self, config_path, *args, env=None, wrapper=(), pass_fds=()):
        """wrapper: a command that runs gcircusd's command line (socket activation);
        pass_fds: fds it inherits."""
        super().__init__(list(wrapper) + [sys.executable, "-m", "gcircus.cli.gcircusd", config_path] + list(args),
                         env, pass_fds=pass_fds)


def write_config(directory, body, name="gcircus.ini", circus_extra=""):
    """A config with ipc endpoints in directory (and circus_extra lines in [circus]), then body;
    returns (path, endpoint)."""
    endpoint = "ipc://%s/ctl.sock" % directory
    # circus_extra comes first: a key repeated in a section keeps its first value
    header = "[circus]\n%sendpoint = %s\npubsub_endpoint = ipc://%s/pub.sock\ncheck_delay = 5\n" % (
        circus_extra, endpoint, directory)
    path = os.path.join(directory, name)
    with open(path, "w") as handle:
        handle.write(header + body)
    return path, endpoint


def call(endpoint, command, timeout=10, **properties):
    """One command through the client; a request sent before the daemon binds waits for it."""
    from gcircus.client import CircusClient
    client = CircusClient(endpoint=endpoint, timeout=timeout)
    try:
        return client.call({"command": command, "properties": properties})
    finally:
        client.stop()


def wait_answering(endpoint, log=None, timeout=20):
    """Wait until a daemon (maybe detached, no output to read) answers on endpoint; the
    reply is the readiness signal. AssertionError with the daemon's log file otherwise."""
    try:
        return call(endpoint, "numwatchers", timeout=timeout)
    except Exception as error:
        text = ""
        if log is not None and os.path.exists(log):
            with open(log) as handle:
                text = handle.read()
        raise AssertionError("daemon on %s never answered (%s); log: %s" % (endpoint, error, text)) from error


def end_process(pid, timeout=30):
    """SIGTERM a daemon we do not hold a Popen for (it detached) and wait for it to go."""
    try:
        process = psutil.Process(pid)
        process.terminate()
        process.wait(timeout)
    except psutil.NoSuchProcess:
        pass
