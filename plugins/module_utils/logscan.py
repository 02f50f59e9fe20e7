# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming log analysis for runbook.ops.log_scan and the ``log`` probe kind.

A scan reads log files (plain, or rotated and compressed with gzip, bzip2, xz or
zstd) in large blocks that end at line boundaries and feeds each block to the
metrics asked for: counts of lines matching a pattern, error rates, statistics of a
numeric JSON field, counts by a JSON field, the age of the newest marker line and
nginx access-log analyses.  It never holds a whole file in memory: a block is a few
MB and every metric keeps only counters.

Time windows come from the lines' own timestamps (ISO 8601, common/combined log
format, syslog, epoch seconds or a strptime format).  A line without a timestamp
belongs to the entry before it (a traceback belongs to its error line).  Logs are
taken to be in time order: in a plain file the first line of a window is found by
a binary search on line timestamps, seeking from the end, so a 24 h window at the
end of a large file reads little more than that window.

Fast paths, and where they stop being exact:
  * pattern counts run a compiled bytes regex (or, for alternations of plain words,
    bytes.find) over whole blocks: the number of *lines* with at least one match, as
    ``grep -c`` counts them;
  * JSON field values are taken with a regex for ``"field": <number>`` (or string)
    over whole blocks; when a block has an occurrence of the key that the regex did
    not take (a null, a string, a nested or repeated key), that block is read again
    line by line with ``json.loads``.  The fast path reads the key at any depth of
    the object; set ``json_fast_path: false`` when a key of that name also occurs
    nested inside other objects of your lines.

Nothing here imports Ansible; InvalidProbe is raised for bad definitions and names
the metric and the fix.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bz2
import calendar
import glob
import gzip
import json
import lzma
import math
import os
import re
import subprocess
import time
from collections import Counter
from datetime import datetime, timedelta

try:
    from urllib.parse import unquote_to_bytes
except ImportError:  # pragma: no cover - Python 2 is not supported
    unquote_to_bytes = None

from ansible_collections.runbook.ops.plugins.module_utils.checks import (
    ABOVE, CRITICAL, UNKNOWN, InvalidProbe, ProbeError, check_result, describe_thresholds,
    format_duration, format_number, metric_check, parse_duration, percentile,
    validate_thresholds,
)

KIND = 'log'
BLOCK_SIZE = 4 * 1024 * 1024
# A "line" longer than this (binary garbage without newlines) is cut here.
MAX_LINE = 1024 * 1024
# Distinct values a numeric field may have before its percentiles turn approximate.
MAX_DISTINCT = 200000
PERCENTILES = (50, 95, 99)
STATS = ('count', 'sum', 'avg', 'min', 'max', 'p50', 'p95', 'p99')
METRIC_TYPES = ('count', 'rate', 'stats', 'values', 'marker', 'clients', 'injections', 'logins')
TIME_FORMATS = ('auto', 'iso8601', 'clf', 'syslog', 'epoch')
COMPRESSED = ('.gz', '.bz2', '.xz', '.zst')

# The common SQL-injection shapes, matched against the URL-decoded request target:
# narrower than runbook 002's grep for union|select|drop|insert|update|delete, which
# also flags /api/update and every ?select= parameter.
DEFAULT_INJECTION = (r"(?i)(union(\s|\+|/\*.*?\*/)+(all(\s|\+)+)?select\b|\bselect\b.+\bfrom\b"
                     r"|\bdrop(\s|\+)+(table|database)\b|\binsert(\s|\+)+into\b"
                     r"|\bdelete(\s|\+)+from\b|\bupdate\b.+\bset\b.*="
                     r"|'\s*(or|and)\s*'?\d+'?\s*=\s*'?\d+|'\s*--|;\s*--|\bsleep\s*\(\d"
                     r"|\bbenchmark\s*\(|\bxp_cmdshell\b|\binformation_schema\b)")
# nginx's combined (and common) log format: client, [time], "request", status.
ACCESS_LINE = re.compile(rb'^(\S+) \S+ \S+ \[[^\]\n]*\] "(\S+) (\S+)[^"\n]*" (\d{3}) ', re.M)

# ---- timestamps --------------------------------------------------------------------

MONTHS = dict((name, index + 1) for index, name in enumerate(
    ('jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec')))
_ISO = re.compile(rb'(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?'
                  rb' ?(Z|[+-]\d{2}:?\d{2}(?![\d:]))?')
_CLF = re.compile(rb'\[(\d{2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?: ([+-])(\d{2})(\d{2}))?\]')
_SYSLOG = re.compile(rb'^(?:<\d+>)?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})')
_EPOCH = re.compile(rb'^\s*(\d{9,10}(?:\.\d+)?)\b')


def _epoch(year, month, day, hour, minute, second, fraction, offset, utc):
    """Seconds since the epoch; ``offset`` in seconds east of UTC, or None for a
    time without a zone, taken as UTC when ``utc`` and local time otherwise."""
    if offset is not None or utc:
        value = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
        value -= offset or 0
    else:
        value = time.mktime((year, month, day, hour, minute, second, 0, 0, -1))
    return value + fraction


def _fraction(digits):
    return float(b'0.' + digits) if digits else 0.0


class TimeParser:
    """Finds and parses the timestamp of one line (bytes); None when it has none."""

    def __init__(self, time_format='auto', time_pattern=None, utc=False, now=None):
        self.format = time_format or 'auto'
        self.utc = utc
        self.now = now if now is not None else time.time()
        self.pattern = None
        if self.format not in TIME_FORMATS:
            if '%' not in self.format:
                raise InvalidProbe('time_format %r is not one of %s nor a strptime format such as '
                                   "'%%d/%%m/%%Y %%H:%%M:%%S'" % (self.format, ', '.join(TIME_FORMATS)))
            if not time_pattern:
                raise InvalidProbe('time_format %r is a strptime format: give time_pattern too, a regular '
                                   'expression whose first group is the timestamp' % self.format)
        if time_pattern:
            try:
                self.pattern = re.compile(time_pattern.encode('utf-8'))
            except re.error as exc:
                raise InvalidProbe('time_pattern is not a regular expression: %s' % exc)
            if self.pattern.groups < 1:
                raise InvalidProbe('time_pattern %r needs a group around the timestamp, e.g. '
                                   r"'^(\S+ \S+)'" % time_pattern)
        order = {'auto': (self._clf, self._iso, self._syslog), 'iso8601': (self._iso,),
                 'clf': (self._clf,), 'syslog': (self._syslog,), 'epoch': (self._epoch_format,)}
        self.parsers = order.get(self.format, (self._strptime,))
        self.calls = 0

    def __call__(self, line):
        self.calls += 1
        if self.pattern is not None:
            match = self.pattern.search(line)
            if not match:
                return None
            line = match.group(1)
            if '%' in self.format:
                return self._strptime(line)
            if self.format == 'auto':
                return self._any(line)
        for parser in self.parsers:
            value = parser(line)
            if value is not None:
                return value
        return None

    def _any(self, text):
        for parser in (self._clf, self._iso, self._syslog, self._epoch_format):
            value = parser(text)
            if value is not None:
                return value
        return None

    def _iso(self, line):
        match = _ISO.search(line)
        if not match:
            return None
        year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
        zone = match.group(8)
        offset = None
        if zone:
            if zone == b'Z':
                offset = 0
            else:
                digits = zone[1:].replace(b':', b'')
                offset = (int(digits[:2]) * 3600 + int(digits[2:]) * 60) * (-1 if zone[:1] == b'-' else 1)
        try:
            return _epoch(year, month, day, hour, minute, second, _fraction(match.group(7)),
                          offset, self.utc)
        except (ValueError, OverflowError):
            return None

    def _clf(self, line):
        match = _CLF.search(line)
        if not match:
            return None
        day, month_name, year, hour, minute, second, sign, off_h, off_m = match.groups()
        month = MONTHS.get(month_name.decode('ascii').lower())
        if month is None:
            return None
        offset = None
        if sign:
            offset = (int(off_h) * 3600 + int(off_m) * 60) * (-1 if sign == b'-' else 1)
        try:
            return _epoch(int(year), month, int(day), int(hour), int(minute), int(second), 0.0,
                          offset, self.utc)
        except (ValueError, OverflowError):
            return None

    def _syslog(self, line):
        match = _SYSLOG.match(line)
        if not match:
            return None
        month = MONTHS.get(match.group(1).decode('ascii').lower())
        if month is None:
            return None
        day, hour, minute, second = (int(g) for g in match.groups()[1:])
        # syslog has no year: this year, unless that is more than a day ahead of now
        year = time.gmtime(self.now).tm_year if self.utc else time.localtime(self.now).tm_year
        try:
            value = _epoch(year, month, day, hour, minute, second, 0.0, None, self.utc)
            if value > self.now + 86400:
                value = _epoch(year - 1, month, day, hour, minute, second, 0.0, None, self.utc)
        except (ValueError, OverflowError):
            return None
        return value

    def _epoch_format(self, line):
        match = _EPOCH.match(line)
        return float(match.group(1)) if match else None

    def _strptime(self, text):
        try:
            parsed = datetime.strptime(text.decode('utf-8', 'replace').strip(), self.format)
        except ValueError:
            return None
        if parsed.tzinfo is not None:
            return calendar.timegm(parsed.utctimetuple()) + parsed.microsecond / 1e6
        return _epoch(parsed.year, parsed.month, parsed.day, parsed.hour, parsed.minute,
                      parsed.second, parsed.microsecond / 1e6, None, self.utc)


