"""Hypothesis fuzz of the INI loader: whatever the file holds, load_config returns a configuration or raises a
ConfigError whose every line names the file; never another exception, never a hang (pytest-timeout bounds it).

Files are built from the pieces real configs are made of (known sections and option names, ``$(circus.env.X)``
references, continuation lines, comments, includes) mixed with arbitrary text and bytes that are not UTF-8.
"""
import os
import shutil
import tempfile

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gcircus.config import ConfigError, load_config
from gcircus.options import ARBITER_OPTIONS, SOCKET_OPTIONS, WATCHER_OPTIONS

EXAMPLES = 300

KEYS = sorted(set(ARBITER_OPTIONS) | set(SOCKET_OPTIONS) | set(WATCHER_OPTIONS)) + [
    "include", "include_dir", "use", "rlimit_nofile", "rlimit_bogus", "hooks.before_start", "hooks.nope",
    "stdout_stream.class", "stdout_stream.max_bytes", "stderr_stream.filename", "env", "PATH", "flapping.x"]
SECTIONS = ["circus", "env", "env:w*", "env:a,b", "watcher:w", "watcher:W", "watcher:", "socket:s", "plugin:p",
            "DEFAULT", "foo:bar", "watcher:a b"]
NUMBERS = st.one_of(st.integers(min_value=-2 ** 70, max_value=2 ** 70).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr))
WORDS = st.sampled_from(["true", "false", "yes", "off", "SIGTERM", "sigkill", "9", "0o777", "0600", "-1", "",
                         '""', "$(circus.env.HOME)", "$(circus.env.missing)", "$(circus.wid)", "$(circus.sockets.s)",
                         "*.ini", "missing.ini", "sub", "gcircus.plugins.flapping.Flapping", "FileStream",
                         "tcp://127.0.0.1:0", "ipc:///tmp/x.sock", "sleep 1", "%(here)s", "a ; comment", "a # b"])
VALUES = st.one_of(WORDS, NUMBERS, st.text(max_size=40).map(lambda text: text.replace("\n", " ")))


@st.composite
def odd_line(draw):
    kind = draw(st.sampled_from(["section", "continuation", "comment", "raw", "blank"]))
    if kind == "section":
        return "[%s]" % draw(st.text(max_size=15)).replace("\n", "")
    if kind == "continuation":
        return "    " + draw(VALUES)
    if kind == "comment":
        return draw(st.sampled_from(["#", ";", "rem", "REM"])) + " " + draw(VALUES)
    if kind == "blank":
        return ""
    return draw(st.text(max_size=30)).replace("\n", " ")


@st.composite
def option_line(draw, keys):
    key = draw(st.one_of(st.sampled_from(keys), st.sampled_from(keys), st.text(max_size=12)))
    value = draw(VALUES)
    return "%s%s%s" % (key.replace("\n", ""), draw(st.sampled_from([" = ", "=", ": "])), value)


@st.composite
def ini_text(draw):
    """Mostly well-formed sections (so values get converted, watchers built, env expanded), with odd lines mixed in."""
    lines = []
    for name in draw(st.lists(st.sampled_from(SECTIONS), max_size=6)):
        lines.append("[%s]" % name)
        if name.startswith("watcher") and draw(st.booleans()):
            lines.append("cmd = sleep 1")
        keys = sorted(WATCHER_OPTIONS) if name.startswith("watcher") else (
            sorted(SOCKET_OPTIONS) if name.startswith("socket") else KEYS)
        lines.extend(draw(st.lists(option_line(keys), max_size=4)))
        if draw(st.integers(0, 4)) == 0:
            lines.append(draw(odd_line()))
    return "\n".join(lines).encode("utf-8", "surrogatepass")


ini_files = st.one_of(ini_text(), ini_text(), ini_text(), st.binary(max_size=200))


def check_loaded(path):
    try:
        config = load_config(path, environ={"HOME": "/home/someone"})
    except ConfigError as error:
        lines = str(error).splitlines()
        assert lines, "an empty ConfigError"
        for line in lines:
            assert path in line, "a ConfigError line that names no file: %r" % line
        event("refused")
        return
    assert set(config) >= {"circus", "watchers", "sockets", "plugins", "errors", "warnings"}
    for message in config["errors"] + config["warnings"]:
        assert isinstance(message, str) and message
    event("loaded with %s watcher(s)" % ("no" if not config["watchers"] else "some"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(main=ini_files, included=ini_files)
def test_the_loader_answers_any_file_with_a_config_or_a_clear_error(main, included):
    directory = tempfile.mkdtemp(prefix="gc-fuzz-")
    try:
        os.mkdir(os.path.join(directory, "sub"))
        for name, data in (("gcircus.ini", main), ("missing.ini", included), ("sub/extra.ini", included)):
            with open(os.path.join(directory, name), "wb") as handle:
                handle.write(data)
        check_loaded(os.path.join(directory, "gcircus.ini"))
    finally:
        shutil.rmtree(directory)
