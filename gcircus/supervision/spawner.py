"""Creating one child process, fast.

Uses the stdlib's *unpatched* subprocess.Popen: its C helper forks with vfork and
runs no Python in the child (several times faster than a Python fork). Everything a child needs is expressed as
Popen arguments (cwd, env, session, user/group/extra_groups, fds). rlimits cannot
be, so they go through util-linux `prlimit` used as an exec wrapper (same pid,
still no Python in the child); only when `prlimit` is missing, or `executable`
must rename argv[0], do we fall back to a preexec_fn (slow path: no vfork).
"""
import grp
import importlib.util
import os
import pwd
import resource
import shutil
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


def _preexec_setting(limits):
    def apply_limits():
        for _name, constant, value in limits:
            resource.setrlimit(constant, (value, value))
    return apply_limits


def _check_binary(program, env, cwd):
    """Fail in the parent, with a clear message, when an exec wrapper would hide ENOENT."""
    if os.sep in program:
        path = program if os.path.isabs(program) else os.path.join(cwd or os.getcwd(), program)
        found = os.access(path, os.X_OK) and not os.path.isdir(path)
    else:
        found = shutil.which(program, path=(env or {}).get("PATH", os.defpath)) is not None
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


def spawn(argv, *, shell=False, executable=None, cwd=None, env=None, uid=None, gid=None,
          rlimits=None, stdin=None, pipe_stdout=True, pipe_stderr=True,
          close_child_stdout=False, close_child_stderr=False, pass_fds=()):
    """Start argv and return the Popen; raise SpawnError naming the command on failure.

    stdin: None inherits, subprocess.DEVNULL closes, an int fd is dup'ed on fd 0.
    The child always gets its own session (setsid) so signals can target its group.
    """
    limits = resolve_rlimits(rlimits)
    kwargs = dict(cwd=cwd, env=env, stdin=stdin, start_new_session=True, close_fds=True,
                  pass_fds=tuple(pass_fds), **_identity(uid, gid))
    kwargs["stdout"] = subprocess.PIPE if pipe_stdout else (subprocess.DEVNULL if close_child_stdout else None)
    kwargs["stderr"] = subprocess.PIPE if pipe_stderr else (subprocess.DEVNULL if close_child_stderr else None)
    program_argv = list(argv)
    if shell:
        program_argv = ["/bin/sh", "-c"] + program_argv
    try:
        if limits and PRLIMIT and executable is None:
            _check_binary(program_argv[0], env, cwd)
            return Popen(_prlimit_prefix(limits) + program_argv, **kwargs)
        if limits:
            kwargs["preexec_fn"] = _preexec_setting(limits)
        return Popen(program_argv, executable=executable, **kwargs)
    except (OSError, ValueError, subprocess.SubprocessError) as error:
        raise SpawnError("cannot spawn %r: %s" % (" ".join(map(str, argv)), error)) from error
