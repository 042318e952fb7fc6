"""FileStream and WatchedFileStream: framing, byte-exact output, size rotation, logrotate, write errors."""
import logging
import os
import random
import re

import pytest

from gcircus.stream import FileStream, WatchedFileStream, eof_chunk, notify_eof
from gcircus.stream.base import MAX_PARTIAL_LINE

PREFIXED = re.compile(r'^\d\d:\d\d:\d\d \[(\d+)\] \| (.*)$')


def feed(stream, data, sizes, pid=42, name='stdout'):
    """Hand ``data`` to ``stream`` in chunks whose sizes cycle through ``sizes``."""
    start, index = 0, 0
    while start < len(data):
        size = sizes[index % len(sizes)]
        stream({'data': data[start:start + size], 'pid': pid, 'name': name})
        start, index = start + size, index + 1


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def prefixed_lines(path):
    """[(pid, text)] of a file written with time_format; fails on any line without exactly one prefix."""
    result = []
    for line in read(path).decode('utf-8').split('\n')[:-1]:
        match = PREFIXED.match(line)
        assert match, 'line without prefix: %r' % line
        assert not PREFIXED.match(match.group(2)), 'line with two prefixes: %r' % line
        result.append((int(match.group(1)), match.group(2)))
    return result


def test_time_format_prefixes_each_of_10000_lines_once_in_order(tmp_path):
    path = tmp_path / 'out.log'
    data = b''.join(b'line %05d\n' % number for number in range(10000))
    stream = FileStream(str(path), time_format='%H:%M:%S')
    feed(stream, data, [1, 7, 13, 333, 4097, 2, 65537])
    stream.close()
    assert prefixed_lines(path) == [(42, 'line %05d' % number) for number in range(10000)]


def test_lines_of_interleaved_pipes_are_framed_separately(tmp_path):
    path = tmp_path / 'out.log'
    stream = FileStream(str(path), time_format='%H:%M:%S')
    stream({'data': b'first half of 1', 'pid': 1, 'name': 'stdout'})
    stream({'data': b'first half of 2', 'pid': 2, 'name': 'stdout'})
    stream({'data': b'err of 1\n', 'pid': 1, 'name': 'stderr'})
    stream({'data': b', second half of 2\n', 'pid': 2, 'name': 'stdout'})
    stream({'data': b', second half of 1\n', 'pid': 1, 'name': 'stdout'})
    stream.close()
    assert prefixed_lines(path) == [(1, 'err of 1'), (2, 'first half of 2, second half of 2'),
                                    (1, 'first half of 1, second half of 1')]


def test_partial_last_line_is_held_until_eof(tmp_path):
    path = tmp_path / 'out.log'
    stream = FileStream(str(path), time_format='%H:%M:%S')
    stream({'data': b'complete\nno newline yet', 'pid': 7, 'name': 'stdout'})
    assert prefixed_lines(path) == [(7, 'complete')]
    notify_eof(stream, 7, 'stdout')
    assert prefixed_lines(path) == [(7, 'complete'), (7, 'no newline yet')]
    stream({'data': b'after eof\n', 'pid': 7, 'name': 'stdout'})
    assert prefixed_lines(path)[-1] == (7, 'after eof')


def test_close_writes_held_partial_lines(tmp_path):
    path = tmp_path / 'out.log'
    stream = FileStream(str(path), time_format='%H:%M:%S')
    stream({'data': b'pending', 'pid': 3, 'name': 'stderr'})
    stream.close()
    assert prefixed_lines(path) == [(3, 'pending')]


def test_overlong_partial_line_is_written_in_pieces(tmp_path):
    path = tmp_path / 'out.log'
    stream = FileStream(str(path), time_format='%H:%M:%S')
    feed(stream, b'x' * (2 * MAX_PARTIAL_LINE + 10), [1000])
    assert prefixed_lines(path) == [(42, 'x' * MAX_PARTIAL_LINE)] * 2
    stream(eof_chunk(42, 'stdout'))
    assert prefixed_lines(path)[-1] == (42, 'x' * 10)


