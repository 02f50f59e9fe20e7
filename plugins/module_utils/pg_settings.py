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


def parse_settings(settings, required=True):
    """Validate the names; returns [(name, text)] in order."""
    entries, errors = [], []
    for name, value in (settings or {}).items():
        if not NAME_RE.match(str(name)):
            errors.append('%r is not a parameter name' % (name,))
            continue
        if value is None or to_text(value) == '':
            errors.append('%s: give a value, or list %s in reset to take it back with ALTER SYSTEM RESET'
                          % (name, name))
            continue
        entries.append((str(name).lower(), to_text(value)))
    if errors:
        raise SettingError('; '.join(errors))
    if required and not entries:
        raise SettingError('settings is empty; give at least one parameter: value')
    return entries


def parse_reset(names, entries=()):
    """Validate the names to ALTER SYSTEM RESET; returns them in lower case, in order,
    once each. entries: parse_settings() of the same call (a name cannot be in both)."""
    resets, errors = [], []
    setting = set(name for name, _text in entries)
    for name in names or []:
        if not isinstance(name, str) or not NAME_RE.match(name):
            errors.append('reset: %r is not a parameter name' % (name,))
            continue
        lowered = name.lower()
        if lowered in setting:
            errors.append('%s is in both settings and reset; keep it in one of them' % lowered)
        elif lowered not in resets:
            resets.append(lowered)
    if errors:
        raise SettingError('; '.join(errors))
    return resets


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
                            'context': meta.get('context') if meta else None, 'action': 'set'})
    return changes, errors


def plan_resets(resets, rows, configured, fallback):
    """resets: parse_reset(); rows and configured as for plan(); fallback: {name: raw
    value of postgresql.conf and its includes} (missing: the built-in default, the row's
    boot_val). Only what postgresql.auto.conf sets is reset.

    Returns (changes, errors); a change is {name, before, after: None, context, action:
    'reset', falls_back_to, restart} where restart tells whether the value the server
    runs with differs from the one it falls back to and the context needs a restart."""
    changes, errors = [], []
    for name in resets:
        meta = rows.get(name)
        if meta is None and '.' not in name:
            errors.append('reset: %s is not a parameter of this server (a typo, or a parameter of a '
                          'newer PostgreSQL); remove it from reset' % name)
            continue
        if name not in configured:
            continue  # not in postgresql.auto.conf: nothing to take back
        if meta is not None and name in fallback:
            back = fallback[name]
        elif meta is not None:
            back = meta.get('boot_val')
        else:
            back = None
        restart = False
        if meta is not None and meta.get('context') == 'postmaster':
            try:
                restart = normalize(name, back, meta) != normalize(name, meta['setting'], meta)
            except SettingError:
                restart = True  # cannot tell: a restart is the safe word
        if back is not None and meta is not None and name not in fallback and meta.get('unit'):
            back = '%s (x %s)' % (back, meta['unit'])
        changes.append({'name': name, 'before': configured[name], 'after': None,
                        'context': meta.get('context') if meta else None, 'action': 'reset',
                        'falls_back_to': back, 'restart': restart})
    return changes, errors


def reset_settled(change, meta, back):
    """Whether a reloaded server shows a reset: a reloadable parameter runs with the value it
    fell back to (back: the raw postgresql.conf value or boot_val), one that needs a restart
    has pending_restart as predicted."""
    if meta is None:
        return True
    name = change['name']
    if meta.get('context') == 'postmaster':
        return bool(meta.get('pending_restart')) == bool(change['restart'])
    if back is None:
        return True
    try:
        return normalize(name, meta['setting'], meta) == normalize(name, back, meta)
    except SettingError:
        return True


def describe_value(value):
    return '' if value is None else str(value)
