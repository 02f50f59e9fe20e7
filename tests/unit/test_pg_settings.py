# -*- coding: utf-8 -*-
"""Unit tests of plugins/module_utils/pg_settings.py: values in the parameter's own
unit and the plan.  The rows imitate pg_settings; the integration tests use a real server."""

import pytest

from ansible_collections.runbook.ops.plugins.module_utils.pg_settings import (
    SettingError, normalize, parse_reset, parse_settings, plan, plan_resets, reset_settled,
)
from ansible_collections.runbook.ops.plugins.module_utils.postgres import connect_kwargs, postgres_argument_spec

SHARED_BUFFERS = {'vartype': 'integer', 'unit': '8kB', 'min_val': '16', 'max_val': '1073741823',
                  'setting': '16384', 'context': 'postmaster'}
WORK_MEM = {'vartype': 'integer', 'unit': 'kB', 'min_val': '64', 'max_val': '2147483647',
            'setting': '4096', 'context': 'user'}
TIMEOUT = {'vartype': 'integer', 'unit': 'ms', 'min_val': '0', 'max_val': '2147483647',
           'setting': '0', 'context': 'user'}
COST = {'vartype': 'real', 'unit': None, 'min_val': '0', 'max_val': '1.79769e+308',
        'setting': '4', 'context': 'user'}
JIT = {'vartype': 'bool', 'unit': None, 'setting': 'on', 'context': 'user'}
WAL_LEVEL = {'vartype': 'enum', 'unit': None, 'enumvals': ['minimal', 'replica', 'logical'],
             'setting': 'replica', 'context': 'postmaster'}
LIBS = {'vartype': 'string', 'unit': None, 'setting': '', 'context': 'postmaster'}


@pytest.mark.parametrize('value, expected', [('256MB', 32768), (32768, 32768), ('32768', 32768),
                                             ('1GB', 131072), ('128kB', 16)])
def test_memory_in_pages(value, expected):
    assert normalize('shared_buffers', value, SHARED_BUFFERS) == expected


def test_time_and_bool_and_enum_and_lists():
    assert normalize('statement_timeout', '1min', TIMEOUT) == normalize('statement_timeout', '60s', TIMEOUT) == 60000
    assert normalize('jit', 'OFF', JIT) is False and normalize('jit', True, JIT) is True
    assert normalize('wal_level', 'Logical', WAL_LEVEL) == 'logical'
    assert normalize('shared_preload_libraries', "pg_stat_statements, auto_explain", LIBS) == \
        normalize('shared_preload_libraries', ['pg_stat_statements', 'auto_explain'], LIBS)
    assert normalize('random_page_cost', '1.1', COST) == 1.1


@pytest.mark.parametrize('name, value, meta, message', [
    ('work_mem', '4 parsecs', WORK_MEM, "unit 'parsecs' is not valid"),
    ('work_mem', '32kB', WORK_MEM, 'outside 64..2147483647'),
    ('work_mem', 'lots', WORK_MEM, 'takes a number with a unit'),
    ('statement_timeout', '5MB', TIMEOUT, "unit 'MB' is not valid here (valid: us, ms, s, min, h, d)"),
    ('jit', 'maybe', JIT, 'is a boolean'),
    ('wal_level', 'all', WAL_LEVEL, 'one of minimal, replica, logical'),
])
def test_bad_values(name, value, meta, message):
    with pytest.raises(SettingError, match=message.replace('(', r'\(').replace(')', r'\)')):
        normalize(name, value, meta)


def test_plan_compares_with_auto_conf_first():
    rows = {'shared_buffers': SHARED_BUFFERS, 'work_mem': WORK_MEM, 'jit': JIT}
    entries = parse_settings({'shared_buffers': '256MB', 'work_mem': '4MB', 'jit': 'on'})
    changes, errors = plan(entries, rows, {})
    assert errors == []
    assert [c['name'] for c in changes] == ['shared_buffers']
    assert changes[0]['before'] == '16384 (x 8kB)' and changes[0]['context'] == 'postmaster'
    # ALTER SYSTEM already wrote 256MB (pending restart): nothing to do
    changes, errors = plan(entries, rows, {'shared_buffers': '32768'})
    assert changes == [] and errors == []


