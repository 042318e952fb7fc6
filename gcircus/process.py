"""Process: one supervised child.

A Process spawns its child through gcircus.supervision.spawner and learns of its exit from a
gevent child watcher registered before the spawning greenlet can yield, so no exit
is ever missed or polled for. Exit listeners are called from the hub.
"""
import errno
import logging
import os
import signal
import sys
import time

import gevent
from gevent.event import Event

from gcircus.supervision import children_record, cmdline
from gcircus.supervision import spawner

logger = logging.getLogger("gcircus")

RUNNING = 0
DEAD_OR_ZOMBIE = 1
UNEXISTING = 2
OTHER = 3

_NO_SUCH_PROCESS = "No such process (stopped?)"
# Only when a child watcher is impossible (arbiter in a non-main thread's hub).
FALLBACK_POLL_INTERVAL = 0.05


def decode_wait_status(status):
    """Raw wait status -> Circus's exit_code: the exit status, or minus the signal number."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return status


def describe_exit(exit_code):
    """Readable reason for logs (gunicorn style: SIGKILL may well be the OOM killer)."""
    if exit_code is None:
        return "still running"
    if exit_code >= 0:
        return "exited with status %d" % exit_code
    try:
        name = signal.Signals(-exit_code).name
    except ValueError:
        name = "signal %d" % -exit_code
    if -exit_code == signal.SIGKILL:
        return "killed by %s (perhaps out of memory?)" % name
    return "killed by %s" % name


class Process:
    """Wraps one child process.

    The positional signature is the one Circus documents; `name` and the
    pipe/close options are keywords. `sockets` maps socket names to fds for
    `$(circus.sockets.NAME)`; `stdin_fd` is put on the child's fd 0.
    """

    # Slots: a daemon holds one Process per child (thousands must stay cheap); nothing adds attributes.
    __slots__ = ("wid", "name", "cmd", "args", "working_dir", "shell", "shell_args", "uid", "gid", "username",
                 "env", "rlimits", "executable", "use_fds", "watcher", "pipe_stdout", "pipe_stderr",
                 "close_child_stdin", "close_child_stdout", "close_child_stderr", "sockets", "stdin_fd",
                 "die_with_daemon", "variables", "stopping", "killer", "max_age_timer", "started", "ended",
                 "returncode", "_exited", "_exited_event", "_popen", "_exit_watch", "_exit_listeners", "_psproc", "pumps")

    def __init__(self, wid, cmd, args=None, working_dir=None, shell=False, uid=None, gid=None,
                 env=None, rlimits=None, executable=None, use_fds=False, watcher=None, spawn=True,
                 *, name=None, pipe_stdout=True, pipe_stderr=True, close_child_stdin=True,
                 close_child_stdout=False, close_child_stderr=False, shell_args=None,
                 sockets=None, stdin_fd=None, variables=None, die_with_daemon=False):
        self.wid = wid
        self.name = name if name is not None else str(wid)
        self.cmd = cmd
        self.args = args
        self.working_dir = working_dir or _default_working_dir()
        self.shell = shell
        self.shell_args = shell_args
        self.uid = spawner.resolve_uid(uid)
        self.gid = spawner.resolve_gid(gid)
        self.username = spawner.username_of(self.uid) if self.uid is not None else None
        # env and rlimits are the caller's maps, not copies (a watcher gives each of its processes the
        # same two): a spawn copies no dict, and nothing here ever changes them
        self.env = env if env is not None else {}
        self.rlimits = rlimits if rlimits is not None else {}
        self.executable = executable
        self.use_fds = use_fds
        self.watcher = watcher
        self.pipe_stdout = pipe_stdout
        self.pipe_stderr = pipe_stderr
        self.close_child_stdin = close_child_stdin
        self.close_child_stdout = close_child_stdout
        self.close_child_stderr = close_child_stderr
        self.sockets = sockets if sockets is not None else {}
        self.stdin_fd = stdin_fd
        self.die_with_daemon = die_with_daemon     # the kernel kills it when the daemon dies (see spawner)
        # a dict, or a callable giving one: a watcher passes its own method, so no process keeps a
        # copy of the option and environment map it only needs when its argv is built
        self.variables = variables
        self.stopping = False          # set when we asked it to stop: its exit is expected
        self.killer = None             # the greenlet stopping it, once a stop has begun
        self.max_age_timer = None      # the greenlet retiring it at max_age, when max_age is set
        self.started = None
        self.ended = None          # time.time() when its exit was collected
        self.returncode = None
        self._exited = False           # its exit has been collected
        self._exited_event = None      # made for the first waiter only: most processes never have one
        self._popen = None
        self._exit_watch = None
        # tuples: most processes have one listener (their watcher) and no pump (nothing captured), and an
        # empty tuple is shared; a daemon holds one of each per child
        self._exit_listeners = ()
        self._psproc = None
        self.pumps = ()
        if spawn:
            self.spawn()

    # -- lifecycle -----------------------------------------------------------------

    def format_args(self, sockets_fds=None):
        """The argv this process runs (after `$(circus.*)` substitution)."""
        static = cmdline.static_argv(self.cmd, self.args, self.shell, self.shell_args)
        if static is not None:
            return list(static)
        sockets = sockets_fds if sockets_fds is not None else self.sockets
        if cmdline.has_variables(self.cmd, self.args):
            variables = cmdline.build_variables(self.wid, self.env, sockets, self._option_variables())
        else:
            variables = {}      # nothing to substitute: skip building the map on the spawn path
        return cmdline.build_argv(self.cmd, self.args, variables, self.shell, self.shell_args)

    def _option_variables(self):
        source = self.variables() if callable(self.variables) else self.variables
        options = dict(source or {})
        options.update(shell=self.shell, working_dir=self.working_dir, uid=self.uid, gid=self.gid,
                       executable=self.executable, use_fds=self.use_fds)
        return options

    def spawn(self):
        """Start the child; raises gcircus.exc.SpawnError with the reason on failure."""
        child, forked_after, forked_before = start_launch(self.prepare_launch())
        return self.adopt(child, forked_after, forked_before)

    def prepare_launch(self):
        """The spawner's Launch of this process's command with its options (SpawnError when it cannot be made)."""
        if self.close_child_stdin:
            stdin = spawner.DEVNULL
        else:
            stdin = None
        if self.stdin_fd is not None:
            stdin = self.stdin_fd
        pass_fds = list(self.sockets.values()) if self.use_fds else []
        return spawner.prepare(
            self.format_args(), shell=self.shell, executable=self.executable, cwd=self.working_dir,
            env=self.env, uid=self.uid, gid=self.gid, rlimits=self.rlimits, stdin=stdin,
            pipe_stdout=self.pipe_stdout, pipe_stderr=self.pipe_stderr,
            close_child_stdout=self.close_child_stdout, close_child_stderr=self.close_child_stderr,
            pass_fds=pass_fds, die_with_parent=self.die_with_daemon)

    def adopt(self, child, forked_after=0, forked_before=0):
        """Make the started spawner Child this process's; forked_after/forked_before are the boot-clock reads
        around its fork, for the children record (see start_launch). Returns the start time."""
        self._popen = child
        self.started = time.time()
        # No yield may happen between the fork and this registration: an exit reported before the
        # child watcher exists would be lost.
        self._watch_exit()
        record = children_record.current
        if record is not None:
            record.add(child.pid, forked_after, forked_before)
        return self.started

    def _watch_exit(self):
        loop = gevent.get_hub().loop
        try:
            self._exit_watch = loop.child(self.pid)
        except (TypeError, AttributeError):
            # Child watchers exist only on the main thread's default loop.
            self._exit_watch = gevent.spawn(self._poll_exit)
            return
        self._exit_watch.start(self._on_child_event)

    def _on_child_event(self):
        """Hub callback from the child watcher: the kernel reported our child's exit."""
        self._exit_watch.stop()
        self._set_exited(decode_wait_status(self._exit_watch.rstatus))

    def _poll_exit(self):
        """Owned by the Process in non-main-thread hubs; lives until the child exits."""
        while True:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self._set_exited(None)
                return
            if pid:
                self._set_exited(decode_wait_status(status))
                return
            gevent.sleep(FALLBACK_POLL_INTERVAL)

    def _set_exited(self, exit_code):
        self.ended = time.time()
        self.returncode = exit_code
        # the spawner's Child carries the exit code too (a Popen did: code written for it reads it there)
        self._popen.returncode = exit_code if exit_code is not None else 0
        self._psproc = None
        self._exited = True
        if children_record.current is not None:
            children_record.current.exited(self._popen.pid)
        if self._exited_event is not None:
            self._exited_event.set()
        for listener in self._exit_listeners:
            try:
                listener(self)
            except Exception:
                logger.exception("exit listener of process %s failed", self.pid)

    def check_exit(self):
        """Safety net: collect an exit the hub has not reported (never expected to find one)."""
        if self._popen is None or self._exited:
            return
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            if getattr(self._exit_watch, "pending", True):
                return  # the hub's child watcher collected it; its callback is on its way
            # Collected by someone else (libev reaps every child; other code may waitpid):
            # the child is gone and its status with it.
            pid, status = self.pid, None
        if pid:
            logger.warning("process %s: exit found by the safety net, not by the child watcher", self.pid)
            if hasattr(self._exit_watch, "stop"):
                self._exit_watch.stop()
            self._set_exited(decode_wait_status(status) if status is not None else None)

    def exit_pending(self):
        """True when the child has exited but the hub has not delivered the news yet (a busy
        hub runs its child watcher late): the kernel holds it as a zombie, or libev has
        collected it and its callback waits its turn."""
        if self._exited:
            return True
        if getattr(self._exit_watch, "pending", False):
            return True
        try:
            with open("/proc/%d/stat" % self.pid, "rb") as handle:
                stat = handle.read()
        except OSError:
            return True         # gone altogether
        return stat[stat.rfind(b")") + 2:][:1] in (b"Z", b"X")

    def add_exit_listener(self, listener):
        """Call listener(process) from the hub when the child exits (at once if it already has)."""
        self._exit_listeners += (listener,)
        if self._exited:
            listener(self)

    def remove_exit_listener(self, listener):
        if listener in self._exit_listeners:
            index = self._exit_listeners.index(listener)
            self._exit_listeners = self._exit_listeners[:index] + self._exit_listeners[index + 1:]

    def has_exited(self):
        """Whether its exit has been collected."""
        return self._exited

    def wait_exited(self, timeout=None):
        """Wait (on the hub) until its exit is collected; True if it was within timeout."""
        if self._exited:
            return True
        if self._exited_event is None:
            self._exited_event = Event()    # built by its first waiter, on the hub that waits
        return self._exited_event.wait(timeout)

    @property
    def exited(self):
        """An Event set once the exit is collected (built on first use; has_exited and
        wait_exited cost no Event)."""
        if self._exited_event is None:
            self._exited_event = Event()
            if self._exited:
                self._exited_event.set()
        return self._exited_event

    def wait(self, timeout=None):
        """Wait for the exit; returns the exit code, or None on timeout."""
        self.wait_exited(timeout)
        return self.returncode

    def poll(self):
        return self.returncode

    def is_alive(self):
        return self._popen is not None and not self._exited

    # -- signals -------------------------------------------------------------------

    def send_signal(self, sig):
        """Send sig to the process; a process that is already gone is not an error."""
        if not self.is_alive():
            return
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self):
        """Ask the process to terminate (SIGTERM); release its pipes once it has exited."""
        self.send_signal(signal.SIGTERM)
        if not self.pumps:
            self.close_output_channels()

    def close_output_channels(self):
        if self._popen is None:
            return
        for stream in (self._popen.stdout, self._popen.stderr):
            if stream is not None and not stream.closed:
                stream.close()

    def kill_tree(self, sig=signal.SIGKILL):
        """Signal the process, its process group and every descendant (escalation path)."""
        pids = self.children(recursive=True)
        self.send_signal(sig)
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in pids:
            _signal_pid(pid, sig)
        return pids

    # -- introspection ---------------------------------------------------------------

    def program(self):
        """The first word of the program it runs, from the command line it was spawned with (its exec
        wrappers left out): what its own shows once readable; None before the spawn."""
        if self._popen is None:
            return None
        argv = spawner.program_argv(list(self._popen.args))
        words = argv[0].split() if argv else []
        return os.path.basename(words[0]) if words else None

    @property
    def pid(self):
        return self._popen.pid if self._popen is not None else None

    @property
    def stdout(self):
        return self._popen.stdout if self._popen is not None else None

    @property
    def stderr(self):
        return self._popen.stderr if self._popen is not None else None

    def _psutil(self):
        import psutil     # here, not at the top: a daemon that never asks for process details never loads it
        if not self.is_alive():
            raise psutil.NoSuchProcess(self.pid)
        if self._psproc is None:
            self._psproc = psutil.Process(self.pid)
        return self._psproc

    def age(self):
        """Seconds it has run (up to its exit once it has exited)."""
        if not self.started:
            return 0
        return (self.ended or time.time()) - self.started

    def info(self):
        """Circus's info dict, or the string 'No such process (stopped?)' once it is gone."""
        import psutil
        from gcircus.supervision.procinfo import get_info
        try:
            info = get_info(self._psutil())
        except psutil.NoSuchProcess:
            return _NO_SUCH_PROCESS
        if info["cmdline"] == "N/A":
            info["cmdline"] = self.program() or "N/A"   # read in the middle of an exec: what it runs next
        info["age"] = self.age()
        info["started"] = self.started
        info["children"] = []
        for child in self._children_processes():
            try:
                info["children"].append(get_info(child))
            except psutil.NoSuchProcess:
                continue
        info["wid"] = self.wid
        return info

    def _children_processes(self, recursive=False):
        import psutil
        try:
            return self._psutil().children(recursive=recursive)
        except psutil.NoSuchProcess:
            return []

    def children(self, recursive=False):
        return [child.pid for child in self._children_processes(recursive)]

    def is_child(self, pid):
        return pid in self.children()

    def send_signal_child(self, pid, signum):
        """Signal one direct child; psutil.NoSuchProcess if pid is not one."""
        if pid not in self.children():
            import psutil
            raise psutil.NoSuchProcess(pid)
        os.kill(pid, signum)

    def send_signal_children(self, signum, recursive=False):
        for pid in self.children(recursive):
            _signal_pid(pid, signum)

    @property
    def status(self):
        """RUNNING, DEAD_OR_ZOMBIE, UNEXISTING or OTHER, as Circus reports it."""
        import psutil
        try:
            state = self._psutil().status()
        except psutil.NoSuchProcess:
            return UNEXISTING
        if state in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return DEAD_OR_ZOMBIE
        if state in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP):
            return OTHER
        return RUNNING

    def __lt__(self, other):
        return (self.started or 0) < (other.started or 0)

    def __gt__(self, other):
        return (self.started or 0) > (other.started or 0)

    def __repr__(self):
        return "<Process %s pid=%s wid=%s>" % (self.name, self.pid, self.wid)


