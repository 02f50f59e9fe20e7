# -*- coding: utf-8 -*-
"""The docker_container probe of runbook.ops.health_probe against a real Docker engine.

tests/bin/ensure-docker.sh makes an engine answer (installing Debian's docker.io and
starting dockerd when needed) and imports the local image runbook-ops/busybox:test
(no registry is reachable here).  The containers are started with the docker SDK in
the states the probe judges: healthy, health still starting, unhealthy, exited,
restarted, crash-looped and given up; the module runs through a real
ansible-playbook (the run_tasks fixture of conftest.py).  Every container carries
this session's label and is removed at the end, also when a test fails.
"""

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

docker = pytest.importorskip('docker', reason='the docker Python SDK is not installed')

REPO = Path(__file__).resolve().parents[2]
ENSURE_DOCKER = REPO / 'tests' / 'bin' / 'ensure-docker.sh'
IMAGE = 'runbook-ops/busybox:test'
SESSION = uuid.uuid4().hex[:8]
LABEL = 'runbook.ops.test.session'
NS = 1000 * 1000 * 1000  # the Docker API counts healthcheck times in nanoseconds
WAIT_SECONDS = 90

# Runs (as its whole life) three times: fails twice, then stays up.  Its file
# system survives the restarts because they restart the same container.
FAIL_TWICE = ('n=$(cat /tmp/runs 2>/dev/null || echo 0); echo $((n + 1)) > /tmp/runs; '
              'if [ "$n" -ge 2 ]; then exec sleep 3600; fi; exit 1')


