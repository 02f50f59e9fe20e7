# -*- coding: utf-8 -*-
"""runbook.ops.pg_settings through ansible-playbook against the real PostgreSQL of the
``postgres`` fixture: ALTER SYSTEM, reload, idempotence in the parameter's own unit,
pending restarts reported (never a restart), bad input refused before any change and
a failing ALTER SYSTEM undone.  Every test resets what it altered (ALTER SYSTEM RESET ALL)."""

import pytest

psycopg2 = pytest.importorskip('psycopg2')

MODULE = 'runbook.ops.pg_settings'


def login(postgres):
    return {'login_host': postgres['host'], 'login_port': postgres['port'],
            'login_user': postgres['user'], 'passfile': postgres['passfile']}


def show(postgres, name):
    """SHOW name from a new session (so a reload has certainly been seen)."""
    connection = psycopg2.connect(host=postgres['host'], port=postgres['port'],
                                  user=postgres['user'], password=postgres['password'],
                                  dbname='postgres')
    try:
        cursor = connection.cursor()
        cursor.execute('SHOW %s' % name)
        return cursor.fetchone()[0]
    finally:
        connection.close()


def auto_conf(postgres):
    with open(postgres['data'] + '/postgresql.auto.conf') as stream:
        return stream.read()


@pytest.fixture
def pg(postgres):
    """The server, with everything ALTER SYSTEM set undone afterwards."""
    yield postgres
    connection = psycopg2.connect(host=postgres['host'], port=postgres['port'],
                                  user=postgres['user'], password=postgres['password'],
                                  dbname='postgres')
    connection.autocommit = True
    cursor = connection.cursor()
    cursor.execute('ALTER SYSTEM RESET ALL')
    cursor.execute('SELECT pg_reload_conf()')
    connection.close()


RUNBOOK_000 = {
    'shared_buffers': '256MB', 'effective_cache_size': '1GB', 'work_mem': '4MB',
    'maintenance_work_mem': '64MB', 'checkpoint_completion_target': 0.8, 'wal_buffers': '16MB',
    'random_page_cost': 1.1, 'max_connections': 100,
    'shared_preload_libraries': 'pg_stat_statements',
}


def test_set_reload_idempotent_pending_restart(run_module, pg):
    args = dict(login(pg), settings=RUNBOOK_000)
    before_conf = auto_conf(pg)

    checked = run_module(MODULE, args, check=True, diff=True).result
    assert checked['changed'] is True, checked
    assert auto_conf(pg) == before_conf
    assert 'shared_buffers' in checked['pending_restart']
    assert 'random_page_cost = 1.1' in checked['diff']['after']

    applied = run_module(MODULE, args).result
    assert applied['changed'] is True, applied
    assert applied['reloaded'] is True
    changed = set(c['name'] for c in applied['changes'])
    # max_connections is already 100 and maintenance_work_mem 64MB by default: not altered
    assert 'random_page_cost' in changed and 'shared_buffers' in changed
    assert 'max_connections' not in changed
    assert show(pg, 'random_page_cost') == '1.1'  # reloaded: a new session sees it
    assert show(pg, 'checkpoint_completion_target') == '0.8'
    assert show(pg, 'shared_buffers') != '256MB'  # not restarted by surprise
    assert applied['pending_restart'] == ['shared_buffers', 'shared_preload_libraries', 'wal_buffers']
    assert "shared_preload_libraries = 'pg_stat_statements'" in auto_conf(pg)

    again = run_module(MODULE, args).result
    assert again['changed'] is False, again
    assert again['changes'] == []
    assert again['pending_restart'] == ['shared_buffers', 'shared_preload_libraries', 'wal_buffers']


def test_units_are_normalised(run_module, pg):
    first = run_module(MODULE, dict(login(pg), settings={
        'work_mem': '8MB', 'shared_buffers': '256MB', 'statement_timeout': '1min',
        'TimeZone': 'UTC', 'jit': 'off'})).result
    assert first['changed'] is True, first
    same = run_module(MODULE, dict(login(pg), settings={
        'work_mem': '8192kB', 'shared_buffers': 32768, 'statement_timeout': '60s',
        'timezone': 'UTC', 'jit': False})).result
    assert same['changed'] is False, same


@pytest.mark.parametrize('settings, expected', [
    ({'work_mem': '8MB', 'no_such_parameter': 1}, 'no_such_parameter is not a parameter'),
    ({'work_mem': '8 parsecs'}, "work_mem: unit 'parsecs' is not valid"),
    ({'max_connections': 'many'}, 'max_connections takes a number'),
    ({'random_page_cost': -1}, 'random_page_cost = \'-1\' is outside'),
    ({'jit': 'maybe'}, 'jit is a boolean'),
    ({'wal_level': 'everything'}, 'wal_level is one of'),
])
def test_bad_input_changes_nothing(run_module, pg, settings, expected):
    before = auto_conf(pg)
    result = run_module(MODULE, dict(login(pg), settings=settings)).result
    assert result['failed'] is True
    assert expected in result['msg'], result['msg']
    assert auto_conf(pg) == before


def test_rejected_value_undoes_earlier_alters(run_module, pg):
    before = auto_conf(pg)
    result = run_module(MODULE, dict(login(pg), settings={
        'work_mem': '12MB', 'TimeZone': 'Nowhere/Fake'})).result
    assert result['failed'] is True
    assert 'ALTER SYSTEM SET timezone' in result['msg'] and 'undone: work_mem' in result['msg']
    assert auto_conf(pg) == before


def test_wrong_password_is_a_clear_error(run_module, pg):
    result = run_module(MODULE, {'login_host': pg['host'], 'login_port': pg['port'],
                                 'login_password': 'wrong', 'settings': {'work_mem': '8MB'}}).result
    assert result['failed'] is True
    assert result['msg'].startswith('cannot connect to PostgreSQL at 127.0.0.1:%d' % pg['port'])
    assert 'wrong' not in result['msg']


def test_without_psycopg2(run_play, pg):
    """The system Python has no psycopg2: missing_required_lib's message."""
    run = run_play([{MODULE: dict(login(pg), settings={'work_mem': '8MB'}),
                     'vars': {'ansible_python_interpreter': '/usr/bin/python3'}}])
    assert run.result['failed'] is True
    assert 'Failed to import the required Python library (psycopg2' in run.result['msg']
