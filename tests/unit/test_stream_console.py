"""StdoutStream and FancyStdoutStream: decoding across chunks, the Fancy line format, colours."""
import re

from gcircus.stream import FancyStdoutStream, StdoutStream, notify_eof

TEXT = 'héllo wörld € 𝄞 ✓ ñ'
DATA = (TEXT + '\n').encode('utf-8')
FANCY = re.compile(r'^\x1b\[0;3(\d);40m(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \[(\d+)\] \| (.*)\x1b\[0m$')


def split_everywhere(stream):
    """Send DATA cut at every byte offset (two chunks each, one pid per offset), then byte by byte."""
    for offset in range(1, len(DATA)):
        stream({'data': DATA[:offset], 'pid': offset, 'name': 'stdout'})
        stream({'data': DATA[offset:], 'pid': offset, 'name': 'stdout'})
    for byte in range(len(DATA)):
        stream({'data': DATA[byte:byte + 1], 'pid': 999, 'name': 'stdout'})


def test_stdout_stream_decodes_characters_split_across_chunks(capsys):
    stream = StdoutStream()
    split_everywhere(stream)
    stream.close()
    assert capsys.readouterr().out == (TEXT + '\n') * len(DATA)


def test_stdout_stream_writes_text_as_is_and_replaces_invalid_bytes(capsys):
    stream = StdoutStream()
    stream({'data': b'no newline ', 'pid': 1, 'name': 'stdout'})
    stream({'data': b'bad \xff byte, cut \xe2\x82', 'pid': 1, 'name': 'stdout'})
    assert capsys.readouterr().out == 'no newline bad \ufffd byte, cut '
    notify_eof(stream, 1, 'stdout')         # the incomplete character at EOF becomes one replacement character
    assert capsys.readouterr().out == '\ufffd'


def test_fancy_stream_splits_characters_nowhere(capsys):
    stream = FancyStdoutStream(color='blue')
    split_everywhere(stream)
    stream.close()
    lines = capsys.readouterr().out.split('\n')
    assert lines[-1] == ''
    assert [FANCY.match(line).group(4) for line in lines[:-1]] == [TEXT] * len(DATA)


def test_fancy_stream_line_format(capsys):
    stream = FancyStdoutStream(color='green')
    stream({'data': b'first\n\nsec', 'pid': 1234, 'name': 'stdout'})
    stream({'data': b'ond\nthird', 'pid': 1234, 'name': 'stdout'})
    notify_eof(stream, 1234, 'stdout')
    lines = capsys.readouterr().out.split('\n')
    matches = [FANCY.match(line) for line in lines[:-1]]
    assert [(m.group(1), m.group(3), m.group(4)) for m in matches] == [
        ('2', '1234', 'first'), ('2', '1234', 'second'), ('2', '1234', 'third')]   # empty line skipped


def test_fancy_stream_custom_time_format(capsys):
    stream = FancyStdoutStream(color='red', time_format='T%Y')
    stream({'data': b'x\n', 'pid': 5, 'name': 'stderr', 'timestamp': 0})
    out = capsys.readouterr().out
    assert re.fullmatch(r'\x1b\[0;31;40mT19(69|70) \[5\] \| x\x1b\[0m\n', out)


def test_fancy_stream_colour_codes_and_random_fallback():
    for code, colour in enumerate(FancyStdoutStream.colors, 1):
        assert FancyStdoutStream(color=colour)._start == '\x1b[0;3%d;40m' % code
    for colour in (None, 'purple'):
        assert FancyStdoutStream(color=colour).color in FancyStdoutStream.colors


def test_console_streams_flush_held_text_on_close(capsys):
    fancy, plain = FancyStdoutStream(color='cyan'), StdoutStream()
    fancy({'data': b'unterminated', 'pid': 2, 'name': 'stdout'})
    plain({'data': b'\xe2\x82', 'pid': 2, 'name': 'stdout'})
    assert capsys.readouterr().out == ''
    fancy.close()
    plain.close()
    out = capsys.readouterr().out
    assert out.startswith('\x1b[0;36;40m') and '| unterminated\x1b[0m\n' in out
    assert out.endswith('\ufffd')