_sigchld_installed = False


def start_launch(launch, hand_over_cpu=False):
    """Fork and exec a spawner Launch for a Process: (child, forked_after, forked_before), the last two the
    boot-clock reads around the fork that gcircusd's children record keeps (0 without a record); SpawnError on
    failure. The hub's SIGCHLD handling is installed first: a child that exits before it would go unreported.
    hand_over_cpu: see spawner.Launch.start."""
    _install_sigchld_handler()
    record = children_record.current     # gcircusd's: a restart after a crash stops what it lists
    forked_after = children_record.boot_clock() if record is not None else 0
    child = spawner.start(launch, hand_over_cpu)
    forked_before = children_record.boot_clock() if record is not None else 0
    return child, forked_after, forked_before


def _install_sigchld_handler():
    """gevent installs libev's SIGCHLD handler lazily, at the first child watcher: a child
    that exits before that is never reported. Install it once, before the first fork."""
    global _sigchld_installed
    if _sigchld_installed:
        return
    loop = gevent.get_hub().loop
    if getattr(loop, "default", False) and hasattr(loop, "install_sigchld"):
        loop.install_sigchld()
        _sigchld_installed = True


def _signal_pid(pid, sig):
    try:
        os.kill(pid, sig)
    except OSError as error:
        if error.errno != errno.ESRCH:
            raise


def _default_working_dir():
    """$PWD when it names the current directory (keeps symlinked paths), else getcwd(). Interned: every
    process of a daemon shares the one string rather than hold a copy each."""
    cwd = os.getcwd()
    pwd_env = os.environ.get("PWD")
    try:
        if pwd_env and os.path.samefile(pwd_env, cwd):
            return sys.intern(pwd_env)
    except OSError:
        pass
    return sys.intern(cwd)
