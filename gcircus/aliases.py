"""Circus's names, served by gcircus, and the importing of user code named in configs.

- Dotted names in configs: Circus's names resolve to ours through one table, so a Circus config
  (`use = circus.plugins.flapping.Flapping`, `class = circus.stream.FileStream`) runs unchanged.
- `import circus...` in user code written for Circus (plugins, hooks, stream classes) where Circus
  is not installed: a finder serves `circus` (a package holding `logger`, the `circus` logger, and
  `__version__`), `circus.util` (to_bool, to_signum, human2bytes, bytes2human) and `circus.X` as
  `gcircus.X` when that exists. With Circus installed nothing is aliased: the code gets Circus's own.
- A watcher's env PYTHONPATH joins the daemon's import path (as in Circus), so hooks and stream
  classes may live in a directory only the watcher's environment names.
"""
import importlib
import importlib.util
import logging
import os
import sys
import types

# Prefix of a Circus name -> the prefix of ours. Longest prefixes first.
CIRCUS_ALIASES = (
    ("circus.plugins.", "gcircus.plugins."),
    ("circus.stream.", "gcircus.stream."),
    ("circus.", "gcircus."),
)
CIRCUS_VERSION = "0.19.0"   # the Circus release whose API the served names stand for


def canonical_name(name):
    """`circus.X` -> `gcircus.X`; any other name is returned as is."""
    for circus_prefix, ours in CIRCUS_ALIASES:
        if name.startswith(circus_prefix):
            return ours + name[len(circus_prefix):]
    return name


def import_dotted(name, what="object"):
    """Import `pkg.mod.attr` or `pkg.mod:attr` (Circus names aliased); ImportError names it."""
    if not isinstance(name, str):
        return name
    name = canonical_name(name.strip())
    if ":" in name:
        module_name, _, attr_path = name.partition(":")
    else:
        module_name, _, attr_path = name.rpartition(".")
    if not module_name or not attr_path:
        raise ImportError("%s %r is not a dotted name (package.module.attribute)" % (what, name))
    serve_circus_names()    # the module may `import circus` though Circus is not installed
    try:
        target = importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError("cannot import %s %r: %s" % (what, name, error)) from error
    for attr in attr_path.split("."):
        try:
            target = getattr(target, attr)
        except AttributeError:
            raise ImportError("cannot import %s %r: %s has no attribute %r"
                              % (what, name, module_name, attr)) from None
    return target


def extend_import_path(env):
    """Append the entries of env's PYTHONPATH missing from sys.path (Circus does the same)."""
    for entry in (env or {}).get("PYTHONPATH", "").split(os.pathsep):
        if entry and entry not in sys.path:
            sys.path.append(entry)


# -- `import circus` without Circus ------------------------------------------------------------------------------

def _circus_package():
    module = types.ModuleType("circus", "gcircus standing in for Circus's package (no Circus installed)")
    module.__path__ = []
    module.logger = logging.getLogger("circus")
    module.__version__ = CIRCUS_VERSION
    return module


def _circus_util():
    from gcircus.converters import bytes2human, human2bytes, to_bool, to_signum
    module = types.ModuleType("circus.util", "the helpers of circus.util that plugins use")
    module.to_bool, module.to_signum = to_bool, to_signum
    module.human2bytes, module.bytes2human = human2bytes, bytes2human
    return module


class CircusNamesFinder:
    """Serves `circus` and `circus.*` from gcircus (see the module docstring). A meta path finder and
    loader by its methods: the importlib.abc bases would load importlib.resources, typing and tempfile."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in ("circus", "circus.util"):
            return importlib.util.spec_from_loader(fullname, self, is_package=fullname == "circus")
        if fullname.startswith("circus."):
            try:
                found = importlib.util.find_spec(canonical_name(fullname))
            except (ImportError, ValueError):
                found = None
            if found is not None:
                return importlib.util.spec_from_loader(fullname, self,
                                                       is_package=found.submodule_search_locations is not None)
        return None

    def create_module(self, spec):
        if spec.name == "circus":
            return _circus_package()
        if spec.name == "circus.util":
            return _circus_util()
        return importlib.import_module(canonical_name(spec.name))

    def exec_module(self, module):
        """Nothing to run: the module is gcircus's own, or built whole by create_module."""


_FINDER = CircusNamesFinder()
_circus_installed = None    # whether a real Circus can be imported (asked once)


def serve_circus_names(force=False):
    """Serve `circus.*` from gcircus unless Circus is installed (force: even then, for tests).
    Returns True when the names are served by gcircus."""
    global _circus_installed
    if _FINDER in sys.meta_path:
        return True
    if not force:
        if _circus_installed is None:
            try:
                _circus_installed = importlib.util.find_spec("circus") is not None
            except (ImportError, ValueError):
                _circus_installed = False
        if _circus_installed:
            return False
    for name in [n for n in sys.modules if n == "circus" or n.startswith("circus.")]:
        del sys.modules[name]
    sys.meta_path.insert(0, _FINDER)
    return True
