"""Load a Circus INI configuration file into plain dicts for the arbiter, watchers, sockets and plugins.

``load_config(path)`` reads the main file, then the files its ``[circus] include`` / ``include_dir`` name, resolves
the environment sections, expands ``$(circus.env.X)`` references and converts every section (config_sections).

What stops loading and what does not:

- a missing or unreadable main file, a syntax error in any file, or a bad ``[circus]`` value raise ConfigError;
- a broken ``[watcher:…]``, ``[socket:…]`` or ``[plugin:…]`` section (a bad value, a hook or stream class that
  cannot be imported, a missing virtualenv), a duplicate name or an unknown section kind is reported in
  ``result['errors']`` and left out, so that every problem of the file is found in one go; whoever runs the
  configuration then refuses the whole file (``check_loaded``): gcircusd does not start, reloadconfig changes
  nothing;
- an include pattern matching nothing, an ignored option, an ``[env:…]`` section matching no watcher are reported
  in ``result['warnings']``.

Errors and warnings are also logged on the ``gcircus.config`` logger, so a caller need not log them again.
"""
import glob
import logging
import os

from gcircus.config import env as config_env
from gcircus.config.parser import ConfigError, IniDocument, Section
from gcircus.config.sections import build_circus, build_plugin, build_socket, build_watcher
from gcircus.converters import to_word_list

__all__ = ["ConfigError", "check_loaded", "load_config"]

logger = logging.getLogger("gcircus.config")

CIRCUS_SECTION = "circus"
SECTION_KINDS = ("watcher", "socket", "plugin")


def load_config(path, environ=None):
    """Load the INI file ``path``; return a dict (see module docstring and the keys below).

    ``environ`` stands for circusd's environment (default ``os.environ``) in env resolution.

    Returns ``{'circus': {...}, 'watchers': [...], 'sockets': [...], 'plugins': [...], 'env': {...},
    'raw': {section: {key: value}}, 'warnings': [...], 'errors': [...], 'files': [...]}``; watchers, sockets and
    plugins are each sorted by name, ``env`` holds the ``[env]`` section's variables and ``raw`` the string values
    of every loaded section after ``$(circus.env.X)`` expansion (keys ``circus``, ``watcher:NAME``,
    ``socket:name``, ``plugin:NAME``).
    """
    environ = dict(os.environ if environ is None else environ)
    warnings = []
    document = _read_all(path, environ, warnings)
    global_env = config_env.build_global_env(document, environ)
    result = {"circus": None, "watchers": [], "sockets": [], "plugins": [], "env": global_env, "raw": {},
              "warnings": warnings, "errors": [], "files": list(document.files)}
    _load_circus(document, result, environ)
    _load_sections(document, result, environ)
    for key in ("watchers", "sockets", "plugins"):
        result[key].sort(key=lambda entry: entry["name"])
    for message in result["warnings"]:
        logger.warning(message)
    for message in result["errors"]:
        logger.error(message)
    return result


def check_loaded(config, path, consequence):
    """Raise ConfigError listing every error of a loaded config, one per line; ``consequence`` says
    what did not happen ("nothing was started")."""
    errors = config["errors"]
    if errors:
        raise ConfigError("%s has %d error(s), %s:\n  %s" % (path, len(errors), consequence, "\n  ".join(errors)),
                          errors)


def _read_all(path, environ, warnings):
    """Read the main file then its includes into one IniDocument (first definition wins, main file first)."""
    document = IniDocument()
    _read_file(document, path)
    seen = {os.path.realpath(path)}
    for include in _include_paths(document, path, environ, warnings):
        if os.path.realpath(include) not in seen:
            seen.add(os.path.realpath(include))
            _read_file(document, include)
    return document


def _read_file(document, path):
    try:
        document.read_file(path)
    except OSError as error:
        raise ConfigError("%s: cannot read config file: %s" % (path, error.strerror or error)) from error
    except UnicodeDecodeError as error:
        raise ConfigError("%s: not a UTF-8 text file (%s)" % (path, error.reason)) from error


