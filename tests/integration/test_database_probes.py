# -*- coding: utf-8 -*-
"""postgres and redis probes through ansible-playbook against a real PostgreSQL and a
real Redis started by conftest.py (tools/embedded.py) on loopback."""

import json
import os

import pytest

WRONG_PASSWORD = 'Not-The-Pg-Password-42'


# ---- postgres -------------------------------------------------------------------------

@pytest.fixture(scope='module')
def passfiles(work_dir, postgres):
    password = postgres['password']
    good = work_dir / 'pgpass'
    good.write_text('127.0.0.1:%d:*:postgres:%s\n' % (postgres['port'], password))
    bad = work_dir / 'pgpass-wrong'
    bad.write_text('127.0.0.1:%d:*:postgres:%s\n' % (postgres['port'], WRONG_PASSWORD))
    for path in (good, bad):
        os.chmod(path, 0o600)  # libpq ignores a password file others can read
    return {'good': good, 'bad': bad}


@pytest.fixture(scope='module')
def postgres_run(run_probes, postgres, passfiles, closed_port):
    tcp = {'kind': 'postgres', 'host': '127.0.0.1', 'port': postgres['port'],
           'user': 'postgres'}
    password = postgres['password']
    probes = [
        dict(tcp, name='pg', password=password),
        dict(tcp, name='pg-latency', password=password, warning=0, critical=10000),
        dict(tcp, name='pg-conn-warning', password=password,
             thresholds={'connections': {'warning': 0.5, 'critical': 99}}),
        dict(tcp, name='pg-conn-critical', password=password,
             thresholds={'connections': {'warning': 0.1, 'critical': 0.5}}),
        dict(tcp, name='pg-wrong-password', password=WRONG_PASSWORD),
        dict(tcp, name='pg-passfile', passfile=str(passfiles['good'])),
        dict(tcp, name='pg-passfile-wrong', passfile=str(passfiles['bad'])),
        {'name': 'pg-socket', 'kind': 'postgres', 'host': postgres['socket_dir'],
         'port': postgres['port'], 'user': 'postgres', 'database': 'template1'},
        dict(tcp, name='pg-closed', port=closed_port, password=password),
        dict(tcp, name='pg-closed-unknown', port=closed_port, password=password,
             on_unreachable='unknown'),
    ]
    # -v prints the module's arguments and result: the password must not be among them
    return run_probes(probes, fail_on_critical=False, verbosity=1,
                      env={'PGPASSWORD': '', 'PGPASSFILE': '/nonexistent'})


def test_postgres_ok(postgres_run, postgres):
    where = '127.0.0.1:%d/postgres' % postgres['port']
    check = postgres_run.check('pg')
    assert check['status'] == 'ok', check
    assert check['kind'] == 'postgres'
    assert check['unit'] == 'ms' and check['value'] > 0
    assert 'PostgreSQL' in check['message'] and where in check['message']
    assert 'SELECT 1' in check['message']
    assert check['details']['role'] == 'primary'
    connections = postgres_run.check('pg.connections')
    assert connections['status'] == 'ok'
    assert connections['unit'] == '%'
    assert (connections['warning'], connections['critical']) == (80, 90)
    in_use = connections['details']['in_use']
    maximum = connections['details']['max_connections']
    assert in_use >= 1 and maximum >= 10
    assert connections['value'] == round(100.0 * in_use / maximum, 2)
    assert 'connections in use at %s' % where in connections['message']
    assert 'warning > 80 %, critical > 90 %' in connections['message']
    assert 'pg.replication_lag' not in postgres_run.checks  # not a replica


def test_postgres_latency_threshold(postgres_run):
    check = postgres_run.check('pg-latency')
    assert check['status'] == 'warning'
    assert 'warning > 0 ms' in check['message']


def test_postgres_connections_over_thresholds(postgres_run):
    warning = postgres_run.check('pg-conn-warning.connections')
    assert warning['status'] == 'warning'
    assert warning['value'] >= 100.0 / warning['details']['max_connections']
    assert (warning['warning'], warning['critical']) == (0.5, 99)
    assert 'warning > 0.50 %, critical > 99 %' in warning['message']
    critical = postgres_run.check('pg-conn-critical.connections')
    assert critical['status'] == 'critical'
    assert 'critical > 0.50 %' in critical['message']
    # the latency check of the same probe is unaffected
    assert postgres_run.check('pg-conn-critical')['status'] == 'ok'


