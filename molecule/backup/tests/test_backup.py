"""Verify runbook.ops.backup, dr_drill and restore against the real state of the hosts.

testinfra runs this once per host.  On the database host: backup directories 0700,
files 0600, every file's sha256 equal to the manifest's, the restore test recorded,
the restored copies equal to the originals.  On the backup host: the copies, checked
the same way.  The reports are read from the controller (MOLECULE_REPORTS).
"""

import json
import os

import pytest

REPORTS = os.environ['MOLECULE_REPORTS']
DB = 'molecule-backup-db'


def backups(host, root, label):
    listing = host.check_output('ls -1 %s/%s' % (root, label)).split()
    return ['%s/%s/%s' % (root, label, name) for name in listing if not name.startswith('.')]


def check_backup_dir(host, path):
    directory = host.file(path)
    assert directory.is_directory and directory.mode == 0o700, (path, oct(directory.mode))
    manifest = json.loads(host.file(path + '/manifest.json').content_string)
    assert manifest['files'], manifest
    for entry in manifest['files']:
        item = host.file('%s/%s' % (path, entry['path']))
        assert item.mode == 0o600, (item.path, oct(item.mode))
        assert item.size == entry['size']
        assert host.check_output('sha256sum %s' % item.path).split()[0] == entry['sha256']
    assert host.file(path + '/manifest.json').mode == 0o600
    return manifest


@pytest.fixture
def is_db(host):
    return host.backend.get_hostname() == DB


def test_backups_on_the_database_host(host, is_db):
    if not is_db:
        pytest.skip('the database host only')
    for label in ('shop', 'app'):
        found = backups(host, '/var/backups/runbook', label)
        assert len(found) == 1, found         # the second converge took none
        manifest = check_backup_dir(host, found[0])
        assert manifest['verification']['status'] == 'passed'
        if label == 'shop':
            assert manifest['postgresql']['tables']['public.orders'] == 1000
            # the drill's restore test is recorded in the manifest
            levels = [v['level'] for v in manifest.get('verifications') or []]
            assert 'restore_test' in levels, manifest.get('verifications')
        else:
            sqlite = manifest['files_backup']['sqlite'][0]
            assert sqlite['tables'] == {'events': 500} and sqlite['integrity'] == 'ok'


def test_copies_on_the_backup_host(host, is_db):
    if is_db:
        pytest.skip('the backup host only')
    for label in ('shop', 'app'):
        found = backups(host, '/srv/backups/%s' % DB, label)
        assert len(found) == 1, found
        check_backup_dir(host, found[0])


def test_restored_copies_equal_the_originals(host, is_db):
    if not is_db:
        pytest.skip('the database host only')
    for name in ('config/app.env', 'data/app.db'):
        original = host.file('/srv/app/' + name)
        restored = host.file('/srv/restore-check/srv/app/' + name)
        assert restored.exists, restored.path
        assert (restored.mode, restored.user, restored.mtime) == (original.mode, original.user, original.mtime)
    assert host.file('/srv/restore-check/srv/app/config/current.env').linked_to == \
        '/srv/restore-check/srv/app/config/app.env'
    assert host.check_output('sha256sum /srv/app/config/app.env').split()[0] == \
        host.check_output('sha256sum /srv/restore-check/srv/app/config/app.env').split()[0]
    rows = host.check_output("runuser -u postgres -- psql -tAX -d shop_restored -c 'SELECT count(*) FROM orders'")
    assert rows.strip() == '1000'
    # the drill leaves no scratch directory and no scratch database behind
    assert not host.file('/var/tmp/runbook-dr-drill').exists
    databases = host.check_output("runuser -u postgres -- psql -tAX -c 'SELECT datname FROM pg_database'").split()
    assert sorted(d for d in databases if d.startswith('shop')) == ['shop', 'shop_restored'], databases


def test_reports(host):
    for kind, names in (('backup', ('postgresql:shop', 'files:app', 'copy:shop', 'copy:app')),
                        ('drill', ('restore:shop', 'rto:shop', 'rpo:shop', 'restore:app', 'rto:app', 'rpo:app'))):
        with open(os.path.join(REPORTS, kind, 'latest', 'report.json')) as stream:
            report = json.load(stream)
        checks = dict((c['name'], c) for c in report['hosts'][0]['checks'])
        assert set(names) <= set(checks), checks
        assert report['status'] == 'ok', report
        for name in names:
            if name.startswith(('rto:', 'rpo:')):
                assert checks[name]['value'] is not None and checks[name]['critical'] in (14400, 3600)
