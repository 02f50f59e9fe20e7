# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the tuning role over Redis CONFIG values (the logic is in
module_utils/redis_config.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.runbook.ops.plugins.module_utils.redis_config import config_same, config_text


def redis_config_same(current, wanted):
    return config_same(current, wanted)


def redis_config_value(value):
    return config_text(value)


class FilterModule(object):
    def filters(self):
        return {'redis_config_same': redis_config_same, 'redis_config_value': redis_config_value}
