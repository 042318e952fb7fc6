"""TimedRotatingFileStream: option parsing (Circus quirks fixed), the schedule, and real rollovers on disk."""
import calendar
import os
import time

import pytest

from gcircus.stream import TimedRotatingFileStream
from gcircus.stream.rotating import RotationSchedule, parse_rotate_when

HOUR = 3600


def utc(*fields):
    return calendar.timegm(fields + (0,) * (6 - len(fields)))


@pytest.mark.parametrize('value, expected', [
    ('S', 'S'), ('s', 'S'), ('m', 'M'), ('H', 'H'), ('d', 'D'), ('midnight', 'MIDNIGHT'), ('MidNight', 'MIDNIGHT'),
    ('w0', 'W0'), ('W6', 'W6'), (' h ', 'H')])
def test_rotate_when_is_case_insensitive(value, expected):
    assert parse_rotate_when(value) == expected


@pytest.mark.parametrize('value', ['X', 'W7', 'weekly', '', 'hours'])
def test_invalid_rotate_when_names_the_value(value, tmp_path):
    with pytest.raises(ValueError, match='rotate_when %r' % value):
        TimedRotatingFileStream(str(tmp_path / 'out.log'), rotate_when=value)


@pytest.mark.parametrize('value, expected', [
    ('False', False), ('false', False), ('0', False), ('no', False), ('off', False), (False, False),
    ('True', True), ('1', True), ('yes', True), ('on', True), (True, True)])
def test_utc_is_parsed_as_a_boolean(value, expected, tmp_path):
    # Circus's quirk fixed: it used bool("False"), which is True.
    stream = TimedRotatingFileStream(str(tmp_path / 'out.log'), utc=value)
    assert stream.utc is expected
    stream.close()


def test_bad_numbers_are_rejected(tmp_path):
    with pytest.raises(ValueError, match='utc'):
        TimedRotatingFileStream(str(tmp_path / 'a.log'), utc='sometimes')
    with pytest.raises(ValueError, match='rotate_interval'):
        TimedRotatingFileStream(str(tmp_path / 'b.log'), rotate_interval='0')
    stream = TimedRotatingFileStream(str(tmp_path / 'c.log'), rotate_when='m', rotate_interval='15',
                                     backup_count='4')
    assert (stream.rotate_when, stream.rotate_interval, stream.backup_count) == ('M', 15, 4)
    stream.close()


def test_fixed_periods_count_from_the_given_time():
    now = utc(2024, 3, 10, 15, 30, 7)
    assert RotationSchedule('s', 5, utc=True).period(now) == (now, now + 5)
    assert RotationSchedule('H', 2, utc=True).period(now) == (now, now + 2 * HOUR)
    assert RotationSchedule('H', 1, utc=True).suffix(now) == '2024031015'
    assert RotationSchedule('S', 1, utc=True).suffix(now) == '20240310153007'
    assert RotationSchedule('M', 1, utc=True).suffix(now) == '202403101530'
    assert RotationSchedule('D', 1, utc=True).suffix(now) == '20240310'


def test_midnight_and_weekday_periods_in_utc():
    now = utc(2024, 3, 10, 15, 30)                  # a Sunday
    assert RotationSchedule('midnight', 1, utc=True).period(now) == (utc(2024, 3, 10), utc(2024, 3, 11))
    assert RotationSchedule('MIDNIGHT', 2, utc=True).period(now) == (utc(2024, 3, 10), utc(2024, 3, 12))
    # W0: rotate at the midnight that ends Monday.
    assert RotationSchedule('W0', 1, utc=True).period(now) == (utc(2024, 3, 5), utc(2024, 3, 12))
    # On the weekday itself, at the end of that same day.
    assert RotationSchedule('W6', 1, utc=True).period(now) == (utc(2024, 3, 4), utc(2024, 3, 11))