@pytest.fixture(scope='module')
def engine():
    """A docker SDK client of a Docker engine that answers, with the test image."""
    process = subprocess.run(['bash', str(ENSURE_DOCKER)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if process.returncode == 3:
        pytest.skip('no Docker engine can run here: %s' % process.stdout.strip())
    if process.returncode != 0:
        pytest.fail('tests/bin/ensure-docker.sh failed (rc %d):\n%s'
                    % (process.returncode, process.stdout), pytrace=False)
    client = docker.from_env(timeout=60)
    yield client
    client.close()


def _remove_session_containers(client):
    session_label = '%s=%s' % (LABEL, SESSION)
    for container in client.containers.list(all=True, filters={'label': session_label}):
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass


def wait_for(container, predicate, what):
    """Poll the container's state until predicate(attrs) holds (bounded)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        container.reload()
        if predicate(container.attrs):
            return container.attrs
        if time.monotonic() > deadline:
            state = dict(container.attrs['State'])
            state.pop('Health', None)
            raise AssertionError('container %s never became %s: state %s, health %s, '
                                 'restarts %s' % (container.name, what, state,
                                                  (container.attrs['State'].get('Health') or
                                                   {}).get('Status'),
                                                  container.attrs.get('RestartCount')))
        time.sleep(0.2)


def _status(attrs):
    return attrs['State']['Status']


def _health(attrs):
    return (attrs['State'].get('Health') or {}).get('Status')


@pytest.fixture(scope='module')
def containers(engine, request):
    """name -> container, in the states the probe judges.  All are removed at the end."""
    request.addfinalizer(lambda: _remove_session_containers(engine))
    prefix = 'runbook-ops-test-%s-%s-' % (os.environ.get('PYTEST_XDIST_WORKER', 'main'),
                                          SESSION)

    def run(role, command, **kwargs):
        labels = {LABEL: SESSION}
        return engine.containers.run(IMAGE, command, name=prefix + role, detach=True,
                                     labels=labels, **kwargs)

    made = {
        'plain': run('plain', ['sleep', '3600']),
        'healthy': run('healthy', ['sleep', '3600'],
                       healthcheck={'test': ['CMD', 'true'], 'interval': NS // 2,
                                    'timeout': 5 * NS, 'retries': 1}),
        # the first check runs only after an hour: health stays "starting"
        'starting': run('starting', ['sleep', '3600'],
                        healthcheck={'test': ['CMD', 'true'], 'interval': 3600 * NS,
                                     'start_period': 3600 * NS, 'retries': 1}),
        'unhealthy': run('unhealthy', ['sleep', '3600'],
                         healthcheck={'test': ['CMD', 'false'], 'interval': NS // 2,
                                      'timeout': 5 * NS, 'retries': 1}),
        'exited': run('exited', ['true']),
        'restarted': run('restarted', ['sh', '-c', FAIL_TWICE],
                         restart_policy={'Name': 'on-failure'}),
        'gave-up': run('gave-up', ['sh', '-c', 'exit 1'],
                       restart_policy={'Name': 'on-failure', 'MaximumRetryCount': 2}),
    }
    wait_for(made['plain'], lambda a: _status(a) == 'running', 'running')
    wait_for(made['healthy'], lambda a: _health(a) == 'healthy', 'healthy')
    wait_for(made['starting'], lambda a: _health(a) == 'starting', 'starting')
    wait_for(made['unhealthy'], lambda a: _health(a) == 'unhealthy', 'unhealthy')
    wait_for(made['exited'], lambda a: _status(a) == 'exited', 'exited')
    wait_for(made['restarted'],
             lambda a: a['RestartCount'] >= 2 and _status(a) == 'running',
             'running after 2 restarts')
    wait_for(made['gave-up'],
             lambda a: a['RestartCount'] >= 2 and _status(a) == 'exited',
             'exited after 2 restarts')
    made['missing'] = prefix + 'missing'
    return made


def _name(item):
    return item if isinstance(item, str) else item.name


@pytest.fixture(scope='module')
def docker_run(containers, run_tasks):
    """One ansible-playbook run: task 0 probes every container without failing on
    critical; task 1 probes the missing one with the default fail_on_critical."""
    c = containers
    probes = [
        {'name': 'plain', 'kind': 'docker_container', 'container': _name(c['plain'])},
        {'name': 'healthy', 'kind': 'docker_container', 'container': _name(c['healthy'])},
        {'name': 'by-id', 'kind': 'docker_container', 'container': c['healthy'].short_id},
        {'name': 'starting', 'kind': 'docker_container', 'container': _name(c['starting'])},
        {'name': 'unhealthy', 'kind': 'docker_container', 'container': _name(c['unhealthy'])},
        {'name': 'exited', 'kind': 'docker_container', 'container': _name(c['exited'])},
        {'name': 'missing', 'kind': 'docker_container', 'container': c['missing']},
        {'name': 'restarts-warning', 'kind': 'docker_container',
         'container': _name(c['restarted']), 'thresholds': {'restarts': {'warning': 1}}},
        {'name': 'restarts-critical', 'kind': 'docker_container',
         'container': _name(c['restarted']), 'thresholds': {'restarts': {'critical': 1}}},
        {'name': 'restarts-at-threshold', 'kind': 'docker_container',
         'container': _name(c['restarted']), 'thresholds': {'restarts': {'warning': 2}}},
        {'name': 'restarts-no-threshold', 'kind': 'docker_container',
         'container': _name(c['restarted'])},
        {'name': 'gave-up', 'kind': 'docker_container', 'container': _name(c['gave-up']),
         'thresholds': {'restarts': {'warning': 5}}},
        {'name': 'no-engine', 'kind': 'docker_container', 'container': _name(c['plain']),
         'docker_host': 'unix:///nonexistent.sock', 'on_unreachable': 'warning'},
        {'name': 'no-engine-default', 'kind': 'docker_container',
         'container': _name(c['plain']), 'docker_host': 'unix:///nonexistent.sock'},
    ]
    return run_tasks([
        {'probes': probes, 'fail_on_critical': False},
        {'probes': [{'kind': 'docker_container', 'container': c['missing']}]},
    ])


def test_run_succeeds_and_changes_nothing(docker_run):
    result = docker_run.result
    assert not result.get('failed'), docker_run
    assert result['changed'] is False
    assert len(result['checks']) == 14
    assert all(check['kind'] == 'docker_container' for check in result['checks'])


def test_running_without_healthcheck_is_ok(docker_run, containers):
    check = docker_run.check('plain')
    name = containers['plain'].name
    assert check['status'] == 'ok', check
    assert check['value'] == 0
    assert check['unit'] == 'restarts'
    assert check['details'] == {'state': 'running', 'health': None}
    assert check['message'] == 'container %s is running; restart count is 0 restarts' % name


def test_healthy_container_is_ok(docker_run, containers):
    check = docker_run.check('healthy')
    name = containers['healthy'].name
    assert check['status'] == 'ok', check
    assert check['value'] == 0
    assert check['details'] == {'state': 'running', 'health': 'healthy'}
    assert check['message'] == ('container %s is running, healthy; restart count is 0 restarts'
                                % name)
    assert check['duration_ms'] >= 0


def test_container_found_by_id(docker_run):
    check = docker_run.check('by-id')
    assert check['status'] == 'ok', check
    assert check['details'] == {'state': 'running', 'health': 'healthy'}


def test_health_starting_is_a_warning(docker_run, containers):
    check = docker_run.check('starting')
    assert check['status'] == 'warning', check
    assert check['details'] == {'state': 'running', 'health': 'starting'}
    assert check['message'].startswith('container %s is running, starting;'
                                       % containers['starting'].name)


def test_unhealthy_container_is_critical(docker_run, containers):
    check = docker_run.check('unhealthy')
    assert check['status'] == 'critical', check
    assert check['details'] == {'state': 'running', 'health': 'unhealthy'}
    assert check['message'].startswith('container %s is running, unhealthy;'
                                       % containers['unhealthy'].name)


def test_exited_container_is_critical(docker_run, containers):
    check = docker_run.check('exited')
    assert check['status'] == 'critical', check
    assert check['details'] == {'state': 'exited', 'health': None}
    assert check['message'].startswith('container %s is exited;' % containers['exited'].name)


def test_missing_container_is_critical(docker_run, containers):
    check = docker_run.check('missing')
    assert check['status'] == 'critical', check
    assert check['value'] is None
    assert check['message'] == 'container %s does not exist' % containers['missing']


def test_restarts_over_the_warning_threshold(docker_run, containers):
    check = docker_run.check('restarts-warning')
    assert check['status'] == 'warning', check
    assert check['value'] == 2
    assert (check['warning'], check['critical']) == (1, None)
    assert check['details'] == {'state': 'running', 'health': None}
    assert check['message'] == ('container %s is running; restart count is 2 restarts '
                                '(warning > 1 restarts)' % containers['restarted'].name)


def test_restarts_over_the_critical_threshold(docker_run):
    check = docker_run.check('restarts-critical')
    assert check['status'] == 'critical', check
    assert check['value'] == 2


def test_restarts_at_the_threshold_are_no_breach(docker_run):
    check = docker_run.check('restarts-at-threshold')
    assert check['status'] == 'ok', check
    assert check['value'] == 2


def test_restarts_without_thresholds_are_ok(docker_run):
    check = docker_run.check('restarts-no-threshold')
    assert check['status'] == 'ok', check
    assert (check['value'], check['warning'], check['critical']) == (2, None, None)


def test_container_that_gave_up_restarting_is_critical(docker_run, containers):
    check = docker_run.check('gave-up')
    assert check['status'] == 'critical', check
    assert check['value'] == 2
    assert check['details'] == {'state': 'exited', 'health': None}
    assert check['message'].startswith('container %s is exited;' % containers['gave-up'].name)


def test_unreachable_engine_takes_on_unreachable(docker_run):
    check = docker_run.check('no-engine')
    assert check['status'] == 'warning', check
    assert check['details'] == {'unreachable': True}
    assert check['value'] is None
    assert check['message'].startswith('the Docker engine does not answer: ')
    assert 'nonexistent.sock' in check['message'] or 'No such file' in check['message']


def test_unreachable_engine_is_critical_by_default(docker_run):
    check = docker_run.check('no-engine-default')
    assert check['status'] == 'critical', check
    assert check['details'] == {'unreachable': True}


def test_roll_up(docker_run):
    result = docker_run.result
    assert result['status'] == 'critical'
    assert result['counts'] == {'ok': 5, 'warning': 3, 'unknown': 0, 'critical': 6}


def test_missing_container_fails_the_task_by_default(docker_run, containers):
    result = docker_run.results[1]
    name = containers['missing']
    assert result['failed'] is True
    assert result['status'] == 'critical'
    assert result['msg'] == ('1 critical check: container:%s: container %s does not exist'
                             % (name, name))
    assert [c['name'] for c in result['checks']] == ['container:%s' % name]
