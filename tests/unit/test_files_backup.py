# -*- coding: utf-8 -*-
"""Unit tests of the pure parts of the files backup (plans, paths, member comparison,
commands) and of the backup/drill checks (backupreport.py)."""

import tarfile

import pytest

from ansible_collections.runbook.ops.plugins.module_utils import backupreport as br
from ansible_collections.runbook.ops.plugins.module_utils import filesbackup as fb
from ansible_collections.runbook.ops.plugins.module_utils.backup import BackupError


def test_plan_sorts_roots_and_puts_a_database_outside_the_paths_in_its_own_root():
    plan = fb.backup_plan({'paths': ['/etc/nginx/', '/var/lib/app'], 'sqlite': ['/var/lib/app/a.db', '/srv/b.db']})
    assert plan['roots'] == ['/etc/nginx', '/srv/b.db', '/var/lib/app']
    assert plan['archive'] == 'files.tar.gz' and plan['level'] == 1


@pytest.mark.parametrize('params, message', [
    ({'paths': []}, 'nothing to back up'),
    ({'paths': ['/']}, 'refusing'),
    ({'paths': ['etc/x']}, 'not an absolute path'),
    ({'paths': ['/etc', '/etc/nginx']}, '/etc/nginx is inside /etc'),
    ({'paths': ['/etc'], 'compression': 'gzip', 'compression_level': 12}, 'out of range'),
    ({'paths': ['/etc'], 'compression': 'lz4'}, 'use one of'),
])
def test_plan_refuses_bad_input_with_a_named_reason(params, message):
    with pytest.raises(BackupError, match=message):
        fb.backup_plan(params)


def test_inside_is_path_aware():
    assert fb.inside('/etc/nginx/a', '/etc/nginx') and fb.inside('/etc/nginx', '/etc/nginx')
    assert not fb.inside('/etc/nginx2', '/etc/nginx')


def test_excludes_match_the_path_or_the_base_name():
    assert fb.is_excluded('/var/lib/app/x.tmp', ['*.tmp'])
    assert fb.is_excluded('/var/lib/app/cache', ['/var/lib/app/cache'])
    assert not fb.is_excluded('/var/lib/app/data', ['*.tmp', 'cache'])


def test_compare_member_names_each_difference():
    entry = {'path': 'etc/a', 'type': 'file', 'mode': '0640', 'uid': 1, 'gid': 2, 'size': 3, 'sha256': 'ab'}
    member = tarfile.TarInfo('etc/a')
    member.mode, member.uid, member.gid, member.size = 0o640, 1, 2, 3
    assert fb.compare_member(member, entry, 'ab') == []
    member.mode, member.uid = 0o644, 5
    problems = fb.compare_member(member, entry, 'cd')
    assert any('mode 0644' in p for p in problems) and any('owned by 5:2' in p for p in problems)
    assert any('sha256 cd' in p for p in problems)
    link = tarfile.TarInfo('etc/a')
    link.type = tarfile.SYMTYPE
    assert 'is a symlink in the archive' in fb.compare_member(link, entry)[0]


def test_command_argv_splits_strings_and_refuses_empty_ones():
    assert fb.command_argv('systemctl is-active "log caster"', 'x') == ['systemctl', 'is-active', 'log caster']
    assert fb.command_argv(['test', '-s', 1], 'x') == ['test', '-s', '1']
    assert fb.command_argv(None, 'x') is None
    with pytest.raises(BackupError):
        fb.command_argv('"unclosed', 'health_check')


def test_drill_checks_judge_rto_and_rpo_against_the_targets():
    drills = [{'kind': 'postgresql', 'item': {'database': 'shop'}, 'rto_seconds': 12000.0, 'rpo_seconds': 600.0,
               'verification': {'backup': '20260101T000000Z', 'restore_test': {'scratch_database': 'shop_verify'}}},
              {'kind': 'files', 'item': {'label': 'app'}, 'failed': True, 'msg': 'health_check failed'}]
    checks = dict((c['name'], c) for c in br.drill_checks(drills, 14400, 3600))
    assert checks['restore:shop']['status'] == 'ok' and 'shop_verify' in checks['restore:shop']['message']
    assert checks['rto:shop']['status'] == 'warning' and checks['rto:shop']['warning'] == 10800
    assert checks['rpo:shop']['status'] == 'ok'
    assert checks['restore:app']['status'] == 'critical' and checks['restore:app']['message'] == 'health_check failed'
    assert checks['rto:app']['status'] == 'critical' and checks['rto:app']['value'] is None
    assert br.summary(list(checks.values()))['status'] == 'critical'


def test_backup_checks_fail_a_failed_series_and_a_bad_copy():
    outcomes = [br.outcome({'kind': 'files', 'label': 'app', 'taken': {'name': 'n', 'size': 5}, 'backup_dir': '/b/app',
                            'newest_verified': 'n', 'rpo_seconds': 4.0}),
                br.outcome({'kind': 'postgresql', 'item': {'database': 'shop'}, 'failed': True, 'msg': 'no space'})]
    assert outcomes[0]['newest_path'] == '/b/app/n' and outcomes[0]['state'] == 'taken'
    checks = dict((c['name'], c) for c in br.backup_checks(
        outcomes, [{'label': 'app', 'status': 'failed', 'problems': ['x is missing']}], 3600, 7200))
    assert checks['files:app']['status'] == 'ok' and checks['files:app']['value'] == 4.0
    assert checks['postgresql:shop']['status'] == 'critical' and checks['postgresql:shop']['message'] == 'no space'
    assert checks['copy:app']['status'] == 'critical' and 'x is missing' in checks['copy:app']['message']


def test_drill_checks_report_the_recorded_database_properties():
    def drill(label, properties):
        test = {'scratch_database': label + '_verify'}
        if properties is not None:
            test['database_properties'] = properties
        return {'kind': 'postgresql', 'item': {'label': label}, 'rto_seconds': 10.0, 'rpo_seconds': 60.0,
                'verification': {'backup': '20260101T000000Z', 'restore_test': test}}
    drills = [drill('shop', {'owner': 'shop_app', 'missing_roles': [], 'warnings': []}),
              drill('crm', {'owner': 'crm', 'missing_roles': ['reader'],
                            'warnings': ["role 'reader' does not exist here: create it"]}),
              drill('old', None),
              {'kind': 'files', 'item': {'label': 'app'}, 'restored': ['/s/app'], 'rto_seconds': 1, 'rpo_seconds': 1}]
    checks = dict((c['name'], c) for c in br.drill_checks(drills, 14400, 3600))
    assert checks['properties:shop']['status'] == 'ok' and 'owner shop_app' in checks['properties:shop']['message']
    assert checks['properties:shop']['value'] == 0
    assert checks['properties:crm']['status'] == 'warning' and checks['properties:crm']['value'] == 1
    assert "role 'reader'" in checks['properties:crm']['message']
    assert 'properties:old' not in checks and 'properties:app' not in checks
