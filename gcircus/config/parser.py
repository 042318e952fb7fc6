"""A small INI reader with Circus's parsing rules, and the ConfigError every config module raises.

Why not ``configparser``: Circus configs rely on *first definition wins* (a repeated option, a repeated section
or an included file never overrides what was read first) and on raw values (no ``%`` interpolation), and we want
every value to remember the file it came from so errors can name it.  The rules (Circus's):

- ``[section]`` headers; ``key = value`` or ``key: value`` (the first ``=`` or ``:`` splits); keys keep their case.
- Whole-line comments start with ``#`` or ``;`` (after indentation), or have ``rem``/``REM`` as first word; an
  inline comment starts at a ``;`` preceded by whitespace (``#`` is never inline, URLs keep their fragments).
- Indented lines continue the previous value (joined with ``\\n``); blank lines inside such a value are kept,
  trailing ones dropped.  A value written ``""`` is the empty string.
- ``[DEFAULT]`` keys are inherited by every section that does not define them.
- Malformed lines are collected and reported together once the whole file has been read.
"""
import os
import re
import stat

from gcircus.exc import ArgumentError

DEFAULT_SECTION = "DEFAULT"
#: The largest config file read. A real one is a few KiB (10,000 watchers fit in about 1 MiB); the limit only
#: stops a mistake such as a log file or a disk image named as the config from filling the daemon's memory.
MAX_CONFIG_BYTES = 16 << 20

_HEADER_RE = re.compile(r"^\[(?P<name>[^\]]*)\]$")
_OPTION_RE = re.compile(r"^(?P<key>[^=:]*?)\s*[=:]\s*(?P<value>.*)$")
_INLINE_COMMENT_RE = re.compile(r"\s;")


class ConfigError(ArgumentError):
    """A configuration problem; the message names the file (and section, key and value when known).

    ``errors`` lists every individual message when several were found at once.
    """

    def __init__(self, message, errors=None):
        super().__init__(message)
        self.errors = list(errors) if errors else [message]


def file_kind(mode):
    """What a non-regular file is, for messages: 'a directory', 'a FIFO', ..."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def check_regular_file(path, limit=MAX_CONFIG_BYTES):
    """The reason ``path`` cannot be a config file (not a regular file, or larger than ``limit``), or None.

    Reading anything else could hang (a FIFO without a writer) or never end (``/dev/zero``).
    Raises OSError if ``path`` cannot be stat()ed."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (%s)" % file_kind(info.st_mode)
    if info.st_size > limit:
        return "too large for a config file (%d bytes; the limit is %d)" % (info.st_size, limit)
    return None


def read_regular_file(path, limit=MAX_CONFIG_BYTES):
    """The bytes of ``path``; ConfigError (naming it) unless it is a regular file of at most ``limit`` bytes."""
    problem = check_regular_file(path, limit)
    if problem is not None:
        raise ConfigError("%s: %s" % (path, problem))
    # O_NONBLOCK: should the path have become a FIFO since the stat, the open must not wait for a writer;
    # reading at most limit + 1 bytes bounds the memory used even if the file grew meanwhile.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as stream:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError("%s: not a regular file (%s)" % (path, file_kind(mode)))
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise ConfigError("%s: too large for a config file (more than %d bytes)" % (path, limit))
    return data


class Section:
    """One section: its own values, where each came from, and the DEFAULT values it inherits."""

    def __init__(self, name, path, defaults):
        self.name = name
        self.path = path            # the file whose header opened this section first
        self.own = {}               # key -> value, as written in this section
        self.origins = {}           # key -> file that defined it
        self._defaults = defaults   # the shared DEFAULT Section (or None for DEFAULT itself)

    def items(self):
        """Return {key: value} including inherited DEFAULT keys; the section's own keys come first."""
        merged = dict(self.own)
        if self._defaults is not None:
            for key, value in self._defaults.own.items():
                merged.setdefault(key, value)
        return merged

    def origin(self, key):
        """Return the file that defined ``key`` (this section's, or DEFAULT's)."""
        if key in self.origins:
            return self.origins[key]
        if self._defaults is not None and key in self._defaults.origins:
            return self._defaults.origins[key]
        return self.path


