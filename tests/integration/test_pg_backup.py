# -*- coding: utf-8 -*-
"""runbook.ops.pg_backup and runbook.ops.pg_restore through ansible-playbook against
the real PostgreSQL fixture, with real data: round trips with identical per-table
checksums, check mode, period idempotence, retention, and the faults that must not
lose anything (pg_dump killed, full disk, a flipped byte, a wrong password, a missing
database, a restore failing halfway, concurrent runs)."""

import fcntl
import json
import os
import shutil
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from pgclient import sql

WRONG_PASSWORD = 'Wr0ng-backup-pass-91c3'


# ---- fixtures ------------------------------------------------------------------

@pytest.fixture(scope='module')
def pg(postgres):
    return postgres


def make_database(pg, name, rows=20000):
    sql(pg, 'postgres', 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    sql(pg, 'postgres', 'CREATE DATABASE "%s"' % name)
    sql(pg, name, """
        CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL, qty int, at timestamptz DEFAULT now());
        INSERT INTO orders (item, qty) SELECT md5(i::text), i %% 13 FROM generate_series(1, %d) i;
        CREATE SCHEMA sales;
        CREATE TABLE sales.lines (order_id int REFERENCES orders(id), note text);
        INSERT INTO sales.lines SELECT i, repeat('n', i %% 50) FROM generate_series(1, %d, 3) i;
        CREATE TABLE "Mixed Case" (k text);
        INSERT INTO "Mixed Case" VALUES ('a'), ('b');
        CREATE TABLE empty_one (x int);
    """ % (rows, rows))


def checksums(pg, database):
    """Per-table md5 over every row in a fixed order, and row counts."""
    tables = sql(pg, database, "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
                               "('pg_catalog', 'information_schema') ORDER BY 1, 2")
    result = {}
    for schema, table in tables:
        rows = sql(pg, database, 'SELECT count(*), md5(coalesce(string_agg(t::text, \'|\' ORDER BY t::text), \'\')) '
                                 'FROM "%s"."%s" t' % (schema, table))
        result['%s.%s' % (schema, table)] = rows[0]
    return result


def databases(pg):
    return sorted(r[0] for r in sql(pg, 'postgres', 'SELECT datname FROM pg_database'))


@pytest.fixture
def login(pg):
    return {'login_host': pg['host'], 'login_port': pg['port'], 'login_user': pg['user'],
            'passfile': pg['passfile']}


@pytest.fixture
def root(tmp_path):
    path = tmp_path / 'backups'
    path.mkdir()
    return path


def backup(run_module, login, root, database, **kwargs):
    args = dict(login, database=database, backup_root=str(root))
    args.update(kwargs)
    check = args.pop('_check', False)
    diff = args.pop('_diff', False)
    return run_module('runbook.ops.pg_backup', args, check=check, diff=diff)


def restore(run_module, login, root, label, **kwargs):
    args = dict(login, backup_root=str(root), label=label)
    args.update(kwargs)
    check = args.pop('_check', False)
    return run_module('runbook.ops.pg_restore', args, check=check)


def entries(root, label):
    return sorted(os.listdir(str(Path(root) / label)))


# ---- round trips -------------------------------------------------------------------

@pytest.mark.parametrize('options', [
    {'format': 'custom'},                                                   # pg_dump's own gzip -1
    {'format': 'directory', 'jobs': 2},
    {'format': 'plain', 'compression': 'zstd'},                             # streamed through zstd
    {'format': 'custom', 'compression': 'lz4', 'schema_dump': True},       # streamed, one-job restore
], ids=['custom-gzip', 'directory-j2', 'plain-zstd', 'custom-lz4'])
def test_dump_drop_restore_gives_identical_tables(run_module, login, root, pg, options):
    make_database(pg, 'roundtrip')
    before = checksums(pg, 'roundtrip')
    run = backup(run_module, login, root, 'roundtrip', **options)
    assert run.result.get('changed') is True, run
    taken = run.result['taken']
    assert taken['tables'] == dict((t, c[0]) for t, c in before.items()), run
    manifest = json.loads((Path(taken['path']) / 'manifest.json').read_text())
    assert manifest['postgresql']['server_version'] and manifest['postgresql']['pg_dump_version']
    assert manifest['verification']['status'] == 'passed'
    for entry in manifest['files']:
        path = Path(taken['path']) / entry['path']
        assert path.stat().st_size == entry['size'] and entry['size'] > 0
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(taken['path']).stat().st_mode) == 0o700
    sql(pg, 'postgres', 'DROP DATABASE roundtrip')
    run = restore(run_module, login, root, 'roundtrip')
    assert run.result.get('changed') is True, run
    assert checksums(pg, 'roundtrip') == before
    again = restore(run_module, login, root, 'roundtrip')
    assert again.result.get('changed') is False, again          # already restored from it


