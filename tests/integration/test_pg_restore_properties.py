# -*- coding: utf-8 -*-
"""Database-level properties through pg_backup and pg_restore against the real
PostgreSQL fixture: a database owned by an application role, CONNECT revoked from
PUBLIC and granted to a reader, per-database and per-role settings, a comment and a
connection limit comes back with every one of them (pg_database, pg_db_role_setting,
shobj_description compared), over a damaged database and into an absent one; a
server without the reader role restores, warns naming it and applies everything
else; an old manifest without the record restores with a warning; a single-table
restore and a restore test change no database property."""

import json
import os
import uuid

import psycopg2
import pytest


@pytest.fixture(scope='module')
def pg(postgres):
    return postgres


def connect(pg, database='postgres', user=None, socket=False):
    if socket:
        connection = psycopg2.connect(host=pg['socket_dir'], port=pg['port'], user=user or pg['user'],
                                      dbname=database)
    else:
        connection = psycopg2.connect(host=pg['host'], port=pg['port'], user=user or pg['user'],
                                      password=pg['password'], dbname=database)
    connection.autocommit = True
    return connection


def run(pg, database, *statements):
    connection = connect(pg, database)
    try:
        with connection.cursor() as cursor:
            rows = None
            for statement in statements:
                cursor.execute(statement)
                rows = cursor.fetchall() if cursor.description else None
            return rows
    finally:
        connection.close()


def properties(pg, database):
    """Every database-level property, read from the catalogs (not from the module)."""
    row = run(pg, 'postgres', """
        SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype, datconnlimit,
               datacl::text[], shobj_description(oid, 'pg_database')
          FROM pg_database WHERE datname = '%s'""" % database)
    if not row:
        return None
    settings = run(pg, 'postgres', """
        SELECT coalesce(r.rolname, '(all)'), c
          FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
          LEFT JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) c
         WHERE d.datname = '%s' AND c NOT LIKE 'runbook_ops.%%' ORDER BY 1, 2""" % database)
    owner, encoding, collate, ctype, limit, acl, comment = row[0]
    return {'owner': owner, 'encoding': encoding, 'collate': collate, 'ctype': ctype, 'connection_limit': limit,
            'acl': acl, 'comment': comment, 'settings': [tuple(s) for s in settings]}


