"""What a section names in code or on disk, checked when the file is loaded: a watcher's hooks, stream
classes (and that they take the options given) and virtualenv, a plugin's class.

Loading fails on them like on a bad value, with the file, section and key, so a fresh start and
reloadconfig both refuse the file before anything runs (building the watcher later would only say
"cannot import" and drop it). The watcher's env PYTHONPATH joins the import path first, as in Circus,
and `import circus` works in those modules though Circus is not installed (gcircus.aliases).
"""
from gcircus.aliases import extend_import_path, import_dotted
from gcircus.stream.factory import IGNORED_KEYS, resolve_stream_class
from gcircus.supervision.cmdline import virtualenv_paths

STREAM_KEYS = ("stdout_stream", "stderr_stream")


def check_watcher_imports(reader, watcher):
    """Record on `reader` (a config FieldReader) every hook, stream class or virtualenv of `watcher`
    (the section's converted options) that cannot be used."""
    extend_import_path(watcher["env"])
    for hook_name, (target, _ignore_failure) in (watcher["hooks"] or {}).items():
        try:
            function = import_dotted(target, "hook")
        except ImportError as error:
            reader.error("hooks." + hook_name, str(error))
            continue
        if not callable(function):
            reader.error("hooks." + hook_name, "%r is not callable" % target)
    for stream_key in STREAM_KEYS:
        _check_stream(reader, stream_key, watcher[stream_key])
    if watcher["virtualenv"]:
        try:
            virtualenv_paths(watcher["virtualenv"], watcher["virtualenv_py_ver"])
        except ValueError as error:
            reader.error("virtualenv", str(error))


def _check_stream(reader, stream_key, conf):
    if not conf or "class" not in conf:
        return
    key = stream_key + ".class"
    try:
        cls = resolve_stream_class(conf["class"])
    except (ImportError, ValueError) as error:
        reader.error(key, str(error))
        return
    options = {name: value for name, value in conf.items() if name != "class" and name not in IGNORED_KEYS}
    import inspect      # here: it costs a daemon without stream classes ~1 MiB (ast, dis, tokenize)
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return      # no signature to check against (a C callable): its construction will tell
    try:
        signature.bind(**options)
    except TypeError as error:
        reader.error(key, "%s does not take the options given (%s): %s" % (
            conf["class"], ", ".join(sorted(options)) or "none", error))


def check_plugin_import(reader, plugin):
    """Record on `reader` a plugin whose `use` class cannot be imported or is not a plugin."""
    if "use" not in plugin:
        return      # already reported
    from gcircus.plugin_host.manager import PluginLoadError, load_plugin_class    # a daemon without plugins never loads it
    try:
        load_plugin_class(plugin)
    except PluginLoadError as error:
        reader.error("use", str(error).split(": ", 1)[-1])     # "plugin NAME: " is in the section already
