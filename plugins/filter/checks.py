# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the daily_checks role over the hosts' registered health_probe results
(the logic is in module_utils/report.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.runbook.ops.plugins.module_utils.report import with_lost_hosts


class FilterModule(object):
    def filters(self):
        return {'with_lost_hosts': with_lost_hosts}
