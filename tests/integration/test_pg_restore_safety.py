# -*- coding: utf-8 -*-
"""runbook.ops.pg_restore safety against the real PostgreSQL fixture: a swap that fails
for real (a session holding the new database open) drops nothing and names both
databases; the label lock is held while restoring; concurrent restores of one target do
not drop each other's databases; single-table restores are idempotent; pg_backup
state=verified in check mode writes nothing."""

import fcntl
import json
import os
import threading
import time

import psycopg2
import pytest

from ansible_collections.runbook.ops.plugins.module_utils.pgbackup import scratch_name
from pgclient import connect, sql


@pytest.fixture(scope='module')
def pg(postgres):
    return postgres


def make_database(pg, name, rows=2000):
    sql(pg, 'postgres', 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    sql(pg, 'postgres', 'CREATE DATABASE "%s"' % name)
    sql(pg, name, """
        CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL, qty int);
        INSERT INTO orders (item, qty) SELECT md5(i::text), i %% 13 FROM generate_series(1, %d) i;
        CREATE SCHEMA sales;
        CREATE TABLE sales.lines (order_id int REFERENCES orders(id), note text);
        INSERT INTO sales.lines SELECT i, repeat('n', i %% 50) FROM generate_series(1, %d, 3) i;
    """ % (rows, rows))


def checksums(pg, database):
    result = {}
    for table in ('public.orders', 'sales.lines'):
        result[table] = sql(pg, database, "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), "
                                          "'')) FROM %s t" % table)[0]
    return result


def databases(pg, prefix):
    return sorted(r[0] for r in sql(pg, 'postgres', 'SELECT datname FROM pg_database') if r[0].startswith(prefix))


def drop(pg, name):
    sql(pg, 'postgres', 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


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
    return run_module('runbook.ops.pg_backup', args, check=check)


def restore(run_module, login, root, label, **kwargs):
    args = dict(login, backup_root=str(root), label=label)
    args.update(kwargs)
    check = args.pop('_check', False)
    return run_module('runbook.ops.pg_restore', args, check=check)


# ---- 1. the swap ---------------------------------------------------------------------

WAIT_FOR_HOLDER = """
CREATE FUNCTION wait_for_holder() RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
  FOR i IN 1..600 LOOP
    IF EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
               AND application_name = 'holder') THEN
      RETURN true;
    END IF;
    PERFORM pg_sleep(0.1);
  END LOOP;
  RETURN false;
END $f$;
"""


def test_rename_is_transactional_on_this_server(pg):
    """The swap relies on ALTER DATABASE ... RENAME running inside a transaction block."""
    for name in ('txn_a', 'txn_b'):
        drop(pg, name)
    sql(pg, 'postgres', 'CREATE DATABASE txn_a')
    connection = connect(pg)
    connection.autocommit = False
    try:
        with connection.cursor() as cursor:
            cursor.execute('ALTER DATABASE txn_a RENAME TO txn_b')
        connection.rollback()
    finally:
        connection.close()
    assert databases(pg, 'txn_') == ['txn_a']
    drop(pg, 'txn_a')


def test_failed_swap_drops_nothing_and_names_both_databases(run_module, login, root, pg):
    make_database(pg, 'swapfail')
    sql(pg, 'swapfail', WAIT_FOR_HOLDER)
    taken = backup(run_module, login, root, 'swapfail')
    assert taken.result.get('changed') is True, taken
    sql(pg, 'swapfail', "INSERT INTO orders (item) VALUES ('written after the backup')")
    before = checksums(pg, 'swapfail')
    held = {}
    stop = threading.Event()

    def hold():
        # another session opens the new database as soon as it exists and keeps it open:
        # the rename of the new database to swapfail then fails with "being accessed"
        while not stop.is_set() and 'connection' not in held:
            names = databases(pg, 'swapfail_restore_')
            if names:
                try:
                    held['connection'] = connect(pg, names[0], application_name='holder')
                    held['name'] = names[0]
                except psycopg2.Error:
                    pass
            time.sleep(0.02)
    holder = threading.Thread(target=hold)
    holder.start()
    try:
        run = restore(run_module, login, root, 'swapfail', assertions=['SELECT wait_for_holder()'])
    finally:
        stop.set()
        holder.join()
    try:
        assert 'connection' in held, 'the holder never connected'
        new = held['name']
        assert run.result.get('failed') is True, run
        message = run.result['msg']
        assert 'swapfail' in message and new in message, message
        assert 'being accessed by other users' in message, message
        # the target keeps its name and its current data (with the row written after the backup)
        assert checksums(pg, 'swapfail') == before
        # the proven copy was not dropped, and the holder's session was not killed
        assert new in databases(pg, 'swapfail_restore_')
        with held['connection'].cursor() as cursor:
            cursor.execute('SELECT count(*) FROM orders')
            assert cursor.fetchone()[0] == before['public.orders'][0] - 1
        assert not databases(pg, 'swapfail_replaced_')
        # the target still accepts connections
        assert sql(pg, 'postgres', "SELECT datallowconn FROM pg_database WHERE datname = 'swapfail'") == [(True,)]
    finally:
        if 'connection' in held:
            held['connection'].close()
    # the cause gone, the retry swaps
    again = restore(run_module, login, root, 'swapfail')
    assert again.result.get('changed') is True, again
    assert checksums(pg, 'swapfail')['public.orders'][0] == before['public.orders'][0] - 1
    for name in databases(pg, 'swapfail_'):
        drop(pg, name)


# ---- 2. the label lock and unique scratch names ------------------------------------------

def test_restore_holds_the_label_lock(run_module, login, root, pg):
    make_database(pg, 'restorelock', rows=300)
    backup(run_module, login, root, 'restorelock')
    fd = os.open(str(root / 'restorelock' / '.lock'), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b'pid %d since the test began\n' % os.getpid())
    try:
        run = restore(run_module, login, root, 'restorelock', force=True, lock_timeout=1)
        assert run.result.get('failed') is True, run
        assert 'holds the lock' in run.result['msg'] and 'pid %d' % os.getpid() in run.result['msg'], run
        assert not databases(pg, 'restorelock_')
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    run = restore(run_module, login, root, 'restorelock', force=True)
    assert run.result.get('changed') is True and run.result['lock_waited_seconds'] >= 0, run
    for name in databases(pg, 'restorelock_'):
        drop(pg, name)


def test_scratch_names_differ_within_one_second():
    from datetime import datetime
    when = datetime(2026, 3, 1, 2, 0, 0)
    names = set(scratch_name('x' * 80, 'restore', when) for index in range(50))
    assert len(names) == 50
    assert all(len(n) <= 63 for n in names)


def test_concurrent_restores_of_one_target_drop_nothing_of_each_other(run_module, login, root, pg):
    make_database(pg, 'twin', rows=1500)
    backup(run_module, login, root, 'twin', label='twin-a')
    backup(run_module, login, root, 'twin', label='twin-b')
    results = []

    def one(label):
        results.append(restore(run_module, login, root, label, database='twin', force=True))
    threads = [threading.Thread(target=one, args=(label,)) for label in ('twin-a', 'twin-b')]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for run in results:
        if run.result.get('failed'):
            # a swap that lost the race names where the data is and dropped nothing
            assert run.result['restored_into'] in run.result['msg'] if 'restored_into' in run.result else True
            assert 'does not exist' not in run.result['msg'], run
    assert any(r.result.get('changed') for r in results), [str(r) for r in results]
    assert 'twin' in databases(pg, 'twin')
    # the original data and every restore that got in are kept under the replaced names
    replaced = databases(pg, 'twin_replaced_')
    swapped = [r for r in results if r.result.get('changed') and not r.result.get('failed')]
    assert len(replaced) == len(swapped)
    for name in databases(pg, 'twin_'):
        drop(pg, name)


# ---- 4. single-table restore idempotence ------------------------------------------------

def test_single_table_restore_is_idempotent(run_module, login, root, pg):
    make_database(pg, 'onetable', rows=900)
    backup(run_module, login, root, 'onetable')
    before = checksums(pg, 'onetable')
    sql(pg, 'onetable', 'DELETE FROM sales.lines WHERE order_id > 100')
    first = restore(run_module, login, root, 'onetable', tables=['sales.lines'], keep_replaced=False)
    assert first.result.get('changed') is True, first
    assert checksums(pg, 'onetable')['sales.lines'] == before['sales.lines']
    sql(pg, 'onetable', "INSERT INTO sales.lines VALUES (1, 'written after the restore')")
    after_write = checksums(pg, 'onetable')
    again = restore(run_module, login, root, 'onetable', tables=['sales.lines'], keep_replaced=False)
    assert again.result.get('changed') is False, again
    assert 'already restored' in again.result['skipped_reason'] and 'force' in again.result['skipped_reason']
    assert checksums(pg, 'onetable') == after_write          # the row written since is still there
    forced = restore(run_module, login, root, 'onetable', tables=['sales.lines'], keep_replaced=False, force=True)
    assert forced.result.get('changed') is True, forced
    assert checksums(pg, 'onetable')['sales.lines'] == before['sales.lines']
    drop(pg, 'onetable')


# ---- 3. drills in check mode write nothing ------------------------------------------------

def test_verified_in_check_mode_writes_no_record_and_keeps_partials(run_module, login, root, pg):
    make_database(pg, 'drycheck', rows=300)
    taken = backup(run_module, login, root, 'drycheck', verify='checksum')
    path = taken.result['taken']['path']
    manifest = os.path.join(path, 'manifest.json')
    partial = root / 'drycheck' / '.partial-20260101T000000Z-1'
    partial.mkdir()
    text, mtime = open(manifest).read(), os.stat(manifest).st_mtime_ns
    run = backup(run_module, login, root, 'drycheck', state='verified', verify='restore_test', _check=True)
    assert run.result.get('failed') is not True, run
    assert run.result['would_verify']['backup'] == taken.result['taken']['name'], run
    assert run.result['would_verify']['level'] == 'restore_test'
    assert run.result['rpo_seconds'] is not None and 'verification' not in run.result
    assert open(manifest).read() == text and os.stat(manifest).st_mtime_ns == mtime
    assert partial.is_dir()
    assert not databases(pg, 'drycheck_')
    # a real run does both
    real = backup(run_module, login, root, 'drycheck', state='verified', verify='restore_test')
    assert real.result['verification']['status'] == 'passed', real
    assert json.loads(open(manifest).read())['verification']['level'] == 'restore_test'
    assert not partial.exists()
    drop(pg, 'drycheck')


def test_dr_drill_role_in_check_mode_restores_and_writes_nothing(run_play, login, root, pg, tmp_path):
    make_database(pg, 'drillcheck', rows=300)
    taken = backup(run_module_of(run_play), login, root, 'drillcheck', verify='checksum')
    manifest = os.path.join(taken.result['taken']['path'], 'manifest.json')
    partial = root / 'drillcheck' / '.partial-20260101T000000Z-1'
    partial.mkdir()
    text, mtime = open(manifest).read(), os.stat(manifest).st_mtime_ns
    reports = tmp_path / 'reports'
    role = {'ansible.builtin.include_role': {'name': 'runbook.ops.dr_drill'},
            'vars': {'dr_drill_backup_root': str(root), 'dr_drill_postgres': [{'database': 'drillcheck'}],
                     'dr_drill_postgres_login': login, 'dr_drill_files': [],
                     'dr_drill_scratch_dir': str(tmp_path / 'scratch'), 'dr_drill_report_dir': str(reports)}}
    run = run_play([role], check=True)
    assert run.rc == 0, run
    assert open(manifest).read() == text and os.stat(manifest).st_mtime_ns == mtime, run
    assert partial.is_dir()
    assert not databases(pg, 'drillcheck_')
    report = json.loads(next(reports.rglob('*.json')).read_text())
    flat = json.dumps(report)
    assert 'check mode: would restore %s' % taken.result['taken']['name'] in flat, flat
    assert 'rpo:drillcheck' in flat and 'measured RPO' in flat, flat
    drop(pg, 'drillcheck')


def run_module_of(run_play):
    def run_module(module, args, **kwargs):
        return run_play([{module: args}], **kwargs)
    return run_module