def test_postgres_wrong_password_is_critical(postgres_run, postgres):
    check = postgres_run.check('pg-wrong-password')
    assert check['status'] == 'critical'
    assert 'refused the login' in check['message']
    assert 'password authentication failed' in check['message']
    assert '127.0.0.1:%d' % postgres['port'] in check['message']
    assert 'pg-wrong-password.connections' not in postgres_run.checks


def test_postgres_passfile(postgres_run):
    assert postgres_run.check('pg-passfile')['status'] == 'ok'
    assert postgres_run.check('pg-passfile.connections')['status'] == 'ok'
    wrong = postgres_run.check('pg-passfile-wrong')
    assert wrong['status'] == 'critical'
    assert 'password authentication failed' in wrong['message']


def test_postgres_unix_socket(postgres_run, postgres):
    check = postgres_run.check('pg-socket')
    assert check['status'] == 'ok', check
    assert '%s:%d/template1' % (postgres['socket_dir'], postgres['port']) in check['message']


def test_postgres_closed_port_follows_on_unreachable(postgres_run, closed_port):
    check = postgres_run.check('pg-closed')
    assert check['status'] == 'critical'
    assert check['details'] == {'unreachable': True}
    assert '127.0.0.1:%d/postgres does not answer' % closed_port in check['message']
    unknown = postgres_run.check('pg-closed-unknown')
    assert unknown['status'] == 'unknown'
    assert unknown['details'] == {'unreachable': True}


def test_postgres_password_never_shown(postgres_run, run_probes, postgres):
    assert postgres_run.rc == 0, postgres_run
    output = postgres_run.stdout + postgres_run.stderr
    assert 'pg-wrong-password' in output and 'checks' in output  # -v printed the result
    for secret in (postgres['password'], WRONG_PASSWORD):
        assert secret not in output
        assert secret not in json.dumps(postgres_run.result)
    assert 'Traceback' not in output


def test_postgres_password_not_shown_when_the_task_fails(run_probes, postgres):
    """fail_on_critical makes the task fail; its message quotes the checks, and a
    very verbose run still does not show the password."""
    run = run_probes([{'name': 'pg-bad', 'kind': 'postgres', 'host': '127.0.0.1',
                       'port': postgres['port'], 'user': 'postgres',
                       'password': WRONG_PASSWORD}], verbosity=3)
    assert run.result['failed'] is True
    assert run.result['status'] == 'critical'
    output = run.stdout + run.stderr
    assert 'pg-bad' in output and 'password authentication failed' in output
    assert WRONG_PASSWORD not in output
    assert WRONG_PASSWORD not in json.dumps(run.result)


# ---- redis ------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def redis_run(run_probes, redis_server, closed_port):
    server = {'kind': 'redis', 'host': '127.0.0.1', 'port': redis_server['port']}
    probes = [
        dict(server, name='cache'),
        dict(server, name='cache-latency', warning=0, critical=0),
        dict(server, name='cache-master', expected_role='master'),
        dict(server, name='cache-replica', expected_role='replica'),
        {'name': 'cache-closed', 'kind': 'redis', 'host': '127.0.0.1', 'port': closed_port},
        {'name': 'cache-closed-warning', 'kind': 'redis', 'host': '127.0.0.1',
         'port': closed_port, 'on_unreachable': 'warning'},
    ]
    return run_probes(probes, fail_on_critical=False)


def test_redis_ok_without_maxmemory(redis_run, redis_server):
    where = '127.0.0.1:%d' % redis_server['port']
    check = redis_run.check('cache')
    assert check['status'] == 'ok'
    assert check['unit'] == 'ms' and check['value'] > 0
    assert 'Redis (master) at %s answered PING' % where in check['message']
    memory = redis_run.check('cache.memory')
    assert memory['status'] == 'ok'
    assert memory['value'] is None and memory['unit'] == '%'
    assert 'has no maxmemory limit' in memory['message']
    assert memory['details']['maxmemory'] == 0


