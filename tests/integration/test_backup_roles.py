# -*- coding: utf-8 -*-
"""roles/backup, roles/dr_drill and roles/restore through a real ansible-playbook with a
two-host inventory on this machine (db1: the real PostgreSQL fixture, real files and a
SQLite database; store1: the backup host), as playbooks/backup.yml and dr_drill.yml run
them: backups taken and copied to the backup host and checked there, reports written,
RTO and RPO measured, a second run changes nothing, a restore whose health check fails
rolls back and one that passes keeps the new data."""

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import xml.etree.ElementTree as ET

import pytest

from pgclient import sql
from conftest import ANSIBLE_CONFIG, ANSIBLE_PLAYBOOK, OUTPUT, PYTHON, REPO


def tree_digest(root):
    """{relative path: (type, mode, sha256 or link target)} of everything under root."""
    found = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if os.path.islink(path):
                found[os.path.relpath(path, root)] = ('link', os.readlink(path))
            elif os.path.isdir(path):
                found[os.path.relpath(path, root)] = ('dir', oct(info.st_mode))
            else:
                with open(path, 'rb') as stream:
                    found[os.path.relpath(path, root)] = ('file', oct(info.st_mode),
                                                          hashlib.sha256(stream.read()).hexdigest())
    return found


class Lab:
    def __init__(self, base, pg):
        self.base = base
        self.pg = pg
        self.backups = base / 'backups'
        self.store = base / 'store'
        self.reports = base / 'reports'
        self.app = base / 'srv' / 'app'
        self.sqlite = self.app / 'data' / 'app.db'

    def vars(self, **extra):
        data = {
            'ansible_python_interpreter': PYTHON,
            'runbook_ops_system': 'roles test',
            'backup_root': str(self.backups),
            'backup_copy_root': str(self.store),
            'backup_copy_staging': str(self.base / 'staging'),
            'backup_postgres_databases': [{'database': 'roles_shop',
                                           'assertions': ['SELECT count(*) = 500 FROM orders']}],
            'backup_postgres_login': {'login_host': self.pg['host'], 'login_port': self.pg['port'],
                                      'login_user': self.pg['user'], 'login_password': self.pg['password']},
            'backup_files': [{'label': 'app', 'paths': [str(self.app)], 'sqlite': [str(self.sqlite)],
                              'compression': 'zstd',
                              'health_check': ['test', '-s', str(self.base / 'scratch' / 'app'
                                                                 / str(self.app).lstrip('/') / 'app.conf')]}],
            'backup_report_dir': str(self.reports / 'backup'),
            'dr_drill_report_dir': str(self.reports / 'drill'),
            'dr_drill_scratch_dir': str(self.base / 'scratch'),
            'dr_drill_rto_target_seconds': 14400,
            'dr_drill_rpo_target_seconds': 3600,
        }
        data.update(extra)
        return data

    def run(self, plays, extra=None, check=False):
        (self.base / 'inventory.ini').write_text(
            '[db]\ndb1 ansible_connection=local\n[backup]\nstore1 ansible_connection=local\n')
        (self.base / 'vars.json').write_text(json.dumps(self.vars(**(extra or {}))))
        playbook = [{'name': 'play %d' % index, 'hosts': hosts, 'gather_facts': False,
                     'roles': [{'role': 'runbook.ops.%s' % role}]} for index, (hosts, role) in enumerate(plays)]
        (self.base / 'playbook.yml').write_text(json.dumps(playbook))
        argv = [ANSIBLE_PLAYBOOK, '-i', str(self.base / 'inventory.ini'), str(self.base / 'playbook.yml'),
                '-e', '@' + str(self.base / 'vars.json')] + (['--check'] if check else [])
        env = dict(os.environ, ANSIBLE_CONFIG=ANSIBLE_CONFIG, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0',
                   ANSIBLE_SHOW_CUSTOM_STATS='1', ANSIBLE_LOCALHOST_WARNING='0')
        process = subprocess.run(argv, cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 universal_newlines=True, check=False)
        return process.returncode, process.stdout


def recap(stdout, host):
    found = re.search(r'^%s\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)' % host,
                      stdout, re.M)
    assert found, stdout
    return dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, found.groups()), strict=True))


