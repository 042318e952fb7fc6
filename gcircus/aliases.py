"""Dotted names in configs: Circus's names resolve to ours through one table, so a
Circus config (`use = circus.plugins.flapping.Flapping`, `class =
circus.stream.FileStream`) runs unchanged; then the name is imported."""
import importlib

# Prefix of a Circus name -> the prefix of ours. Longest prefixes first.
CIRCUS_ALIASES = (
    ("circus.plugins.", "gcircus.plugins."),
    ("circus.stream.", "gcircus.stream."),
    ("circus.", "gcircus."),
)


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
