"""Unit tests of gcircus.converters: each converter's accepted spellings and its error messages."""
import re
import resource
import signal
import socket

import pytest

from gcircus import converters as conv


@pytest.mark.parametrize("text", ["yes", "YES", "true", "True", "on", "1", " on "])
def test_to_bool_true_words(text):
    assert conv.to_bool(text) is True


@pytest.mark.parametrize("text", ["no", "No", "false", "FALSE", "off", "0", "\toff"])
def test_to_bool_false_words(text):
    assert conv.to_bool(text) is False


@pytest.mark.parametrize("text", ["", "maybe", "2", "y", "enabled"])
def test_to_bool_rejects_other_words_quoting_them(text):
    with pytest.raises(ValueError, match=re.escape("invalid boolean %r" % text)):
        conv.to_bool(text)


def test_to_bool_passes_real_booleans_through():
    assert conv.to_bool(True) is True and conv.to_bool(False) is False


def test_to_int_and_its_variants():
    assert conv.to_int(" 42 ") == 42
    assert conv.to_int("-3") == -3
    assert conv.to_nonneg_int("0") == 0
    assert conv.to_retry_count("-1") == -1
    with pytest.raises(ValueError, match=r"invalid integer 'abc'"):
        conv.to_int("abc")
    with pytest.raises(ValueError, match=r"invalid integer '1\.5'"):
        conv.to_int("1.5")
    with pytest.raises(ValueError, match=r"invalid value '-1' \(must be >= 0\)"):
        conv.to_nonneg_int("-1")
    with pytest.raises(ValueError, match=r"invalid retry count '-2'"):
        conv.to_retry_count("-2")


def test_to_float_and_duration():
    assert conv.to_float("10.5") == 10.5
    assert conv.to_float("-1") == -1.0
    assert conv.to_duration("30") == 30.0
    assert isinstance(conv.to_duration("30"), float)
    with pytest.raises(ValueError, match=r"invalid number 'soon'"):
        conv.to_float("soon")
    with pytest.raises(ValueError, match=r"invalid number 'nan' \(must be finite\)"):
        conv.to_float("nan")
    with pytest.raises(ValueError, match=r"invalid number 'inf'"):
        conv.to_duration("inf")
    with pytest.raises(ValueError, match=r"invalid duration '-0.5' \(must be >= 0\)"):
        conv.to_duration("-0.5")


@pytest.mark.parametrize("text, expected", [
    ("15", signal.SIGTERM),
    ("TERM", signal.SIGTERM),
    ("SIGTERM", signal.SIGTERM),
    ("sigterm", signal.SIGTERM),
    ("int", signal.SIGINT),
    ("Hup", signal.SIGHUP),
    (" SIGKILL ", signal.SIGKILL),
    ("SIGRTMIN+2", signal.SIGRTMIN + 2),
    ("rtmin+1", signal.SIGRTMIN + 1),
])
def test_to_signum_accepts_numbers_and_names(text, expected):
    assert conv.to_signum(text) == int(expected)


@pytest.mark.parametrize("text", ["", "SIGFOO", "TERMINATE", "0", "999", "SIG", "SIG_DFL", "-15", "TERM+x",
                                  "SIGRTMAX+5"])
def test_to_signum_rejects_unknown_signals(text):
    with pytest.raises(ValueError, match=re.escape("invalid signal %r" % text)):
        conv.to_signum(text)


@pytest.mark.parametrize("text, expected", [
    ("002", 0o002), ("022", 0o022), ("0", 0), ("777", 0o777), ("0o027", 0o027), ("10", 0o10),
])
def test_to_umask_reads_octal(text, expected):
    assert conv.to_umask(text) == expected


@pytest.mark.parametrize("text", ["089", "abc", "", "1000", "-1"])
def test_to_umask_rejects_non_octal_or_out_of_range(text):
    with pytest.raises(ValueError, match=re.escape("invalid octal umask %r" % text)):
        conv.to_umask(text)


def test_to_port_range():
    assert conv.to_port("0") == 0
    assert conv.to_port("65535") == 65535
    with pytest.raises(ValueError, match=r"invalid port '65536' \(must be between 0 and 65535\)"):
        conv.to_port("65536")
    with pytest.raises(ValueError, match=r"invalid integer 'http'"):
        conv.to_port("http")