def parse_time_bound(value, now, what, utc=False):
    """Seconds since the epoch for a window bound: a duration before now ('12h',
    '7d', 3600), 'now', 'today' or 'yesterday' (midnight), or an ISO 8601 time."""
    if value is None or value == '':
        return None
    if isinstance(value, str):
        word = value.strip().lower()
        if word == 'now':
            return now
        if word in ('today', 'yesterday'):
            moment = datetime.utcfromtimestamp(now) if utc else datetime.fromtimestamp(now)
            midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
            if word == 'yesterday':
                midnight -= timedelta(days=1)
            if utc:
                return float(calendar.timegm(midnight.timetuple()))
            return time.mktime(midnight.timetuple())
        if _ISO.match(value.strip().encode('ascii', 'replace')) or re.match(r'^\d{4}-\d{2}-\d{2}$', word):
            text = value.strip()
            if len(text) == 10:
                text += 'T00:00:00'
            parsed = TimeParser('iso8601', utc=utc, now=now)(text.encode('ascii', 'replace'))
            if parsed is None:
                raise InvalidProbe('%s: %r is not a valid time' % (what, value))
            return parsed
    try:
        return now - parse_duration(value, what)
    except InvalidProbe:
        raise InvalidProbe("%s: %r is neither a duration before now ('12h', '7d'), 'today', "
                           "'yesterday' nor an ISO 8601 time ('2024-05-01T00:00:00Z')" % (what, value))


# ---- reading -----------------------------------------------------------------------

class Source:
    """One log file: its path, size, mtime and how to open it."""

    def __init__(self, path, size, mtime):
        self.path = path
        self.size = size
        self.mtime = mtime
        lower = path.lower()
        self.compression = next((ext[1:] for ext in COMPRESSED if lower.endswith(ext)), None)

    @property
    def seekable(self):
        return self.compression is None

    def open(self):
        if self.compression is None:
            return open(self.path, 'rb')
        if self.compression == 'gz':
            return gzip.open(self.path, 'rb')
        if self.compression == 'bz2':
            return bz2.open(self.path, 'rb')
        if self.compression == 'xz':
            return lzma.open(self.path, 'rb')
        return _zstd_reader(self.path)


class _ProcessReader:
    """A decompressor's stdout as a readable stream (zstd without the library)."""

    def __init__(self, argv):
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stream = self.process.stdout

    def read(self, size=-1):
        return self.stream.read(size)

    def close(self):
        self.stream.close()
        err = self.process.stderr.read()
        self.process.stderr.close()
        if self.process.wait() != 0:
            raise IOError('zstd -dc failed: %s' % err.decode('utf-8', 'replace').strip())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _zstd_reader(path):
    try:
        import zstandard
    except ImportError:
        zstandard = None
    if zstandard is not None:
        return zstandard.ZstdDecompressor().stream_reader(open(path, 'rb'), closefd=True)
    return _ProcessReader(['zstd', '-dc', '-q', '--', path])


def iter_blocks(stream, start=0, block_size=BLOCK_SIZE):
    """(offset, block) pairs from a stream positioned at ``start``: each block ends
    with a newline except the last one when the file does not (a truncated line),
    and a single line longer than MAX_LINE is cut into pieces."""
    offset = start
    carry = b''
    while True:
        data = stream.read(block_size)
        if not data:
            break
        if carry:
            data = carry + data
        cut = data.rfind(b'\n')
        if cut < 0:
            if len(data) < MAX_LINE:
                carry = data
                continue
            cut = len(data) - 1  # garbage without newlines: cut it anyway
        block = data[:cut + 1]
        carry = data[cut + 1:]
        yield offset, block
        offset += len(block)
    if carry:
        yield offset, carry


class Block:
    """A line-aligned range [start, end) of a buffer (bytes or an mmap): counting
    metrics search it in place; the others take ``data``, a bytes copy made once."""

    __slots__ = ('buf', 'start', 'end', '_data')

    def __init__(self, buf, start=0, end=None):
        self.buf = buf
        self.start = start
        self.end = len(buf) if end is None else end
        self._data = None

    def __len__(self):
        return self.end - self.start

    @property
    def data(self):
        if self._data is None:
            if isinstance(self.buf, bytes) and self.start == 0 and self.end == len(self.buf):
                self._data = self.buf
            else:
                self._data = self.buf[self.start:self.end]
        return self._data

    def sub(self, begin, end):
        """The part [begin, end) of this block, offsets relative to its start."""
        return Block(self.buf, self.start + begin, self.start + end)

    def endswith_newline(self):
        return self.end > self.start and self.buf[self.end - 1:self.end] == b'\n'


