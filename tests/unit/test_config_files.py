"""What the loader agrees to read: regular files of a sane size only.

A device (``/dev/zero``), a FIFO or a directory named as the config file, an include or a logger config is refused
at once with one line naming it; reading it would hang (a FIFO with no writer) or fill memory without end
(``/dev/zero`` gives bytes forever).
"""
import os

import pytest

from gcircus.config import ConfigError, load_config
from gcircus.config.parser import MAX_CONFIG_BYTES
from gcircus.logsetup import LoggingSetupError, configure_logging


def write(path, text):
    path.write_text(text)
    return str(path)


def single_line(error):
    text = str(error)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_a_character_device_is_refused_not_read_forever():
    with pytest.raises(ConfigError) as caught:
        load_config("/dev/zero")
    assert single_line(caught.value) == "/dev/zero: not a regular file (a character device)"


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "gcircus.ini"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError) as caught:
        load_config(str(fifo))
    assert single_line(caught.value) == "%s: not a regular file (a FIFO)" % fifo


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(str(tmp_path))
    assert single_line(caught.value) == "%s: not a regular file (a directory)" % tmp_path


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_an_include_that_is_not_a_regular_file_is_refused(tmp_path, kind):
    if kind == "device":
        target = "/dev/zero"
        described = "a character device"
    else:
        target = str(tmp_path / "extra.ini")
        os.mkfifo(target)
        described = "a FIFO"
    main = write(tmp_path / "main.ini", "[circus]\ninclude = %s\n[watcher:w]\ncmd = sleep 1\n" % target)
    with pytest.raises(ConfigError) as caught:
        load_config(main)
    assert single_line(caught.value) == "%s: not a regular file (%s)" % (target, described)


def test_a_file_past_the_size_limit_is_refused_unread(tmp_path):
    huge = tmp_path / "huge.ini"
    with open(huge, "wb") as handle:
        handle.truncate(MAX_CONFIG_BYTES + 1)    # sparse: costs no disk
    with pytest.raises(ConfigError) as caught:
        load_config(str(huge))
    assert single_line(caught.value) == "%s: too large for a config file (%d bytes; the limit is %d)" % (
        huge, MAX_CONFIG_BYTES + 1, MAX_CONFIG_BYTES)


def test_a_file_at_the_size_limit_still_loads(tmp_path):
    text = "[watcher:w]\ncmd = sleep 1\n"
    path = tmp_path / "padded.ini"
    path.write_text(text + "#" * (MAX_CONFIG_BYTES - len(text) - 1) + "\n")
    assert [w["name"] for w in load_config(str(path))["watchers"]] == ["w"]


@pytest.mark.parametrize("suffix", [".ini", ".json"])
def test_a_logger_config_that_is_not_a_regular_file_is_refused(tmp_path, suffix):
    fifo = tmp_path / ("logging" + suffix)
    os.mkfifo(fifo)
    with pytest.raises(LoggingSetupError) as caught:
        configure_logging("info", "-", str(fifo))
    assert single_line(caught.value) == "logger config %r: not a regular file (a FIFO)" % str(fifo)