def test_restore_test_measures_rto_and_rpo(run_module, login, root, pg):
    make_database(pg, 'drill')
    backup(run_module, login, root, 'drill')
    run = backup(run_module, login, root, 'drill', state='verified', verify='restore_test',
                 assertions=['SELECT count(*) = 20000 FROM orders'])
    assert run.result.get('failed') is not True, run
    assert run.result['verification']['status'] == 'passed'
    assert run.result['rto_seconds'] > 0 and run.result['rpo_seconds'] >= 0
    assert not [d for d in databases(pg) if d.startswith('drill_verify')]
    bad = backup(run_module, login, root, 'drill', state='verified', verify='restore_test',
                 assertions=['SELECT count(*) = 1 FROM orders'])
    assert bad.result.get('failed') is True and 'assertion' in bad.result['msg'], bad
    assert not [d for d in databases(pg) if d.startswith('drill_verify')]


# ---- check mode, period, retention ----------------------------------------------------

def test_check_mode_period_and_retention(run_module, login, root, pg):
    make_database(pg, 'periodic', rows=500)
    dry = backup(run_module, login, root, 'periodic', period='daily', _check=True, _diff=True)
    assert dry.result['changed'] is True and dry.result['would_take']['name'], dry
    assert not (root / 'periodic').exists()
    first = backup(run_module, login, root, 'periodic', period='daily')
    assert first.result['changed'] is True, first
    second = backup(run_module, login, root, 'periodic', period='daily')
    assert second.result['changed'] is False and 'already covers' in second.result['skipped_reason'], second
    assert second.result['taken'] is None
    dry = backup(run_module, login, root, 'periodic', period='daily', _check=True)
    assert dry.result['changed'] is False and dry.result['would_take'] is None

    # older backups: real copies of the real one under older names (manifests stay valid)
    label = root / 'periodic'
    newest = first.result['taken']['name']
    old_names = ['2025010%dT020000Z' % day for day in range(1, 6)]
    for name in old_names:
        shutil.copytree(str(label / newest), str(label / name))
    listing = entries(root, 'periodic')
    dry = backup(run_module, login, root, 'periodic', state='pruned', retention={'keep_last': 2}, _check=True,
                 _diff=True)
    assert dry.result['would_delete'] == old_names[:4], dry
    assert entries(root, 'periodic') == listing                    # check mode deleted nothing
    assert '20250101T020000Z' in dry.result['diff']['before'] and '20250101T020000Z' not in dry.result['diff']['after']
    run = backup(run_module, login, root, 'periodic', state='pruned', retention={'keep_last': 2})
    assert run.result['changed'] is True and run.result['deleted'] == old_names[:4], run
    assert [b['name'] for b in run.result['backups']] == [old_names[4], newest]
    again = backup(run_module, login, root, 'periodic', state='pruned', retention={'keep_last': 2})
    assert again.result['changed'] is False, again


# ---- faults ---------------------------------------------------------------------------

