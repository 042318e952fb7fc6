"""TimedRotatingFileStream: a FileStream that starts a new file every period, like logging's TimedRotatingFileHandler.

The schedule is computed here with calendar arithmetic (next local or UTC midnight through ``mktime``/``timegm``),
so daylight-saving changes need no hour corrections afterwards. Circus's quirks are fixed: ``rotate_when`` is
case-insensitive (``midnight`` works) and ``utc`` is read as a word (the INI string ``"False"`` is false).
"""
import calendar
import datetime
import os
import re
import time

from gcircus.stream.base import Incident, as_bool, as_int
from gcircus.stream.file import FileStream, drop_options

DAY = 24 * 60 * 60

# rotate_when -> (seconds in one unit, strftime suffix of rotated files, digits in that suffix)
_FIXED_UNITS = {
    'S': (1, '%Y%m%d%H%M%S', 14),
    'M': (60, '%Y%m%d%H%M', 12),
    'H': (60 * 60, '%Y%m%d%H', 10),
    'D': (DAY, '%Y%m%d', 8),
}
_DAY_SUFFIX = ('%Y%m%d', 8)     # MIDNIGHT and W0..W6 name files by day


def parse_rotate_when(value):
    """Normalise ``rotate_when``: 'S', 'M', 'H', 'D', 'MIDNIGHT' or 'W0'..'W6' (Monday=0), in any case."""
    when = str(value).strip().upper()
    if when in _FIXED_UNITS or when == 'MIDNIGHT' or re.fullmatch('W[0-6]', when):
        return when
    raise ValueError("invalid rotate_when %r: expected S, M, H, D, MIDNIGHT or W0-W6" % (value,))


class RotationSchedule:
    """When the current period ends and when it began, for a ``rotate_when`` × ``rotate_interval`` period."""

    def __init__(self, when, interval=1, utc=False):
        self.when = parse_rotate_when(when)
        self.interval = as_int(interval, 'rotate_interval', minimum=1)
        self.utc = utc
        fixed = _FIXED_UNITS.get(self.when)
        self.suffix_format, digits = fixed[1:] if fixed else _DAY_SUFFIX
        self.suffix_pattern = re.compile(r'\d{%d}' % digits)

    def period(self, now):
        """``(start, end)`` of the period containing ``now``; files rotate at ``end``, named after ``start``.

        Fixed units (S, M, H, D) count from ``now``, which is the previous rotation (or the file's mtime at first);
        MIDNIGHT ends at a midnight, W<n> at the midnight that ends weekday <n>.
        """
        fixed = _FIXED_UNITS.get(self.when)
        if fixed:
            return now, now + fixed[0] * self.interval
        today = self._date(now)
        if self.when == 'MIDNIGHT':
            days = self.interval
            end = today + datetime.timedelta(days=self.interval)
        else:
            days = 7 * self.interval
            weekday = int(self.when[1])
            until_weekday_ends = (weekday - today.weekday()) % 7
            end = today + datetime.timedelta(days=1 + until_weekday_ends + 7 * (self.interval - 1))
        return self._midnight(end - datetime.timedelta(days=days)), self._midnight(end)

    def suffix(self, when):
        return time.strftime(self.suffix_format, time.gmtime(when) if self.utc else time.localtime(when))

    def _date(self, when):
        if self.utc:
            return datetime.datetime.fromtimestamp(when, datetime.timezone.utc).date()
        return datetime.date.fromtimestamp(when)

    def _midnight(self, day):
        fields = (day.year, day.month, day.day, 0, 0, 0, 0, 0, -1)
        return calendar.timegm(fields) if self.utc else time.mktime(fields)


class TimedRotatingFileStream(FileStream):
    """Append to a file and rotate it by time.

    :param filename: the file to write.
    :param backup_count: how many rotated files to keep (0, the default, keeps all).
    :param time_format: as for :class:`FileStream`.
    :param rotate_when: ``S``, ``M``, ``H`` (default), ``D``, ``MIDNIGHT`` or ``W0``-``W6``; case-insensitive.
    :param rotate_interval: how many units per period (default 1).
    :param utc: use UTC instead of local time for period boundaries and file names ('false', '0', 'no', 'off'
        are false).

    A rotated file is named ``filename.<suffix>`` (``%Y%m%d%H%M%S``, ``%Y%m%d%H%M``, ``%Y%m%d%H`` or ``%Y%m%d``,
    the start of the period it covers). The first rotation is scheduled from the file's mtime if it exists, so a
    stale file from a previous run rotates on the first write. An empty file is not rotated. If the rotated name
    already exists the file is appended to it rather than replacing it.
    """

    def __init__(self, filename=None, backup_count=0, time_format=None, rotate_when='H', rotate_interval=1,
                 utc=False, **kw):
        drop_options(self, kw, ('max_bytes',), 'this stream rotates by time')
        self.schedule = RotationSchedule(rotate_when, rotate_interval, as_bool(utc, 'utc'))
        super().__init__(filename, 0, backup_count, time_format, **kw)
        try:
            since = os.stat(self.filename).st_mtime
        except OSError:
            since = time.time()
        self._period_start, self._rollover_at = self.schedule.period(since)
        self._prune_failure = Incident()

    # Circus exposes these; keep them readable.
    rotate_when = property(lambda self: self.schedule.when)
    rotate_interval = property(lambda self: self.schedule.interval)
    utc = property(lambda self: self.schedule.utc)

    def _before_write(self):
        now = time.time()
        if now >= self._rollover_at:
            self._rollover(now)
        super()._before_write()

    def _rollover(self, now):
        """Close the period: the file becomes ``filename.<suffix>`` and a new one is started. If that fails the
        open file keeps receiving the output, and the next period tries again (a failed open of the new file is
        retried at every write, see FileStream._reattach)."""
        if not self._detached and os.fstat(self._fd).st_size > 0:
            target = '%s.%s' % (self.filename, self.schedule.suffix(self._period_start))
            try:
                if os.path.exists(target):
                    # a restart within one period: append rather than overwrite, and go on in the same file
                    _append_file(self.filename, target)
                    os.ftruncate(self._fd, 0)
                else:
                    os.replace(self.filename, target)
                    self._detached = True
            except OSError as err:
                self._rotation_failure.failed('cannot rotate %s to %s: %s; writing on to it until rotation works',
                                              self.filename, target, err)
            else:
                if not self._detached or self._reattach():
                    self._rotation_failure.recovered('rotating %s again', self.filename)
                self._prune()
        self._period_start, self._rollover_at = self.schedule.period(now)

    def rotated_files(self):
        """Paths of the rotated files of this stream, oldest first."""
        directory, base = os.path.split(os.path.abspath(self.filename))
        prefix = base + '.'
        names = sorted(name for name in os.listdir(directory)
                       if name.startswith(prefix) and self.schedule.suffix_pattern.fullmatch(name[len(prefix):]))
        return [os.path.join(directory, name) for name in names]

    def _prune(self):
        if self.backup_count <= 0:
            return
        try:
            for path in self.rotated_files()[:-self.backup_count]:
                os.remove(path)
        except OSError as err:
            self._prune_failure.failed('cannot remove old rotated files of %s: %s', self.filename, err)
        else:
            self._prune_failure.recovered('removing old rotated files of %s again', self.filename)


def _append_file(source, target):
    """Append the content of ``source`` to ``target`` (a restart within one period found ``target`` taken)."""
    with open(source, 'rb') as src, open(target, 'ab') as dst:
        while True:
            block = src.read(1 << 20)
            if not block:
                break
            dst.write(block)
