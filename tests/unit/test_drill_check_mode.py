# -*- coding: utf-8 -*-
"""A DR drill run in check mode (pg_backup state=verified returns would_verify and
restores nothing) is reported as planned: unknown restore and RTO, measured RPO."""

from ansible_collections.runbook.ops.plugins.module_utils import backupreport as br


def test_check_mode_drill_is_unknown_not_proven_and_keeps_the_rpo():
    drills = [{'kind': 'postgresql', 'item': {'database': 'shop'}, 'rpo_seconds': 600.0, 'changed': False,
               'would_verify': {'backup': '20260101T000000Z', 'level': 'restore_test', 'status': 'passed'}}]
    checks = dict((c['name'], c) for c in br.drill_checks(drills, 14400, 3600))
    assert checks['restore:shop']['status'] == 'unknown'
    assert 'would restore 20260101T000000Z' in checks['restore:shop']['message']
    assert checks['rto:shop']['status'] == 'unknown' and checks['rto:shop']['value'] is None
    assert checks['rpo:shop']['status'] == 'ok' and checks['rpo:shop']['value'] == 600.0


def test_check_mode_drill_without_a_backup_says_so():
    drills = [{'kind': 'postgresql', 'item': {'database': 'shop'}, 'rpo_seconds': None, 'would_verify': None}]
    checks = dict((c['name'], c) for c in br.drill_checks(drills, 14400, 3600))
    assert 'no backup' in checks['restore:shop']['message']
    assert checks['rpo:shop']['status'] == 'critical'


def test_a_failed_check_mode_run_stays_critical():
    drills = [{'kind': 'postgresql', 'item': {'database': 'shop'}, 'failed': True, 'msg': 'login failed',
               'would_verify': None}]
    checks = dict((c['name'], c) for c in br.drill_checks(drills, 14400, 3600))
    assert checks['restore:shop']['status'] == 'critical' and checks['restore:shop']['message'] == 'login failed'