KILLER = """#!/bin/bash
# pg_dump, killed with SIGKILL as soon as it has written its first bytes
out=""
for arg in "$@"; do case "$arg" in --file=*) out="${arg#--file=}";; esac; done
"%(real)s/pg_dump" "$@" &
pid=$!
while kill -0 $pid 2>/dev/null; do
  if [ -n "$out" ] && [ -s "$out" ]; then kill -KILL $pid; break; fi
  sleep 0.005
done
wait $pid
"""


def fake_bindir(tmp_path, pg, pg_dump_script):
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    for name in ('pg_restore', 'psql'):
        os.symlink(os.path.join(pg['bindir'], name), str(bindir / name))
    (bindir / 'pg_dump').write_text(pg_dump_script % {'real': pg['bindir']})
    os.chmod(str(bindir / 'pg_dump'), 0o755)
    return bindir


def test_pg_dump_killed_leaves_no_complete_looking_backup(run_module, login, root, pg, tmp_path):
    make_database(pg, 'killed', rows=200000)
    good = backup(run_module, login, root, 'killed')
    assert good.result['changed'] is True, good
    bindir = fake_bindir(tmp_path, pg, KILLER)
    run = backup(run_module, login, root, 'killed', pg_bin_dir=str(bindir))
    assert run.result.get('failed') is True, run
    assert 'pg_dump' in run.result['msg'] and 'killed' in run.result['msg'].lower(), run.result['msg']
    assert entries(root, 'killed') == ['.lock', good.result['taken']['name']]     # no partial, no new backup
    check = backup(run_module, login, root, 'killed', state='verified')
    assert check.result['verification']['status'] == 'passed', check


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / 'tiny'
    mount.mkdir()
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', str(mount)], check=False)
    if done.returncode != 0:
        pytest.skip('cannot mount a tmpfs here (needs root)')
    yield mount
    subprocess.run(['umount', str(mount)], check=True)


@pytest.mark.parametrize('options', [{'format': 'custom'}, {'format': 'plain', 'compression': 'zstd'}],
                         ids=['pg_dump-writes', 'python-writes'])
def test_full_disk_fails_clearly_and_leaves_nothing(run_module, login, pg, tiny_disk, options):
    make_database(pg, 'bigger', rows=200000)
    run = backup(run_module, login, tiny_disk, 'bigger', compression_level=1, **options)
    assert run.result.get('failed') is True, run
    assert 'No space left on device' in run.result['msg'] or 'no space left' in run.result['msg'], run.result['msg']
    assert entries(tiny_disk, 'bigger') == ['.lock']


def test_flipped_byte_fails_verification_and_restore_refuses(run_module, login, root, pg):
    make_database(pg, 'flipped', rows=2000)
    before = checksums(pg, 'flipped')
    first = backup(run_module, login, root, 'flipped')
    second = backup(run_module, login, root, 'flipped')
    dump = Path(second.result['taken']['path']) / 'flipped.dump'
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x40
    dump.write_bytes(bytes(data))
    run = backup(run_module, login, root, 'flipped', state='verified', verify='checksum')
    assert run.result.get('failed') is True and 'sha256' in run.result['msg'], run
    refused = restore(run_module, login, root, 'flipped', backup=second.result['taken']['name'], force=True)
    assert refused.result.get('failed') is True and 'refusing to restore' in refused.result['msg'], refused
    assert checksums(pg, 'flipped') == before
    # the newest backup failed: retention deletes nothing, not even the older good one
    pruned = backup(run_module, login, root, 'flipped', state='pruned', retention={'keep_last': 1})
    assert pruned.result['deleted'] == [] and 'failed verification' in pruned.result['retention']['held']
    assert first.result['taken']['name'] in entries(root, 'flipped')


