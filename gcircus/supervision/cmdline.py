"""Building a child's argv and environment from a watcher's options.

Owns the `$(circus.KEY)` / `((circus.KEY))` substitution language (case-insensitive
keys, unknown keys left verbatim), legacy `$WID`, shell joining, and the environment
options copy_env / copy_path / virtualenv.
"""
import functools
import glob
import os
import re
import shlex
import sys
import warnings

_VARIABLE = re.compile(r"\$\(circus\.([\w.\-]+)\)|\(\(circus\.([\w.\-]+)\)\)", re.IGNORECASE)


def substitute(text, variables):
    """Replace `$(circus.KEY)` and `((circus.KEY))` in text; keys compare lower-cased.

    variables maps lower-case keys without the `circus.` prefix (e.g. 'wid',
    'env.path', 'sockets.web') to values; unknown keys stay as written.
    """
    if not isinstance(text, str) or "circus." not in text.lower():
        return text

    def replace(match):
        key = (match.group(1) or match.group(2)).lower()
        if key in variables:
            return str(variables[key])
        return match.group(0)

    return _VARIABLE.sub(replace, text)


def has_variables(cmd, args):
    """Whether cmd or args use `$(circus.*)`, `((circus.*))` or `$WID` at all."""
    texts = [cmd] + ([args] if isinstance(args, str) else [str(arg) for arg in args or ()])
    return any("circus." in text.lower() or "$WID" in text for text in texts)


def build_variables(wid, env=None, sockets=None, extra=None):
    """The substitution map for one process: wid, env.*, sockets.* and any extra options."""
    variables = {}
    for key, value in (extra or {}).items():
        variables[key.lower()] = value
    for name, value in (env or {}).items():
        variables["env." + name.lower()] = value
    for name, fd in (sockets or {}).items():
        variables["sockets." + name.lower()] = fd
    variables["wid"] = wid
    return variables


def _split_args(args, variables):
    if args is None:
        return []
    if isinstance(args, str):
        return shlex.split(substitute(args, variables))
    return [substitute(str(arg), variables) for arg in args]


def build_argv(cmd, args, variables, shell=False, shell_args=None):
    """argv for Popen: shlex-split cmd plus args; for shell=True one string then shell_args.

    With shell the command reaches /bin/sh as written (after substitution): splitting and
    re-quoting it would turn `;`, pipes, redirections and `$((..))` into plain words. A list
    of args is quoted word by word, a string of args is appended as written."""
    if "$WID" in cmd:
        warnings.warn("$WID in cmd is deprecated; use $(circus.wid)", DeprecationWarning, stacklevel=2)
        cmd = cmd.replace("$WID", str(variables.get("wid", "")))
    if shell:
        return [_shell_command(cmd, args, variables)] + _split_args(shell_args, variables)
    return shlex.split(substitute(cmd, variables)) + _split_args(args, variables)


def _shell_command(cmd, args, variables):
    words = [substitute(cmd, variables).strip()]
    if isinstance(args, str):
        words.append(substitute(args, variables).strip())
    elif args is not None:
        words.extend(shlex.quote(substitute(str(arg), variables)) for arg in args)
    return " ".join(word for word in words if word)


def static_argv(cmd, args, shell=False, shell_args=None):
    """The argv of a command that uses no variable at all, as a tuple, computed once per distinct
    command (spawns of one watcher then cost no shlex); None when a variable is used."""
    try:
        return _static_argv(cmd, _hashable(args), shell, _hashable(shell_args))
    except TypeError:       # an unhashable argument: nothing to cache it by
        return None


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


@functools.lru_cache(maxsize=512)
def _static_argv(cmd, args, shell, shell_args):
    if has_variables(cmd, args) or (shell_args is not None and has_variables("", shell_args)):
        return None
    return tuple(build_argv(cmd, args, {}, shell, shell_args))


def virtualenv_paths(virtualenv, py_ver=None):
    """(bin dir, site-packages entries) for a virtualenv; ValueError if it does not exist."""
    if not os.path.isdir(virtualenv):
        raise ValueError("virtualenv %r is not a directory" % virtualenv)
    py_ver = py_ver or "%d.%d" % sys.version_info[:2]
    site_dirs = []
    for flavour in ("python", "pypy"):
        candidate = os.path.join(virtualenv, "lib", flavour + py_ver, "site-packages")
        if os.path.isdir(candidate):
            site_dirs.append(candidate)
    entries = []
    for site_dir in site_dirs:
        for pth in sorted(glob.glob(os.path.join(site_dir, "*.pth"))):
            with open(pth) as handle:
                for line in handle:
                    line = line.strip()
                    if line and not line.startswith(("#", "import")):
                        entries.append(os.path.join(site_dir, line) if not os.path.isabs(line) else line)
        entries.append(site_dir)
    return os.path.join(virtualenv, "bin"), entries


def build_env(env=None, copy_env=False, copy_path=False, virtualenv=None, virtualenv_py_ver=None):
    """The child's environment, in Circus's order: the daemon's (copy_env), PYTHONPATH = the
    daemon's sys.path (copy_path), the watcher's env on top, then the virtualenv: its bin first
    in PATH, its site-packages after the PYTHONPATH entries already there.

    copy_path and virtualenv also work without copy_env (Circus refuses them): the child then
    gets those variables and the watcher's env, nothing of the daemon's."""
    result = dict(os.environ) if copy_env else {}
    if copy_path:
        result["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    result.update({str(k): str(v) for k, v in (env or {}).items()})
    if virtualenv:
        bin_dir, site_entries = virtualenv_paths(virtualenv, virtualenv_py_ver)
        result["PATH"] = os.pathsep.join([bin_dir] + [p for p in result.get("PATH", "").split(os.pathsep) if p])
        existing = [p for p in result.get("PYTHONPATH", "").split(os.pathsep) if p]
        result["PYTHONPATH"] = os.pathsep.join(existing + [p for p in site_entries if p not in existing])
    return result