class IniDocument:
    """Sections read from one or more files, in order of first appearance; the first definition of a key wins."""

    def __init__(self):
        self.defaults = Section(DEFAULT_SECTION, None, None)
        self.sections = {}          # name -> Section, insertion-ordered
        self.files = []             # every file read, in order

    def section_names(self):
        """Return the section names (DEFAULT excluded) in order of first appearance."""
        return list(self.sections)

    def get(self, name):
        """Return the Section called ``name`` or None."""
        return self.sections.get(name)

    def read_file(self, path):
        """Parse ``path`` into this document; raises OSError if unreadable, ConfigError if it is not a regular
        file of at most MAX_CONFIG_BYTES or has syntax errors, UnicodeDecodeError if it is not UTF-8."""
        text = read_regular_file(path).decode("utf-8")
        self.files.append(path)
        self.read_string(text, path)

    def read_string(self, text, path="<string>"):
        """Parse INI ``text`` (``path`` is only used in messages and origins)."""
        reader = _FileReader(self, path)
        for number, line in enumerate(text.splitlines(), start=1):
            reader.feed(number, line)
        reader.finish()
        if reader.errors:
            raise ConfigError("\n".join(reader.errors), reader.errors)

    def _open_section(self, name, path):
        if name == DEFAULT_SECTION:
            return self.defaults
        if name not in self.sections:
            self.sections[name] = Section(name, path, self.defaults)
        return self.sections[name]


class _FileReader:
    """Line-by-line state of reading one file into an IniDocument."""

    def __init__(self, document, path):
        self.document = document
        self.path = path
        self.errors = []
        self.section = None
        self.lines = None           # value lines of the option being read, or None
        self.target = None          # (section, key) receiving them; None when the key was already defined

    def feed(self, number, line):
        stripped = line.strip()
        if not stripped:
            if self.lines is not None:
                self.lines.append("")
            return
        if _is_comment(stripped):
            return
        content = _strip_inline_comment(stripped)
        # an indented line after an option continues its value
        if line[0].isspace() and self.lines is not None:
            self.lines.append(content)
            return
        self.finish()
        if content.startswith("["):
            self._read_header(number, content, line)
        else:
            self._read_option(number, content, line)

    def _read_header(self, number, content, line):
        header = _HEADER_RE.match(content)
        name = header.group("name").strip() if header else ""
        if not name:
            self.errors.append("%s:%d: malformed section header %r" % (self.path, number, line))
            # swallow the broken section's options instead of reporting each as "outside of any section"
            self.section = Section(name, self.path, None)
            return
        self.section = self.document._open_section(name, self.path)

    def _read_option(self, number, content, line):
        option = _OPTION_RE.match(content)
        if self.section is None:
            self.errors.append("%s:%d: option outside of any [section]: %r" % (self.path, number, line))
        elif option is None or not option.group("key"):
            self.errors.append("%s:%d: cannot parse line %r (expected key = value)" % (self.path, number, line))
        else:
            key = option.group("key")
            first = key not in self.section.own
            self.target = (self.section, key) if first else None
            self.lines = [option.group("value")]

    def finish(self):
        """Store the option being read (if it is the first definition of its key)."""
        if self.lines is not None and self.target is not None:
            section, key = self.target
            value = "\n".join(self.lines).rstrip()
            section.own[key] = "" if value == '""' else value
            section.origins[key] = self.path
        self.lines = None
        self.target = None


def _is_comment(stripped):
    if stripped[0] in "#;":
        return True
    return stripped.split(None, 1)[0] in ("rem", "REM")


def _strip_inline_comment(stripped):
    match = _INLINE_COMMENT_RE.search(stripped)
    return stripped[:match.start()].rstrip() if match else stripped