def test_wrong_password_and_missing_database_never_show_the_password(run_module, pg, root):
    wrong = {'login_host': pg['host'], 'login_port': pg['port'], 'login_user': 'postgres',
             'login_password': WRONG_PASSWORD}
    run = run_module('runbook.ops.pg_backup', dict(wrong, database='postgres', backup_root=str(root)),
                     verbosity=3)
    assert run.result.get('failed') is True
    assert 'password authentication failed' in run.result['msg'] and 'login_password' in run.result['msg']
    assert WRONG_PASSWORD not in run.stdout + run.stderr
    right = dict(wrong, login_password=pg['password'])
    run = run_module('runbook.ops.pg_backup', dict(right, database='no_such_db', backup_root=str(root)),
                     verbosity=3)
    assert run.result.get('failed') is True
    assert 'database no_such_db does not exist' in run.result['msg'], run.result['msg']
    assert pg['password'] not in run.stdout + run.stderr
    run = run_module('runbook.ops.pg_backup', dict(right, database='postgres', backup_root=str(root)),
                     verbosity=3)
    assert run.result.get('changed') is True, run
    assert pg['password'] not in run.stdout + run.stderr


def test_restore_failing_halfway_leaves_the_database_untouched(run_module, login, root, pg):
    make_database(pg, 'precious', rows=3000)
    backup(run_module, login, root, 'precious', label='precious-plain', format='plain', compression='none')
    sql(pg, 'precious', "INSERT INTO orders (item) VALUES ('written after the backup')")
    before = checksums(pg, 'precious')
    # 1. the restored data fails an assertion
    run = restore(run_module, login, root, 'precious-plain', assertions=['SELECT count(*) = 0 FROM orders'])
    assert run.result.get('failed') is True and 'untouched' in run.result['msg'], run
    assert checksums(pg, 'precious') == before
    # 2. the SQL fails halfway (a statement that errors in the middle; manifest updated to match)
    label = root / 'precious-plain'
    name = [n for n in os.listdir(str(label)) if not n.startswith('.')][0]
    dump = label / name / 'precious.sql'
    text = dump.read_text()
    at = text.index('CREATE TABLE sales.lines')
    dump.write_text(text[:at] + 'SELECT 1/0;\n' + text[at:])
    manifest_path = label / name / 'manifest.json'
    manifest = json.loads(manifest_path.read_text())
    import hashlib
    for entry in manifest['files']:
        if entry['path'] == 'precious.sql':
            entry['size'] = dump.stat().st_size
            entry['sha256'] = hashlib.sha256(dump.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    run = restore(run_module, login, root, 'precious-plain', backup=name, force=True)
    assert run.result.get('failed') is True and 'division by zero' in run.result['msg'], run
    assert checksums(pg, 'precious') == before
    assert [d for d in databases(pg) if d.startswith('precious')] == ['precious']


def test_single_table_restore(run_module, login, root, pg):
    make_database(pg, 'tables', rows=4000)
    backup(run_module, login, root, 'tables')
    before = checksums(pg, 'tables')
    sql(pg, 'tables', "DELETE FROM sales.lines WHERE order_id > 100")
    run = restore(run_module, login, root, 'tables', tables=['sales.lines'])
    assert run.result['changed'] is True, run
    after = checksums(pg, 'tables')
    assert after['sales.lines'] == before['sales.lines']
    assert run.result['replaced_copies'][0] in after


def test_lock_serialises_runs(run_module, login, root, pg):
    make_database(pg, 'locked', rows=500)
    label = root / 'locked'
    label.mkdir(mode=0o700)
    fd = os.open(str(label / '.lock'), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b'pid %d since the test began\n' % os.getpid())
    try:
        run = backup(run_module, login, root, 'locked', lock_timeout=1)
        assert run.result.get('failed') is True, run
        assert 'holds the lock' in run.result['msg'] and 'pid %d' % os.getpid() in run.result['msg']
        assert entries(root, 'locked') == ['.lock']
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    # two real runs at once: both complete, one after the other, two valid backups
    results = []

    def one():
        results.append(backup(run_module, login, root, 'locked', compression='none'))
    threads = [threading.Thread(target=one) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.result.get('changed') is True for r in results), [str(r) for r in results]
    names = [r.result['taken']['name'] for r in results]
    assert len(set(names)) == 2 or names[0] != names[1]
    check = backup(run_module, login, root, 'locked', state='verified', verify='archive')
    assert check.result['verification']['status'] == 'passed'
