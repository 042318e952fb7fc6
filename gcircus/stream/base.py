"""Shared machinery of the stream classes: the chunk contract, text decoding and line framing.

A stream is a callable that receives one mapping per chunk read from a child's pipe::

    {'data': b'...', 'pid': 1234, 'name': 'stdout'}        # or 'stderr'

Chunks are arbitrary byte slices (not line-aligned, up to about 1 MiB). A stream may also have ``open()``
(called when its watcher starts) and ``close()`` (called when it stops); both are idempotent, and ``open()``
after ``close()`` reopens.

EOF convention
--------------
When a pipe reaches end of file the stream is told with one extra chunk::

    {'data': b'', 'pid': 1234, 'name': 'stdout', 'eof': True}

It lets a line-framing stream write out a last line that had no trailing newline, and drop the per-(pid, name)
decoder and partial-line state of a process that is gone. The pump does not call the stream with it directly: it
calls the stream's ``flush_partial(pid, name)`` method if there is one (:func:`notify_eof` does exactly that), and
every stream here implements it by calling itself with the EOF chunk. A stream class written for Circus has no
such method, so it never sees an empty chunk it does not expect. ``close()`` flushes whatever partial lines are
still held, so nothing is lost when no EOF arrives either.

Stream options arrive as strings from INI files; ``as_int``/``as_bool`` convert them with the shared converters of
:mod:`gcircus.converters` (so ``utc = False`` means false, unlike Circus's ``bool("False")``).
"""
import codecs
import datetime
import logging
import time

from gcircus.converters import to_bool, to_int

log = logging.getLogger('gcircus')

EOF_KEY = 'eof'

#: Longest partial line (in characters) a line-framing stream holds while waiting for its newline; a longer one is
#: written out in pieces of this size, each as a line of its own, so a child that never prints a newline cannot
#: make us buffer without bound.
MAX_PARTIAL_LINE = 64 * 1024


def as_int(value, option, minimum=None):
    """An int option (an int, or a string from INI); the error names the option."""
    try:
        number = to_int(value)
    except ValueError as err:
        raise ValueError('%s: %s' % (option, err)) from None
    if minimum is not None and number < minimum:
        raise ValueError('%s: invalid value %r (must be >= %d)' % (option, value, minimum))
    return number


def as_bool(value, option):
    """A boolean option read as a word ('false', '0', 'no', 'off' are false); the error names the option."""
    try:
        return to_bool(value)
    except ValueError as err:
        raise ValueError('%s: %s' % (option, err)) from None


def is_eof(chunk):
    return bool(chunk.get(EOF_KEY))


def eof_chunk(pid, name):
    """The chunk that tells a stream the pipe ``name`` of process ``pid`` reached end of file."""
    return {'data': b'', 'pid': pid, 'name': name, EOF_KEY: True}


def notify_eof(stream, pid, name):
    """Tell ``stream`` that pipe ``name`` of ``pid`` reached EOF, if it wants to know (see the module docstring)."""
    flush_partial = getattr(stream, 'flush_partial', None)
    if flush_partial is not None:
        flush_partial(pid, name)


def chunk_bytes(chunk):
    """The payload of a chunk as bytes-like; a str (from a hand-written caller) is encoded as UTF-8."""
    data = chunk.get('data') or b''
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode('utf-8')
    return bytes(data)


def chunk_key(chunk):
    """Decoding and line state is kept per output pipe: one process's stdout never mixes with its stderr."""
    return chunk.get('pid'), chunk.get('name')


def chunk_time(chunk):
    """When a chunk was read: its 'timestamp' (seconds since the epoch) if the sender set one, else now."""
    stamp = chunk.get('timestamp')
    return time.time() if stamp is None else stamp


def line_prefix(time_format, pid, when):
    """The ``<time> [<pid>] | `` prefix of a framed line (datetime's strftime, so ``%f`` works)."""
    return '%s [%s] | ' % (datetime.datetime.fromtimestamp(when).strftime(time_format), pid)


