"""Turn the expanded values of one INI section into the typed dict its consumer takes.

- ``[circus]``         -> arbiter keyword arguments (every key present, with Circus's INI defaults)
- ``[watcher:NAME]``   -> Watcher keyword arguments (every option present, defaults from gcircus.options;
                          free-form keys kept as strings)
- ``[socket:NAME]``    -> CircusSocket keyword arguments (every key present)
- ``[plugin:NAME]``    -> plugin config: ``name``, ``use``, ``priority`` and every other key as a string

Each builder converts every key before giving up, so one ConfigError reports all the bad values of a section at
once; each message reads ``<file> [<section>] <key>: <reason>``.  Builders take the already-expanded values
(see config_env) and append non-fatal remarks to a ``warnings`` list.
"""
from gcircus import converters as conv
from gcircus.config.imports import STREAM_KEYS, check_plugin_import, check_watcher_imports
from gcircus.config.parser import ConfigError
from gcircus.options import (API, ARBITER_OPTIONS, CIRCUS_LOADER_KEYS, KEYWISE, SOCKET_OPTIONS, STREAM_OPTION_TYPES,
                             VALUE, WATCHER_DEFAULTS, WATCHER_OPTIONS, REQUIRED)

_ABSENT = object()


def _fields(table, absent=()):
    """``{key: (converter, INI default)}`` of the options of ``table`` written as ``key = value``."""
    return {name: (option.convert, _ABSENT if name in absent or option.config_default is REQUIRED
                   else option.config_default)
            for name, option in table.items() if option.config == VALUE}


CIRCUS_FIELDS = _fields(ARBITER_OPTIONS)
# filled only when written: the arbiter injects stream_backend, the unused options are free-form
WATCHER_FIELDS = _fields(WATCHER_OPTIONS, absent=[name for name, option in WATCHER_OPTIONS.items()
                                                  if name == "stream_backend" or not option.attribute])
SOCKET_FIELDS = _fields(SOCKET_OPTIONS)
# API-only options: a Python object, which INI cannot express
_API_ONLY_KEYS = tuple(name for name, option in WATCHER_OPTIONS.items() if option.config == API) + ("loop",)
# whole-mapping options that INI spells key by key (hooks.before_start = ..., rlimit_nofile = ...)
_MAPPING_KEYS = tuple(name for name, option in WATCHER_OPTIONS.items() if option.config == KEYWISE)


class FieldReader:
    """Converts the values of one section, collecting every bad value instead of stopping at the first."""

    def __init__(self, section, values, warnings):
        self.section = section      # config_parser.Section: gives file names for messages
        self.values = values        # {key: expanded string}
        self.warnings = warnings
        self.errors = []
        self.used = set()

    def where(self, key=None):
        path = self.section.origin(key) if key else self.section.path
        return "%s [%s]" % (path, self.section.name) + (" %s" % key if key else "")

    def error(self, key, reason):
        self.errors.append("%s: %s" % (self.where(key), reason))

    def warn(self, key, reason):
        self.warnings.append("%s: %s" % (self.where(key), reason))

    def convert(self, key, converter, default=_ABSENT):
        """Return ``converter(value)`` of ``key``, ``default`` if absent or bad (a bad value is recorded)."""
        self.used.add(key)
        if key not in self.values:
            return default
        try:
            return converter(self.values[key])
        except ValueError as error:
            self.error(key, str(error))
            return default

    def fill(self, target, table):
        """Convert every option of ``table`` (``{key: (converter, default)}``) into ``target``."""
        for key, (converter, default) in table.items():
            value = self.convert(key, converter, default)
            if value is not _ABSENT:
                target[key] = value

    def with_prefix(self, prefix):
        """Return ``{suffix: value}`` for the keys starting with ``prefix``, marking them used."""
        found = {}
        for key, value in self.values.items():
            if key.startswith(prefix):
                self.used.add(key)
                found[key[len(prefix):]] = (key, value)
        return found

    def unused(self):
        return [key for key in self.values if key not in self.used]

    def own_unused(self):
        """Unused keys written in the section itself (keys inherited from [DEFAULT] are not typos here)."""
        return [key for key in self.unused() if key in self.section.own]

    def raise_errors(self):
        if self.errors:
            raise ConfigError("\n".join(self.errors), self.errors)


def build_circus(section, values, warnings):
    """Return the arbiter settings of ``[circus]``; raises ConfigError listing every bad value."""
    reader = FieldReader(section, values, warnings)
    settings = {}
    reader.fill(settings, CIRCUS_FIELDS)
    reader.used.update(CIRCUS_LOADER_KEYS)
    if "stats_endpoint" in values and not settings["statsd"]:
        # Circus's rule: naming a stats endpoint turns statsd on
        reader.warn("stats_endpoint", "setting stats_endpoint turns statsd on (deprecated: set statsd = true)")
        settings["statsd"] = True
    for key in reader.own_unused():
        reader.warn(key, "unknown option, ignored")
    reader.raise_errors()
    return settings