def test_rlimit_names_and_values():
    assert conv.to_rlimit_name("NOFILE") == "nofile"
    assert conv.to_rlimit_name("core") == "core"
    with pytest.raises(ValueError, match=r"unknown rlimit 'nofiles'"):
        conv.to_rlimit_name("nofiles")
    assert conv.to_rlimit_value("1024") == 1024
    for unlimited in ("", "unlimited", "INFINITY", "-1"):
        assert conv.to_rlimit_value(unlimited) == resource.RLIM_INFINITY
    with pytest.raises(ValueError, match=r"invalid rlimit '-5'"):
        conv.to_rlimit_value("-5")
    with pytest.raises(ValueError, match=r"invalid integer 'lots'"):
        conv.to_rlimit_value("lots")


@pytest.mark.parametrize("text", ["a.b", "pkg.mod.func", "pkg.mod:func", "pkg.mod:Class.method", "_x.y1"])
def test_to_dotted_name_accepts_importable_shapes(text):
    assert conv.to_dotted_name(" %s " % text) == text


@pytest.mark.parametrize("text", ["", "func", "a..b", "a.b.", "1a.b", "a.b:c:d", "a b.c", "a.b:", "a-b.c"])
def test_to_dotted_name_rejects_bad_shapes(text):
    with pytest.raises(ValueError, match=re.escape("invalid dotted name %r" % text)):
        conv.to_dotted_name(text)


def test_hook_names_and_specs():
    assert conv.to_hook_name("before_start") == "before_start"
    with pytest.raises(ValueError, match=r"unknown hook 'before_starts' \(expected one of before_start"):
        conv.to_hook_name("before_starts")
    assert conv.to_hook_spec("a.b.c") == ("a.b.c", False)
    assert conv.to_hook_spec("a.b:c, true") == ("a.b:c", True)
    assert conv.to_hook_spec(" a.b ,OFF") == ("a.b", False)


@pytest.mark.parametrize("text, reason", [
    ("a.b,maybe", "invalid boolean 'maybe'"),
    ("a.b,true,extra", "expected dotted.name"),
    ("notdotted", "invalid dotted name 'notdotted'"),
    (",true", "invalid dotted name ''"),
])
def test_to_hook_spec_errors_quote_the_whole_spec(text, reason):
    with pytest.raises(ValueError) as caught:
        conv.to_hook_spec(text)
    assert "invalid hook %r" % text in str(caught.value)
    assert reason in str(caught.value)


def test_socket_family_type_and_proto():
    assert conv.to_socket_family("af_unix") == "AF_UNIX"
    assert conv.to_socket_type("sock_dgram") == "SOCK_DGRAM"
    assert conv.to_socket_proto("6") == 6
    assert conv.to_socket_proto("tcp") == "tcp"
    with pytest.raises(ValueError, match=r"invalid socket family 'AF_PACKET'"):
        conv.to_socket_family("AF_PACKET")
    # the prefix may be left out and the number given, as CircusSocket(family=socket.AF_INET6) does
    assert conv.to_socket_type("stream") == "SOCK_STREAM"
    assert conv.to_socket_family(socket.AF_INET6) == "AF_INET6"
    with pytest.raises(ValueError, match=r"invalid socket type 'pipe'"):
        conv.to_socket_type("pipe")
    with pytest.raises(ValueError, match=r"invalid protocol 'tc p'"):
        conv.to_socket_proto("tc p")


def test_python_version_word_list_and_choice():
    assert conv.to_python_version("3.11") == "3.11"
    with pytest.raises(ValueError, match=r"invalid python version '3' \(expected X.Y\)"):
        conv.to_python_version("3")
    assert conv.to_word_list(" a.ini\n b/*.ini  ") == ["a.ini", "b/*.ini"]
    choose = conv.to_choice(("gevent", "thread"))
    assert choose("Thread") == "thread"
    with pytest.raises(ValueError, match=r"invalid value 'tornado' \(expected one of gevent, thread\)"):
        choose("tornado")
