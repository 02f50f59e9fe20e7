# -*- coding: utf-8 -*-
"""runbook.ops.files_backup, files_restore, backup_check and the health_probe backup kind
through ansible-playbook with real files: modes, owners, sub-second mtimes and symbolic
links survive a round trip with identical sha256 of every file; a real SQLite database
written by another process during the backup comes back consistent; check mode takes,
moves and deletes nothing; a second run in the period changes nothing; a restore whose
health check fails leaves the original files byte-identical; one that passes keeps the
new data and the moved-aside old data as asked."""

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import OUTPUT

OWNER = (4242, 4343)     # uid/gid that exist nowhere: restored numerically


def digest_tree(root):
    """{path: (type, mode, uid, gid, mtime_ns rounded to µs, sha256 | link target)} under root."""
    found = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if os.path.islink(path):
                value = ('link', os.readlink(path), info.st_uid)
            elif os.path.isdir(path):
                value = ('dir', oct(info.st_mode), info.st_uid, info.st_gid)
            else:
                with open(path, 'rb') as stream:
                    value = ('file', oct(info.st_mode), info.st_uid, info.st_gid, info.st_mtime_ns // 1000,
                             hashlib.sha256(stream.read()).hexdigest())
            found[os.path.relpath(path, root)] = value
    return found


@pytest.fixture
def tree(request):
    """A fresh tree of this test: etc/app (0750, a 0640 file owned by OWNER with a
    sub-second mtime, a symlink, a dangling symlink, a nested dir), a single file .env,
    and data/ with a live SQLite database."""
    base = OUTPUT / 'files' / request.node.name
    subprocess.run(['rm', '-rf', str(base)], check=True)
    conf = base / 'etc' / 'app'
    (conf / 'conf.d').mkdir(parents=True)
    (conf / 'app.conf').write_text('listen 8080\n')
    os.chmod(conf / 'app.conf', 0o640)
    os.chown(conf / 'app.conf', *OWNER)
    os.utime(conf / 'app.conf', ns=(1700000000_123456000, 1700000000_123456000))
    (conf / 'conf.d' / 'tls.pem').write_bytes(os.urandom(3000))
    os.chmod(conf / 'conf.d' / 'tls.pem', 0o600)
    (conf / 'current').symlink_to('app.conf')
    (conf / 'dangling').symlink_to('/nonexistent/target')
    (conf / 'skip.tmp').write_text('scratch\n')
    os.chmod(conf, 0o750)
    os.utime(conf, ns=(1600000000_000000000, 1600000000_000000000))
    (base / 'opt').mkdir()
    (base / 'opt' / '.env').write_text('SECRET=xyz\n')
    os.chmod(base / 'opt' / '.env', 0o600)
    data = base / 'data'
    data.mkdir()
    connection = sqlite3.connect(str(data / 'app.db'))
    connection.execute('PRAGMA journal_mode=WAL')
    connection.execute('CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT)')
    connection.executemany('INSERT INTO events (body) VALUES (?)', [('x' * 200,) for _n in range(5000)])
    connection.commit()
    connection.close()
    return base


def args(tree, **extra):
    values = {'label': 'app', 'backup_root': str(tree / 'backups'),
              'paths': [str(tree / 'etc' / 'app'), str(tree / 'opt' / '.env'), str(tree / 'data')],
              'sqlite': [str(tree / 'data' / 'app.db')], 'exclude': ['*.tmp']}
    values.update(extra)
    return values


def names(tree, label='app'):
    directory = tree / 'backups' / label
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith('.')) if directory.exists() else []


