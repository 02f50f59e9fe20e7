# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redis CONFIG values compared the way Redis reads them: memory sizes with units
(memtoull in Redis's util.c: 1k = 1000, 1kb = 1024, m/mb, g/gb, case-insensitive) equal the
bytes CONFIG GET answers, booleans are yes/no, words are compared case-insensitively."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# Redis's memtoull: digits, then an optional unit, case-insensitive
MEMORY_UNITS = {'': 1, 'b': 1, 'k': 1000, 'kb': 1024, 'm': 1000 ** 2, 'mb': 1024 ** 2,
                'g': 1000 ** 3, 'gb': 1024 ** 3}
MEMORY_RE = re.compile(r'^(\d+)([A-Za-z]*)$')


def memtoull(text):
    """Bytes of a Redis memory value ('1gb' -> 1073741824, '1g' -> 1000000000, '512' -> 512);
    None when Redis would not read it as one."""
    match = MEMORY_RE.match(str(text).strip())
    if not match:
        return None
    factor = MEMORY_UNITS.get(match.group(2).lower())
    if factor is None:
        return None
    return int(match.group(1)) * factor


def config_text(value):
    """The text CONFIG SET takes for a YAML value: booleans as yes/no, lists joined with spaces."""
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    if isinstance(value, (list, tuple)):
        return ' '.join(config_text(item) for item in value)
    return str(value).strip()


def _word(word):
    size = memtoull(word)
    return size if size is not None else word.lower()


def comparable(value):
    """A value as a tuple of words, each memory size in bytes, each other word in lower case
    (so 'normal 0 0 0 replica 256mb 64mb 60' equals CONFIG GET's bytes)."""
    return tuple(_word(word) for word in config_text(value).split())


def config_same(current, wanted):
    """Whether CONFIG GET's current value already is the wanted one."""
    return comparable(current) == comparable(wanted)