def iter_mapped(mapped, start, size, block_size=BLOCK_SIZE):
    """Line-aligned Blocks of an mmap from ``start``: no copy is made.  The pages
    behind the scan are let go (MADV_DONTNEED drops them from this process, not from
    the page cache), so that the resident size stays flat however big the file."""
    import mmap
    dontneed = getattr(mmap, 'MADV_DONTNEED', None) if hasattr(mapped, 'madvise') else None
    page = mmap.PAGESIZE
    released = (start // page) * page
    pos = start
    while pos < size:
        limit = min(size, pos + block_size)
        if limit == size:
            cut = size
        else:
            cut = mapped.rfind(b'\n', pos, limit) + 1
            if cut <= pos:  # one line longer than a block: cut it
                cut = limit
        yield Block(mapped, pos, cut)
        pos = cut
        if dontneed is not None:
            upto = (pos // page) * page
            if upto - released >= 16 * page:
                try:
                    mapped.madvise(dontneed, released, upto - released)
                except (OSError, ValueError):
                    dontneed = None
                released = upto


class _Bytes:
    """The random-access reading the window search needs, over a file stream or a
    buffer (bytes or mmap) from ``base``; offsets are relative to ``base``."""

    def __init__(self, data=None, stream=None, size=None, base=0):
        self.data = data
        self.stream = stream
        self.base = base
        self.size = (len(data) - base if size is None else size) if data is not None else size
        self.bytes_read = 0

    def read(self, offset, length):
        length = max(0, min(length, self.size - offset))
        if self.data is not None:
            return self.data[self.base + offset:self.base + offset + length]
        self.stream.seek(offset)
        chunk = self.stream.read(length)
        self.bytes_read += len(chunk)
        return chunk

    def line_start_at_or_after(self, offset):
        """The start of the first line that begins at or after ``offset``."""
        if offset <= 0:
            return 0
        pos = offset - 1
        while pos < self.size:
            chunk = self.read(pos, 8192)
            if not chunk:
                break
            found = chunk.find(b'\n')
            if found >= 0:
                return pos + found + 1
            pos += len(chunk)
        return self.size

    def first_stamp(self, offset, limit, parse, budget=262144):
        """(timestamp, line start) of the first line with a timestamp at or after the
        line start ``offset`` and before ``limit``; (None, None) when none is found
        within ``budget`` bytes."""
        pos = offset
        end = min(limit, offset + budget)
        while pos < end:
            chunk = self.read(pos, min(8192, limit - pos))
            if not chunk:
                break
            newline = chunk.find(b'\n')
            if newline < 0:
                stamp = parse(chunk)  # the last line, or the head of a very long one
                if stamp is not None:
                    return stamp, pos
                if pos + len(chunk) >= limit:
                    break
                pos = self.line_start_at_or_after(pos + len(chunk))
                continue
            start = 0
            while newline >= 0:
                stamp = parse(chunk[start:newline])
                if stamp is not None:
                    return stamp, pos + start
                start = newline + 1
                newline = chunk.find(b'\n', start)
            pos += start
        return None, None

    def last_stamp(self, end, parse):
        """The timestamp of the last line with one before ``end`` (buffers only)."""
        data, base = self.data, self.base
        stop = base + end
        if stop > base and data[stop - 1:stop] == b'\n':
            stop -= 1
        while stop > base:
            begin = max(base, data.rfind(b'\n', base, stop) + 1)
            stamp = parse(data[begin:stop])
            if stamp is not None:
                return stamp
            stop = begin - 1
        return None


def find_line_at(reader, lo, hi, target, parse):
    """The start of the first line whose timestamp is at or after ``target`` in the
    time-ordered range [lo, hi) (the end when none is): a binary search on line
    timestamps down to 64 KiB, finished by a forward scan."""
    if target is None:
        return lo
    while hi - lo > 65536:
        mid = reader.line_start_at_or_after((lo + hi) // 2)
        if mid >= hi:
            break
        stamp, at = reader.first_stamp(mid, hi, parse)
        if stamp is None or stamp >= target:
            hi = mid
        else:
            lo = at
    return scan_to(reader, lo, target, parse)


def scan_to(reader, pos, target, parse):
    """The start of the first line at or after ``pos`` with a timestamp at or after
    ``target``, reading forward line by line (the end when none is)."""
    chunk_size = 16384
    while pos < reader.size:
        chunk = reader.read(pos, chunk_size)
        chunk_size = min(chunk_size * 2, 1024 * 1024)
        if not chunk:
            break
        last = pos + len(chunk) >= reader.size
        start = 0
        while True:
            newline = chunk.find(b'\n', start)
            if newline < 0:
                if last and start < len(chunk):
                    stamp = parse(chunk[start:])
                    if stamp is not None and stamp >= target:
                        return pos + start
                break
            stamp = parse(chunk[start:newline])
            if stamp is not None and stamp >= target:
                return pos + start
            start = newline + 1
        if last:
            break
        if start == 0:  # a line longer than the chunk
            stamp = parse(chunk)
            if stamp is not None and stamp >= target:
                return pos
            pos = reader.line_start_at_or_after(pos + len(chunk))
            continue
        pos += start
    return reader.size


# ---- metrics -------------------------------------------------------------------------

def _compile(pattern, what, ignore_case=False):
    if not isinstance(pattern, str) or pattern == '':
        raise InvalidProbe('%s: pattern must be a non-empty regular expression' % what)
    try:
        return re.compile(pattern.encode('utf-8'), re.I if ignore_case else 0)
    except re.error as exc:
        raise InvalidProbe('%s: pattern %r is not a regular expression: %s' % (what, pattern, exc))


_PLAIN = re.compile(r'^[A-Za-z0-9 _:/=<>@#,;"\'-]+$')


def literal_words(pattern):
    """The words of a pattern that is an alternation of plain words ('ERROR|CRITICAL'),
    or None when it uses any other regular expression syntax."""
    words = pattern.split('|')
    if all(word and _PLAIN.match(word) for word in words):
        return [word.encode('utf-8') for word in words]
    return None


class LineCounter:
    """Counts the lines that contain at least one match, as ``grep -c`` does.

    A pattern of plain words ('ERROR', 'ERROR|CRITICAL') is searched without the
    regex engine: memchr (bytes.find of one byte, vectorised in the C library) jumps
    to the word's rarest byte, sampled from the first block, and each hit is checked
    and skipped to the end of its line.  When even the rarest byte is frequent the
    plain substring search is used instead; other patterns run a compiled regex."""

    def __init__(self, pattern, ignore_case=False, what='pattern'):
        self.regex = _compile(pattern, what, ignore_case)
        self.words = None if ignore_case else literal_words(pattern)
        self.picks = None
        self.count = 0

    def feed(self, block):
        """Count in a Block (in place) or in bytes."""
        if not isinstance(block, Block):
            block = Block(block)
        buf, start, end = block.buf, block.start, block.end
        if self.words is None:
            self.count += _count_regex_lines(buf, self.regex, start, end)
            return
        if self.picks is None:
            sample = buf[start:min(end, start + 1024 * 1024)]
            self.picks = [_rarest(word, sample) for word in self.words]
        if len(self.words) == 1:
            self.count += len(_word_lines(buf, self.words[0], self.picks[0], start, end, False))
        else:
            starts = set()
            for word, pick in zip(self.words, self.picks):
                starts.update(_word_lines(buf, word, pick, start, end, True))
            self.count += len(starts)


def _rarest(word, sample):
    """(offset, byte) of the word's rarest byte in the sample, or None when even that
    one is frequent enough that memchr would stop too often."""
    counts = [(sample.count(word[index:index + 1]), index) for index in range(len(word))]
    seen, index = min(counts)
    if sample and seen * 200 > len(sample):
        return None
    return index, word[index:index + 1]


def _word_lines(buf, word, pick, start, end, starts):
    """The lines in [start, end) holding ``word``: their line starts when ``starts``,
    else one entry per line (only the number matters)."""
    found = []
    find = buf.find
    size = len(word)
    if pick is None:
        pos = find(word, start, end)
        while pos >= 0:
            found.append(max(start, buf.rfind(b'\n', start, pos) + 1) if starts else pos)
            newline = find(b'\n', pos, end)
            if newline < 0:
                break
            pos = find(word, newline + 1, end)
        return found
    offset, byte = pick
    pos = find(byte, start + offset, end)
    while pos >= 0:
        at = pos - offset
        if at + size <= end and buf[at:at + size] == word:
            found.append(max(start, buf.rfind(b'\n', start, at) + 1) if starts else at)
            newline = find(b'\n', at + size, end)
            if newline < 0:
                break
            pos = find(byte, newline + 1 + offset, end)
        else:
            pos = find(byte, pos + 1, end)
    return found


def _count_regex_lines(buf, regex, start, end):
    count = 0
    search, find = regex.search, buf.find
    match = search(buf, start, end)
    while match is not None:
        count += 1
        newline = find(b'\n', match.start(), end)
        if newline < 0:
            break
        match = search(buf, newline + 1, end)
    return count


def _lines_with(block, needle):
    """The lines of a block that contain ``needle`` (bytes), without splitting the rest."""
    find, rfind = block.find, block.rfind
    pos = find(needle)
    while pos >= 0:
        start = rfind(b'\n', 0, pos) + 1
        end = find(b'\n', pos)
        if end < 0:
            end = len(block)
        yield block[start:end]
        pos = find(needle, end + 1)


_MISSING = object()


def _field_value(document, path):
    node = document
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _load(line):
    line = line.strip()
    if not line.startswith(b'{'):
        return None
    try:
        document = json.loads(line.decode('utf-8'))
    except (ValueError, UnicodeDecodeError):
        return None
    return document if isinstance(document, dict) else None


class JsonField:
    """Values of one JSON field over lines, with an optional ``where`` filter of
    field: value (or list of values) pairs, all of which must hold."""

    NUMBER = rb'(-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?)'
    STRING = rb'"((?:[^"\\\n]|\\.)*)"'

    def __init__(self, field, where, fast, numeric, what):
        if not isinstance(field, str) or not field:
            raise InvalidProbe('%s: field must name a JSON field, e.g. execution_time_ms' % what)
        self.field = field
        self.path = field.split('.')
        self.key = json.dumps(self.path[-1]).encode('utf-8')
        self.where = []
        for name, wanted in sorted((where or {}).items()):
            values = wanted if isinstance(wanted, list) else [wanted]
            self.where.append((name.split('.'), values))
        self.fast = fast and len(self.path) == 1 and not self.where
        self.numeric = numeric
        if numeric:
            value = self.NUMBER
        else:
            value = rb'(?:' + self.STRING + rb'|(-?\d[\d.eE+-]*|true|false|null))'
        self.regex = re.compile(re.escape(self.key) + rb'\s*:\s*' + value + rb'(?=\s*[,}\]])')
        # lines without the key never need parsing: the rarest needle narrows most
        needles = [self.key]
        for _name, values in self.where:
            if len(values) == 1 and isinstance(values[0], str) and values[0]:
                needles.append(json.dumps(values[0]).encode('utf-8'))
        self.needle = needles[-1]
        self.slow_lines = 0
        self.invalid = 0

    def matches(self, document):
        for path, values in self.where:
            actual = _field_value(document, path)
            if actual is _MISSING or not any(_same(actual, value) for value in values):
                return False
        return True

    def extract(self, block, partial=False):
        """The block's values: ('fast', [raw bytes or tuples]) or ('slow', [python values])."""
        if isinstance(block, Block):
            block = block.data
        if self.fast and not partial:
            found = self.regex.findall(block)
            if block.count(self.key) == len(found):
                return 'fast', found
        values = []
        for line in _lines_with(block, self.needle):
            document = _load(line)
            if document is None:
                self.invalid += 1
                continue
            self.slow_lines += 1
            if not self.matches(document):
                continue
            value = _field_value(document, self.path)
            if value is not _MISSING:
                values.append(value)
        return 'slow', values


def _same(actual, wanted):
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return actual is wanted
    if isinstance(actual, (int, float)) and isinstance(wanted, str):
        return str(actual) == wanted
    return actual == wanted


class ValueCounts:
    """Counts of numbers by value, exact up to MAX_DISTINCT distinct values; past that,
    values are rounded to 4 significant digits (percentiles within 0.05 %), while
    count, sum, min and max stay exact."""

    def __init__(self):
        self.raw = Counter()
        self.values = {}
        self.count = 0
        self.total = 0.0
        self.low = None
        self.high = None
        self.exact = True

    def add_raw(self, found):
        self.raw.update(found)
        if len(self.raw) > MAX_DISTINCT:
            self.flush()

    def add(self, value, times=1):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if math.isnan(value) or math.isinf(value):
            return False
        self.count += times
        self.total += value * times
        self.low = value if self.low is None or value < self.low else self.low
        self.high = value if self.high is None or value > self.high else self.high
        if not self.exact:
            value = _round_significant(value)
        self.values[value] = self.values.get(value, 0) + times
        if self.exact and len(self.values) > MAX_DISTINCT:
            self.exact = False
            rounded = {}
            for key, times_seen in self.values.items():
                key = _round_significant(key)
                rounded[key] = rounded.get(key, 0) + times_seen
            self.values = rounded
        return True

    def flush(self):
        raw, self.raw = self.raw, Counter()
        for text, times in raw.items():
            value = float(text)
            self.add(int(value) if value.is_integer() and abs(value) < 2 ** 53 else value, times)

    def stats(self):
        self.flush()
        if not self.count:
            return dict((name, 0 if name in ('count', 'sum') else None) for name in STATS)
        ordered = sorted(self.values.items())
        result = {'count': self.count, 'sum': round(self.total, 3),
                  'avg': round(self.total / self.count, 3),
                  'min': self.low, 'max': self.high}
        for pct in PERCENTILES:
            result['p%d' % pct] = round(counted_percentile(ordered, self.count, pct), 3)
        return result

    def buckets(self, bounds):
        """Counts below bounds[0], from each bound to the next, and from the last one up."""
        self.flush()
        counts = [0] * (len(bounds) + 1)
        for value, times in self.values.items():
            index = 0
            while index < len(bounds) and value >= bounds[index]:
                index += 1
            counts[index] += times
        labels = ['<%s' % format_number(bounds[0])]
        labels += ['%s-%s' % (format_number(low), format_number(high))
                   for low, high in zip(bounds, bounds[1:])]
        labels.append('>=%s' % format_number(bounds[-1]))
        return [{'bucket': label, 'count': count,
                 'percent': round(100.0 * count / self.count, 2) if self.count else None}
                for label, count in zip(labels, counts)]


def _round_significant(value, digits=4):
    if value == 0:
        return 0.0
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


def counted_percentile(ordered, total, pct):
    """checks.percentile() over values given as sorted (value, count) pairs."""
    rank = (total - 1) * pct / 100.0
    low, high = int(math.floor(rank)), int(math.ceil(rank))
    low_value = high_value = None
    seen = 0
    for value, times in ordered:
        if low_value is None and low < seen + times:
            low_value = value
        if high < seen + times:
            high_value = value
            break
        seen += times
    return low_value + (high_value - low_value) * (rank - low)


# ---- metric definitions ------------------------------------------------------------

METRIC_KEYS = {
    'count': (('pattern',), ('ignore_case',)),
    'rate': ((), ('pattern', 'requests', 'ignore_case', 'field', 'match', 'where', 'fast')),
    'stats': (('field',), ('stat', 'buckets', 'where', 'unit', 'fast')),
    'values': (('field',), ('top', 'where', 'fast')),
    'marker': (('pattern',), ('ignore_case',)),
    'clients': ((), ('classes', 'top')),
    'injections': ((), ('pattern', 'ignore_case', 'top')),
    'logins': ((), ('path', 'method', 'over', 'top')),
}
COMMON_KEYS = ('name', 'type', 'warning', 'critical', 'since', 'until')
UNITS = {'count': 'lines', 'rate': '%', 'values': 'lines', 'marker': 's', 'clients': 'requests',
         'injections': 'requests', 'logins': 'clients'}


def _threshold(value, what, duration):
    if value is None:
        return None
    if duration:
        return parse_duration(value, what)
    if isinstance(value, bool):
        raise InvalidProbe('%s: %r is not a number' % (what, value))
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidProbe('%s: %r is not a number' % (what, value))


def _whole(value, what, default, low=0):
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidProbe('%s must be a whole number >= %d, not %r' % (what, low, value))
    return value


def prepare_metric(metric, index, now, utc=False):
    """Validate one metric definition; returns a normalised copy."""
    if not isinstance(metric, dict):
        raise InvalidProbe('metric #%d is not a dict with a name and a type' % (index + 1))
    name = metric.get('name')
    what = "metric '%s'" % name if name else 'metric #%d' % (index + 1)
    kind = metric.get('type')
    if kind not in METRIC_TYPES:
        raise InvalidProbe('%s: type %r must be one of %s' % (what, kind, ', '.join(METRIC_TYPES)))
    required, optional = METRIC_KEYS[kind]
    for key in required:
        if metric.get(key) in (None, ''):
            raise InvalidProbe('%s: %s is required for type %s' % (what, key, kind))
    stray = sorted(k for k, v in metric.items()
                   if v is not None and k not in COMMON_KEYS + required + optional)
    if stray:
        raise InvalidProbe('%s: option %s does not apply to type %s' % (what, ', '.join(stray), kind))
    prepared = dict((k, v) for k, v in metric.items() if v is not None)
    prepared['name'] = str(name or '%s_%d' % (kind, index + 1))
    duration = kind == 'marker'
    limits = [_threshold(prepared.get(key), '%s %s threshold' % (what, key), duration)
              for key in ('warning', 'critical')]
    validate_thresholds(limits[0], limits[1], ABOVE, what)
    prepared['warning'], prepared['critical'] = limits
    prepared['since_ts'] = parse_time_bound(prepared.get('since'), now, '%s since' % what, utc)
    prepared['until_ts'] = parse_time_bound(prepared.get('until'), now, '%s until' % what, utc)
    if kind == 'marker' and (prepared.get('since') or prepared.get('until')):
        raise InvalidProbe('%s: a marker looks back through all files; since and until do not apply'
                           % what)
    ignore_case = bool(prepared.get('ignore_case', False))
    fast = bool(prepared.get('fast', True))
    if kind in ('count', 'marker'):
        prepared['regex'] = _compile(prepared['pattern'], what, ignore_case)
    if kind == 'rate':
        by_pattern = prepared.get('pattern') is not None
        by_field = prepared.get('field') is not None
        if by_pattern == by_field:
            raise InvalidProbe('%s: a rate takes either pattern (errors) with requests (all), or '
                               'field with match (the error values), not %s'
                               % (what, 'both' if by_pattern else 'neither'))
        if by_pattern and not prepared.get('requests'):
            raise InvalidProbe('%s: requests, the pattern of the lines that count as requests, is '
                               'required with pattern' % what)
        if by_field:
            wanted = prepared.get('match')
            if wanted in (None, '', []):
                raise InvalidProbe('%s: match, the value(s) of %s that count as errors, is required'
                                   % (what, prepared['field']))
            prepared['match'] = wanted if isinstance(wanted, list) else [wanted]
            prepared['json'] = JsonField(prepared['field'], prepared.get('where'), fast, False, what)
        else:
            prepared['errors_counter'] = (prepared['pattern'], ignore_case)
            _compile(prepared['requests'], '%s requests' % what, ignore_case)
    if kind in ('stats', 'values'):
        where = prepared.get('where')
        if where is not None and not isinstance(where, dict):
            raise InvalidProbe('%s: where must be a dict of field: value, e.g. {level: ERROR}' % what)
        prepared['json'] = JsonField(prepared['field'], where, fast, kind == 'stats', what)
    if kind == 'stats':
        stat = prepared.setdefault('stat', 'avg')
        if stat not in STATS:
            raise InvalidProbe('%s: stat %r must be one of %s' % (what, stat, ', '.join(STATS)))
        bounds = prepared.get('buckets') or []
        if not isinstance(bounds, list) or any(isinstance(b, bool) or not isinstance(b, (int, float))
                                               for b in bounds) or bounds != sorted(set(bounds)):
            raise InvalidProbe('%s: buckets must be a list of increasing numbers, e.g. [25, 50]' % what)
        prepared['buckets'] = bounds
    if kind in ('values', 'clients', 'injections', 'logins'):
        prepared['top'] = _whole(prepared.get('top'), '%s top' % what, 10, 1)
    if kind == 'clients':
        classes = prepared.get('classes') or ['4xx', '5xx']
        if not isinstance(classes, list) or not classes or any(
                c not in ('1xx', '2xx', '3xx', '4xx', '5xx') for c in classes):
            raise InvalidProbe('%s: classes must be a list of 1xx, 2xx, 3xx, 4xx, 5xx' % what)
        prepared['classes'] = classes
    if kind == 'injections':
        prepared['regex'] = _compile(prepared.get('pattern') or DEFAULT_INJECTION, what, ignore_case)
    if kind == 'logins':
        prepared['path_regex'] = _compile(prepared.get('path') or r'/login\b', what + ' path')
        prepared['method'] = str(prepared.get('method') or 'POST').upper()
        prepared['over'] = _whole(prepared.get('over'), '%s over' % what, 10)
    return prepared


def prepare_scan(spec, now=None):
    """Validate a whole scan: {paths, include_rotated, since, until, time_format,
    time_pattern, timezone, metrics}.  InvalidProbe names the first bad part."""
    now = time.time() if now is None else now
    if not isinstance(spec, dict):
        raise InvalidProbe('a log scan is a dict with paths and metrics')
    paths = spec.get('paths')
    if isinstance(paths, str):
        paths = [paths]
    if not paths or not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        raise InvalidProbe('paths must be a list of log files or globs, e.g. [/var/log/app/*.log]')
    timezone = spec.get('timezone') or 'local'
    if timezone not in ('local', 'utc'):
        raise InvalidProbe("timezone %r must be 'local' or 'utc'" % timezone)
    utc = timezone == 'utc'
    parser = TimeParser(spec.get('time_format') or 'auto', spec.get('time_pattern'), utc, now)
    metrics = spec.get('metrics')
    if not metrics or not isinstance(metrics, list):
        raise InvalidProbe('metrics must be a non-empty list; each has a name and a type (%s)'
                           % ', '.join(METRIC_TYPES))
    default_since = parse_time_bound(spec.get('since'), now, 'since', utc)
    default_until = parse_time_bound(spec.get('until'), now, 'until', utc)
    prepared = []
    for index, metric in enumerate(metrics):
        one = prepare_metric(metric, index, now, utc)
        if one['type'] != 'marker':
            if 'since' not in one:
                one['since_ts'], one['since'] = default_since, spec.get('since')
            if 'until' not in one:
                one['until_ts'], one['until'] = default_until, spec.get('until')
        prepared.append(one)
    names = [m['name'] for m in prepared]
    for name in names:
        if names.count(name) > 1:
            raise InvalidProbe("metric name '%s' is used twice; give each metric a unique name" % name)
    block = spec.get('block_size') or BLOCK_SIZE
    return {'paths': paths, 'include_rotated': spec.get('include_rotated', True) is not False,
            'parser': parser, 'metrics': prepared, 'now': now, 'block_size': int(block),
            'utc': utc}


# ---- accumulators -------------------------------------------------------------------

class _Acc:
    def __init__(self, metric):
        self.metric = metric
        self.lines = 0

    def feed(self, block, partial=False):
        raise NotImplementedError


class CountAcc(_Acc):
    def __init__(self, metric):
        _Acc.__init__(self, metric)
        self.counter = LineCounter(metric['pattern'], metric.get('ignore_case', False),
                                   "metric '%s'" % metric['name'])

    def feed(self, block, partial=False):
        self.counter.feed(block)

    def value(self):
        return self.counter.count, None


class RateAcc(_Acc):
    def __init__(self, metric):
        _Acc.__init__(self, metric)
        self.errors = self.requests = 0
        if 'json' in metric:
            self.json = metric['json']
            self.values = Counter()
        else:
            self.json = None
            ignore = metric.get('ignore_case', False)
            self.error_counter = LineCounter(metric['pattern'], ignore)
            self.request_counter = LineCounter(metric['requests'], ignore)

    def feed(self, block, partial=False):
        if self.json is None:
            self.error_counter.feed(block)
            self.request_counter.feed(block)
            return
        way, found = self.json.extract(block, partial)
        if way == 'fast':
            self.values.update(found)
        else:
            self.values.update(_typed(value) for value in found)

    def value(self):
        if self.json is None:
            errors, requests = self.error_counter.count, self.request_counter.count
        else:
            counts = _normalise_counts(self.values)
            requests = sum(counts.values())
            errors = sum(times for value, times in counts.items()
                         if any(_same(value, wanted) for wanted in self.metric['match']))
        details = {'errors': errors, 'requests': requests}
        if not requests:
            return None, details
        return round(100.0 * errors / requests, 3), details


def _typed(value):
    """A hashable, JSON-typed key for a parsed value."""
    if isinstance(value, (dict, list)):
        return ('json', json.dumps(value, sort_keys=True))
    return ('value', value)


def _normalise_counts(counter):
    """Merge fast-path tuples (string, literal) and slow-path ('value', v) keys into
    a dict of python value -> count."""
    merged = {}
    for key, times in counter.items():
        if key[0] == 'value' or key[0] == 'json':
            value = key[1]
        else:
            text, literal = key
            if literal:
                value = json.loads(literal.decode('ascii'))
            elif b'\\' in text:
                try:
                    value = json.loads(b'"' + text + b'"')
                except ValueError:
                    value = text.decode('utf-8', 'replace')
            else:
                value = text.decode('utf-8', 'replace')
        hashable = value if not isinstance(value, (dict, list)) else json.dumps(value, sort_keys=True)
        if isinstance(hashable, float) and hashable.is_integer():
            hashable = int(hashable)
        # keep true apart from 1
        slot = ('b', hashable) if isinstance(hashable, bool) else hashable
        merged[slot] = merged.get(slot, 0) + times
    return dict((key[1] if isinstance(key, tuple) and key[:1] == ('b',) else key, times)
                for key, times in merged.items())


class StatsAcc(_Acc):
    def __init__(self, metric):
        _Acc.__init__(self, metric)
        self.json = metric['json']
        self.counts = ValueCounts()
        self.skipped = 0

    def feed(self, block, partial=False):
        way, found = self.json.extract(block, partial)
        if way == 'fast':
            self.counts.add_raw(found)
        else:
            for value in found:
                if not self.counts.add(value):
                    self.skipped += 1  # a string, null, boolean: not a number

    def value(self):
        stats = self.counts.stats()
        details = {'stats': stats}
        if self.metric['buckets'] and stats['count']:
            details['buckets'] = self.counts.buckets(self.metric['buckets'])
        if self.skipped:
            details['not_numbers'] = self.skipped
        if not self.counts.exact:
            details['percentiles_exact'] = False
        return stats[self.metric['stat']], details


class ValuesAcc(_Acc):
    def __init__(self, metric):
        _Acc.__init__(self, metric)
        self.json = metric['json']
        self.values = Counter()

    def feed(self, block, partial=False):
        way, found = self.json.extract(block, partial)
        if way == 'fast':
            self.values.update(found)
        else:
            self.values.update(_typed(value) for value in found)

    def value(self):
        counts = _normalise_counts(self.values)
        total = sum(counts.values())
        top = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))[:self.metric['top']]
        return total, {'distinct': len(counts),
                       'top': [{'value': value, 'count': times} for value, times in top]}


def _data(block):
    return block.data if isinstance(block, Block) else block


def _status_class(status):
    return status[:1].decode('ascii') + 'xx'


class ClientsAcc(_Acc):
    def __init__(self, metric):
        _Acc.__init__(self, metric)
        self.counts = Counter()

    def feed(self, block, partial=False):
        self.counts.update((client, status[:1]) for client, _method, _target, status
                           in ACCESS_LINE.findall(_data(block)))

    def value(self):
        clients = {}
        for (client, first), times in self.counts.items():
            entry = clients.setdefault(client, {'client': client.decode('utf-8', 'replace'),
                                                'requests': 0})
            entry['requests'] += times
            key = first.decode('ascii') + 'xx'
            entry[key] = entry.get(key, 0) + times
        classes = self.metric['classes']
        for entry in clients.values():
            entry['flagged'] = sum(entry.get(c, 0) for c in classes)
        ranked = sorted(clients.values(), key=lambda e: (-e['flagged'], -e['requests'], e['client']))
        worst = ranked[0]['flagged'] if ranked else 0
        totals = dict(('%sxx' % d, sum(e.get('%sxx' % d, 0) for e in clients.values()))
                      for d in '12345')
        return worst, {'clients': len(clients), 'requests': sum(e['requests'] for e in clients.values()),
                       'by_class': totals, 'classes': classes,
                       'top': [e for e in ranked[:self.metric['top']] if e['flagged']]}


def _decoded(target):
    if unquote_to_bytes is None:
        return target
    return unquote_to_bytes(target.replace(b'+', b' '))


class InjectionsAcc(_Acc):
    def __init__(self, metric):
        _Acc.__init__(self, metric)
        self.regex = metric['regex']
        self.count = 0
        self.clients = Counter()
        self.samples = []

    def feed(self, block, partial=False):
        search = self.regex.search
        for client, method, target, status in ACCESS_LINE.findall(_data(block)):
            if search(target) or (b'%' in target or b'+' in target) and search(_decoded(target)):
                self.count += 1
                self.clients[client] += 1
                if len(self.samples) < 5:
                    self.samples.append('%s %s %s %s' % (client.decode('utf-8', 'replace'),
                                                         method.decode('utf-8', 'replace'),
                                                         target[:200].decode('utf-8', 'replace'),
                                                         status.decode('ascii')))

    def value(self):
        return self.count, {'clients': [{'client': c.decode('utf-8', 'replace'), 'requests': n}
                                        for c, n in self.clients.most_common(self.metric['top'])],
                            'samples': self.samples}


class LoginsAcc(_Acc):
    def __init__(self, metric):
        _Acc.__init__(self, metric)
        self.method = metric['method'].encode('ascii')
        self.path = metric['path_regex']
        self.clients = Counter()

    def feed(self, block, partial=False):
        method, search = self.method, self.path.search
        self.clients.update(client for client, verb, target, _status in ACCESS_LINE.findall(_data(block))
                            if verb == method and search(target))

    def value(self):
        over = self.metric['over']
        flagged = [(c, n) for c, n in self.clients.most_common() if n > over]
        return len(flagged), {'over': over, 'attempts': sum(self.clients.values()),
                              'clients': [{'client': c.decode('utf-8', 'replace'), 'attempts': n}
                                          for c, n in flagged[:self.metric['top']]]}


ACCUMULATORS = {'count': CountAcc, 'rate': RateAcc, 'stats': StatsAcc, 'values': ValuesAcc,
                'clients': ClientsAcc, 'injections': InjectionsAcc, 'logins': LoginsAcc}


# ---- files -------------------------------------------------------------------------

_GLOB = re.compile(r'[*?[]')


def expand_paths(patterns, include_rotated=True):
    """(sources, problems): the regular files the patterns name, rotated siblings
    (``x.log.1``, ``x.log.2.gz``, ``x.log-20240501.gz``) included, oldest first; and
    {path: reason} for what cannot be read (missing, a directory, a dangling link,
    a symlink loop, no permission)."""
    found, problems = {}, {}
    for pattern in patterns:
        names = sorted(glob.glob(pattern)) if _GLOB.search(pattern) else [pattern]
        if not names and _GLOB.search(pattern):
            problems[pattern] = 'no file matches'
        rotated = []
        if include_rotated:
            for name in names if names else []:
                rotated += glob.glob(glob.escape(name) + '.*') + glob.glob(glob.escape(name) + '-*')
        for name in names + sorted(rotated):
            if name in found or name in problems:
                continue
            try:
                info = os.stat(name)
            except OSError as exc:
                problems[name] = _reason(exc)
                continue
            if os.path.isdir(name):
                if name in names:
                    problems[name] = 'is a directory; give a file or a glob such as %s/*.log' % name
                continue
            if not os.path.isfile(name):
                problems[name] = 'is not a regular file'
                continue
            if name in rotated and name.endswith(('.tmp', '.swp', '.lock')):
                continue
            if not os.access(name, os.R_OK):
                problems[name] = 'permission denied'
                continue
            found[name] = Source(name, info.st_size, info.st_mtime)
    sources = sorted(found.values(), key=lambda s: (s.mtime, s.path))
    return sources, problems


def _reason(exc):
    import errno
    if exc.errno == errno.ENOENT:
        return 'does not exist (or is a dangling symlink)'
    if exc.errno == errno.ELOOP:
        return 'is a symlink loop'
    if exc.errno in (errno.EACCES, errno.EPERM):
        return 'permission denied'
    return exc.strerror or str(exc)


class _Window:
    """Where one metric's time window stands while blocks stream by."""

    def __init__(self, since, until):
        self.since = since
        self.until = until
        self.inside = since is None  # the last timestamped line seen was in the window
        self.done = False


def _block_range(block, window, parse, state):
    """The [a, b) range, relative to the block, of a line-aligned Block that lies in
    the window, or None.  ``state`` caches the block's reader and last timestamp."""
    if window.done:
        return None
    size = len(block)
    if window.since is None and window.until is None:
        return 0, size
    reader = state.get('reader')
    if reader is None:
        reader = state['reader'] = _Bytes(data=block.buf, base=block.start, size=size)
    if 'last' not in state:
        state['last'] = reader.last_stamp(size, parse)
    last = state['last']
    if last is None:  # no timestamp in the whole block: it continues the entry before
        return (0, size) if window.inside else None
    start = 0
    if not window.inside:
        if window.since is not None and last < window.since:
            return None
        start = find_line_at(reader, 0, size, window.since, parse)
    end = size
    if window.until is not None and last >= window.until:
        end = find_line_at(reader, start, size, window.until, parse)
        window.done = True
    window.inside = (window.since is None or last >= window.since) and not window.done
    if start >= end:
        return None
    return start, end


class ScanResult:
    def __init__(self):
        self.files = []
        self.problems = {}
        self.bytes_read = 0
        self.lines = 0


def scan(prepared, deadline=None):
    """Run a prepared scan; returns (checks, facts).  Never raises for an unreadable
    file: that becomes an ``unknown`` check named ``files``."""
    started = time.monotonic()
    parse = prepared['parser']
    metrics = prepared['metrics']
    sources, problems = expand_paths(prepared['paths'], prepared['include_rotated'])
    streaming = [m for m in metrics if m['type'] != 'marker']
    accs = [(m, ACCUMULATORS[m['type']](m)) for m in streaming]
    files = []
    bytes_read = 0
    if accs:
        starts = [m['since_ts'] for m in streaming]
        earliest = None if any(s is None for s in starts) else min(starts)
        for source in sources:
            windows = [(acc, _Window(m['since_ts'], m['until_ts'])) for m, acc in accs]
            entry = {'path': source.path, 'size': source.size, 'compression': source.compression}
            if earliest is not None and source.mtime < earliest:
                entry.update(skipped='last written before the window', bytes_read=0)
                files.append(entry)
                continue
            try:
                read, start = _scan_source(source, windows, parse, earliest, prepared['block_size'],
                                           deadline)
            except (IOError, OSError, EOFError, ValueError) as exc:
                if isinstance(exc, _Timeout):
                    raise ProbeError(str(exc))
                problems[source.path] = 'cannot be read: %s' % exc
                entry['error'] = problems[source.path]
                files.append(entry)
                continue
            bytes_read += read
            entry.update(bytes_read=read, start_offset=start)
            files.append(entry)
    marker_facts = {}
    for metric in metrics:
        if metric['type'] == 'marker':
            marker_facts[metric['name']] = find_marker(sources, metric['regex'], parse, problems)
    elapsed = round((time.monotonic() - started) * 1000.0, 3)
    checks = []
    acc_of = dict((m['name'], acc) for m, acc in accs)
    for metric in metrics:
        if metric['type'] == 'marker':
            checks.append(_marker_check(metric, marker_facts[metric['name']], sources, prepared))
        else:
            checks.append(_metric_result(metric, acc_of[metric['name']], sources, prepared))
    if problems:
        checks.append(check_result(
            'files', KIND, UNKNOWN,
            '%d log path%s cannot be read: %s' % (
                len(problems), '' if len(problems) == 1 else 's',
                '; '.join('%s %s' % (p, r) for p, r in sorted(problems.items()))),
            value=len(problems), details={'problems': problems}))
    for check in checks:
        check['duration_ms'] = elapsed
    facts = {'files': files, 'problems': problems, 'bytes_read': bytes_read,
             'duration_ms': elapsed}
    return checks, facts


class _Timeout(IOError):
    pass


def _scan_source(source, windows, parse, earliest, block_size, deadline):
    """Feed one file's blocks to the metrics; returns (bytes read, start offset).
    A plain file is mapped (mmap) and searched in place; a compressed one streams."""
    start = 0
    searched = 0
    total = 0
    with source.open() as stream:
        if source.seekable:
            if source.size == 0:
                return 0, 0
            if earliest is not None:
                reader = _Bytes(stream=stream, size=source.size)
                start = find_line_at(reader, 0, source.size, earliest, parse)
                searched = reader.bytes_read
            mapped = _map(stream, source.size)
            blocks = iter_mapped(mapped, start, source.size, block_size) if mapped is not None else (
                Block(data) for _offset, data in _seek_blocks(stream, start, block_size))
        else:
            mapped = None
            blocks = (Block(data) for _offset, data in iter_blocks(stream, 0, block_size))
        try:
            for block in blocks:
                total += len(block)
                if deadline is not None and time.monotonic() > deadline:
                    raise _Timeout('the scan of %s did not finish in time; narrow the window (since) '
                                   'or raise the timeout' % source.path)
                partial = not block.endswith_newline()
                state = {}
                for acc, window in windows:
                    span = _block_range(block, window, parse, state)
                    if span is None:
                        continue
                    begin, end = span
                    acc.feed(block if (begin, end) == (0, len(block)) else block.sub(begin, end),
                             partial)
                if all(window.done for _acc, window in windows):
                    break
        finally:
            if mapped is not None:
                mapped.close()
    return total + searched, start


def _seek_blocks(stream, start, block_size):
    stream.seek(start)
    return iter_blocks(stream, start, block_size)


def _map(stream, size):
    """A read-only mmap of a plain file, or None where mapping is not possible."""
    import mmap
    try:
        mapped = mmap.mmap(stream.fileno(), size, access=mmap.ACCESS_READ)
    except (ValueError, OSError, AttributeError):
        return None
    if hasattr(mapped, 'madvise') and hasattr(mmap, 'MADV_SEQUENTIAL'):
        try:
            mapped.madvise(mmap.MADV_SEQUENTIAL)
        except OSError:
            pass
    return mapped


def find_marker(sources, regex, parse, problems):
    """{path, line, timestamp} of the newest line matching ``regex``, looking from the
    end of the newest file back; None when no line matches."""
    for source in sorted(sources, key=lambda s: (s.mtime, s.path), reverse=True):
        try:
            with source.open() as stream:
                if source.seekable:
                    found = _marker_backwards(stream, source.size, regex, parse)
                else:
                    found = _marker_forwards(stream, regex, parse)
        except (IOError, OSError, EOFError, ValueError) as exc:
            problems[source.path] = 'cannot be read: %s' % exc
            continue
        if found is not None:
            found['path'] = source.path
            return found
    return None


def _stamp_before(block, line_start, parse):
    """Timestamp of the line at line_start, or of the nearest earlier line with one."""
    reader = _Bytes(data=block)
    end = block.find(b'\n', line_start)
    end = len(block) if end < 0 else end
    stamp = parse(block[line_start:end])
    if stamp is None:
        stamp = reader.last_stamp(line_start, parse)
    return stamp, block[line_start:end]


def _marker_backwards(stream, size, regex, parse):
    end = size
    step = 1024 * 1024
    tail = b''
    while end > 0:
        begin = max(0, end - step)
        stream.seek(begin)
        data = stream.read(end - begin) + tail
        first = data.find(b'\n') + 1 if begin > 0 else 0
        block, tail = data[first:], data[:first]
        last = None
        for match in regex.finditer(block):
            last = match
        if last is not None:
            line_start = block.rfind(b'\n', 0, last.start()) + 1
            context = block
            stamp, line = _stamp_before(context, line_start, parse)
            if stamp is None and begin > 0:
                # the line's entry starts in an earlier block: read back a little more
                stream.seek(max(0, begin - step))
                earlier = stream.read(begin - max(0, begin - step)) + tail
                stamp = _Bytes(data=earlier).last_stamp(len(earlier), parse)
            return {'line': line[:300].decode('utf-8', 'replace'), 'timestamp': stamp}
        end = begin
        if len(tail) > MAX_LINE:
            tail = b''
    return None


def _marker_forwards(stream, regex, parse):
    found = None
    for _offset, block in iter_blocks(stream):
        last = None
        for match in regex.finditer(block):
            last = match
        if last is not None:
            line_start = block.rfind(b'\n', 0, last.start()) + 1
            stamp, line = _stamp_before(block, line_start, parse)
            found = {'line': line[:300].decode('utf-8', 'replace'), 'timestamp': stamp}
    return found


# ---- checks ------------------------------------------------------------------------

def _window_text(metric):
    since, until = metric.get('since'), metric.get('until')
    if since is None and until is None:
        return 'in all lines'
    parts = []
    if since is not None:
        parts.append('since %s' % (('%s ago' % since) if _looks_duration(since) else since))
    if until is not None:
        parts.append('until %s' % (('%s ago' % until) if _looks_duration(until) else until))
    return ' '.join(parts)


def _looks_duration(value):
    return isinstance(value, (int, float)) or bool(re.match(r'^\s*\d+(\.\d+)?\s*[smhdw]?\s*$', str(value)))


def _describe(metric):
    kind = metric['type']
    window = _window_text(metric)
    if kind == 'count':
        return 'lines matching /%s/ %s' % (metric['pattern'], window)
    if kind == 'rate':
        if metric.get('field'):
            return 'error rate (%s in %s) %s' % (metric['field'], metric['match'], window)
        return 'error rate (/%s/ of /%s/) %s' % (metric['pattern'], metric['requests'], window)
    if kind == 'stats':
        return '%s of %s %s' % (metric['stat'], metric['field'], window)
    if kind == 'values':
        return 'lines with %s %s' % (metric['field'], window)
    if kind == 'clients':
        return 'most %s requests of one client %s' % ('/'.join(metric['classes']), window)
    if kind == 'injections':
        return 'requests matching injection patterns %s' % window
    if kind == 'logins':
        return 'clients with more than %d %s requests to /%s/ %s' % (
            metric['over'], metric['method'], metric.get('path') or r'/login\b', window)
    return kind


def _metric_result(metric, acc, sources, prepared):
    unit = metric.get('unit') if metric['type'] == 'stats' else UNITS[metric['type']]
    what = _describe(metric)
    value, details = acc.value()
    details = dict(details or {})
    if metric['since_ts'] is not None:
        details['since'] = metric['since_ts']
    if metric['until_ts'] is not None:
        details['until'] = metric['until_ts']
    if not sources:
        return check_result(metric['name'], KIND, UNKNOWN, '%s: no log file matches %s' % (
            what, ', '.join(prepared['paths'])), unit=unit, warning=metric['warning'],
            critical=metric['critical'], details=details)
    json_field = metric.get('json')
    if json_field is not None and json_field.invalid:
        details['lines_not_json'] = json_field.invalid
    check = metric_check(metric['name'], KIND, value, unit, metric['warning'], metric['critical'],
                         ABOVE, what, details=details)
    if value is None:
        check['message'] = '%s: nothing to measure (%s)' % (
            what, 'no requests' if metric['type'] == 'rate' else 'no values')
    else:
        figures = _figures(metric['type'], details, unit)
        if figures:
            check['message'] += '; ' + figures
    return check


def _figures(kind, details, unit):
    """The figures a reader of the report wants beside the judged value: the other
    statistics and the buckets of ``stats``, the top values of ``values``."""
    if kind == 'stats' and details.get('stats'):
        stats = details['stats']
        suffix = (' ' + unit) if unit else ''
        text = 'count %d, min %s, max %s, p95 %s%s' % (
            stats['count'], _number(stats['min']), _number(stats['max']), _number(stats['p95']), suffix)
        buckets = details.get('buckets') or []
        if buckets:
            text += '; ' + ', '.join('%s %d (%.1f %%)' % (b['bucket'], b['count'], b['percent']) for b in buckets)
        return text
    if kind == 'values' and details.get('top'):
        shown = details['top'][:5]
        text = 'top: ' + ', '.join('%s %d' % (entry['value'], entry['count']) for entry in shown)
        if details.get('distinct', 0) > len(shown):
            text += ' (%d distinct)' % details['distinct']
        return text
    return ''


def _number(value):
    return ('%.2f' % value).rstrip('0').rstrip('.') if isinstance(value, float) else str(value)


def _marker_check(metric, found, sources, prepared):
    warning, critical = metric['warning'], metric['critical']
    pattern = metric['pattern']
    if not sources:
        return check_result(metric['name'], KIND, CRITICAL, 'no log file matches %s, so no line '
                            'matches /%s/' % (', '.join(prepared['paths']), pattern),
                            unit='s', warning=warning, critical=critical)
    if found is None:
        return check_result(metric['name'], KIND, CRITICAL, 'no line matches /%s/ in %d file%s'
                            % (pattern, len(sources), '' if len(sources) == 1 else 's'),
                            unit='s', warning=warning, critical=critical)
    if found['timestamp'] is None:
        return check_result(metric['name'], KIND, UNKNOWN, 'the newest line matching /%s/ in %s has '
                            'no timestamp that could be read: %s' % (pattern, found['path'], found['line']),
                            unit='s', warning=warning, critical=critical, details=found)
    age = round(max(0.0, prepared['now'] - found['timestamp']), 1)
    details = dict(found)
    check = metric_check(metric['name'], KIND, age, 's', warning, critical, ABOVE, 'age', details=details)
    limits = describe_thresholds(format_duration(warning) if warning is not None else None,
                                 format_duration(critical) if critical is not None else None, ABOVE)
    check['message'] = 'newest line matching /%s/ is %s old (%s)%s' % (
        pattern, format_duration(age), found['path'], ' (%s)' % limits if limits else '')
    return check


def run_scan(spec, now=None, deadline=None):
    """prepare_scan + scan: the one call the module and the log probe make."""
    return scan(prepare_scan(spec, now), deadline=deadline)


__all__ = ['prepare_scan', 'scan', 'run_scan', 'TimeParser', 'parse_time_bound', 'expand_paths',
           'iter_blocks', 'find_line_at', 'LineCounter', 'ValueCounts', 'counted_percentile',
           'literal_words', 'percentile', 'METRIC_TYPES']
