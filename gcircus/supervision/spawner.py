"""Creating one child process, fast.

Calls the stdlib's C helper behind subprocess.Popen, `_posixsubprocess.fork_exec`,
directly: it forks with vfork and runs no Python in the child (several times faster
than a Python fork), and calling it ourselves skips Popen's Python wrapper (argument
checks, handle juggling, a fresh /dev/null per spawn: a sizeable share of a respawn)
and its per-child object. Exec failures come back through the same error pipe as in
Popen, raised as the same OSError. Everything a child needs is expressed as fork_exec
arguments (cwd, env, session, uid/gid/groups, fds). Two things cannot be, so they go through util-linux exec
wrappers (same pid, still no Python in the child): rlimits through `prlimit`, and
the parent-death signal through `setpriv --pdeathsig KILL` (die_with_daemon: the
child is SIGKILLed by the kernel when the daemon's spawning thread ends, SIGKILL of
the daemon included). The spawn returns once the wrapper is exec'd, so the spawning
cost is unchanged; the child reaches its own program one exec later. Only
when a wrapper is missing, or `executable` must rename argv[0], do we fall back to
a preexec_fn (slow path: no vfork).

The parent-death signal survives the uid/gid switch (Popen switches before the
wrapper runs; the kernel clears the signal only on a credential change or the exec
of a set-user-ID or file-capability program, which is the documented limit). It is
the child's alone: grandchildren are its business, as they are when it is killed.
"""
import builtins
import grp
import io
import os
import pwd
import resource
import signal
import sys
import types

# The C helper's argument list is private and changes between versions: this call is written for the one
# Python 3.11 introduced (process_group and allow_vfork), which later versions kept; setup.cfg asks for 3.11+.
from _posixsubprocess import fork_exec as _fork_exec

from gcircus.exc import SpawnError

# subprocess's PIPE and DEVNULL (callers may pass either module's): subprocess itself (~120 KiB of module) is
# imported only on the failure path that raises its SubprocessError.
PIPE = -1
DEVNULL = -3


def _unpatched_module(module):
    """module with gevent's monkey-patched functions put back: a patched os.close defers the close to the
    hub's next loop turn, and the spawn closes the child's ends of its pipes and then blocks reading the
    exec-status pipe: with a deferred close that read would never end. An application may patch after
    importing us, so the originals are taken from gevent's record."""
    from gevent import monkey
    copy = types.ModuleType(module.__name__)
    copy.__dict__.update(vars(module))
    copy.__dict__.update(monkey.saved.get(module.__name__, {}))
    return copy


def find_program(name, search_path=None):
    """shutil.which for a bare program name: the first executable file `name` in search_path's
    directories (the daemon's PATH by default), None when there is none. Not shutil's own: shutil
    imports the archive modules (bz2, lzma, zlib) with it, memory a daemon would hold for this only."""
    if search_path is None:
        search_path = os.environ.get("PATH", os.defpath)
    if not search_path:
        return None
    for directory in search_path.split(os.pathsep):
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


_os = _unpatched_module(os)
PRLIMIT = find_program("prlimit")
SETPRIV = find_program("setpriv")
PR_SET_PDEATHSIG = 1
# Programs found on a PATH: the check that an exec wrapper would otherwise hide ENOENT costs a PATH scan
# (~40 us) per spawn; a program found once is taken as still there (if it is not, the wrapper says so).
_FOUND = set()
_RESOLVED = {}     # (program, daemon PATH) -> its path (None: the child finds it), see resolve_program


def resolve_uid(uid):
    """uid as int from a name, a numeric string or an int; None stays None."""
    if uid is None or uid == "":
        return None
    if isinstance(uid, int) or str(uid).isdigit():
        return int(uid)
    try:
        return pwd.getpwnam(uid).pw_uid
    except KeyError:
        raise ValueError("unknown user %r" % uid) from None


def resolve_gid(gid):
    """gid as int from a name, a numeric string or an int; None stays None."""
    if gid is None or gid == "":
        return None
    if isinstance(gid, int) or str(gid).isdigit():
        return int(gid)
    try:
        return grp.getgrnam(gid).gr_gid
    except KeyError:
        raise ValueError("unknown group %r" % gid) from None


