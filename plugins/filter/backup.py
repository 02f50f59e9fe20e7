# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the backup and dr_drill roles: registered results to checks of the one
result shape (the logic is in module_utils/backupreport.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.runbook.ops.plugins.module_utils.backupreport import (
    backup_checks, drill_checks, outcome,
)


def backup_outcome(result):
    return outcome(result)


class FilterModule(object):
    def filters(self):
        return {'backup_outcome': backup_outcome, 'backup_checks': backup_checks, 'drill_checks': drill_checks}
