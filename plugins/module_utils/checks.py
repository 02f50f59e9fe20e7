# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one result shape every runbook.ops check returns, and the pure logic
behind it: thresholds, severities, percentiles, durations and JSON assertions.

Nothing here imports Ansible, so it is unit-tested directly.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import re

OK = 'ok'
WARNING = 'warning'
UNKNOWN = 'unknown'
CRITICAL = 'critical'
STATUSES = (OK, WARNING, UNKNOWN, CRITICAL)

# ok < warning < unknown < critical: a check that could not run needs more
# attention than a warning, but is not a confirmed outage.
SEVERITY = {OK: 0, WARNING: 1, UNKNOWN: 2, CRITICAL: 3}

ABOVE = 'above'   # higher values are worse (usage %, latency)
BELOW = 'below'   # lower values are worse (days until expiry, free space)


class ProbeError(Exception):
    """A probe could not measure what it was asked to (library missing,
    permission denied, unexpected reply). Becomes an ``unknown`` check."""


class Unreachable(ProbeError):
    """The target did not answer (refused, timed out, name not found).
    Becomes the probe's ``on_unreachable`` status."""


class InvalidProbe(ValueError):
    """The probe's definition is wrong; the message names the probe and the fix."""


def worst(statuses, severity=None):
    """Roll a list of statuses up to the most severe one (ok when empty); of
    equally severe ones the first wins.  ``severity`` ranks statuses beyond
    the check statuses (a report's host statuses)."""
    severity = severity or SEVERITY
    result = OK
    for status in statuses:
        if severity[status] > severity[result]:
            result = status
    return result


def at_least(status, floor):
    """True when ``status`` is as severe as ``floor`` or more."""
    return SEVERITY[status] >= SEVERITY[floor]


def summarize(checks):
    """Count checks per status and roll them up."""
    counts = dict((status, 0) for status in STATUSES)
    for check in checks:
        counts[check['status']] += 1
    return {'status': worst(c['status'] for c in checks), 'counts': counts}


def check_result(name, kind, status, message, value=None, unit=None,
                 warning=None, critical=None, duration_ms=None, details=None):
    """Build one check in the shape of DESIGN.md."""
    if status not in SEVERITY:
        raise ValueError('unknown status %r' % (status,))
    result = {
        'name': name,
        'kind': kind,
        'status': status,
        'value': value,
        'unit': unit,
        'warning': warning,
        'critical': critical,
        'message': message,
        'duration_ms': duration_ms,
    }
    if details:
        result['details'] = details
    return result


def validate_thresholds(warning, critical, direction, what):
    """Raise InvalidProbe unless the thresholds are numbers in a sane order.

    ``what`` names the probe and metric for the message.
    """
    for label, limit in (('warning', warning), ('critical', critical)):
        if limit is None:
            continue
        if isinstance(limit, bool) or not isinstance(limit, (int, float)):
            raise InvalidProbe('%s: %s threshold %r is not a number' % (what, label, limit))
        if math.isnan(limit):
            raise InvalidProbe('%s: %s threshold is NaN, not a number' % (what, label))
        if limit < 0:
            raise InvalidProbe('%s: %s threshold %r is negative; give a value >= 0'
                               % (what, label, limit))
    if warning is not None and critical is not None:
        if direction == ABOVE and warning > critical:
            raise InvalidProbe('%s: warning threshold %s is above critical %s; higher values '
                               'are worse here, so warning must be <= critical'
                               % (what, warning, critical))
        if direction == BELOW and warning < critical:
            raise InvalidProbe('%s: warning threshold %s is below critical %s; lower values '
                               'are worse here, so warning must be >= critical'
                               % (what, warning, critical))


def evaluate(value, warning=None, critical=None, direction=ABOVE):
    """Judge a measured value against its thresholds.

    With ``above`` a value strictly over a threshold breaches it; with
    ``below`` a value strictly under it does.  Returns a status.
    """
    if value is None:
        return UNKNOWN

    def breached(limit):
        if limit is None:
            return False
        return value > limit if direction == ABOVE else value < limit

    if breached(critical):
        return CRITICAL
    if breached(warning):
        return WARNING
    return OK


