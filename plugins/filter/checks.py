# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the reporting roles: the hosts' registered health_probe results and the
default report directory (the logic is in module_utils/report.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.runbook.ops.plugins.module_utils.report import default_report_dir, with_lost_hosts


class FilterModule(object):
    def filters(self):
        return {'with_lost_hosts': with_lost_hosts, 'report_dir': default_report_dir}