def test_round_trip_keeps_modes_owners_mtimes_symlinks_and_every_sha256(tree, run_module):
    before = digest_tree(str(tree / 'etc'))
    del before['app/skip.tmp']                     # excluded
    for compression in ('gzip', 'zstd'):
        run = run_module('runbook.ops.files_backup', args(tree, label=compression, compression=compression))
        assert run.result.get('changed') and not run.result.get('failed'), run
        taken = run.result['taken']
        assert taken['counts'] == {'file': 4, 'dir': 3, 'symlink': 2}, taken   # data.db, .env, app.conf, tls.pem
        assert run.result['verification']['status'] == 'passed'
        backup = tree / 'backups' / compression / taken['name']
        assert oct(backup.stat().st_mode & 0o777) == '0o700'
        assert all(oct(p.stat().st_mode & 0o777) == '0o600' for p in backup.iterdir())
        manifest = json.loads((backup / 'manifest.json').read_text())
        assert '%s/etc/app/skip.tmp (excluded)' % tree in manifest['files_backup']['skipped']
        restore = run_module('runbook.ops.files_restore', {
            'backup_root': str(tree / 'backups'), 'label': compression,
            'target_root': str(tree / ('r-' + compression))})
        assert restore.result.get('changed') and not restore.result.get('failed'), restore
        restored = tree / ('r-' + compression) / str(tree).lstrip('/')
        assert digest_tree(str(restored / 'etc')) == before
        assert (restored / 'opt' / '.env').read_text() == 'SECRET=xyz\n'
        info = os.lstat(restored / 'etc' / 'app' / 'app.conf')
        # PAX keeps the mtime as a decimal of seconds: exact to the microsecond
        assert (info.st_uid, info.st_gid, info.st_mtime_ns // 1000) == (OWNER[0], OWNER[1], 1700000000_123456)


def test_a_sqlite_database_written_during_the_backup_comes_back_consistent(tree, run_module):
    database = tree / 'data' / 'app.db'
    writer = subprocess.Popen([sys.executable, '-c', """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], timeout=30)
n = 0
while True:
    with connection:
        connection.execute('INSERT INTO events (body) VALUES (?)', ('w' * 200,))
        connection.execute('UPDATE events SET body = body WHERE id = 1')
    n += 1
    if n == 50:
        open(sys.argv[1] + '.started', 'w').close()
""", str(database)])
    try:
        while not os.path.exists(str(database) + '.started'):
            time.sleep(0.05)
        run = run_module('runbook.ops.files_backup', args(tree))
        rows_during = sqlite3.connect(str(database)).execute('SELECT count(*) FROM events').fetchone()[0]
    finally:
        writer.kill()
        writer.wait()
    assert run.result.get('changed') and not run.result.get('failed'), run
    snapshot = run.result['taken']['sqlite'][0]
    assert snapshot['integrity'] == 'ok' and 5050 <= snapshot['tables']['events'] <= rows_during
    restore = run_module('runbook.ops.files_restore', {
        'backup_root': str(tree / 'backups'), 'label': 'app', 'target_root': str(tree / 'restored'),
        'paths': [str(tree / 'data')]})
    assert restore.result.get('changed'), restore
    copy = sqlite3.connect(str(tree / 'restored' / str(tree).lstrip('/') / 'data' / 'app.db'))
    assert copy.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
    assert copy.execute('SELECT count(*) FROM events').fetchone()[0] == snapshot['tables']['events']


def test_check_mode_takes_nothing_and_a_second_run_in_the_period_changes_nothing(tree, run_module):
    run = run_module('runbook.ops.files_backup', args(tree, period='daily'), check=True, diff=True)
    assert run.result['changed'] and run.result['would_take']['entries'] == 9, run
    assert not (tree / 'backups').exists()
    first = run_module('runbook.ops.files_backup', args(tree, period='daily', retention={'keep_last': 1}))
    assert first.result['changed'], first
    second = run_module('runbook.ops.files_backup', args(tree, period='daily', retention={'keep_last': 1}))
    assert not second.result['changed'] and 'already covers the daily period' in second.result['skipped_reason']
    assert names(tree) == [first.result['taken']['name']]
    check = run_module('runbook.ops.files_backup', args(tree, retention={'keep_last': 1}), check=True)
    assert check.result['would_delete'] == [first.result['taken']['name']] and names(tree) == [
        first.result['taken']['name']], check
    # probe: fresh, then judged against a 1 s warning
    probe = run_module('runbook.ops.health_probe', {'probes': [
        {'name': 'bk', 'kind': 'backup', 'path': str(tree / 'backups'), 'label': 'app', 'warning': '1h',
         'critical': '2h'},
        {'name': 'all', 'kind': 'backup', 'path': str(tree / 'backups'), 'warning': 0.001, 'critical': '1h'},
        {'name': 'none', 'kind': 'backup', 'path': str(tree / 'backups'), 'label': 'nothing'}],
        'fail_on_critical': False})
    checks = probe.checks
    assert checks['bk']['status'] == 'ok' and checks['bk']['value'] < 600, checks
    assert checks['all.app']['status'] == 'warning', checks
    assert checks['none']['status'] == 'critical' and 'no verified backup' in checks['none']['message']


def test_restore_with_failing_health_check_rolls_back_byte_identical(tree, run_module):
    run_module('runbook.ops.files_backup', args(tree))
    (tree / 'etc' / 'app' / 'app.conf').write_text('listen 9999\n')
    (tree / 'etc' / 'app' / 'new.conf').write_text('added after the backup\n')
    before = dict((part, digest_tree(str(tree / part))) for part in ('etc', 'opt', 'data'))
    listing = sorted(os.listdir(str(tree / 'etc')))
    check = run_module('runbook.ops.files_restore', {'backup_root': str(tree / 'backups'), 'label': 'app'},
                       check=True, diff=True)
    assert check.result['changed'] and check.result['plan'], check
    assert dict((part, digest_tree(str(tree / part))) for part in ('etc', 'opt', 'data')) == before
    failed = run_module('runbook.ops.files_restore', {
        'backup_root': str(tree / 'backups'), 'label': 'app', 'health_check': 'sh -c "exit 3"'})
    assert failed.result.get('failed') and failed.result['rolled_back'], failed
    assert 'exited 3' in failed.result['msg'] and 'rolled back' in failed.result['msg']
    assert dict((part, digest_tree(str(tree / part))) for part in ('etc', 'opt', 'data')) == before
    assert sorted(os.listdir(str(tree / 'etc'))) == listing      # no staging or moved-aside leftovers


def test_restore_with_passing_health_check_keeps_new_and_old_data_as_asked(tree, run_module):
    taken = run_module('runbook.ops.files_backup', args(tree)).result['taken']
    conf = tree / 'etc' / 'app' / 'app.conf'
    conf.write_text('listen 9999\n')
    ok = run_module('runbook.ops.files_restore', {
        'backup_root': str(tree / 'backups'), 'label': 'app', 'backup': taken['name'],
        'paths': [str(tree / 'etc' / 'app')], 'health_check': ['test', '-s', str(conf)]})
    assert ok.result['changed'] and not ok.result.get('failed'), ok
    assert conf.read_text() == 'listen 8080\n'
    aside = ok.result['moved_aside']
    assert len(aside) == 1 and open(os.path.join(aside[0], 'app.conf')).read() == 'listen 9999\n'
    again = run_module('runbook.ops.files_restore', {
        'backup_root': str(tree / 'backups'), 'label': 'app', 'paths': [str(tree / 'etc' / 'app')]})
    assert not again.result['changed'] and 'already match' in again.result['skipped_reason'], again
    conf.write_text('listen 7777\n')
    dropped = run_module('runbook.ops.files_restore', {
        'backup_root': str(tree / 'backups'), 'label': 'app', 'paths': [str(tree / 'etc' / 'app')],
        'keep_replaced': False})
    assert dropped.result['changed'] and dropped.result['removed_aside'], dropped
    assert not os.path.exists(dropped.result['removed_aside'][0]) and conf.read_text() == 'listen 8080\n'


def test_a_flipped_byte_is_refused_and_the_backup_host_copy_is_checked(tree, run_module):
    taken = run_module('runbook.ops.files_backup', args(tree)).result['taken']
    path = tree / 'backups' / 'app' / taken['name']
    copy = tree / 'store' / 'app' / ('.partial-%s-copy' % taken['name'])
    copy.mkdir(parents=True)
    for item in path.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    check = run_module('runbook.ops.backup_check', {'path': str(copy), 'commit_to': str(copy.parent / taken['name'])})
    assert check.result['changed'] and check.result['committed'], check
    assert oct((copy.parent / taken['name']).stat().st_mode & 0o777) == '0o700' and not copy.exists()
    archive = path / taken['files'][0]['path']
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x40
    archive.write_bytes(bytes(data))
    refused = run_module('runbook.ops.files_restore', {
        'backup_root': str(tree / 'backups'), 'label': 'app', 'backup': taken['name'],
        'target_root': str(tree / 'r')})
    assert refused.result.get('failed') and 'failed verification' in refused.result['msg'], refused
    assert not (tree / 'r').exists()


def test_bad_input_is_named(tree, run_module):
    missing = run_module('runbook.ops.files_backup', args(tree, paths=[str(tree / 'nope')], sqlite=[]))
    assert missing.result.get('failed') and 'do not exist' in missing.result['msg'], missing
    nested = run_module('runbook.ops.files_backup', args(tree, paths=[str(tree / 'etc'), str(tree / 'etc' / 'app')]))
    assert 'is inside' in nested.result['msg'], nested
    root = run_module('runbook.ops.files_backup', args(tree, paths=['/']))
    assert 'refusing' in root.result['msg'], root
    assert 'Traceback' not in missing.stdout + nested.stdout + root.stdout


def test_a_path_that_cannot_be_moved_back_is_named_and_the_others_are_still_put_back(tree, run_module):
    """A real failed move-back: the health check moves the old copy of etc/app away (as an
    operator or a cleanup job might), so renaming it back fails with ENOENT.  The rollback
    must still put opt/.env and data back, keep the restored copy of etc/app renamed aside,
    and say where each copy is - no traceback."""
    run_module('runbook.ops.files_backup', args(tree))
    (tree / 'etc' / 'app' / 'app.conf').write_text('listen 9999\n')
    (tree / 'opt' / '.env').write_text('SECRET=changed\n')
    before = dict((part, digest_tree(str(tree / part))) for part in ('opt', 'data'))
    old_conf = digest_tree(str(tree / 'etc' / 'app'))
    hidden = tree / 'hidden'
    failed = run_module('runbook.ops.files_restore', {
        'backup_root': str(tree / 'backups'), 'label': 'app',
        'health_check': ['sh', '-c', 'mv "$0".before-* "$1" && exit 3', str(tree / 'etc' / 'app'), str(hidden)]})
    result = failed.result
    assert result.get('failed') and not result['rolled_back'], failed
    assert 'Traceback' not in failed.stdout + failed.stderr
    message = result['msg']
    assert 'exited 3' in message and 'the rollback was incomplete' in message, message
    assert '%s could not be put back' % (tree / 'etc' / 'app') in message, message
    copy = [p for p in result['failed_copies'] if p.startswith(str(tree / 'etc' / 'app.failed-'))]
    assert len(copy) == 1 and 'the restored copy is at %s' % copy[0] in message, result
    assert (tree / 'etc' / 'app' / 'app.conf').exists() is False
    assert open(os.path.join(copy[0], 'app.conf')).read() == 'listen 8080\n'     # the restored data, kept
    assert digest_tree(str(hidden)) == old_conf                                   # the old data, untouched
    assert sorted(result['put_back']) == sorted([str(tree / 'opt' / '.env'), str(tree / 'data')]), result
    assert dict((part, digest_tree(str(tree / part))) for part in ('opt', 'data')) == before
    assert not [n for n in os.listdir(str(tree / 'opt')) + os.listdir(str(tree)) if '.before-' in n or '.failed-' in n]


def test_a_failing_stop_command_during_rollback_is_reported_and_the_data_still_comes_back(tree, run_module):
    run_module('runbook.ops.files_backup', args(tree))
    (tree / 'etc' / 'app' / 'app.conf').write_text('listen 9999\n')
    before = dict((part, digest_tree(str(tree / part))) for part in ('etc', 'opt', 'data'))
    marker = tree / 'stopped-once'
    failed = run_module('runbook.ops.files_restore', {
        'backup_root': str(tree / 'backups'), 'label': 'app', 'health_check': 'sh -c "exit 3"',
        'stop_command': ['sh', '-c', 'if [ -e "$0" ]; then exit 5; fi; touch "$0"', str(marker)]})
    result = failed.result
    assert result.get('failed') and result['rolled_back'], failed
    assert 'exited 5' in result['msg'] and 'rolling back anyway' in result['msg'], result['msg']
    assert 'exited 5' in result['stop_before_rollback']
    assert dict((part, digest_tree(str(tree / part))) for part in ('etc', 'opt', 'data')) == before


def _copy_backup(source, copy):
    copy.mkdir(parents=True)
    for item in source.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())