def test_without_time_format_bytes_pass_through_exactly(tmp_path):
    path = tmp_path / 'out.log'
    data = random.Random(1).randbytes(3 * 1024 * 1024) + b'\xff\xfe invalid utf-8 \r\n\x00'
    stream = FileStream(str(path))
    feed(stream, data, [1, 1023, 4096, 65535, 1 << 20])
    notify_eof(stream, 42, 'stdout')
    stream.close()
    assert read(path) == data


def test_unterminated_chunks_are_not_framed_without_time_format(tmp_path):
    # Circus pins this: two 1100-character chunks without a newline make exactly 2200 characters.
    path = tmp_path / 'out.log'
    stream = FileStream(str(path))
    stream({'data': b'a' * 1100, 'pid': 1, 'name': 'stdout'})
    stream({'data': b'b' * 1100, 'pid': 1, 'name': 'stdout'})
    stream.close()
    assert read(path) == b'a' * 1100 + b'b' * 1100


def test_size_rotation_keeps_backup_count_files_holding_the_tail(tmp_path):
    path = str(tmp_path / 'out.log')
    limit = 1000000
    rng = random.Random(20)
    chunks, total = [], 0
    while total < 20 * 1024 * 1024:
        size = rng.randint(64 * 1024, 1024 * 1024)
        if rng.random() < 0.5:      # line-structured text, so cuts at newlines are exercised
            body = b''.join(b'%d\n' % rng.getrandbits(64) for _ in range(size // 12))
        else:                       # binary without a guaranteed newline
            body = rng.randbytes(size)
        chunks.append(body)
        total += len(body)
    stream = FileStream(path, max_bytes=limit, backup_count=3)
    for body in chunks:
        stream({'data': body, 'pid': 1, 'name': 'stdout'})
    stream.close()

    files = [path + '.3', path + '.2', path + '.1', path]
    assert all(os.path.exists(name) for name in files)
    assert not os.path.exists(path + '.4')
    sizes = [os.path.getsize(name) for name in files]
    assert all(size <= limit for size in sizes)
    kept = b''.join(read(name) for name in files)
    everything = b''.join(chunks)
    assert everything.endswith(kept)

    # Every file boundary is a chunk boundary, unless the chunk alone was at least max_bytes long.
    chunk_spans, offset = [], 0
    for body in chunks:
        chunk_spans.append((offset, offset + len(body)))
        offset += len(body)
    boundary = len(everything) - len(kept)
    for size in sizes[:-1]:
        boundary += size
        inside = [span for span in chunk_spans if span[0] < boundary < span[1]]
        assert not inside or inside[0][1] - inside[0][0] >= limit


def test_size_rotation_never_splits_framed_lines(tmp_path):
    path = str(tmp_path / 'out.log')
    stream = FileStream(path, max_bytes=2000, backup_count=2, time_format='%H:%M:%S')
    data = b''.join(b'message %04d\n' % number for number in range(600))
    feed(stream, data, [5, 77, 700, 3000])
    stream.close()
    numbers = []
    for name in (path + '.2', path + '.1', path):
        assert os.path.getsize(name) <= 2000
        assert read(name).endswith(b'\n')
        numbers.extend(int(text.split()[1]) for _pid, text in prefixed_lines(name))
    assert numbers == list(range(600 - len(numbers), 600))


def test_backup_count_zero_truncates_instead_of_growing(tmp_path):
    # Circus's quirk fixed: its "rollover" reopened the same file in append mode and never limited it.
    path = str(tmp_path / 'out.log')
    stream = FileStream(path, max_bytes='100', backup_count='0')
    stream({'data': b'a' * 60, 'pid': 1, 'name': 'stdout'})
    stream({'data': b'b' * 60, 'pid': 1, 'name': 'stdout'})
    stream.close()
    assert read(path) == b'b' * 60
    assert os.listdir(str(tmp_path)) == ['out.log']


def test_int_options_accept_strings_and_reject_garbage(tmp_path):
    stream = FileStream(str(tmp_path / 'a.log'), max_bytes=' 1024 ', backup_count='5')
    assert (stream.max_bytes, stream.backup_count) == (1024, 5)
    stream.close()
    with pytest.raises(ValueError, match='max_bytes'):
        FileStream(str(tmp_path / 'b.log'), max_bytes='lots')
    with pytest.raises(ValueError, match='backup_count'):
        FileStream(str(tmp_path / 'c.log'), backup_count='-1')


def test_default_filename_is_a_new_temporary_file():
    stream = FileStream()
    try:
        stream({'data': b'hello', 'pid': 1, 'name': 'stdout'})
        assert read(stream.filename) == b'hello'
        assert FileStream().filename != stream.filename
    finally:
        stream.close()
        os.remove(stream.filename)


def test_open_and_close_are_idempotent_and_close_then_open_reopens(tmp_path):
    path = tmp_path / 'out.log'
    stream = FileStream(str(path))
    stream.open()
    stream.open()
    stream({'data': b'one ', 'pid': 1, 'name': 'stdout'})
    stream.close()
    stream.close()
    os.rename(str(path), str(tmp_path / 'moved.log'))
    stream.open()
    assert path.exists()            # really reopened, by path
    stream({'data': b'two', 'pid': 1, 'name': 'stdout'})
    stream.close()
    assert read(tmp_path / 'moved.log') == b'one '
    assert read(path) == b'two'


def test_unwritable_path_is_logged_once_and_writing_resumes(tmp_path, caplog):
    # We run as root, so chmod cannot make a path unwritable: a regular file where the directory should be can.
    blocker = tmp_path / 'logs'
    blocker.write_bytes(b'not a directory')
    path = blocker / 'out.log'
    caplog.set_level(logging.WARNING, logger='gcircus')
    stream = FileStream(str(path))
    for number in range(5):
        stream({'data': b'lost %d\n' % number, 'pid': 1, 'name': 'stdout'})
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert str(path) in errors[0].getMessage()

    blocker.unlink()
    blocker.mkdir()
    stream({'data': b'kept\n', 'pid': 1, 'name': 'stdout'})
    stream.close()
    assert read(path) == b'kept\n'
    assert any('again' in record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)


def test_watched_file_follows_a_rename_without_losing_lines(tmp_path):
    path = str(tmp_path / 'out.log')
    stream = WatchedFileStream(path, time_format='%H:%M:%S')
    data = b''.join(b'line %04d\n' % number for number in range(1000))
    middle = data.index(b'line 0500') + 4         # line 500 is split across the rename
    feed(stream, data[:middle], [97])
    os.rename(path, path + '.1')                  # what logrotate does
    feed(stream, data[middle:], [97])
    stream.close()
    before = [text for _pid, text in prefixed_lines(path + '.1')]
    after = [text for _pid, text in prefixed_lines(path)]
    assert before == ['line %04d' % number for number in range(500)]
    assert after == ['line %04d' % number for number in range(500, 1000)]


def test_watched_file_recreates_a_deleted_file_and_resumes_after_errors(tmp_path, caplog):
    directory = tmp_path / 'logs'
    directory.mkdir()
    path = directory / 'out.log'
    stream = WatchedFileStream(str(path))
    stream({'data': b'first\n', 'pid': 1, 'name': 'stdout'})
    path.unlink()
    stream({'data': b'second\n', 'pid': 1, 'name': 'stdout'})
    assert read(path) == b'second\n'

    caplog.set_level(logging.WARNING, logger='gcircus')
    path.unlink()
    directory.rmdir()
    stream({'data': b'dropped\n', 'pid': 1, 'name': 'stdout'})
    stream({'data': b'dropped too\n', 'pid': 1, 'name': 'stdout'})
    assert len([record for record in caplog.records if record.levelno == logging.ERROR]) == 1
    directory.mkdir()
    stream({'data': b'third\n', 'pid': 1, 'name': 'stdout'})
    stream.close()
    assert read(path) == b'third\n'


def test_utf8_split_at_every_byte_offset_survives_time_format(tmp_path):
    text = 'héllo wörld € 𝄞 ✓ ñ'
    data = (text + '\n').encode('utf-8')
    path = tmp_path / 'out.log'
    stream = FileStream(str(path), time_format='%H:%M:%S')
    for offset in range(1, len(data)):
        stream({'data': data[:offset], 'pid': offset, 'name': 'stdout'})
        stream({'data': data[offset:], 'pid': offset, 'name': 'stdout'})
    feed(stream, data, [1], pid=999)
    stream.close()
    assert [line for _pid, line in prefixed_lines(path)] == [text] * len(data)


def test_a_chunk_after_close_reopens_rather_than_being_lost(tmp_path):
    path = tmp_path / 'out.log'
    stream = FileStream(str(path))
    stream.close()
    stream({'data': b'late output', 'pid': 1, 'name': 'stdout'})
    stream.close()
    assert read(path) == b'late output'


def test_a_failed_rotation_keeps_writing_to_the_open_file_and_the_next_one_catches_up(tmp_path, caplog):
    """The directory is moved away and a regular file takes its name (every path in it fails with ENOTDIR, even
    for root) between two rotations: output goes on to the file already open; once the directory is back, the
    next write opens a fresh file and rotation goes on. Nothing is lost or written twice (issue 13 item 8)."""
    caplog.set_level(logging.WARNING, logger='gcircus')
    logs, moved = tmp_path / 'logs', tmp_path / 'moved'
    logs.mkdir()
    stream = FileStream(str(logs / 'out.log'), max_bytes=100, backup_count=50)
    chunks = [b'line %03d ......\n' % number for number in range(60)]
    for chunk in chunks[:20]:
        stream({'data': chunk, 'pid': 1, 'name': 'stdout'})
    os.rename(logs, moved)
    logs.write_bytes(b'not a directory')
    for chunk in chunks[20:40]:
        stream({'data': chunk, 'pid': 1, 'name': 'stdout'})
    logs.unlink()
    os.rename(moved, logs)
    for chunk in chunks[40:]:
        stream({'data': chunk, 'pid': 1, 'name': 'stdout'})
    stream.close()
    backups = sorted((path for path in os.listdir(logs) if path != 'out.log'), key=lambda name: -int(name[8:]))
    written = b''.join(read(logs / name) for name in backups + ['out.log'])
    assert written == b''.join(chunks)
    assert os.path.getsize(logs / 'out.log') < 100          # rotation works again
    messages = [record.getMessage() for record in caplog.records]
    assert len([m for m in messages if m.startswith('cannot ')]) == 1, messages     # once per incident
    assert 'rotating %s again' % (logs / 'out.log') in messages
    assert not [m for m in messages if 'dropped' in m]



def test_watched_file_keeps_the_old_file_while_the_new_one_cannot_be_opened(tmp_path, caplog):
    """logrotate moved the file away, and the directory is unusable (a regular file took its name): the output goes
    on to the file open before rather than nowhere; once the path works again, a new file is opened."""
    caplog.set_level(logging.WARNING, logger='gcircus')
    logs, moved = tmp_path / 'logs', tmp_path / 'moved'
    logs.mkdir()
    stream = WatchedFileStream(str(logs / 'out.log'))
    stream({'data': b'one\n', 'pid': 1, 'name': 'stdout'})
    os.rename(logs / 'out.log', logs / 'out.log.1')     # logrotate
    os.rename(logs, moved)
    logs.write_bytes(b'not a directory')
    stream({'data': b'two\n', 'pid': 1, 'name': 'stdout'})
    stream({'data': b'three\n', 'pid': 1, 'name': 'stdout'})
    logs.unlink()
    os.rename(moved, logs)
    stream({'data': b'four\n', 'pid': 1, 'name': 'stdout'})
    stream.close()
    assert read(logs / 'out.log.1') == b'one\ntwo\nthree\n'
    assert read(logs / 'out.log') == b'four\n'
    messages = [record.getMessage() for record in caplog.records]
    assert len([m for m in messages if m.startswith('cannot reopen')]) == 1, messages
    assert not [m for m in messages if 'dropped' in m]