def describe_thresholds(warning, critical, direction, unit=''):
    """'warning > 80 %, critical > 90 %' or '' when there are none."""
    sign = '>' if direction == ABOVE else '<'
    unit = (' ' + unit) if unit else ''
    parts = []
    if warning is not None:
        parts.append('warning %s %s%s' % (sign, format_number(warning), unit))
    if critical is not None:
        parts.append('critical %s %s%s' % (sign, format_number(critical), unit))
    return ', '.join(parts)


def format_number(value):
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return '%.2f' % value if abs(value) < 100 else '%.1f' % value
    return str(value)


def metric_check(name, kind, value, unit, warning, critical, direction, what,
                 duration_ms=None, details=None):
    """A check for one numeric metric, with a message naming value and thresholds."""
    status = evaluate(value, warning, critical, direction)
    limits = describe_thresholds(warning, critical, direction, unit)
    message = '%s is %s%s' % (what, format_number(value), (' ' + unit) if unit else '')
    if limits:
        message += ' (%s)' % limits
    return check_result(name, kind, status, message, value=value, unit=unit,
                        warning=warning, critical=critical, duration_ms=duration_ms,
                        details=details)


def percentile(values, pct):
    """The pct-th percentile (0-100) by linear interpolation between closest
    ranks, as numpy's default does.  None for an empty list."""
    if not values:
        return None
    if not 0 <= pct <= 100:
        raise ValueError('percentile must be within 0..100, got %r' % (pct,))
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(math.floor(rank))
    high = int(math.ceil(rank))
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def latency_stats(samples):
    """count/avg/min/p50/p95/p99/max of a list of numbers (None values when empty)."""
    if not samples:
        return dict(count=0, avg=None, min=None, p50=None, p95=None, p99=None, max=None)
    return {
        'count': len(samples),
        'avg': round(sum(samples) / len(samples), 3),
        'min': round(min(samples), 3),
        'p50': round(percentile(samples, 50), 3),
        'p95': round(percentile(samples, 95), 3),
        'p99': round(percentile(samples, 99), 3),
        'max': round(max(samples), 3),
    }


_DURATION = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$')
_DURATION_UNITS = {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800, None: 1}