def test_a_damaged_backup_on_the_backup_host_is_replaced_by_a_good_copy_and_kept_aside(tree, run_module):
    taken = run_module('runbook.ops.files_backup', args(tree)).result['taken']
    path = tree / 'backups' / 'app' / taken['name']
    store = tree / 'store' / 'app'
    final = store / taken['name']
    _copy_backup(path, final)
    archive = final / taken['files'][0]['path']
    data = bytearray(archive.read_bytes())
    data[len(data) // 3] ^= 0x01
    archive.write_bytes(bytes(data))
    damaged_bytes = bytes(data)
    copy = store / ('.partial-%s-copy' % taken['name'])
    _copy_backup(path, copy)
    check = run_module('runbook.ops.backup_check', {'path': str(copy), 'commit_to': str(final)}, check=True)
    assert check.result['changed'] and check.result['damaged_problems'] and copy.exists(), check
    assert archive.read_bytes() == damaged_bytes
    fixed = run_module('runbook.ops.backup_check', {'path': str(copy), 'commit_to': str(final)})
    result = fixed.result
    assert result['changed'] and result['committed'] and result['status'] == 'passed', fixed
    assert 'sha256' in ' '.join(result['damaged_problems']), result
    assert not copy.exists() and archive.read_bytes() == (path / taken['files'][0]['path']).read_bytes()
    kept = result['replaced_damaged']
    assert os.path.basename(kept).startswith('.damaged-%s-' % taken['name'])
    assert open(os.path.join(kept, taken['files'][0]['path']), 'rb').read() == damaged_bytes
    again = run_module('runbook.ops.backup_check', {'path': str(final), 'commit_to': str(final)})
    assert not again.result['changed'] and again.result['status'] == 'passed', again
    # a damaged copy coming in for a damaged backup: both stay, the call fails naming both
    archive.write_bytes(damaged_bytes)
    bad = store / ('.partial-%s-copy2' % taken['name'])
    _copy_backup(final, bad)
    refused = run_module('runbook.ops.backup_check', {'path': str(bad), 'commit_to': str(final)})
    assert refused.result.get('failed') and 'damaged too' in refused.result['msg'], refused
    assert archive.read_bytes() == damaged_bytes and bad.exists()


def test_a_malformed_manifest_fails_with_its_path_not_a_traceback(tree, run_module):
    taken = run_module('runbook.ops.files_backup', args(tree)).result['taken']
    path = tree / 'backups' / 'app' / taken['name']
    copy = tree / 'store' / 'app' / ('.partial-%s-copy' % taken['name'])
    _copy_backup(path, copy)
    manifest = json.loads((copy / 'manifest.json').read_text())
    manifest['files'] = ['not', 'entries']
    (copy / 'manifest.json').write_text(json.dumps(manifest))
    failed = run_module('runbook.ops.backup_check', {'path': str(copy), 'commit_to': str(copy.parent / taken['name'])})
    assert failed.result.get('failed') and str(copy) in failed.result['msg'], failed
    assert 'Traceback' not in failed.result['msg'] and not (copy.parent / taken['name']).exists()
    manifest = json.loads((path / 'manifest.json').read_text())
    manifest['finished'] = 'yesterday'
    (path / 'manifest.json').write_text(json.dumps(manifest))
    restored = run_module('runbook.ops.files_restore', {
        'backup_root': str(tree / 'backups'), 'label': 'app', 'backup': taken['name'],
        'target_root': str(tree / 'r')})
    assert not restored.result.get('failed') and restored.result['rpo_seconds'] is None, restored
    assert 'yesterday' in ' '.join(restored.result['warnings'])
    assert (tree / 'r' / str(tree / 'opt' / '.env').lstrip('/')).read_text() == 'SECRET=xyz\n'


def test_a_failed_sidecar_move_still_puts_the_database_back(tree, run_module):
    """The database's -wal cannot be moved aside (a real EISDIR: a directory already has the
    name it would get), after the database itself was: the database must come back with its
    -wal, byte-identical, and the message must be true.  FilesRestore is called in-process
    with a fixed time so that the obstacle can be made under the exact name."""
    import datetime
    from ansible_collections.runbook.ops.plugins.module_utils.backup import BackupError
    from ansible_collections.runbook.ops.plugins.module_utils.filesbackup import FilesRestore

    database = tree / 'data' / 'app.db'
    run_module('runbook.ops.files_backup', args(tree, paths=[str(database), str(tree / 'opt' / '.env')],
                                                sqlite=[str(database)]))
    connection = sqlite3.connect(str(database))
    connection.execute("INSERT INTO events (body) VALUES ('after the backup')")
    connection.commit()
    connection.close()
    (tree / 'data' / 'app.db-wal').write_bytes(os.urandom(4096))     # left by a live writer
    (tree / 'opt' / '.env').write_text('SECRET=changed\n')
    before = (digest_tree(str(tree / 'data')), digest_tree(str(tree / 'opt')))
    now = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    obstacle = tree / 'data' / 'app.db.before-20300102T030405Z-wal'
    (obstacle / 'in-the-way').mkdir(parents=True)
    params = {'backup': 'latest', 'backup_root': str(tree / 'backups'), 'label': 'app', 'paths': None,
              'target_root': '/', 'verify': 'archive', 'stop_command': None, 'start_command': None,
              'health_check': None, 'health_check_timeout': 60, 'health_check_retries': 0, 'health_check_delay': 2,
              'keep_replaced': True, 'keep_failed': False, 'force': False, 'lock_timeout': 60}
    with pytest.raises(BackupError) as caught:
        FilesRestore(params, now=now).run()
    assert 'everything was put back' in str(caught.value) and 'app.db-wal' in str(caught.value), caught.value
    obstacle.rename(tree / 'obstacle')
    assert (digest_tree(str(tree / 'data')), digest_tree(str(tree / 'opt'))) == before