def _include_paths(document, main_path, environ, warnings):
    """Return the files named by the main file's ``include`` globs and ``include_dir`` directories, in order.

    Relative patterns are taken from the main file's directory.  Only the main file's keys count: included
    files cannot include further files (as in Circus).
    """
    section = document.get(CIRCUS_SECTION)
    if section is None:
        return []
    table = config_env.lookup_table(environ, config_env.build_global_env(document, environ))
    values = config_env.expand_section(section.items(), table)
    base = os.path.dirname(os.path.abspath(main_path))
    found = []
    for pattern in to_word_list(values.get("include", "")):
        matches = sorted(glob.glob(os.path.join(glob.escape(base), pattern)))
        if not matches:
            warnings.append("%s [circus] include: %r matches no file" % (section.origin("include"), pattern))
        found.extend(matches)
    for directory in to_word_list(values.get("include_dir", "")):
        matches = sorted(glob.glob(os.path.join(glob.escape(base), directory, "*.ini")))
        if not matches:
            warnings.append("%s [circus] include_dir: no .ini file in %r" % (section.origin("include_dir"),
                                                                             directory))
        found.extend(matches)
    return found


def _load_circus(document, result, environ):
    """Fill result['circus'] (defaults when the section is absent); a bad value raises ConfigError."""
    section = document.get(CIRCUS_SECTION)
    if section is None:
        section = Section(CIRCUS_SECTION, document.files[0], None)
    table = config_env.lookup_table(environ, result["env"])
    values = config_env.expand_section(section.items(), table)
    result["circus"] = build_circus(section, values, result["warnings"])
    result["raw"][CIRCUS_SECTION] = values


def _load_sections(document, result, environ):
    """Build sockets, then plugins, then watchers (watchers check stdin_socket against the sockets)."""
    grouped = _group_sections(document, result)
    table = config_env.lookup_table(environ, result["env"])
    loaded = _NameRegistry(result)
    for section in grouped["socket"]:
        values = config_env.expand_section(section.items(), table)
        loaded.add("socket", section, values, build_socket, section, values, result["warnings"])
    for section in grouped["plugin"]:
        values = config_env.expand_section(section.items(), table)
        loaded.add("plugin", section, values, build_plugin, section, values, result["warnings"])
    socket_names = {sock["name"] for sock in result["sockets"]}
    if result["circus"]["httpd"]:
        socket_names.add("circushttpd")     # the arbiter adds this socket itself
    _load_watchers(document, grouped["watcher"], result, environ, loaded, socket_names)


def _load_watchers(document, sections, result, environ, loaded, socket_names):
    pattern_sections = config_env.env_pattern_sections(document)
    for section in sections:
        name = section.name.split(":", 1)[1].strip()
        env = config_env.build_watcher_env(name, result["env"], pattern_sections, environ)
        # a watcher's own env wins over [env], which wins over circusd's environment
        values = config_env.expand_section(section.items(), config_env.lookup_table(environ, env))
        loaded.add("watcher", section, values, build_watcher, section, values, env, socket_names,
                   result["warnings"])
    names = [section.name.split(":", 1)[1].strip() for section in sections]
    for env_section, patterns in pattern_sections:
        if not any(config_env.matches_watcher(patterns, name) for name in names):
            result["warnings"].append("%s [%s]: matches no watcher" % (env_section.path, env_section.name))


def _group_sections(document, result):
    """Return ``{kind: [Section, ...]}`` in file order; unknown kinds are errors, empty sections are skipped."""
    grouped = {kind: [] for kind in SECTION_KINDS}
    for name in document.section_names():
        section = document.get(name)
        kind = name.split(":", 1)[0] if ":" in name else None
        if name == CIRCUS_SECTION or name == config_env.ENV_SECTION or kind == config_env.ENV_SECTION:
            continue
        if kind not in grouped:
            result["errors"].append("%s [%s]: unknown section (expected [circus], [env], [env:NAMES], "
                                    "[watcher:NAME], [socket:NAME] or [plugin:NAME])" % (section.path, name))
        elif not section.own:
            result["warnings"].append("%s [%s]: empty section ignored" % (section.path, name))
        else:
            grouped[kind].append(section)
    return grouped


class _NameRegistry:
    """Adds built entries to the result, refusing a name already taken (case-insensitively) by the same kind."""

    def __init__(self, result):
        self.result = result
        self.taken = {}             # (kind, lower name) -> section name that took it

    def add(self, kind, section, values, build, *build_args):
        """Record ``build(*build_args)`` under ``kind``, or its errors; ``values`` become the raw section."""
        try:
            entry = build(*build_args)
        except ConfigError as error:
            self.result["errors"].extend(error.errors)
            return
        slot = (kind, entry["name"].lower())
        if slot in self.taken:
            self.result["errors"].append("%s [%s]: duplicate %s name %r (already defined by [%s])" % (
                section.path, section.name, kind, entry["name"], self.taken[slot]))
            return
        self.taken[slot] = section.name
        self.result[kind + "s"].append(entry)
        raw_key = entry["name"] if kind == "plugin" else "%s:%s" % (kind, entry["name"])
        self.result["raw"][raw_key] = values
