# -*- coding: utf-8 -*-
"""health_probe as a whole through ansible-playbook: bad input, check mode,
fail_on_critical and on_unreachable."""

import json

import pytest

BAD_INPUT = [
    # (id, probes, what the message must say)
    ('unknown-kind',
     [{'name': 'api', 'kind': 'htpp', 'url': 'http://127.0.0.1/'}],
     ["probe 'api'", "unknown kind 'htpp'", 'http, ']),
    ('missing-kind',
     [{'name': 'api', 'url': 'http://127.0.0.1/'}],
     ["probe 'api'", 'kind is required']),
    ('missing-url',
     [{'name': 'api', 'kind': 'http'}],
     ["probe 'api' (http)", 'url is required for kind http']),
    ('negative-threshold',
     [{'name': 'root', 'kind': 'disk', 'warning': -1}],
     ["probe 'root' (disk)", 'warning threshold -1 is negative']),
    ('port-70000',
     [{'name': 'db', 'kind': 'tcp', 'host': '127.0.0.1', 'port': 70000}],
     ["probe 'db' (tcp)", 'port 70000 is out of range; give 1-65535']),
    ('warning-above-critical',
     [{'name': 'mem', 'kind': 'memory', 'warning': 95, 'critical': 85}],
     ["probe 'mem' (memory)", 'warning threshold 95 is above critical 85']),
    ('warning-below-critical',
     [{'name': 'cert', 'kind': 'tls_cert', 'host': 'example.com', 'warning': 7,
       'critical': 30}],
     ["probe 'cert' (tls_cert)", 'warning threshold 7 is below critical 30']),
    ('secondary-metric-order',
     [{'name': 'pg', 'kind': 'postgres',
       'thresholds': {'connections': {'warning': 95, 'critical': 90}}}],
     ["probe 'pg' (postgres)", 'connections', 'warning threshold 95 is above critical 90']),
    ('bad-duration',
     [{'name': 'backup', 'kind': 'file_freshness', 'path': '/x/*', 'warning': '25 hours'}],
     ["probe 'backup' (file_freshness)", "'25 hours' is not a duration"]),
    ('bad-assertion',
     [{'name': 'api', 'kind': 'http', 'url': 'http://x/', 'assertions': ['status = "ok"']}],
     ["probe 'api' (http)", 'assertion']),
    ('stray-option',
     [{'name': 'db', 'kind': 'tcp', 'host': 'x', 'port': 1, 'url': 'http://x/'}],
     ["probe 'db' (tcp)", 'option url does not apply to kind tcp']),
    ('duplicate-name',
     [{'name': 'same', 'kind': 'memory'}, {'name': 'same', 'kind': 'cpu'}],
     ["probe name 'same' is used twice"]),
    ('process-needs-one-way',
     [{'kind': 'memory'}, {'kind': 'process'}],
     ['probe #2 (process)', 'exactly one of process_name, cmdline_pattern or pidfile']),
]


@pytest.fixture(scope='module')
def bad_input_run(run_tasks, work_dir):
    marker = work_dir / 'ran-before-validation'
    tasks = [{'probes': probes} for _id, probes, _expected in BAD_INPUT]
    # a valid probe ahead of a bad one: nothing may run before all are validated
    tasks.append({'probes': [{'name': 'touch', 'kind': 'command',
                              'command': ['touch', str(marker)]},
                             {'name': 'bad', 'kind': 'memory', 'warning': 'lots'}]})
    tasks.append({'probes': [{'kind': 'memory'}], 'concurrency': 0})
    return run_tasks(tasks), marker


@pytest.mark.parametrize('index', range(len(BAD_INPUT)),
                         ids=[case[0] for case in BAD_INPUT])
def test_bad_input_fails_with_a_clear_message(bad_input_run, index):
    run, _marker = bad_input_run
    result = run.results[index]
    assert result['failed'] is True, result
    assert 'checks' not in result
    for expected in BAD_INPUT[index][2]:
        assert expected in result['msg'], result['msg']
    assert 'Traceback' not in json.dumps(result)


def test_bad_input_runs_no_probe(bad_input_run):
    run, marker = bad_input_run
    result = run.results[len(BAD_INPUT)]
    assert result['failed'] is True
    assert "probe 'bad' (memory)" in result['msg'] and "'lots' is not a number" in result['msg']
    assert not marker.exists(), 'a probe ran although another was invalid'


def test_bad_concurrency(bad_input_run):
    run, _marker = bad_input_run
    result = run.results[len(BAD_INPUT) + 1]
    assert result['failed'] is True
    assert 'concurrency 0 must be at least 1' in result['msg']


def test_bad_input_output_has_no_traceback(bad_input_run):
    run, _marker = bad_input_run
    assert run.rc == 0, run  # every task ignores its errors
    output = run.stdout + run.stderr
    assert 'Traceback' not in output
    assert output.count('...ignoring') == len(BAD_INPUT) + 2