def test_plan_errors():
    changes, errors = plan(parse_settings({'nope': 1, 'my.custom': 'x'}), {}, {})
    assert errors == ['nope is not a parameter of this server (a typo, or a parameter of a newer PostgreSQL)']
    assert [c['name'] for c in changes] == ['my.custom']
    with pytest.raises(SettingError, match='is not a parameter name'):
        parse_settings({'bad name': 1})
    with pytest.raises(SettingError, match='give a value'):
        parse_settings({'work_mem': ''})


def test_parse_reset():
    entries = parse_settings({'work_mem': '8MB'})
    assert parse_reset(['Shared_Buffers', 'jit', 'jit'], entries) == ['shared_buffers', 'jit']
    with pytest.raises(SettingError, match='work_mem is in both settings and reset'):
        parse_reset(['work_mem'], entries)
    with pytest.raises(SettingError, match="reset: 'bad name' is not a parameter name"):
        parse_reset(['bad name'])
    assert parse_settings({}, required=False) == []
    with pytest.raises(SettingError, match='list work_mem in reset'):
        parse_settings({'work_mem': None})


def test_plan_resets_only_what_auto_conf_sets():
    shared = dict(SHARED_BUFFERS, boot_val='16384')
    rows = {'shared_buffers': shared, 'work_mem': dict(WORK_MEM, boot_val='4096'), 'jit': JIT}
    # shared_buffers = 256MB in auto.conf, never restarted: the running 16384 pages is what it falls back to
    changes, errors = plan_resets(['shared_buffers', 'work_mem', 'jit'], rows,
                                  {'shared_buffers': '256MB', 'work_mem': '8MB'}, {})
    assert errors == []
    assert [(c['name'], c['before'], c['after'], c['action'], c['restart']) for c in changes] == [
        ('shared_buffers', '256MB', None, 'reset', False), ('work_mem', '8MB', None, 'reset', False)]
    assert changes[0]['falls_back_to'] == '16384 (x 8kB)'
    # the server runs with 256MB (restarted since): falling back to postgresql.conf's 128MB needs a restart
    running = {'shared_buffers': dict(shared, setting='32768')}
    changes, errors = plan_resets(['shared_buffers'], running, {'shared_buffers': '256MB'},
                                  {'shared_buffers': '128MB'})
    assert errors == [] and changes[0]['restart'] is True and changes[0]['falls_back_to'] == '128MB'
    # postgresql.conf says 256MB too: no restart
    changes, errors = plan_resets(['shared_buffers'], running, {'shared_buffers': '256MB'},
                                  {'shared_buffers': '256MB'})
    assert changes[0]['restart'] is False
    # nothing in auto.conf: no change; unknown names are errors naming the fix
    assert plan_resets(['work_mem'], rows, {}, {}) == ([], [])
    changes, errors = plan_resets(['wrok_mem'], rows, {}, {})
    assert changes == [] and errors == ['reset: wrok_mem is not a parameter of this server (a typo, or a '
                                        'parameter of a newer PostgreSQL); remove it from reset']


def test_connect_kwargs():
    params = dict((k, v.get('default')) for k, v in postgres_argument_spec().items())
    params.update(login_unix_socket='/run/postgresql', passfile='/root/.pgpass')
    assert connect_kwargs(params) == {'port': 5432, 'user': 'postgres', 'dbname': 'postgres',
                                      'connect_timeout': 10, 'host': '/run/postgresql',
                                      'passfile': '/root/.pgpass'}


def test_reset_settled():
    reset = {'name': 'work_mem', 'restart': False}
    assert reset_settled(reset, dict(WORK_MEM, setting='4096'), '4MB') is True
    assert reset_settled(reset, dict(WORK_MEM, setting='12288'), '4MB') is False  # not reloaded yet
    restart = {'name': 'shared_buffers', 'restart': True}
    assert reset_settled(restart, dict(SHARED_BUFFERS, pending_restart=True), '128MB') is True
    assert reset_settled(restart, dict(SHARED_BUFFERS, pending_restart=False), '128MB') is False
    assert reset_settled(dict(restart, restart=False), dict(SHARED_BUFFERS, pending_restart=True), '128MB') is False