@pytest.fixture(scope='module')
def lab(postgres):
    base = OUTPUT / 'roles'
    subprocess.run(['rm', '-rf', str(base)], check=True)
    lab = Lab(base, postgres)
    sql(postgres, 'postgres', 'DROP DATABASE IF EXISTS roles_shop WITH (FORCE)')
    sql(postgres, 'postgres', 'CREATE DATABASE roles_shop')
    sql(postgres, 'roles_shop', 'CREATE TABLE orders (id int PRIMARY KEY, item text); '
                                'INSERT INTO orders SELECT i, md5(i::text) FROM generate_series(1, 500) i')
    (lab.app / 'data').mkdir(parents=True)
    (lab.app / 'app.conf').write_text('listen 8080\n')
    os.chmod(lab.app / 'app.conf', 0o640)
    (lab.app / 'current.conf').symlink_to('app.conf')
    connection = sqlite3.connect(str(lab.sqlite))
    connection.execute('CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT)')
    connection.executemany('INSERT INTO events (body) VALUES (?)', [('e%d' % i,) for i in range(300)])
    connection.commit()
    connection.close()
    yield lab
    sql(postgres, 'postgres', 'DROP DATABASE IF EXISTS roles_shop WITH (FORCE)')


@pytest.fixture(scope='module')
def first(lab):
    return lab.run([('db', 'backup'), ('db', 'dr_drill')])


@pytest.fixture(scope='module')
def second(lab, first):
    return lab.run([('db', 'backup'), ('db', 'dr_drill')])


def test_backup_role_takes_both_series_and_copies_them_to_the_backup_host(lab, first):
    rc, out = first
    assert rc == 0, out
    for label in ('roles_shop', 'app'):
        names = sorted(p.name for p in (lab.backups / label).iterdir() if not p.name.startswith('.'))
        assert len(names) == 1, names
        copy = lab.store / 'db1' / label / names[0]
        assert (copy / 'manifest.json').exists(), out
        manifest = json.loads((copy / 'manifest.json').read_text())
        for entry in manifest['files']:
            path = copy / entry['path']
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry['sha256']
            assert oct(path.stat().st_mode & 0o777) == '0o600'
        assert oct(copy.stat().st_mode & 0o777) == '0o700'
        assert not [p for p in (lab.store / 'db1' / label).iterdir() if p.name.startswith('.partial')]
    left = list((lab.base / 'staging').iterdir())        # the run's own staging directory is gone too
    assert not left, left
    assert oct((lab.base / 'staging').stat().st_mode & 0o777) == '0o700'


def test_backup_report_and_awx_stats(lab, first):
    rc, out = first
    report = json.loads((lab.reports / 'backup' / 'latest' / 'report.json').read_text())
    hosts = dict((h['host'], h) for h in report['hosts'])
    assert list(hosts) == ['db1'], hosts
    checks = dict((c['name'], c) for c in hosts['db1']['checks'])
    assert set(checks) == {'postgresql:roles_shop', 'files:app', 'copy:roles_shop', 'copy:app'}, checks
    assert all(c['status'] == 'ok' for c in checks.values()), checks
    assert checks['files:app']['value'] < 600
    ET.parse(str(lab.reports / 'backup' / 'latest' / 'junit.xml'))
    stats = out.split('CUSTOM STATS')[1]                  # ANSIBLE_SHOW_CUSTOM_STATS prints set_stats
    assert 'backup:' in stats and 'dr_drill:' in stats and 'rto_target_seconds' in stats, stats


def test_drill_measures_rto_and_rpo_against_the_targets(lab, first):
    report = json.loads((lab.reports / 'drill' / 'latest' / 'report.json').read_text())
    checks = dict((c['name'], c) for c in report['hosts'][0]['checks'])
    for label in ('roles_shop', 'app'):
        assert checks['restore:%s' % label]['status'] == 'ok', checks
        for metric, target in (('rto', 14400), ('rpo', 3600)):
            check = checks['%s:%s' % (metric, label)]
            assert check['status'] == 'ok' and check['unit'] == 's', check
            assert 0 <= check['value'] < 600, check
            assert check['critical'] == target and check['warning'] == target * 0.75, check
    assert 'app.conf' in checks['restore:app']['message'] or 'health_check' in checks['restore:app']['message']
    # the database's own properties are recorded and could be restored here; files have none
    assert checks['properties:roles_shop']['status'] == 'ok', checks['properties:roles_shop']
    assert checks['properties:roles_shop']['value'] == 0 and 'properties:app' not in checks
    # the drill leaves nothing behind: no scratch directory, no scratch database
    assert not (lab.base / 'scratch').exists()
    names = [r[0] for r in sql(lab.pg, 'postgres', "SELECT datname FROM pg_database WHERE datname LIKE 'roles_shop%'")]
    assert names == ['roles_shop'], names
    assert (lab.reports / 'drill' / 'latest' / 'report.md').read_text().count('rto:') >= 2


