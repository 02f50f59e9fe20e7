# -*- coding: utf-8 -*-
"""Unit tests of plugins/module_utils/redis_config.py: memory units as Redis's memtoull
reads them; the integration test of the tuning role proves them against a real Redis."""

import pytest

from ansible_collections.runbook.ops.plugins.module_utils.redis_config import (
    comparable, config_same, config_text, memtoull,
)


@pytest.mark.parametrize('text, expected', [
    ('1gb', 1073741824), ('1GB', 1073741824), ('1g', 1000000000), ('1Gb', 1073741824),
    ('100mb', 104857600), ('100m', 100000000), ('64kb', 65536), ('64k', 64000), ('512', 512),
    ('512b', 512), ('512B', 512), (0, 0), (1073741824, 1073741824),
    ('1tb', None), ('1.5gb', None), ('-1', None), ('', None), ('allkeys-lru', None), ('10%', None),
])
def test_memtoull(text, expected):
    assert memtoull(text) == expected


def test_config_same():
    assert config_same('1073741824', '1gb')
    assert config_same('1000000000', '1G')
    assert not config_same('1000000000', '1gb')
    assert config_same('0', 0)
    assert config_same('allkeys-lru', 'ALLKEYS-LRU')
    assert not config_same('noeviction', 'allkeys-lru')
    assert config_same('yes', True) and config_same('no', False) and not config_same('no', True)
    assert config_same('normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60',
                       'normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb 8mb 60')
    assert config_same('3600 1 300 100', [3600, 1, 300, 100])
    assert config_same('10%', '10%') and not config_same('10%', '20%')


def test_config_text():
    assert config_text(True) == 'yes' and config_text(False) == 'no'
    assert config_text('1gb') == '1gb' and config_text(1024) == '1024'
    assert config_text([3600, 1, 300, 100]) == '3600 1 300 100'
    assert comparable(' 1kb ') == (1024,)