def username_of(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def resolve_rlimits(rlimits):
    """[(name, RLIMIT_ constant, value)] for a name->value mapping; ValueError on unknown names."""
    resolved = []
    for name, value in (rlimits or {}).items():
        constant = getattr(resource, "RLIMIT_" + str(name).upper(), None)
        if constant is None:
            raise ValueError("unknown rlimit %r" % name)
        value = int(value)
        if value < 0:
            value = resource.RLIM_INFINITY
        if constant == resource.RLIMIT_NOFILE and value == resource.RLIM_INFINITY:
            # The kernel refuses an infinite NOFILE; the hard limit is the most we can get.
            value = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resolved.append((str(name).lower(), constant, value))
    return resolved


def _prlimit_prefix(limits):
    prefix = [PRLIMIT]
    for name, _constant, value in limits:
        text = "unlimited" if value == resource.RLIM_INFINITY else str(value)
        prefix.append("--%s=%s:%s" % (name, text, text))
    return prefix + ["--"]


def _setpriv_prefix():
    return [SETPRIV, "--pdeathsig", "KILL", "--"]


def _preexec_setting(limits, die_with_parent):
    """The slow path's preparation of the child: rlimits, then the parent-death signal."""
    import ctypes   # the slow path's alone: a daemon whose spawns all take the exec wrappers never loads it
    parent = os.getpid()
    prctl = ctypes.CDLL(None, use_errno=True).prctl if die_with_parent else None   # loaded here, not in the child

    def prepare_child():
        for _name, constant, value in limits:
            resource.setrlimit(constant, (value, value))
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            if os.getppid() != parent:      # the daemon died before the prctl: die now as it would have made us
                os._exit(1)
    return prepare_child


def resolve_program(program, env):
    """The path of a bare program name found on the daemon's PATH when the child's environment has
    no PATH of its own (Circus's default: children get an empty environment) and the child's own
    lookup (the OS default path, /bin:/usr/bin) would miss it or find another file; else None.

    Without it `python worker.py` would miss the interpreter of the virtualenv the daemon runs
    from. The child's environment is not changed, nor its argv when its own lookup finds the same."""
    if os.sep in program or env is None or "PATH" in env:
        return None
    key = (program, os.environ.get("PATH", os.defpath))
    if key in _RESOLVED:
        return _RESOLVED[key]
    path = find_program(program, key[1])
    if path is None:
        return None
    own = find_program(program, os.defpath)
    if own is not None and os.path.realpath(own) == os.path.realpath(path):
        path = None
    _RESOLVED[key] = path           # a spawn path must stay cheap: each name is searched once
    return path


def _check_binary(program, env, cwd):
    """Fail in the parent, with a clear message, when an exec wrapper would hide ENOENT."""
    if os.sep in program:
        path = program if os.path.isabs(program) else os.path.join(cwd or os.getcwd(), program)
        found = os.access(path, os.X_OK) and not os.path.isdir(path)
    else:
        search_path = (env or {}).get("PATH", os.defpath)
        found = (program, search_path) in _FOUND or find_program(program, search_path) is not None
        if found:
            _FOUND.add((program, search_path))
    if not found:
        raise FileNotFoundError(2, "No such file or directory", program)


def _identity(uid, gid):
    """(uid, gid, groups) for fork_exec, each None when nothing changes (None everywhere keeps vfork)."""
    new_uid = new_gid = groups = None
    if uid is not None and uid != os.geteuid():
        new_uid = uid
        if gid is None:
            gid = pwd.getpwuid(uid).pw_gid
        name = username_of(uid)
        if name is not None:
            groups = os.getgrouplist(name, gid)
    if gid is not None and (gid != os.getegid() or new_uid is not None):
        new_gid = gid
    return new_uid, new_gid, groups


class Child:
    """A started child: its pid, the argv it was started with (exec wrappers included, as Popen's args), the
    read ends of its output pipes (binary files, None when not piped, as Popen's), and its returncode once the
    owner has collected its exit (the owner sets it)."""

    __slots__ = ("pid", "args", "stdout", "stderr", "returncode")

    def __init__(self, pid, args, stdout, stderr):
        self.pid = pid
        self.args = args
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = None


_devnull = None     # one /dev/null descriptor for every child's closed stdin/stdout/stderr (fork_exec dups it)
_EXEC_PATHS = {}    # (program, PATH) -> the paths the child tries, as os.execvpe would


def _null_fd():
    global _devnull
    if _devnull is None:
        _devnull = _os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    return _devnull


def _executable_list(program, env):
    program = os.fsencode(program)
    if os.path.dirname(program):
        return (program,)
    search = (os.environ if env is None else env).get("PATH", os.defpath)      # as os.get_exec_path
    key = (program, search)
    found = _EXEC_PATHS.get(key)
    if found is None:
        found = _EXEC_PATHS[key] = tuple(os.path.join(os.fsencode(directory), program)
                                         for directory in os.get_exec_path({"PATH": search}))
    return found


def _env_list(env):
    if env is None:
        return None         # the child inherits the daemon's environment
    entries = []
    for key, value in env.items():
        key = os.fsencode(key)
        if b"=" in key:
            raise ValueError("illegal environment variable name %r" % key)
        entries.append(key + b"=" + os.fsencode(value))
    return entries


def _raise_child_error(data, cwd, program):
    """The exception the child reported through the error pipe (`name:hex errno:message`), as Popen raises it."""
    from subprocess import SubprocessError
    try:
        name, hex_errno, message = bytes(data).split(b":", 2)
        message = message.decode()
    except ValueError:
        raise SubprocessError("bad exception data from the child: %r" % bytes(data)) from None
    exception_type = getattr(builtins, name.decode("ascii", "replace"), SubprocessError)
    if not (isinstance(exception_type, type) and issubclass(exception_type, BaseException)):
        exception_type = SubprocessError
    if issubclass(exception_type, OSError) and hex_errno:
        number = int(hex_errno, 16)
        filename = cwd if message == "noexec" else program     # "noexec": the chdir failed, not the exec
        raise exception_type(number, os.strerror(number) if number else "", filename)
    raise exception_type(message)


def _pipe_or(setting):
    """(parent end, child end) for an output setting: PIPE, DEVNULL or None (inherit)."""
    if setting == PIPE:
        return _os.pipe()
    if setting == DEVNULL:
        return -1, _null_fd()
    return -1, -1


class Launch:
    """Everything one spawn hands the C helper, worked out once: start() forks and execs it.

    A launch can be started any number of times: a watcher prepares the launch of its next replacement right
    after a spawn, so that on the next exit the fork is the first thing done, with no argument to convert."""

    __slots__ = ("argv", "program", "executables", "cwd", "env_entries", "stdin_fd", "stdout", "stderr",
                 "keep", "uid", "gid", "groups", "preexec_fn", "checked_program", "env", "command")

    def __init__(self, argv, executable=None, cwd=None, env=None, stdin=None, stdout=None, stderr=None,
                 pass_fds=(), uid=None, gid=None, groups=None, preexec_fn=None):
        self.argv = argv
        self.program = executable if executable is not None else argv[0]
        self.executables = _executable_list(self.program, env)
        self.cwd = cwd
        self.env = env
        self.env_entries = _env_list(env)
        self.stdin_fd = _null_fd() if stdin == DEVNULL else (-1 if stdin is None else stdin)
        self.stdout = stdout
        self.stderr = stderr
        self.keep = tuple(sorted(set(map(int, pass_fds))))
        self.uid = uid
        self.gid = gid
        self.groups = groups
        self.preexec_fn = preexec_fn
        self.checked_program = None     # behind an exec wrapper: checked at each start (see prepare)
        self.command = argv             # the command as its owner gave it (no shell, no wrapper): for messages

    def start(self, hand_over_cpu=False):
        """Fork and exec; returns the Child. OSError as Popen raises it (the child's exec error included).

        hand_over_cpu: yield the CPU as soon as the fork returns. The kernel resumes us from vfork while the child
        is still inside execve, and when both are on one CPU we preempt it there: the new program then waits for
        whatever we do next before it gets to run (traced on this 2-core VM: a child's exec finished ~0.2 ms
        later than with the yield, in about a third of the respawns). A yield with nothing else to run on our
        CPU returns at once. For a lone spawn whose latency counts, not for bursts: every yield can lend the CPU
        for a scheduler slice."""
        if self.checked_program is not None:
            _check_binary(self.checked_program, self.env, self.cwd)
        sys.audit("subprocess.Popen", self.program, self.argv, self.cwd, self.env)
        opened = []
        try:
            out_read, out_write = _pipe_or(self.stdout)
            if self.stdout == PIPE:
                opened += [out_read, out_write]
            err_read, err_write = _pipe_or(self.stderr)
            if self.stderr == PIPE:
                opened += [err_read, err_write]
            status_read, status_write = _os.pipe()
            opened += [status_read, status_write]
            while status_write < 3:         # the child's 0-2 are taken by the std streams
                status_write = _os.dup(status_write)
                opened.append(status_write)
            keep = self.keep
            keep = tuple(sorted(keep + (status_write,))) if keep else (status_write,)
            pid = _fork_exec(self.argv, self.executables, True, keep, self.cwd, self.env_entries, self.stdin_fd,
                             -1, out_read, out_write, err_read, err_write, status_read, status_write, True, True,
                             -1, self.gid, self.groups, self.uid, -1, self.preexec_fn, True)
        except BaseException:
            for fd in opened:
                _os.close(fd)
            raise
        if hand_over_cpu:
            _os.sched_yield()
        for fd in opened:
            if fd not in (out_read, err_read, status_read):
                _os.close(fd)           # the child's ends, and the write end of the status pipe
        data = bytearray()
        try:
            while True:                 # EOF once the exec succeeded (the child's end is close-on-exec)
                part = _os.read(status_read, 50000)
                data += part
                if not part or len(data) > 50000:
                    break
        finally:
            _os.close(status_read)
        if data:
            for fd in (out_read, err_read):
                if fd != -1:
                    _os.close(fd)
            try:
                _os.waitpid(pid, 0)     # the child that failed to exec, collected here
            except ChildProcessError:
                pass                    # the hub's SIGCHLD handling took it first
            _raise_child_error(data, self.cwd, self.program)
        return Child(pid, self.argv, io.open(out_read, "rb", -1) if out_read != -1 else None,
                     io.open(err_read, "rb", -1) if err_read != -1 else None)


def fork_exec(argv, executable=None, cwd=None, env=None, stdin=None, stdout=None, stderr=None, pass_fds=(),
              uid=None, gid=None, groups=None, preexec_fn=None):
    """Start argv in a new session with every other fd closed; returns a Child. OSError as Popen raises it."""
    return Launch(argv, executable, cwd, env, stdin, stdout, stderr, pass_fds, uid, gid, groups, preexec_fn).start()


def _output(pipe, close):
    if close:
        return DEVNULL
    return PIPE if pipe else None     # None: the child inherits the daemon's


def spawn(argv, **options):
    """Start argv and return its Child; raise SpawnError naming the command on failure (see prepare)."""
    return start(prepare(argv, **options))


def start(launch, hand_over_cpu=False):
    """launch.start(hand_over_cpu), with a failure raised as SpawnError naming the command."""
    try:
        return launch.start(hand_over_cpu)
    except spawn_failures() as error:      # evaluated only when something was raised
        raise SpawnError("cannot spawn %r: %s" % (" ".join(map(str, launch.command)), error)) from error


def prepare(argv, *, shell=False, executable=None, cwd=None, env=None, uid=None, gid=None,
            rlimits=None, stdin=None, pipe_stdout=True, pipe_stderr=True,
            close_child_stdout=False, close_child_stderr=False, pass_fds=(), die_with_parent=False):
    """The Launch of argv, to start now or later; SpawnError naming the command when it cannot be made.

    stdin: None inherits, DEVNULL closes, an int fd is dup'ed on fd 0.
    The child always gets its own session (setsid) so signals can target its group.
    die_with_parent: the kernel SIGKILLs the child when the calling thread ends (the daemon dies).
    """
    limits = resolve_rlimits(rlimits)          # an unknown name or user: ValueError/KeyError, as given
    new_uid, new_gid, groups = _identity(uid, gid)
    try:
        # close_child_* wins over a pipe (as Circus): the output goes to /dev/null whatever the stream
        kwargs = dict(cwd=cwd, env=env, stdin=stdin, pass_fds=pass_fds, uid=new_uid, gid=new_gid, groups=groups,
                      stdout=_output(pipe_stdout, close_child_stdout),
                      stderr=_output(pipe_stderr, close_child_stderr))
        program_argv = list(argv)
        if shell:
            program_argv = ["/bin/sh", "-c"] + program_argv
        resolved = None
        if not shell and executable is None and program_argv:
            resolved = resolve_program(program_argv[0], env)
        wrapped = bool(limits) or die_with_parent
        wrappers_missing = (limits and not PRLIMIT) or (die_with_parent and not SETPRIV)
        if not program_argv:
            raise ValueError("empty command")
        if wrapped and (executable is not None or wrappers_missing):
            kwargs["preexec_fn"] = _preexec_setting(limits, die_with_parent)
            wrapped = False     # the child prepares itself: no exec wrapper
        if wrapped:
            if resolved is not None:        # the wrappers exec argv[0] themselves, with the child's PATH
                program_argv[0] = resolved
            prefix = (_setpriv_prefix() if die_with_parent else []) + (_prlimit_prefix(limits) if limits else [])
            launch = Launch(prefix + program_argv, **kwargs)
            # the wrapper's exec would succeed and hide a missing program: start() checks it in the parent
            launch.checked_program = program_argv[0]
        else:
            launch = Launch(program_argv, executable=executable or resolved, **kwargs)
        launch.command = argv
        return launch
    except (OSError, ValueError) as error:
        raise SpawnError("cannot spawn %r: %s" % (" ".join(map(str, argv)), error)) from error


def spawn_failures():
    """What a failed spawn raises: OSError, ValueError, and subprocess's SubprocessError when a child reported
    one (which imported subprocess: without it, no SubprocessError can have been raised)."""
    subprocess = sys.modules.get("subprocess")
    return (OSError, ValueError) if subprocess is None else (OSError, ValueError, subprocess.SubprocessError)


def program_argv(argv):
    """The command line of the program a child runs, its exec wrappers (setpriv, prlimit) stripped: until they
    have exec'd it (a millisecond or so after the spawn), the child shows theirs."""
    while argv and argv[0] in (SETPRIV, PRLIMIT) and "--" in argv:
        argv = argv[argv.index("--") + 1:]
    return argv