# ---- check mode -------------------------------------------------------------------------

def _check_mode_probes(http_service, closed_port, file_tree):
    return [
        {'name': 'api', 'kind': 'http', 'url': http_service.url + '/health',
         'assertions': ['status == "healthy"']},
        {'name': 'api-down', 'kind': 'tcp', 'host': '127.0.0.1', 'port': closed_port,
         'on_unreachable': 'warning'},
        {'name': 'backup', 'kind': 'file_freshness', 'path': str(file_tree / 'stale' / '*'),
         'warning': '25h', 'critical': '49h'},
        {'name': 'memory', 'kind': 'memory', 'warning': 100, 'critical': 100},
        {'name': 'echo', 'kind': 'command', 'command': ['echo', 'fine'], 'pattern': 'fine'},
    ]


def test_check_mode_returns_the_same_checks(run_probes, http_service, closed_port, file_tree):
    probes = _check_mode_probes(http_service, closed_port, file_tree)
    normal = run_probes(probes)
    checked = run_probes(probes, check=True)

    def shape(run):
        return [(c['name'], c['kind'], c['status'], c['unit'], c['warning'], c['critical'])
                for c in run.result['checks']]
    assert checked.rc == 0, checked
    assert shape(checked) == shape(normal)
    assert [c['status'] for c in checked.result['checks']] == \
        ['ok', 'warning', 'warning', 'ok', 'ok']
    for run in (normal, checked):
        assert run.result['changed'] is False
        assert run.result['status'] == 'warning'
        assert run.result['counts'] == {'ok': 3, 'warning': 2, 'unknown': 0, 'critical': 0}
    assert checked.check('echo')['value'] == 0  # probes really run in check mode


# ---- fail_on_critical and on_unreachable --------------------------------------------

@pytest.fixture(scope='module')
def verdict_run(run_tasks, http_service, closed_port):
    ok = {'name': 'api', 'kind': 'http', 'url': http_service.url + '/health'}

    def down(status=None, name='cache'):
        probe = {'name': name, 'kind': 'tcp', 'host': '127.0.0.1', 'port': closed_port}
        if status:
            probe['on_unreachable'] = status
        return probe
    return run_tasks([
        {'probes': [ok, down()]},                                    # 0 default: fails
        {'probes': [ok, down()], 'fail_on_critical': False},         # 1
        {'probes': [ok, down('warning')]},                           # 2
        {'probes': [ok, down('unknown')]},                           # 3
        {'probes': [ok, down('unknown'), down('critical', 'db'), down('warning', 'mq')]},  # 4
        {'probes': [ok]},                                            # 5
    ])


def test_fail_on_critical_fails_the_task_and_keeps_all_checks(verdict_run, closed_port):
    result = verdict_run.results[0]
    assert result['failed'] is True
    assert result['changed'] is False
    assert result['status'] == 'critical'
    assert [(c['name'], c['status']) for c in result['checks']] == \
        [('api', 'ok'), ('cache', 'critical')]
    assert result['counts'] == {'ok': 1, 'warning': 0, 'unknown': 0, 'critical': 1}
    assert result['msg'].startswith('1 critical check: cache: ')
    assert '127.0.0.1:%d' % closed_port in result['msg']
    assert 'fatal: [localhost]: FAILED!' in verdict_run.stdout


def test_fail_on_critical_false_reports_without_failing(verdict_run):
    result = verdict_run.results[1]
    assert result['failed'] is False
    assert result['status'] == 'critical'
    assert [c['status'] for c in result['checks']] == ['ok', 'critical']


def test_on_unreachable_warning_and_unknown_do_not_fail(verdict_run):
    warning, unknown = verdict_run.results[2], verdict_run.results[3]
    assert warning['failed'] is False and warning['status'] == 'warning'
    assert warning['checks'][1]['status'] == 'warning'
    assert warning['checks'][1]['details'] == {'unreachable': True}
    assert unknown['failed'] is False and unknown['status'] == 'unknown'
    assert unknown['counts'] == {'ok': 1, 'warning': 0, 'unknown': 1, 'critical': 0}


def test_roll_up_order(verdict_run):
    mixed = verdict_run.results[4]
    assert mixed['status'] == 'critical'
    assert mixed['counts'] == {'ok': 1, 'warning': 1, 'unknown': 1, 'critical': 1}
    assert mixed['msg'].startswith('1 critical check: db: ')
    healthy = verdict_run.results[5]
    assert healthy['failed'] is False
    assert healthy['status'] == 'ok'
    assert healthy['counts'] == {'ok': 1, 'warning': 0, 'unknown': 0, 'critical': 0}
    assert healthy['duration_ms'] >= healthy['checks'][0]['duration_ms'] >= 0
