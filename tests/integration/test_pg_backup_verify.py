# -*- coding: utf-8 -*-
"""runbook.ops.pg_backup's verification levels against the real PostgreSQL fixture:
a new backup at verify=full is read whole; a stored archive whose data is damaged
(with its checksums recomputed, as a bad copy tool or a broken compressor would leave
it) passes the cheap archive read but fails the full read, which names the damage."""

import hashlib
import json
import os
from pathlib import Path

import psycopg2
import pytest

from pgclient import sql


@pytest.fixture(scope='module')
def database(postgres):
    name = 'verify_levels'
    sql(postgres, 'postgres', 'DROP DATABASE IF EXISTS %s WITH (FORCE)' % name)
    sql(postgres, 'postgres', 'CREATE DATABASE %s' % name)
    sql(postgres, name, "CREATE TABLE items (id int PRIMARY KEY, body text); "
                        "INSERT INTO items SELECT i, md5(i::text) || repeat('x', i % 97) "
                        "FROM generate_series(1, 60000) i")
    return name


def backup(run_module, postgres, root, database, **kwargs):
    args = {'login_host': postgres['host'], 'login_port': postgres['port'], 'login_user': postgres['user'],
            'passfile': postgres['passfile'], 'database': database, 'backup_root': str(root)}
    args.update(kwargs)
    return run_module('runbook.ops.pg_backup', args)


def damage_and_reseal(backup_dir, name):
    """Flip a byte in the middle of the dump and write the manifest's size and sha256 of
    the damaged file, so that only reading the data can tell."""
    path = Path(backup_dir) / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    manifest_path = Path(backup_dir) / 'manifest.json'
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest['files']:
        if entry['path'] == name:
            entry['sha256'] = hashlib.sha256(bytes(data)).hexdigest()
            entry['size'] = len(data)
    manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize('options,dump', [
    ({'format': 'custom'}, 'verify_levels.dump'),
    ({'format': 'plain', 'compression': 'zstd'}, 'verify_levels.sql.zst'),
], ids=['custom-gzip', 'plain-zstd'])
def test_archive_reads_cheaply_full_reads_everything(run_module, postgres, database, tmp_path, options, dump):
    root = tmp_path / 'backups'
    label = 'levels-' + options['format']
    taken = backup(run_module, postgres, root, database, label=label, verify='full', **options)
    assert taken.result.get('failed') is not True, taken
    assert taken.result['verification']['status'] == 'passed'
    assert taken.result['verification']['level'] == 'full'
    assert taken.result['taken']['tables'] == {'public.items': 60000}
    path = taken.result['taken']['path']
    assert json.loads((Path(path) / 'manifest.json').read_text())['verification']['level'] == 'full'
    assert os.path.exists(os.path.join(path, dump))

    damage_and_reseal(path, dump)
    cheap = backup(run_module, postgres, root, database, label=label, state='verified', verify='archive')
    assert cheap.result.get('failed') is not True, cheap
    assert cheap.result['verification']['status'] == 'passed'
    full = backup(run_module, postgres, root, database, label=label, state='verified', verify='full')
    assert full.result.get('failed') is True, full
    assert 'failed verification' in full.result['msg'], full.result['msg']
    problems = full.result['verification']['problems']
    assert problems and ('zstd' in problems[0] or 'pg_restore' in problems[0]), problems
    stored = json.loads((Path(path) / 'manifest.json').read_text())
    assert stored['verification']['status'] == 'failed' and stored['verification']['level'] == 'full'


def test_restore_at_verify_full_refuses_damage_the_checksums_miss(run_module, postgres, database, tmp_path):
    root = tmp_path / 'backups'
    taken = backup(run_module, postgres, root, database, label='restore-full', verify='full')
    assert taken.result.get('failed') is not True, taken
    damage_and_reseal(taken.result['taken']['path'], 'verify_levels.dump')
    args = {'login_host': postgres['host'], 'login_port': postgres['port'], 'login_user': postgres['user'],
            'passfile': postgres['passfile'], 'backup_root': str(root), 'label': 'restore-full',
            'database': 'verify_levels_full', 'verify': 'full'}
    refused = run_module('runbook.ops.pg_restore', args)
    assert refused.result.get('failed') is True, refused
    assert 'refusing to restore' in refused.result['msg'], refused.result['msg']
    connection = psycopg2.connect(host=postgres['host'], port=postgres['port'], user=postgres['user'],
                                  password=postgres['password'], dbname='postgres')
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE 'verify_levels_full%'")
            assert cursor.fetchall() == []  # nothing was created, not even a scratch copy
    finally:
        connection.close()


def test_a_label_holding_files_backups_is_refused(run_module, postgres, database, tmp_path):
    """Two kinds under one label would cover each other's periods and prune each other."""
    label_dir = tmp_path / 'backups' / 'shared'
    files_backup = label_dir / '20260101T000000Z'
    files_backup.mkdir(parents=True)
    (files_backup / 'manifest.json').write_text(json.dumps({
        'manifest_version': 1, 'kind': 'files', 'files': [], 'finished': '2026-01-01T00:00:01Z',
        'verification': {'status': 'passed'}}))
    run = backup(run_module, postgres, tmp_path / 'backups', database, label='shared', period='daily',
                 retention={'keep_last': 1})
    assert run.result.get('failed') is True, run
    assert 'holds files backups' in run.result['msg'] and 'label of its own' in run.result['msg'], run.result['msg']
    assert sorted(os.listdir(str(label_dir))) == ['20260101T000000Z']  # nothing taken, nothing pruned
