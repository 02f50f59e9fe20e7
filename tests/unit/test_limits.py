# -*- coding: utf-8 -*-
"""Unit tests of plugins/module_utils/limits.py."""

import pytest

from ansible_collections.runbook.ops.plugins.module_utils.limits import (
    LimitsError, others, parse_conf, parse_items, render,
)


def test_parse_render_roundtrip():
    entries = parse_items([{'domain': 'logcaster', 'item': 'nofile', 'value': 65535},
                           {'domain': '@ops', 'item': 'core', 'value': 'infinity', 'type': 'soft'},
                           {'domain': '*', 'item': 'nice', 'value': -5, 'type': 'hard'}], nr_open=1048576)
    assert entries == [('logcaster', '-', 'nofile', '65535'), ('@ops', 'soft', 'core', 'unlimited'),
                       ('*', 'hard', 'nice', '-5')]
    assert [e[1:] for e in parse_conf(render(entries, 'x'))] == [tuple(e) for e in entries]


@pytest.mark.parametrize('items, message', [
    ([{'domain': 'a b', 'item': 'nofile', 'value': 1}], 'is not a user'),
    ([{'domain': 'svc', 'item': 'nofile', 'value': -1, 'type': 'soft'}], None),
    ([{'domain': 'svc', 'item': 'nproc', 'value': -3}], 'takes a whole number'),
    ([{'domain': 'svc', 'item': 'nofile', 'value': 'unlimited'}], 'above fs.nr_open'),
    ([{'domain': 'svc', 'item': 'nofile', 'value': 1},
      {'domain': 'svc', 'item': 'nofile', 'value': 2, 'type': 'hard'}], 'given twice'),
    ([], 'limits is empty'),
])
def test_validation(items, message):
    if message is None:  # -1 means unlimited for nofile (soft, so nr_open does not bound it)
        assert parse_items(items, nr_open=10)[0][3] == 'unlimited'
        return
    with pytest.raises(LimitsError, match=message):
        parse_items(items, nr_open=1048576)


def test_others_compare_normalised():
    entries = [('svc', '-', 'nofile', '65535'), ('svc', 'soft', 'core', 'unlimited')]
    texts = {'/etc/security/limits.conf': 'svc soft nofile 65535\nsvc hard nofile 1024 # old\n'
                                          'svc soft core infinity\nother - nofile 1\n'}
    assert others(entries, texts) == [{'file': '/etc/security/limits.conf', 'line': 2, 'domain': 'svc',
                                       'type': 'hard', 'item': 'nofile', 'value': '1024',
                                       'wanted': '65535'}]
