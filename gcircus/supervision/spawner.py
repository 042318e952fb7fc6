"""Creating one child process, fast.

Uses the stdlib's *unpatched* subprocess.Popen: its C helper forks with vfork and
runs no Python in the child (several times faster than a Python fork). Everything a
child needs is expressed as Popen arguments (cwd, env, session, user/group/
extra_groups, fds). Two things cannot be, so they go through util-linux exec
wrappers (same pid, still no Python in the child): rlimits through `prlimit`, and
the parent-death signal through `setpriv --pdeathsig KILL` (a child that must die
with the daemon is SIGKILLed by the kernel when the daemon's spawning thread ends,
SIGKILL of the daemon included). Popen returns once the wrapper is exec'd, so the
spawning cost is unchanged; the child reaches its own program one exec later. Only
when a wrapper is missing, or `executable` must rename argv[0], do we fall back to
a preexec_fn (slow path: no vfork).

The parent-death signal survives the uid/gid switch (Popen switches before the
wrapper runs; the kernel clears the signal only on a credential change or the exec
of a set-user-ID or file-capability program, which is the documented limit). It is
the child's alone: grandchildren are its business, as they are when it is killed.
"""
import grp
import importlib.util
import os
import pwd
import resource
import shutil
import signal
import subprocess
import types

from gcircus.exc import SpawnError


def _load_unpatched_popen():
    """The stdlib Popen from a private copy of the subprocess module.

    gevent's monkey-patching rebinds names inside the stdlib module (its `_fork_exec`
    becomes None), which breaks even the original Popen class, and an application may
    patch after importing us: a copy of our own keeps the C fork_exec whatever happens.
    """
    spec = importlib.util.spec_from_file_location("gcircus._stdlib_subprocess", subprocess.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Patched os.close defers the close to the hub's next loop turn; Popen closes the child's
    # ends of its pipes and then blocks reading the exec-status pipe: with a deferred close
    # that read never ends. The copy gets os with the original functions.
    module.os = _unpatched_module(os)
    return module.Popen


def _unpatched_module(module):
    from gevent import monkey
    copy = types.ModuleType(module.__name__)
    copy.__dict__.update(vars(module))
    copy.__dict__.update(monkey.saved.get(module.__name__, {}))
    return copy


Popen = _load_unpatched_popen()
PRLIMIT = shutil.which("prlimit")
SETPRIV = shutil.which("setpriv")
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
    path = shutil.which(program, path=key[1])
    if path is None:
        return None
    own = shutil.which(program, path=os.defpath)
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
        found = (program, search_path) in _FOUND or shutil.which(program, path=search_path) is not None
        if found:
            _FOUND.add((program, search_path))
    if not found:
        raise FileNotFoundError(2, "No such file or directory", program)


def _identity(uid, gid):
    """Popen user/group/extra_groups kwargs; empty when nothing changes (keeps vfork)."""
    kwargs = {}
    if uid is not None and uid != os.geteuid():
        kwargs["user"] = uid
        if gid is None:
            gid = pwd.getpwuid(uid).pw_gid
        name = username_of(uid)
        if name is not None:
            kwargs["extra_groups"] = os.getgrouplist(name, gid)
    if gid is not None and (gid != os.getegid() or "user" in kwargs):
        kwargs["group"] = gid
    return kwargs


def _output(pipe, close):
    if close:
        return subprocess.DEVNULL
    return subprocess.PIPE if pipe else None     # None: the child inherits the daemon's


def spawn(argv, *, shell=False, executable=None, cwd=None, env=None, uid=None, gid=None,
          rlimits=None, stdin=None, pipe_stdout=True, pipe_stderr=True,
          close_child_stdout=False, close_child_stderr=False, pass_fds=(), die_with_parent=False):
    """Start argv and return the Popen; raise SpawnError naming the command on failure.

    stdin: None inherits, subprocess.DEVNULL closes, an int fd is dup'ed on fd 0.
    The child always gets its own session (setsid) so signals can target its group.
    die_with_parent: the kernel SIGKILLs the child when the calling thread ends (the daemon dies).
    """
    limits = resolve_rlimits(rlimits)
    kwargs = dict(cwd=cwd, env=env, stdin=stdin, start_new_session=True, close_fds=True,
                  pass_fds=tuple(pass_fds), **_identity(uid, gid))
    # close_child_* wins over a pipe (as Circus): the output goes to /dev/null whatever the stream
    kwargs["stdout"] = _output(pipe_stdout, close_child_stdout)
    kwargs["stderr"] = _output(pipe_stderr, close_child_stderr)
    program_argv = list(argv)
    if shell:
        program_argv = ["/bin/sh", "-c"] + program_argv
    resolved = None
    if not shell and executable is None and program_argv:
        resolved = resolve_program(program_argv[0], env)
    wrapped = bool(limits) or die_with_parent
    wrappers_missing = (limits and not PRLIMIT) or (die_with_parent and not SETPRIV)
    try:
        if wrapped and (executable is not None or wrappers_missing):
            kwargs["preexec_fn"] = _preexec_setting(limits, die_with_parent)
        elif wrapped:
            if resolved is not None:        # the wrappers exec argv[0] themselves, with the child's PATH
                program_argv[0] = resolved
            _check_binary(program_argv[0], env, cwd)
            prefix = (_setpriv_prefix() if die_with_parent else []) + (_prlimit_prefix(limits) if limits else [])
            return Popen(prefix + program_argv, **kwargs)
        return Popen(program_argv, executable=executable or resolved, **kwargs)
    except (OSError, ValueError, subprocess.SubprocessError) as error:
        raise SpawnError("cannot spawn %r: %s" % (" ".join(map(str, argv)), error)) from error


def program_argv(argv):
    """The command line of the program a child runs, its exec wrappers (setpriv, prlimit) stripped: until they
    have exec'd it (a millisecond or so after the spawn), the child shows theirs."""
    while argv and argv[0] in (SETPRIV, PRLIMIT) and "--" in argv:
        argv = argv[argv.index("--") + 1:]
    return argv
