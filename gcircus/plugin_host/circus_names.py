"""`import circus...` in plugins written for Circus, where Circus is not installed.

A Circus plugin starts with `from circus.plugins import CircusPlugin` (and often
`from circus import logger` or `from circus.util import to_bool`). When no real
`circus` package can be imported, the plugin host installs this finder and
those names are served from gcircus:

- `circus`: a package holding `logger` (the `circus` logger) and `__version__`;
- `circus.util`: the helpers plugins use (to_bool, to_signum, human2bytes,
  bytes2human);
- `circus.X`: `gcircus.X` when it exists (`circus.plugins.flapping` is
  `gcircus.plugins.flapping`, `circus.client` is `gcircus.client`).

With Circus installed nothing is aliased: a plugin then subclasses Circus's own
base class, which the host runs too (it gives the plugin its connection).
"""
import importlib
import importlib.abc
import importlib.util
import logging
import sys
import types

CIRCUS_VERSION = "0.19.0"   # the Circus release whose API these names stand for


def _circus_package():
    module = types.ModuleType("circus", "gcircus standing in for Circus's package (no Circus installed)")
    module.__path__ = []
    module.logger = logging.getLogger("circus")
    module.__version__ = CIRCUS_VERSION
    return module


def _circus_util():
    from gcircus.converters import to_bool, to_signum
    from gcircus.plugin import human2bytes
    from gcircus.supervision.procinfo import bytes2human
    module = types.ModuleType("circus.util", "the helpers of circus.util that plugins use")
    module.to_bool, module.to_signum = to_bool, to_signum
    module.human2bytes, module.bytes2human = human2bytes, bytes2human
    return module


class CircusNamesFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves `circus` and `circus.*` from gcircus (see the module docstring)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in ("circus", "circus.util"):
            return importlib.util.spec_from_loader(fullname, self, is_package=fullname == "circus")
        if fullname.startswith("circus."):
            ours = "gcircus." + fullname[len("circus."):]
            try:
                found = importlib.util.find_spec(ours)
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
        return importlib.import_module("gcircus." + spec.name[len("circus."):])

    def exec_module(self, module):
        """Nothing to run: the module is gcircus's own, or built whole by create_module."""


_FINDER = CircusNamesFinder()


def install(force=False):
    """Serve `circus.*` from gcircus unless Circus is installed (force: even then, for
    tests). Returns True when the names are served by gcircus."""
    if _FINDER in sys.meta_path:
        return True
    if not force:
        try:
            if importlib.util.find_spec("circus") is not None:
                return False
        except (ImportError, ValueError):
            pass
    for name in [n for n in sys.modules if n == "circus" or n.startswith("circus.")]:
        del sys.modules[name]
    sys.meta_path.insert(0, _FINDER)
    return True