def build_watcher(section, values, env, socket_names, warnings):
    """Return the Watcher keyword arguments of ``[watcher:NAME]``; raises ConfigError on bad values."""
    reader = FieldReader(section, values, warnings)
    name = section.name.split(":", 1)[1].strip()
    if not name:
        reader.error(None, "watcher name is empty")
    watcher = {"name": name}
    reader.fill(watcher, WATCHER_FIELDS)
    if "cmd" not in values:     # a blank one is refused by its converter
        reader.error("cmd", "missing command (cmd is required)")
    watcher["env"] = env
    # empty mappings fall back to the API defaults (None: nothing configured)
    watcher["rlimits"] = _read_rlimits(reader) or WATCHER_DEFAULTS["rlimits"]
    watcher["hooks"] = _read_hooks(reader) or WATCHER_DEFAULTS["hooks"]
    for stream_key in STREAM_KEYS:
        watcher[stream_key] = _read_stream(reader, stream_key) or WATCHER_DEFAULTS[stream_key]
    _read_free_form(reader, watcher)
    _check_watcher(reader, watcher, socket_names)
    check_watcher_imports(reader, watcher)
    reader.raise_errors()
    return watcher


def _read_rlimits(reader):
    rlimits = {}
    for suffix, (key, value) in reader.with_prefix("rlimit_").items():
        try:
            rlimits[conv.to_rlimit_name(suffix)] = conv.to_rlimit_value(value)
        except ValueError as error:
            reader.error(key, str(error))
    return rlimits


def _read_hooks(reader):
    hooks = {}
    for suffix, (key, value) in reader.with_prefix("hooks.").items():
        try:
            hooks[conv.to_hook_name(suffix)] = conv.to_hook_spec(value)
        except ValueError as error:
            reader.error(key, str(error))
    return hooks


def _read_stream(reader, stream_key):
    """Return the ``<stream_key>.*`` options as a dict (numbers and ``utc`` typed); empty if there are none."""
    options = {}
    for suffix, (key, value) in reader.with_prefix(stream_key + ".").items():
        if not suffix:
            reader.error(key, "empty stream option name")
            continue
        converter = STREAM_OPTION_TYPES.get(suffix, str)
        try:
            options[suffix] = converter(value)
        except ValueError as error:
            reader.error(key, str(error))
    return options


def _read_free_form(reader, watcher):
    """Keep every other key as a string option (plugins read e.g. ``flapping.max_retry`` from there)."""
    for key in reader.unused():
        if key in ("env", "name"):
            # Circus silently drops these; say so, a user who wrote them expected an effect
            hint = "use an [env:%s] section" % watcher["name"] if key == "env" else "the name is the section's"
            reader.warn(key, "ignored in a watcher section (%s)" % hint)
        elif key in _MAPPING_KEYS:
            reader.error(key, "write it key by key (e.g. %s)" % _mapping_example(key))
        elif key in _API_ONLY_KEYS:
            reader.error(key, "can only be set through the Python API")
        else:
            watcher[key] = reader.values[key]


def _mapping_example(key):
    return {"hooks": "hooks.before_start = pkg.mod.func", "rlimits": "rlimit_nofile = 1024"}.get(
        key, "%s.class = FileStream" % key)


def _check_watcher(reader, watcher, socket_names):
    """Cross-option rules that no single converter can check."""
    if watcher["singleton"] and watcher["numprocesses"] > 1:
        reader.error("numprocesses", "a singleton watcher runs at most 1 process, got %d" % watcher["numprocesses"])
    stdin_socket = watcher["stdin_socket"]
    if stdin_socket is not None and stdin_socket.lower() not in socket_names:
        reader.error("stdin_socket", "unknown socket %r (no [socket:%s] section)" % (stdin_socket, stdin_socket))


def build_socket(section, values, warnings):
    """Return the CircusSocket keyword arguments of ``[socket:NAME]`` (name lower-cased, as Circus)."""
    reader = FieldReader(section, values, warnings)
    name = section.name.split(":", 1)[1].strip().lower()
    if not name:
        reader.error(None, "socket name is empty")
    sock = {"name": name}
    reader.fill(sock, SOCKET_FIELDS)
    if sock["path"] is not None:
        if "family" in values and sock["family"] != "AF_UNIX":
            reader.error("family", "a socket with a path is AF_UNIX, not %s" % sock["family"])
        # a unix socket has no host or port (listsockets shows them as null)
        sock.update(family="AF_UNIX", host=None, port=None)
    elif sock["family"] == "AF_UNIX":
        reader.error("path", "an AF_UNIX socket needs a path")
    for key in reader.own_unused():
        reader.warn(key, "unknown socket option, ignored")
    reader.raise_errors()
    return sock


def build_plugin(section, values, warnings):
    """Return the plugin config of ``[plugin:NAME]``: every key as a string, ``use`` checked, ``priority`` int."""
    reader = FieldReader(section, values, warnings)
    if not section.name.split(":", 1)[1].strip():
        reader.error(None, "plugin name is empty")
    plugin = dict(values)
    # the plugin runs as the watcher "plugin:NAME" (section name verbatim), as in Circus
    plugin["name"] = section.name
    use = reader.convert("use", conv.to_dotted_name)
    if "use" not in values:
        reader.error("use", "missing plugin class (use = package.module.Class is required)")
    elif use is not _ABSENT:
        plugin["use"] = use
    # plugins start before ordinary watchers (priority 0) unless told otherwise
    plugin["priority"] = reader.convert("priority", conv.to_int, 1)
    # isolate = true: the plugin runs in its own process (gcircus.plugin_host.isolated)
    isolate = reader.convert("isolate", conv.to_bool, False)
    if isolate:
        plugin["isolate"] = True
    else:
        plugin.pop("isolate", None)
    if not reader.errors:
        check_plugin_import(reader, plugin)
    reader.raise_errors()
    return plugin