def test_second_run_in_the_same_period_changes_nothing(lab, second):
    rc, out = second
    assert rc == 0, out
    assert recap(out, 'db1')['changed'] == 0, out
    for label in ('roles_shop', 'app'):
        assert len([p for p in (lab.backups / label).iterdir() if not p.name.startswith('.')]) == 1
        assert len([p for p in (lab.store / 'db1' / label).iterdir() if not p.name.startswith('.')]) == 1


def test_drill_fails_the_host_when_the_rpo_target_is_missed(lab, second):
    rc, out = lab.run([('db', 'dr_drill')], extra={'dr_drill_rpo_target_seconds': 0.001})
    assert rc != 0, out
    report = json.loads((lab.reports / 'drill' / 'latest' / 'report.json').read_text())
    checks = dict((c['name'], c) for c in report['hosts'][0]['checks'])
    assert checks['rpo:app']['status'] == 'critical', checks
    assert checks['rto:app']['status'] == 'ok', checks


def test_restore_role_refuses_without_confirmation(lab, second):
    rc, out = lab.run([('db', 'restore')], extra={'restore_files': [{'label': 'app'}]})
    assert rc != 0 and 'restore_confirm=true' in out, out


def test_restore_role_rolls_back_a_failed_health_check_then_restores(lab, second):
    conf = lab.app / 'app.conf'
    conf.write_text('listen 9090 # changed after the backup\n')
    before = tree_digest(str(lab.app))
    rc, out = lab.run([('db', 'restore')], extra={
        'restore_confirm': True,
        'restore_files': [{'label': 'app', 'health_check': ['false']}]})
    assert rc != 0 and 'rolled back' in out, out
    assert tree_digest(str(lab.app)) == before
    assert not [p for p in lab.app.parent.iterdir() if p.name != 'app'], list(lab.app.parent.iterdir())
    rc, out = lab.run([('db', 'restore')], extra={
        'restore_confirm': True,
        'restore_files': [{'label': 'app', 'health_check': ['test', '-s', str(conf)]}]})
    assert rc == 0, out
    assert conf.read_text() == 'listen 8080\n'
    aside = [p for p in lab.app.parent.iterdir() if p.name.startswith('app.before-')]
    assert len(aside) == 1 and (aside[0] / 'app.conf').read_text().startswith('listen 9090')
    rc, out = lab.run([('db', 'restore')], extra={
        'restore_confirm': True, 'restore_files': [{'label': 'app'}]})
    assert rc == 0 and recap(out, 'db1')['changed'] == 0, out


def test_a_failed_copy_to_the_backup_host_fails_the_host_after_the_report_and_leaves_no_staging(lab, second):
    blocked = lab.base / 'store-is-a-file'
    blocked.write_text('not a directory\n')
    rc, out = lab.run([('db', 'backup')], extra={'backup_copy_root': str(blocked)})
    assert rc != 0 and recap(out, 'db1')['failed'] == 1, out
    assert 'Fail the hosts whose backups or copies to the backup host failed' in out, out
    assert 'copy of app/' in out and 'copy of roles_shop/' in out, out
    report = json.loads((lab.reports / 'backup' / 'latest' / 'report.json').read_text())
    checks = dict((c['name'], c) for c in report['hosts'][0]['checks'])
    assert checks['copy:app']['status'] == 'critical' and 'failed at' in checks['copy:app']['message'], checks
    assert checks['files:app']['status'] == 'ok', checks
    assert not list((lab.base / 'staging').iterdir())


def test_backup_role_in_check_mode_copies_nothing_and_makes_no_staging(lab, second):
    before = tree_digest(str(lab.store))
    rc, out = lab.run([('db', 'backup')], check=True)
    assert rc == 0, out
    assert tree_digest(str(lab.store)) == before
    assert not list((lab.base / 'staging').iterdir())
