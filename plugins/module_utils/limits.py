# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pam_limits entries (limits.conf(5)): validation, rendering and other files' entries
for the same domain and item."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

ITEMS = ('core', 'data', 'fsize', 'memlock', 'nofile', 'rss', 'stack', 'cpu', 'nproc', 'as',
         'maxlogins', 'maxsyslogins', 'nonewprivs', 'priority', 'locks', 'sigpending',
         'msgqueue', 'nice', 'rtprio', 'chroot')
TYPES = ('soft', 'hard', '-')
UNLIMITED = ('unlimited', 'infinity', '-1')
SIGNED_ITEMS = ('priority', 'nice')
DOMAIN_RE = re.compile(r'^(\*|[@%]?[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?|%|@?\d*:\d*)$')
NAME_RE = re.compile(r'^[A-Za-z0-9_.-]+$')


class LimitsError(Exception):
    """Bad limits; the message names the entry and the fix."""


def normalize_value(item, value):
    text = str(value).strip().lower()
    if text in UNLIMITED and item not in SIGNED_ITEMS:
        return 'unlimited'
    if item == 'chroot':
        return str(value).strip()
    if not re.match(r'^-?\d+$', text) or (text.startswith('-') and item not in SIGNED_ITEMS):
        raise LimitsError('%s takes a whole number or unlimited, not %r' % (item, value))
    return str(int(text))


def parse_items(items, nr_open=None):
    """items: [{domain, item, value, type (soft|hard|- default -)}]. Returns
    [(domain, type, item, value)] expanded and validated; raises LimitsError listing
    every problem. nr_open: fs.nr_open, the ceiling of nofile (a higher hard limit
    makes pam_limits refuse the login)."""
    entries, errors, seen = [], [], {}
    for index, spec in enumerate(items or []):
        where = 'limits[%d]' % index
        if not isinstance(spec, dict):
            errors.append('%s: give a dict with domain, item, value and optionally type' % where)
            continue
        unknown = sorted(set(spec) - set(['domain', 'item', 'value', 'type']))
        missing = [k for k in ('domain', 'item', 'value') if spec.get(k) in (None, '')]
        if unknown or missing:
            errors.append('%s: %s' % (where, 'unknown keys %s' % ', '.join(unknown) if unknown
                                      else 'missing %s' % ', '.join(missing)))
            continue
        domain, item = str(spec['domain']).strip(), str(spec['item']).strip()
        kind = str(spec.get('type') or '-').strip()
        where = '%s (%s %s)' % (where, domain, item)
        if not DOMAIN_RE.match(domain):
            errors.append('%s: %r is not a user, @group, %%group, * or uid range' % (where, domain))
            continue
        if item not in ITEMS:
            errors.append('%s: unknown item %r (one of %s)' % (where, item, ', '.join(ITEMS)))
            continue
        if kind not in TYPES:
            errors.append('%s: type is soft, hard or -, not %r' % (where, kind))
            continue
        try:
            value = normalize_value(item, spec['value'])
        except LimitsError as exc:
            errors.append('%s: %s' % (where, exc))
            continue
        if item == 'nofile' and nr_open is not None and kind in ('hard', '-') and \
                (value == 'unlimited' or int(value) > nr_open):
            errors.append('%s: nofile %s is above fs.nr_open (%d), so logins would fail; raise '
                          'fs.nr_open first (sysctl_tune) or lower the value' % (where, value, nr_open))
            continue
        for single in (('soft', 'hard') if kind == '-' else (kind,)):
            key = (domain, single, item)
            if key in seen:
                errors.append('%s: %s %s %s is given twice' % (where, domain, single, item))
            seen[key] = value
        entries.append((domain, kind, item, value))
    for (domain, kind, item), value in seen.items():
        hard = seen.get((domain, 'hard', item))
        if kind == 'soft' and hard is not None and _above(value, hard):
            errors.append('%s soft %s %s is above its hard limit %s' % (domain, item, value, hard))
    if errors:
        raise LimitsError('; '.join(errors))
    if not entries:
        raise LimitsError('limits is empty; give at least one {domain, item, value}')
    return entries


def _above(soft, hard):
    if hard == 'unlimited':
        return False
    if soft == 'unlimited':
        return True
    try:
        return int(soft) > int(hard)
    except ValueError:
        return False


def render(entries, name, source='runbook.ops.limits_dropin'):
    lines = ['# %s: written by %s; local changes are overwritten.' % (name, source),
             '# <domain> <type> <item> <value>']
    for domain, kind, item, value in entries:
        lines.append('%-16s %-5s %-10s %s' % (domain, kind, item, value))
    return '\n'.join(lines) + '\n'


def parse_conf(text):
    """[(line, domain, type, item, value)] of a limits.conf file."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split('#', 1)[0].strip()
        fields = line.split()
        if len(fields) == 4:
            found.append((number, fields[0], fields[1], fields[2], fields[3]))
    return found


def others(entries, texts):
    """Entries of other files ({path: text}) for the same domain and item with
    another value: [{file, line, domain, type, item, value, wanted}]."""
    wanted = {}
    for domain, kind, item, value in entries:
        for single in (('soft', 'hard') if kind == '-' else (kind,)):
            wanted[(domain, single, item)] = value
    found = []
    for path in sorted(texts):
        for number, domain, kind, item, value in parse_conf(texts[path]):
            for single in (('soft', 'hard') if kind == '-' else (kind,)):
                want = wanted.get((domain, single, item))
                try:
                    same = normalize_value(item, value) == want
                except LimitsError:
                    same = False
                if want is not None and not same:
                    found.append({'file': path, 'line': number, 'domain': domain, 'type': single,
                                  'item': item, 'value': value, 'wanted': want})
    return found