def parse_duration(value, what):
    """Seconds from 90, '90s', '15m', '25h', '7d' or '2w'; InvalidProbe otherwise."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidProbe('%s: %r is not a duration' % (what, value))
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise InvalidProbe("%s: %r is not a duration; write seconds or a number with "
                               "a unit such as '90s', '15m', '25h', '7d'" % (what, value))
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds < 0:
        raise InvalidProbe('%s: duration %r is negative' % (what, value))
    return seconds


def format_duration(seconds):
    """'2d3h', '3h12m', '4m5s', '12s' for a number of seconds."""
    if seconds is None:
        return 'unknown'
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return '%dd%dh' % (days, hours)
    if hours:
        return '%dh%dm' % (hours, minutes)
    if minutes:
        return '%dm%ds' % (minutes, secs)
    return '%ds' % secs


# ---- JSON body assertions -------------------------------------------------

_ASSERTION = re.compile(r'^\s*(?P<path>[^\s=!<>]+)\s*(?P<op>==|!=|>=|<=|>|<|=~|exists|absent)?'
                        r'\s*(?P<value>.*?)\s*$')
_OPERATORS = ('==', '!=', '>', '>=', '<', '<=', '=~', 'exists', 'absent')
_MISSING = object()


def parse_assertion(spec, what):
    """Normalise an assertion to {path, op, value}.

    Accepts a dict ``{path, op, value}`` or a string such as
    ``status == "healthy"``, ``components.db.latency_ms < 50``,
    ``items[0].id exists`` or ``version =~ "^2\\."``.  A string value on the
    right is JSON (quote strings; ``true``, ``null`` and numbers are literals).
    """
    if isinstance(spec, dict):
        path = spec.get('path')
        op = spec.get('op', '==' if 'value' in spec else 'exists')
        value = spec.get('value')
        if op not in ('exists', 'absent') and 'value' not in spec:
            raise InvalidProbe('%s: assertion %r has no value for %s' % (what, spec, op))
    elif isinstance(spec, str):
        match = _ASSERTION.match(spec)
        if not match or not match.group('path'):
            raise InvalidProbe('%s: cannot read assertion %r; write it as '
                               '\'<path> <op> <json value>\', e.g. \'status == "healthy"\''
                               % (what, spec))
        path, op, raw = match.group('path'), match.group('op'), match.group('value')
        if op is None:
            if raw:
                raise InvalidProbe('%s: assertion %r has no operator; use one of %s'
                                   % (what, spec, ', '.join(_OPERATORS)))
            op = 'exists'
        value = None
        if op in ('exists', 'absent') and raw:
            raise InvalidProbe('%s: assertion %r has text after %s; %s takes no value'
                               % (what, spec, op, op))
        if op not in ('exists', 'absent'):
            if raw == '':
                raise InvalidProbe('%s: assertion %r has no value after %s' % (what, spec, op))
            try:
                value = json.loads(raw)
            except ValueError:
                raise InvalidProbe('%s: value %s in assertion %r is not JSON; quote strings, '
                                   'e.g. status == "healthy"' % (what, raw, spec))
    else:
        raise InvalidProbe('%s: assertion %r must be a string or a dict with path, op, value'
                           % (what, spec))
    if not path or not isinstance(path, str):
        raise InvalidProbe('%s: assertion %r has no field path' % (what, spec))
    if op not in _OPERATORS:
        raise InvalidProbe('%s: assertion %r has unknown operator %r; use one of %s'
                           % (what, spec, op, ', '.join(_OPERATORS)))
    try:
        split_path(path)
    except ValueError:
        raise InvalidProbe('%s: assertion %r has a bad field path %r; write fields with dots '
                           'and list indexes in brackets, e.g. items[0].id' % (what, spec, path))
    if op == '=~':
        try:
            re.compile(str(value))
        except re.error as exc:
            raise InvalidProbe('%s: assertion %r has a bad regular expression: %s'
                               % (what, spec, exc))
    return {'path': path, 'op': op, 'value': value}


_PATH_TOKEN = re.compile(r'([^.\[\]]+)|\[(\d+)\]')


def split_path(path):
    """'components.db.status' -> ['components', 'db', 'status'];
    'items[0].id' -> ['items', 0, 'id']."""
    parts = []
    pos = 0
    for match in _PATH_TOKEN.finditer(path):
        gap = path[pos:match.start()]
        if gap not in ('', '.'):
            raise ValueError('bad path %r' % path)
        pos = match.end()
        if match.group(2) is not None:
            parts.append(int(match.group(2)))
        else:
            parts.append(match.group(1))
    if path[pos:] not in ('',):
        raise ValueError('bad path %r' % path)
    return parts


def lookup_path(document, path):
    """The value at ``path`` in a parsed JSON document, or _MISSING."""
    node = document
    for part in split_path(path):
        if isinstance(part, int):
            if isinstance(node, list) and -len(node) <= part < len(node):
                node = node[part]
                continue
            if isinstance(node, dict) and str(part) in node:
                node = node[str(part)]
                continue
            return _MISSING
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node


def _json_equal(left, right):
    """Equality of JSON values, where true is not 1 and false is not 0
    (Python's == says they are)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_json_equal(a, b) for a, b in zip(left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return (set(left) == set(right)
                and all(_json_equal(left[key], right[key]) for key in left))
    return left == right


def evaluate_assertion(document, assertion):
    """(passed, actual, text) for one normalised assertion on a JSON document."""
    actual = lookup_path(document, assertion['path'])
    op, expected = assertion['op'], assertion['value']
    shown = 'missing' if actual is _MISSING else json.dumps(actual, sort_keys=True)
    text = '%s %s%s' % (assertion['path'], op,
                        '' if op in ('exists', 'absent') else ' ' + json.dumps(expected))
    if op == 'exists':
        return actual is not _MISSING, shown, text
    if op == 'absent':
        return actual is _MISSING, shown, text
    if actual is _MISSING:
        return False, shown, text
    if op == '==':
        return _json_equal(actual, expected), shown, text
    if op == '!=':
        return not _json_equal(actual, expected), shown, text
    if op == '=~':
        subject = actual if isinstance(actual, str) else json.dumps(actual)
        return re.search(str(expected), subject) is not None, shown, text
    numbers = (int, float)
    if (isinstance(actual, bool) or isinstance(expected, bool)
            or not isinstance(actual, numbers) or not isinstance(expected, numbers)):
        return False, shown, text + ' (not numbers)'
    passed = {'>': actual > expected, '>=': actual >= expected,
              '<': actual < expected, '<=': actual <= expected}[op]
    return passed, shown, text