@pytest.fixture
def berlin_time(monkeypatch):
    if not os.path.exists('/usr/share/zoneinfo/Europe/Berlin'):
        pytest.skip('no tz database')
    monkeypatch.setenv('TZ', 'Europe/Berlin')
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_midnight_in_local_time_across_a_dst_change(berlin_time):
    # 2024-03-31: Berlin moves from UTC+1 to UTC+2, so that day lasts 23 hours.
    noon = time.mktime((2024, 3, 31, 12, 0, 0, 0, 0, -1))
    start, end = RotationSchedule('MIDNIGHT', 1, utc=False).period(noon)
    assert time.localtime(start)[:6] == (2024, 3, 31, 0, 0, 0)
    assert time.localtime(end)[:6] == (2024, 4, 1, 0, 0, 0)
    assert end - start == 23 * HOUR


def make_stale_file(path, content, age):
    path.write_bytes(content)
    stamp = time.time() - age
    os.utime(str(path), (stamp, stamp))
    return stamp


def test_stale_file_rotates_on_first_write_and_is_named_after_its_period(tmp_path):
    path = tmp_path / 'out.log'
    mtime = make_stale_file(path, b'old\n', 2 * HOUR)
    stream = TimedRotatingFileStream(str(path), rotate_when='H')
    stream({'data': b'new\n', 'pid': 1, 'name': 'stdout'})
    stream.close()
    rotated = tmp_path / ('out.log.' + time.strftime('%Y%m%d%H', time.localtime(mtime)))
    assert rotated.read_bytes() == b'old\n'
    assert path.read_bytes() == b'new\n'


def test_midnight_rotation_names_the_file_after_its_day(tmp_path):
    path = tmp_path / 'out.log'
    mtime = make_stale_file(path, b'yesterday\n', 26 * HOUR)
    stream = TimedRotatingFileStream(str(path), rotate_when='midnight', utc='false')
    stream({'data': b'today\n', 'pid': 1, 'name': 'stdout'})
    stream.close()
    rotated = tmp_path / ('out.log.' + time.strftime('%Y%m%d', time.localtime(mtime)))
    assert rotated.read_bytes() == b'yesterday\n'
    assert path.read_bytes() == b'today\n'


def test_fresh_file_does_not_rotate(tmp_path):
    path = tmp_path / 'out.log'
    stream = TimedRotatingFileStream(str(path), rotate_when='D', time_format='%H:%M')
    stream({'data': b'one\ntwo\n', 'pid': 1, 'name': 'stdout'})
    stream.close()
    assert os.listdir(str(tmp_path)) == ['out.log']
    assert path.read_bytes().count(b' [1] | ') == 2


def test_old_rotated_files_beyond_backup_count_are_deleted(tmp_path):
    path = tmp_path / 'out.log'
    for stamp in ('2020010100', '2020010101', '2020010102'):
        (tmp_path / ('out.log.' + stamp)).write_bytes(stamp.encode())
    (tmp_path / 'out.log.notes').write_bytes(b'not a rotated file')
    mtime = make_stale_file(path, b'old\n', 3 * HOUR)
    stream = TimedRotatingFileStream(str(path), rotate_when='H', backup_count=2)
    stream({'data': b'new\n', 'pid': 1, 'name': 'stdout'})
    stream.close()
    newest = 'out.log.' + time.strftime('%Y%m%d%H', time.localtime(mtime))
    assert sorted(os.listdir(str(tmp_path))) == sorted(['out.log', 'out.log.notes', 'out.log.2020010102', newest])
    assert [os.path.basename(name) for name in stream.rotated_files()] == ['out.log.2020010102', newest]


def test_rotation_onto_an_existing_name_appends_instead_of_overwriting(tmp_path):
    path = tmp_path / 'out.log'
    mtime = make_stale_file(path, b'second part\n', 2 * HOUR)
    rotated = tmp_path / ('out.log.' + time.strftime('%Y%m%d%H', time.localtime(mtime)))
    rotated.write_bytes(b'first part\n')
    stream = TimedRotatingFileStream(str(path), rotate_when='h')
    stream({'data': b'new\n', 'pid': 1, 'name': 'stdout'})
    stream.close()
    assert rotated.read_bytes() == b'first part\nsecond part\n'
    assert path.read_bytes() == b'new\n'