class IncrementalText:
    """UTF-8 decoding per (pid, name), so a character split across two chunks is decoded whole.

    Invalid bytes become U+FFFD; an incomplete character left at EOF does too.
    """

    _decoder_class = codecs.getincrementaldecoder('utf-8')

    def __init__(self):
        self._decoders = {}

    def decode(self, key, data, final=False):
        decoder = self._decoders.get(key)
        if decoder is None:
            if final and not data:
                return ''
            decoder = self._decoders[key] = self._decoder_class(errors='replace')
        text = decoder.decode(data, final)
        if final:
            del self._decoders[key]
        return text

    def keys(self):
        return list(self._decoders)


class LineFramer:
    """Turns chunks into complete lines per (pid, name), holding a partial last line until its newline arrives.

    ``feed(chunk)`` returns the lines the chunk completes (without their newline). A partial line is released by
    the EOF chunk, by ``drain()`` (on close), or, once it reaches ``max_partial`` characters, in pieces of that
    size.
    """

    def __init__(self, max_partial=MAX_PARTIAL_LINE):
        self._max_partial = max_partial
        self._text = IncrementalText()
        # key -> list of text pieces of the unfinished line (a list, not a growing str, so a long line trickling in
        # through tiny chunks is not copied over and over).
        self._partial = {}
        self._partial_len = {}

    def feed(self, chunk):
        key = chunk_key(chunk)
        final = is_eof(chunk)
        lines = self._split(key, self._text.decode(key, chunk_bytes(chunk), final))
        if final:
            tail = ''.join(self._partial.pop(key, ()))
            self._partial_len.pop(key, None)
            if tail:
                lines.append(tail)
        return lines

    def drain(self):
        """Release everything held: ``[((pid, name), lines), ...]``; the framer is empty afterwards."""
        drained = []
        for key in set(self._text.keys()) | set(self._partial):
            lines = self.feed({'data': b'', 'pid': key[0], 'name': key[1], EOF_KEY: True})
            if lines:
                drained.append((key, lines))
        return drained

    def _split(self, key, text):
        if not text:
            return []
        parts = text.split('\n')
        pending = self._partial.setdefault(key, [])
        if len(parts) == 1:
            pending.append(text)
            self._partial_len[key] = self._partial_len.get(key, 0) + len(text)
            lines = []
        else:
            pending.append(parts[0])
            lines = [''.join(pending)]
            lines.extend(parts[1:-1])
            pending[:] = [parts[-1]] if parts[-1] else []
            self._partial_len[key] = len(parts[-1])
        if self._partial_len[key] >= self._max_partial:
            lines.extend(self._spill(key))
        return lines

    def _spill(self, key):
        """Cut an over-long partial line into whole pieces; the remainder (shorter than a piece) stays held."""
        text = ''.join(self._partial[key])
        size = self._max_partial
        whole = len(text) - len(text) % size
        pieces = [text[start:start + size] for start in range(0, whole, size)]
        rest = text[whole:]
        self._partial[key] = [rest] if rest else []
        self._partial_len[key] = len(rest)
        return pieces


class Incident:
    """Log a failure once per incident rather than once per chunk, and log the recovery that ends it."""

    def __init__(self):
        self.active = False

    def failed(self, message, *args):
        if not self.active:
            self.active = True
            log.error(message, *args)

    def recovered(self, message, *args):
        if self.active:
            self.active = False
            log.warning(message, *args)


class BaseStream:
    """Common base of the built-in streams: open/close no-ops, the EOF hook and a warning for unread options."""

    def __init__(self, **unknown_options):
        if unknown_options:
            # Circus silently ignores them; a typo such as 'max_byte' deserves a word in the log.
            log.warning('%s: ignoring unknown option(s) %s', type(self).__name__,
                        ', '.join(sorted(unknown_options)))

    def open(self):
        pass

    def close(self):
        pass

    def flush_partial(self, pid, name):
        """Pipe ``name`` of process ``pid`` reached EOF: release what is held for it."""
        self(eof_chunk(pid, name))

    def __call__(self, chunk):
        raise NotImplementedError
