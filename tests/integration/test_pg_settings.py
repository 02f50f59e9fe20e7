# -*- coding: utf-8 -*-
"""runbook.ops.pg_settings through ansible-playbook against the real PostgreSQL of the
``postgres`` fixture: ALTER SYSTEM, reload, idempotence in the parameter's own unit,
pending restarts reported (never a restart), bad input refused before any change and
a failing ALTER SYSTEM undone.  Every test resets what it altered (ALTER SYSTEM RESET ALL)."""

import os
import subprocess

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


def restart(postgres):
    """Restart the fixture's server (as an operator would); the module never does."""
    argv = [postgres['bindir'] + '/pg_ctl', '-D', postgres['data'], '-l',
            os.path.join(os.path.dirname(postgres['data']), 'postgres.log'), '-m', 'fast', '-w', 'restart']
    if os.geteuid() == 0:
        argv = ['runuser', '-u', 'postgres', '--'] + argv
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def test_reset_takes_back_what_alter_system_set(run_module, pg):
    default_work_mem = show(pg, 'work_mem')
    untouched = auto_conf(pg)
    applied = run_module(MODULE, dict(login(pg), settings={'work_mem': '12MB', 'shared_buffers': '256MB'})).result
    assert applied['changed'] is True and show(pg, 'work_mem') == '12MB', applied
    assert applied['pending_restart'] == ['shared_buffers']
    args = dict(login(pg), reset=['work_mem', 'shared_buffers', 'random_page_cost'])

    set_conf = auto_conf(pg)
    checked = run_module(MODULE, args, check=True, diff=True).result
    assert checked['changed'] is True, checked
    assert auto_conf(pg) == set_conf  # byte for byte
    assert show(pg, 'work_mem') == '12MB'
    assert [(c['name'], c['action'], c['after']) for c in checked['changes']] == [
        ('work_mem', 'reset', None), ('shared_buffers', 'reset', None)]  # random_page_cost: not set, left alone
    assert "work_mem = 12MB" in checked['diff']['before'] and 'work_mem' not in checked['diff']['after']
    # 256MB never ran (no restart since): taking it back needs no restart
    assert checked['pending_restart'] == []

    reset = run_module(MODULE, args).result
    assert reset['changed'] is True and reset['reloaded'] is True, reset
    assert reset['pending_restart'] == []
    assert show(pg, 'work_mem') == default_work_mem  # reloaded: back to postgresql.conf
    conf = auto_conf(pg)
    assert 'work_mem' not in conf and 'shared_buffers' not in conf
    assert conf == untouched

    again = run_module(MODULE, args).result
    assert again['changed'] is False and again['changes'] == [], again
    assert auto_conf(pg) == conf


def test_reset_of_a_value_running_since_a_restart_waits_for_a_restart(run_module, pg):
    before = show(pg, 'shared_buffers')
    try:
        run_module(MODULE, dict(login(pg), settings={'shared_buffers': '256MB'}))
        restart(pg)
        assert show(pg, 'shared_buffers') == '256MB'
        args = dict(login(pg), reset=['shared_buffers'])

        set_conf = auto_conf(pg)
        checked = run_module(MODULE, args, check=True).result
        assert checked['changed'] is True and checked['pending_restart'] == ['shared_buffers'], checked
        assert checked['changes'][0]['restart'] is True
        assert auto_conf(pg) == set_conf

        reset = run_module(MODULE, args).result
        assert reset['changed'] is True and reset['pending_restart'] == ['shared_buffers'], reset
        assert 'shared_buffers' not in auto_conf(pg)
        assert show(pg, 'shared_buffers') == '256MB'  # nothing restarted

        again = run_module(MODULE, args).result
        assert again['changed'] is False and again['pending_restart'] == ['shared_buffers'], again
    finally:
        connection = psycopg2.connect(host=pg['host'], port=pg['port'], user=pg['user'],
                                      password=pg['password'], dbname='postgres')
        connection.autocommit = True
        connection.cursor().execute('ALTER SYSTEM RESET ALL')
        connection.close()
        restart(pg)
    assert show(pg, 'shared_buffers') == before


@pytest.mark.parametrize('args, expected', [
    ({'reset': ['no_such_parameter']}, 'reset: no_such_parameter is not a parameter of this server'),
    ({'reset': ['bad name']}, "reset: 'bad name' is not a parameter name"),
    ({'settings': {'work_mem': '8MB'}, 'reset': ['work_mem']}, 'work_mem is in both settings and reset'),
    ({'settings': {'work_mem': None}}, 'list work_mem in reset'),
    ({}, 'nothing to do: give settings'),
])
def test_bad_reset_changes_nothing(run_module, pg, args, expected):
    before = auto_conf(pg)
    result = run_module(MODULE, dict(login(pg), **args)).result
    assert result['failed'] is True
    assert expected in result['msg'], result['msg']
    assert auto_conf(pg) == before