@pytest.fixture
def names(pg):
    """A database and its roles, unique per test; everything dropped afterwards."""
    tag = uuid.uuid4().hex[:6]
    made = {'db': 'props_%s' % tag, 'app': 'app_%s' % tag, 'reader': 'reader_%s' % tag}
    yield made
    rows = run(pg, 'postgres', "SELECT datname FROM pg_database WHERE datname LIKE 'props_%s%%'" % tag)
    for (name,) in rows:
        run(pg, 'postgres', 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    for role in (made['reader'], made['app']):
        if run(pg, 'postgres', "SELECT 1 FROM pg_roles WHERE rolname = '%s'" % role):
            run(pg, 'postgres', 'DROP OWNED BY "%s"' % role, 'DROP ROLE "%s"' % role)


def make_database(pg, names, rows=500):
    db, app, reader = names['db'], names['app'], names['reader']
    run(pg, 'postgres',
        'CREATE ROLE "%s" LOGIN' % app, 'CREATE ROLE "%s" LOGIN' % reader,
        # not the server's default collation: the restore must create it with the recorded one
        'CREATE DATABASE "%s" OWNER "%s" TEMPLATE template0 ENCODING \'UTF8\' LC_COLLATE \'C\' LC_CTYPE \'C\''
        % (db, app),
        'REVOKE CONNECT ON DATABASE "%s" FROM PUBLIC' % db,
        'GRANT CONNECT ON DATABASE "%s" TO "%s"' % (db, reader),
        'ALTER DATABASE "%s" SET work_mem = \'64MB\'' % db,
        'ALTER DATABASE "%s" SET statement_timeout = \'30s\'' % db,
        'ALTER ROLE "%s" IN DATABASE "%s" SET search_path = "%s", "Odd, Schema", public' % (reader, db, reader),
        "COMMENT ON DATABASE \"%s\" IS 'shop''s orders (restored at 3 a.m.)'" % db,
        'ALTER DATABASE "%s" CONNECTION LIMIT 7' % db)
    run(pg, db, 'SET ROLE "%s"' % app,
        'CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)',
        "INSERT INTO orders (item) SELECT md5(i::text) FROM generate_series(1, %d) i" % rows)


def login(pg):
    return {'login_host': pg['host'], 'login_port': pg['port'], 'login_user': pg['user'],
            'passfile': pg['passfile']}


def backup(run_module, pg, root, database, **kwargs):
    args = dict(login(pg), database=database, backup_root=str(root))
    args.update(kwargs)
    return run_module('runbook.ops.pg_backup', args, check=args.pop('_check', False))


def restore(run_module, pg, root, label, **kwargs):
    args = dict(login(pg), backup_root=str(root), label=label)
    args.update(kwargs)
    return run_module('runbook.ops.pg_restore', args, check=args.pop('_check', False),
                      diff=args.pop('_diff', False))


@pytest.fixture
def root(tmp_path):
    path = tmp_path / 'backups'
    path.mkdir()
    return path


def ok(run):
    """The task ran and did not fail (the runner ignores errors, so rc alone says little)."""
    return run.rc == 0 and not run.result.get('failed')


def warnings_of(run):
    return run.result.get('warnings') or []


def test_every_property_comes_back_over_a_damaged_database_and_into_an_absent_one(run_module, pg, names, root):
    make_database(pg, names)
    db, app, reader = names['db'], names['app'], names['reader']
    original = properties(pg, db)
    assert original['owner'] == app and '%s=c/%s' % (reader, app) in original['acl']
    assert not any(item.startswith('=') and 'c' in item.split('/')[0] for item in original['acl'])

    taken = backup(run_module, pg, root, db)
    assert ok(taken), taken.stdout
    record = taken.result['taken']['database_properties']
    assert record['owner'] == app and record['collate'] == 'C' and record['connection_limit'] == 7
    assert record['acl'] == original['acl'] and record['comment'] == original['comment']
    assert {'role': reader, 'name': 'search_path', 'value': '%s, "Odd, Schema", public' % reader} \
        in record['settings']
    manifest = json.loads((root / db / taken.result['taken']['name'] / 'manifest.json').read_text())
    assert manifest['postgresql']['database_properties'] == record

    # damage: the owner, the grants, the settings, the comment, the limit and the data
    run(pg, 'postgres', 'ALTER DATABASE "%s" OWNER TO postgres' % db,
        'GRANT CONNECT ON DATABASE "%s" TO PUBLIC' % db, 'REVOKE CONNECT ON DATABASE "%s" FROM "%s"' % (db, reader),
        'ALTER DATABASE "%s" RESET ALL' % db, 'ALTER DATABASE "%s" SET work_mem = \'1MB\'' % db,
        'ALTER ROLE "%s" IN DATABASE "%s" RESET ALL' % (reader, db), 'COMMENT ON DATABASE "%s" IS NULL' % db,
        'ALTER DATABASE "%s" CONNECTION LIMIT -1' % db)
    run(pg, db, 'DELETE FROM orders WHERE id > 10')
    damaged = properties(pg, db)

    plan = restore(run_module, pg, root, db, _check=True, _diff=True)
    assert ok(plan) and plan.result['changed'], plan.stdout
    applied = plan.result['properties']['apply']
    assert 'GRANT CONNECT ON DATABASE "%s" TO "%s"' % (db, reader) in applied
    assert any('SET "work_mem" TO \'64MB\'' in s for s in applied), applied
    assert any('OWNER "%s"' % app in step and 'LC_COLLATE \'C\'' in step for step in plan.result['plan'])
    assert sorted(plan.result['properties']['changed']) == ['acl', 'comment', 'connection_limit', 'owner',
                                                            'settings']
    assert 'owner: %s' % app in plan.result['diff']['after'] and 'owner: postgres' in plan.result['diff']['before']
    assert properties(pg, db) == damaged                        # check mode changed nothing

    done = restore(run_module, pg, root, db)
    assert ok(done) and done.result['changed'], done.stdout
    assert properties(pg, db) == original
    assert warnings_of(done) == [] and done.result['properties']['not_applied'] == []
    assert done.result['properties']['changed']['owner'] == {'before': 'postgres', 'after': app}
    assert run(pg, db, 'SELECT count(*) FROM orders')[0][0] == 500
    # the replaced database kept its own (damaged) properties
    assert properties(pg, done.result['replaced_database'])['owner'] == 'postgres'

    # they work: the reader connects and gets its search_path, PUBLIC may not connect
    as_reader = connect(pg, db, user=reader, socket=True)
    try:
        with as_reader.cursor() as cursor:
            cursor.execute('SHOW search_path')
            assert cursor.fetchone()[0] == '%s, "Odd, Schema", public' % reader
            cursor.execute('SHOW work_mem')
            assert cursor.fetchone()[0] == '64MB'
    finally:
        as_reader.close()
    run(pg, 'postgres', 'CREATE ROLE "%s_other" LOGIN' % names['db'])
    try:
        with pytest.raises(psycopg2.OperationalError, match='permission denied'):
            connect(pg, db, user='%s_other' % names['db'], socket=True)
    finally:
        run(pg, 'postgres', 'DROP ROLE "%s_other"' % names['db'])

    again = restore(run_module, pg, root, db)
    assert ok(again) and not again.result['changed'] and 'already restored' in again.result['skipped_reason']
    assert again.result['properties']['changed'] == {}

    # into an absent database: the same properties
    run(pg, 'postgres', 'DROP DATABASE "%s" WITH (FORCE)' % db)
    fresh = restore(run_module, pg, root, db)
    assert ok(fresh) and fresh.result['changed'], fresh.stdout
    assert properties(pg, db) == original

    # single-table restore: rows back, no database property touched
    run(pg, db, 'DELETE FROM orders WHERE id > 10')
    run(pg, 'postgres', 'ALTER DATABASE "%s" SET work_mem = \'2MB\'' % db)
    before = properties(pg, db)
    table = restore(run_module, pg, root, db, tables=['public.orders'], keep_replaced=False)
    assert ok(table) and table.result['changed'], table.stdout
    assert run(pg, db, 'SELECT count(*) FROM orders')[0][0] == 500
    assert properties(pg, db) == before and 'properties' not in table.result

    # restore test (dr_drill): reports the record, changes nothing
    drill = backup(run_module, pg, root, db, state='verified', verify='restore_test')
    assert ok(drill), drill.stdout
    report = drill.result['verification']['restore_test']['database_properties']
    assert report == {'recorded': True, 'owner': app, 'missing_roles': [], 'warnings': []}
    assert properties(pg, db) == before


def test_a_server_without_the_reader_role_restores_and_names_it(run_module, pg, names, root):
    make_database(pg, names)
    db, reader = names['db'], names['reader']
    original = properties(pg, db)
    assert ok(backup(run_module, pg, root, db))
    run(pg, 'postgres', 'DROP OWNED BY "%s"' % reader, 'DROP ROLE "%s"' % reader)

    drill = backup(run_module, pg, root, db, state='verified', verify='restore_test')
    assert ok(drill), drill.stdout
    report = drill.result['verification']['restore_test']['database_properties']
    assert report['missing_roles'] == [reader]
    assert any(reader in w and 'pg_dumpall --globals-only' in w for w in warnings_of(drill))
    run(pg, 'postgres', 'DROP DATABASE "%s" WITH (FORCE)' % db)

    done = restore(run_module, pg, root, db)
    assert ok(done) and done.result['changed'], done.stdout
    assert done.result['properties']['missing_roles'] == [reader]
    text = ' | '.join(warnings_of(done))
    assert 'GRANT CONNECT ON DATABASE ... TO %s was not restored: role %s does not exist' % (reader, reader) in text
    assert 'ALTER ROLE %s IN DATABASE' % reader in text and 'create it' in text
    restored = properties(pg, db)
    # everything else is applied, exactly
    expected = dict(original, acl=[a for a in original['acl'] if not a.startswith(reader + '=')],
                    settings=[s for s in original['settings'] if s[0] != reader])
    assert restored == expected
    assert done.result['properties']['not_applied'] == []

    # the fix the warning names: create the role, run again with force
    run(pg, 'postgres', 'CREATE ROLE "%s" LOGIN' % reader)
    fixed = restore(run_module, pg, root, db, force=True, keep_replaced=False)
    assert ok(fixed) and warnings_of(fixed) == [], fixed.stdout
    assert properties(pg, db) == original


def test_a_missing_owner_falls_back_to_the_login_user(run_module, pg, names, root):
    db, owner = names['db'], names['app']
    run(pg, 'postgres', 'CREATE ROLE "%s"' % owner, 'CREATE DATABASE "%s" OWNER "%s"' % (db, owner),
        'REVOKE ALL ON DATABASE "%s" FROM PUBLIC' % db)
    run(pg, db, 'CREATE TABLE t AS SELECT 1 AS x')               # owned by postgres: the dump needs no owner role
    assert ok(backup(run_module, pg, root, db))
    run(pg, 'postgres', 'DROP DATABASE "%s" WITH (FORCE)' % db, 'DROP ROLE "%s"' % owner)
    done = restore(run_module, pg, root, db)
    assert ok(done) and done.result['changed'], done.stdout
    assert done.result['properties']['owner'] == pg['user']
    assert any('role %s, does not exist' % owner in w and 'OWNER TO %s' % owner in w for w in warnings_of(done))
    restored = properties(pg, db)
    assert restored['owner'] == pg['user'] and restored['acl'] == ['%s=CTc/%s' % (pg['user'], pg['user'])]


def test_an_old_manifest_without_the_record_restores_with_a_warning(run_module, pg, names, root):
    make_database(pg, names)
    db, app = names['db'], names['app']
    original = properties(pg, db)
    taken = backup(run_module, pg, root, db)
    assert ok(taken)
    path = root / db / taken.result['taken']['name'] / 'manifest.json'
    manifest = json.loads(path.read_text())
    del manifest['postgresql']['database_properties']
    mode = os.stat(str(path)).st_mode
    os.chmod(str(path), 0o600)
    path.write_text(json.dumps(manifest))
    os.chmod(str(path), mode & 0o777)

    # over the existing database: it keeps the replaced database's properties
    done = restore(run_module, pg, root, db)
    assert ok(done) and done.result['changed'], done.stdout
    assert done.result['properties']['source'] == 'replaced'
    assert any('no record of the database-level properties' in w for w in warnings_of(done))
    assert properties(pg, db) == original

    # into an absent database: the server's defaults, and the warning names what is lost
    other = db + '_copy'
    fresh = restore(run_module, pg, root, db, database=other)
    assert ok(fresh) and fresh.result['changed'], fresh.stdout
    assert fresh.result['properties']['source'] == 'unrecorded'
    text = ' | '.join(warnings_of(fresh))
    assert 'owner, GRANTs' in text and 'settings' in text and 'comment and connection limit' in text
    assert properties(pg, other)['owner'] == pg['user'] and properties(pg, other)['acl'] is None
    assert app != pg['user']


def test_properties_current_keeps_the_replaced_databases(run_module, pg, names, root):
    make_database(pg, names)
    db, reader = names['db'], names['reader']
    assert ok(backup(run_module, pg, root, db))
    run(pg, 'postgres', 'ALTER DATABASE "%s" OWNER TO "%s"' % (db, reader), 'COMMENT ON DATABASE "%s" IS \'staging\''
        % db, 'ALTER DATABASE "%s" SET work_mem = \'8MB\'' % db)
    staging = properties(pg, db)
    done = restore(run_module, pg, root, db, properties='current')
    assert ok(done) and done.result['properties']['source'] == 'current', done.stdout
    assert properties(pg, db) == staging
    assert done.result['properties']['changed'] == {}

    none = restore(run_module, pg, root, db, properties='none', force=True)
    assert ok(none), none.stdout
    plain = properties(pg, db)
    assert plain['owner'] == pg['user'] and plain['acl'] is None and plain['settings'] == []
    assert plain['comment'] is None and plain['connection_limit'] == -1
