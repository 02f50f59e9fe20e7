# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL server parameters: values compared in the parameter's own unit, the plan
of pg_settings, and the login options every PostgreSQL module shares (the argument
spec matching the runbook.ops.postgres doc fragment, and connect())."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# bytes per memory unit and microseconds per time unit, as PostgreSQL reads them
MEMORY_UNITS = {'B': 1, 'kB': 1024, 'MB': 1024 ** 2, 'GB': 1024 ** 3, 'TB': 1024 ** 4}
TIME_UNITS = {'us': 1, 'ms': 1000, 's': 1000 ** 2, 'min': 60 * 1000 ** 2,
              'h': 3600 * 1000 ** 2, 'd': 86400 * 1000 ** 2}
BOOL_TRUE = ('on', 'true', 'yes', '1', 't', 'y')
BOOL_FALSE = ('off', 'false', 'no', '0', 'f', 'n')
NUMBER_RE = re.compile(r'^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z]*)\s*$')
NAME_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$')
LIST_PARAMETERS = ('shared_preload_libraries', 'session_preload_libraries',
                   'local_preload_libraries', 'search_path', 'temp_tablespaces',
                   'log_destination', 'listen_addresses')


class SettingError(Exception):
    """A value that cannot suit its parameter; the message names both and the fix."""


# ---- values -----------------------------------------------------------------------

def unit_table(unit):
    """(table, factor of one parameter unit) for a pg_settings unit such as '8kB' or 'ms'."""
    if not unit:
        return None, 1
    match = re.match(r'^(\d*)([A-Za-z]+)$', unit)
    if not match:
        return None, 1
    count = int(match.group(1) or 1)
    name = match.group(2)
    if name in MEMORY_UNITS:
        return MEMORY_UNITS, count * MEMORY_UNITS[name]
    if name in TIME_UNITS:
        return TIME_UNITS, count * TIME_UNITS[name]
    return None, 1


def to_text(value):
    if isinstance(value, bool):
        return 'on' if value else 'off'
    if isinstance(value, (list, tuple)):
        return ', '.join(to_text(item) for item in value)
    return str(value).strip()


def normalize(name, value, meta):
    """The value as a comparable Python value in the parameter's own unit.

    meta: the pg_settings row {vartype, unit, enumvals, min_val, max_val} (None for a
    custom parameter, compared as text). Raises SettingError for a value that cannot suit."""
    text = to_text(value)
    if meta is None:
        return text
    vartype = meta.get('vartype')
    if vartype == 'bool':
        lowered = text.lower()
        if lowered in BOOL_TRUE:
            return True
        if lowered in BOOL_FALSE:
            return False
        raise SettingError('%s is a boolean; give on or off, not %r' % (name, text))
    if vartype in ('integer', 'real'):
        match = NUMBER_RE.match(text)
        if not match:
            raise SettingError('%s takes a number%s, not %r' % (
                name, ' with a unit such as %s' % meta['unit'] if meta.get('unit') else '', text))
        number, unit = float(match.group(1)), match.group(2)
        table, factor = unit_table(meta.get('unit'))
        if unit:
            if table is None or unit not in table:
                raise SettingError('%s: unit %r is not valid here (valid: %s)' % (
                    name, unit, ', '.join(sorted(table, key=table.get)) if table else 'none'))
            number = number * table[unit] / factor
        if vartype == 'integer':
            number = int(round(number))
        low, high = meta.get('min_val'), meta.get('max_val')
        if low is not None and high is not None and not float(low) <= number <= float(high):
            raise SettingError('%s = %r is outside %s..%s%s' % (
                name, text, low, high, ' (in units of %s)' % meta['unit'] if meta.get('unit') else ''))
        return number
    if vartype == 'enum':
        allowed = [str(v) for v in (meta.get('enumvals') or [])]
        for candidate in allowed:
            if candidate.lower() == text.lower():
                return candidate
        raise SettingError('%s is one of %s, not %r' % (name, ', '.join(allowed), text))
    if name in LIST_PARAMETERS:
        return tuple(item.strip().strip('"') for item in text.split(',') if item.strip())
    return text


def parse_settings(settings):
    """Validate the names; returns [(name, text)] in order."""
    entries, errors = [], []
    for name, value in (settings or {}).items():
        if not NAME_RE.match(str(name)):
            errors.append('%r is not a parameter name' % (name,))
            continue
        if value is None or to_text(value) == '':
            errors.append('%s: give a value (RESET is not supported here)' % name)
            continue
        entries.append((str(name).lower(), to_text(value)))
    if errors:
        raise SettingError('; '.join(errors))
    if not entries:
        raise SettingError('settings is empty; give at least one parameter: value')
    return entries


def plan(entries, rows, configured):
    """entries: parse_settings(); rows: {name: pg_settings row}; configured: {name: raw
    value in postgresql.auto.conf}. The value to compare with is the one ALTER SYSTEM
    left in postgresql.auto.conf, else the running one.

    Returns (changes, errors) where changes is [{name, before, after, context}]."""
    changes, errors = [], []
    for name, text in entries:
        meta = rows.get(name)
        if meta is None and '.' not in name:
            errors.append('%s is not a parameter of this server (a typo, or a parameter of a '
                          'newer PostgreSQL)' % name)
            continue
        try:
            wanted = normalize(name, text, meta)
            if name in configured:
                current_text = configured[name]
            elif meta is not None:
                current_text = meta['setting']  # a number without unit is in meta['unit']
            else:
                current_text = None
            current = normalize(name, current_text, meta) if current_text is not None else None
        except SettingError as exc:
            errors.append(str(exc))
            continue
        if meta is not None and meta.get('context') == 'internal':
            errors.append('%s is fixed when the cluster is built; it cannot be set' % name)
            continue
        if current != wanted:
            before = current_text
            if name not in configured and meta is not None and meta.get('unit'):
                before = '%s (x %s)' % (current_text, meta['unit'])
            changes.append({'name': name, 'before': before, 'after': text,
                            'context': meta.get('context') if meta else None})
    return changes, errors


def describe_value(value):
    return '' if value is None else str(value)
