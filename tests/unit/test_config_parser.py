"""Unit tests of gcircus.config.parser: Circus's INI parsing rules and syntax-error reporting."""
import os

import pytest

from gcircus.config.parser import ConfigError, IniDocument

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures", "config")


def parse(text):
    document = IniDocument()
    document.read_string(text, "t.ini")
    return document


@pytest.fixture
def rules():
    document = IniDocument()
    document.read_file(os.path.join(FIXTURES, "parser_rules.ini"))
    return document


def test_inline_semicolon_comment_needs_whitespace_and_hash_is_never_inline(rules):
    values = rules.get("watcher:rules").items()
    assert values["cmd"] == "/bin/rules --url http://example.com/#fragment"
    assert values["shell_args"] == "a;b"


def test_continuation_lines_keep_inner_blank_lines_and_skip_comment_lines(rules):
    assert rules.get("watcher:rules").items()["args"] == "--first\n--second\n\n--third"


def test_double_quotes_alone_mean_empty_string(rules):
    assert rules.get("watcher:rules").items()["empty"] == ""


def test_first_definition_wins_within_a_section_and_across_repeated_headers(rules):
    values = rules.get("watcher:rules").items()
    assert values["numprocesses"] == "2"                 # "numprocesses: 2" came before "= 9"
    assert values["cmd"].startswith("/bin/rules")        # the repeated [watcher:rules] cannot override...
    assert values["priority"] == "5"                     # ...but adds keys the first one lacked


def test_default_section_is_inherited_unless_overridden(rules):
    assert rules.get("watcher:rules").items()["working_dir"] == "/srv/default"
    assert rules.get("watcher:overrides-default").items()["working_dir"] == "/srv/own"
    assert "working_dir" not in rules.get("watcher:rules").own
    assert "DEFAULT" not in rules.section_names()


def test_whole_line_comments_and_rem_lines_are_skipped(rules):
    assert rules.section_names() == ["watcher:rules", "watcher:overrides-default", "watcher:empty"]
    assert rules.get("watcher:empty").own == {}


def test_key_case_is_preserved_and_colon_splits_like_equals():
    values = parse("[env]\nMyVar: a=b\nother = c:d\n").get("env").items()
    assert values == {"MyVar": "a=b", "other": "c:d"}


def test_origins_name_the_file_that_defined_each_key():
    document = IniDocument()
    document.read_string("[watcher:a]\ncmd = x\n", "main.ini")
    document.read_string("[watcher:a]\ncmd = y\nnumprocesses = 2\n", "inc.ini")
    section = document.get("watcher:a")
    assert section.items() == {"cmd": "x", "numprocesses": "2"}
    assert (section.origin("cmd"), section.origin("numprocesses"), section.path) == ("main.ini", "inc.ini",
                                                                                   "main.ini")


@pytest.mark.parametrize("text, message", [
    ("[watcher:a]\njust some words\n", "t.ini:2: cannot parse line 'just some words' (expected key = value)"),
    ("cmd = x\n[watcher:a]\n", "t.ini:1: option outside of any [section]: 'cmd = x'"),
    ("[watcher:a\ncmd = x\n", "t.ini:1: malformed section header '[watcher:a'"),
    ("[]\ncmd = x\n", "t.ini:1: malformed section header '[]'"),
    ("[watcher:a]\n= value\n", "t.ini:2: cannot parse line '= value'"),
])
def test_syntax_errors_name_file_and_line(text, message):
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert message in str(caught.value)


def test_all_syntax_errors_of_a_file_are_reported_together():
    with pytest.raises(ConfigError) as caught:
        parse("[a:b]\nbad one\nok = 1\nbad two\n")
    assert [error.split(":")[1] for error in caught.value.errors] == ["2", "4"]
    assert isinstance(caught.value, ValueError)