def test_redis_latency_threshold(redis_run):
    check = redis_run.check('cache-latency')
    assert check['status'] == 'critical'
    assert 'critical > 0 ms' in check['message']


def test_redis_expected_role(redis_run):
    assert redis_run.check('cache-master')['status'] == 'ok'
    check = redis_run.check('cache-replica')
    assert check['status'] == 'critical'
    assert 'is master, expected' in check['message']


def test_redis_closed_port(redis_run, closed_port):
    check = redis_run.check('cache-closed')
    assert check['status'] == 'critical'
    assert check['details'] == {'unreachable': True}
    assert 'Redis at 127.0.0.1:%d does not answer' % closed_port in check['message']
    assert 'cache-closed.memory' not in redis_run.checks
    assert redis_run.check('cache-closed-warning')['status'] == 'warning'


def test_redis_memory_against_maxmemory(run_probes, redis_server, redis_client):
    """maxmemory set with CONFIG SET to four times what Redis uses (about 25 %),
    and restored afterwards."""
    before = redis_client.config_get('maxmemory')['maxmemory']
    used = redis_client.info('memory')['used_memory']
    limit = used * 4
    redis_client.config_set('maxmemory', limit)
    try:
        server = {'kind': 'redis', 'host': '127.0.0.1', 'port': redis_server['port']}
        run = run_probes([
            dict(server, name='mem-ok'),
            dict(server, name='mem-warning', thresholds={'memory': {'warning': 5, 'critical': 90}}),
            dict(server, name='mem-critical', thresholds={'memory': {'warning': 5, 'critical': 10}}),
        ], fail_on_critical=False)
    finally:
        redis_client.config_set('maxmemory', before)
    assert redis_client.config_get('maxmemory')['maxmemory'] == before
    ok = run.check('mem-ok.memory')
    assert ok['status'] == 'ok', ok
    assert ok['unit'] == '%'
    assert 10 < ok['value'] < 60
    assert ok['details']['maxmemory'] == limit
    assert ok['value'] == round(100.0 * ok['details']['used_memory'] / limit, 2)
    assert 'used_memory vs maxmemory' in ok['message']
    assert 'warning > 80 %, critical > 90 %' in ok['message']
    warning = run.check('mem-warning.memory')
    assert warning['status'] == 'warning'
    assert 'warning > 5 %, critical > 90 %' in warning['message']
    critical = run.check('mem-critical.memory')
    assert critical['status'] == 'critical'
    assert 'critical > 10 %' in critical['message']
    assert run.result['counts'] == {'ok': 4, 'warning': 1, 'unknown': 0, 'critical': 1}


REDIS_PASSWORD = 'Redis-Integration-pw-5c2a'


def test_redis_password(run_probes, redis_server, redis_client):
    """requirepass set with CONFIG SET for this test, and removed afterwards."""
    redis_client.config_set('requirepass', REDIS_PASSWORD)
    try:
        server = {'kind': 'redis', 'host': '127.0.0.1', 'port': redis_server['port']}
        run = run_probes([
            dict(server, name='auth-ok', password=REDIS_PASSWORD),
            dict(server, name='auth-wrong', password=WRONG_PASSWORD),
            dict(server, name='auth-missing'),
        ], fail_on_critical=False, verbosity=1)
    finally:
        import redis
        redis.Redis(host=redis_server['host'], port=redis_server['port'],
                    password=REDIS_PASSWORD).config_set('requirepass', '')
    assert redis_client.ping()
    assert run.check('auth-ok')['status'] == 'ok'
    assert run.check('auth-ok.memory')['status'] == 'ok'
    for name in ('auth-wrong', 'auth-missing'):
        check = run.check(name)
        assert check['status'] == 'critical', check
        assert 'Redis at 127.0.0.1:%d refused the login' % redis_server['port'] \
            in check['message']
        assert '%s.memory' % name not in run.checks
    output = run.stdout + run.stderr + json.dumps(run.result)
    assert REDIS_PASSWORD not in output and WRONG_PASSWORD not in output
