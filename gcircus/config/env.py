"""Environment resolution for INI configs: ``[env]``, ``[env:PATTERNS]`` and the two expansion syntaxes.

- ``$(circus.env.NAME)`` (or ``((circus.env.NAME))``) is replaced in section values by an environment value,
  looked up case-insensitively; unknown names are left as written.  Other ``$(circus.*)`` references
  (``$(circus.wid)``, ``$(circus.sockets.web)``) belong to the process and are never touched here.
- ``$NAME`` and ``${NAME}`` in *environment values* are replaced by the value the variable has so far (what the
  env sections built, else circusd's environment); a missing variable expands to the empty string, so
  ``PATH = $PATH:/opt/bin`` extends rather than replaces.  As in Circus a bare ``$name`` must start with an
  upper-case letter (``$lower`` stays literal); the braced form accepts any identifier.

Precedence (as Circus): ``[env:NAME]`` beats ``[env]`` which beats circusd's own environment; several matching
``[env:…]`` sections apply in file order, the later winning.
"""
import fnmatch
import re

ENV_SECTION = "env"
ENV_SECTION_PREFIX = "env:"

_CIRCUS_ENV_RE = re.compile(
    r"\$\(circus\.env\.(?P<paren>[^)\s]+)\)|\(\(circus\.env\.(?P<double>[^)\s]+)\)\)", re.IGNORECASE)
_SHELL_VAR_RE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Z][A-Z0-9_]*))")


def lookup_table(*mappings):
    """Return a case-insensitive lookup ``{lower_name: value}``; later mappings win."""
    table = {}
    for mapping in mappings:
        for key, value in mapping.items():
            table[key.lower()] = value
    return table


def expand_circus_env(value, table):
    """Replace ``$(circus.env.X)`` / ``((circus.env.X))`` in ``value`` from ``table`` (see lookup_table)."""
    def replace(match):
        name = (match.group("paren") or match.group("double")).lower()
        return table.get(name, match.group(0))
    return _CIRCUS_ENV_RE.sub(replace, value)


def expand_shell_vars(value, variables):
    """Replace ``$NAME`` / ``${NAME}`` in ``value`` from ``variables``; missing names become empty."""
    def replace(match):
        return variables.get(match.group("braced") or match.group("bare"), "")
    return _SHELL_VAR_RE.sub(replace, value)


def apply_env_values(env, values, environ):
    """Add each ``values`` entry to ``env`` in order, expanding it against ``environ`` + ``env`` so far."""
    for key, raw in values.items():
        table = lookup_table(environ, env)
        value = expand_circus_env(raw, table)
        env[key.strip()] = expand_shell_vars(value, {**environ, **env}).strip()
    return env


def build_global_env(document, environ):
    """Return the ``[env]`` section's variables, expanded (circusd's environ is *not* included)."""
    section = document.get(ENV_SECTION)
    if section is None:
        return {}
    return apply_env_values({}, section.items(), environ)


def env_pattern_sections(document):
    """Return ``[(section, [pattern, ...]), ...]`` for every ``[env:P1,P2]`` section, in file order."""
    found = []
    for name in document.section_names():
        if name.startswith(ENV_SECTION_PREFIX):
            patterns = [p.strip() for p in name[len(ENV_SECTION_PREFIX):].split(",") if p.strip()]
            found.append((document.get(name), patterns))
    return found


def matches_watcher(patterns, watcher_name):
    """True if any fnmatch pattern matches the watcher name (case-insensitively, like watcher lookup)."""
    name = watcher_name.lower()
    return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in patterns)


def build_watcher_env(watcher_name, global_env, pattern_sections, environ):
    """Return the env of one watcher: ``[env]`` then every matching ``[env:…]`` section in order."""
    env = dict(global_env)
    for section, patterns in pattern_sections:
        if matches_watcher(patterns, watcher_name):
            apply_env_values(env, section.items(), environ)
    return env


def expand_section(values, table):
    """Return ``values`` with ``$(circus.env.X)`` expanded in every value."""
    return {key: expand_circus_env(value, table) for key, value in values.items()}
