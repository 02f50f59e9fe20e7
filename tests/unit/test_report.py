"""Report building and rendering (module_utils/report.py)."""

import json
import os
import xml.etree.ElementTree as ET

from ansible_collections.runbook.ops.plugins.module_utils.checks import check_result
from ansible_collections.runbook.ops.plugins.module_utils import report as report_module
from ansible_collections.runbook.ops.plugins.module_utils.report import (
    build_report, host_entry, render_json, render_junit, render_markdown,
)


def probe_result(*checks):
    return {'changed': False, 'checks': list(checks), 'duration_ms': 12.5,
            'invocation': {'module_args': {'probes': [{'password': 'VALUE_SPECIFIED_IN_NO_LOG'}]}}}


OK_DISK = check_result('disk[/]', 'disk', 'ok', 'disk usage of / is 40 %', value=40.0, unit='%',
                       warning=80, critical=90, duration_ms=0.2)
WARN_MEM = check_result('memory', 'memory', 'warning', 'memory usage is 88 % (warning > 85 %)',
                        value=88.0, unit='%', warning=85, critical=95, duration_ms=0.1)
CRIT_API = check_result('api', 'http', 'critical', 'http://x/health: returned 503 | bad',
                        value=12.0, unit='ms', duration_ms=1500)
UNKNOWN_DB = check_result('db', 'postgres', 'unknown', 'psycopg2 is not installed', unit='ms')

RESULTS = {
    'web': probe_result(OK_DISK, WARN_MEM),
    'api': probe_result(OK_DISK, CRIT_API, UNKNOWN_DB),
    'gone': {'unreachable': True, 'msg': 'ssh: connect to host gone port 22: No route to host',
             'changed': False},
    'typo': {'failed': False, 'msg': "probe 'x' (htpp): unknown kind 'htpp'"},
}
HOSTS = ['web', 'api', 'gone', 'typo', 'never']


def report():
    return build_report(RESULTS, HOSTS, system='shop', generated='2026-11-21T09:00:00Z')


def test_host_entries_cover_every_kind_of_outcome():
    entries = dict((e['host'], e) for e in report()['hosts'])
    assert [e['host'] for e in report()['hosts']] == HOSTS
    assert entries['web']['status'] == 'warning'
    assert entries['web']['message'] == '2 checks, 1 not ok'
    assert entries['api']['status'] == 'critical'
    assert entries['gone']['status'] == 'unreachable'
    assert entries['gone']['reachable'] is False
    assert 'No route to host' in entries['gone']['message']
    assert entries['typo']['status'] == 'error'
    assert "unknown kind 'htpp'" in entries['typo']['message']
    assert entries['never']['status'] == 'unknown'
    assert host_entry('x', {'checks': []})['status'] == 'ok'
    assert host_entry('x', {'checks': []})['message'] == 'no checks: no probes are defined for this host'
    assert host_entry('x', {'checks': [{'name': 'a', 'status': 'ok'}]})['message'] == '1 check, all ok'


def test_counts_and_roll_up():
    built = report()
    assert built['hosts_by_status'] == {'ok': 0, 'warning': 1, 'unknown': 1, 'critical': 1,
                                        'unreachable': 1, 'error': 1}
    assert built['checks_by_status'] == {'ok': 2, 'warning': 1, 'unknown': 1, 'critical': 1}
    # critical, unreachable and error weigh the same; the first one met wins
    assert built['status'] == 'critical'
    only_web = build_report(RESULTS, ['web'])
    assert only_web['status'] == 'warning'
    assert build_report(RESULTS, ['gone', 'web'])['status'] == 'unreachable'


def test_json_is_complete_and_drops_invocations():
    text = render_json(report())
    document = json.loads(text)
    assert 'invocation' not in text and 'VALUE_SPECIFIED' not in text
    api = next(h for h in document['hosts'] if h['host'] == 'api')
    assert [c['name'] for c in api['checks']] == ['disk[/]', 'api', 'db']
    for key in ('name', 'kind', 'status', 'value', 'unit', 'warning', 'critical', 'message',
                'duration_ms'):
        assert key in api['checks'][0]


def test_markdown_lists_problems_first_and_escapes_pipes():
    text = render_markdown(report())
    assert text.startswith('# Daily health check: shop\n')
    attention = text.split('## Needs attention')[1].split('## Hosts')[0]
    lines = [line for line in attention.splitlines() if line.startswith('- ')]
    # host-level problems, then checks from the most severe down
    assert lines[0].startswith('- **UNREACHABLE** gone')
    assert lines[1].startswith('- **ERROR** typo')
    assert lines[2].startswith('- **UNKNOWN** never')
    assert lines[3].startswith('- **CRITICAL** api / api')
    assert lines[4].startswith('- **UNKNOWN** api / db')
    assert lines[5].startswith('- **WARNING** web / memory')
    assert '| memory | memory | WARNING | 88 % | 85 | 95 |' in text
    assert 'returned 503 \\| bad' in text


def test_junit_failures_errors_and_warnings():
    root = ET.fromstring(render_junit(report()).split('\n', 1)[1])
    assert root.get('tests') == '8'    # 2 + 3 checks, and one case per host without checks
    assert root.get('failures') == '1'
    assert root.get('errors') == '4'   # unknown check, unreachable, error, never run
    suites = dict((s.get('name'), s) for s in root.findall('testsuite'))
    api = suites['api']
    assert api.find("testcase[@name='api']/failure").get('type') == 'critical'
    assert api.find("testcase[@name='db']/error").get('type') == 'unknown'
    assert api.get('time') == '1.500'
    memory = suites['web'].find("testcase[@name='memory']")
    assert memory.find('failure') is None and memory.find('error') is None
    assert memory.find('system-out').text == 'WARNING: memory usage is 88 % (warning > 85 %)'
    assert suites['gone'].find('testcase/error').get('type') == 'unreachable'
    assert suites['typo'].find('testcase/error').get('type') == 'error'


def test_hosts_that_do_not_answer_again_are_unreachable():
    results = {'ok': {'checks': []}, 'lost': {'failed': True, 'msg': 'MODULE FAILURE\nSee stdout'},
               'crashed': {'failed': True, 'msg': 'MODULE FAILURE'}}
    pings = {'ok': {'skipped': True, 'changed': False},
             'lost': {'unreachable': True, 'msg': 'Failed to create temporary directory. In some cases'},
             'crashed': {'ping': 'pong'}}
    merged = report_module.with_lost_hosts(results, pings)
    assert merged['lost'] == {'unreachable': True, 'msg': 'lost during the probes (MODULE FAILURE\nSee stdout); '
                                                          'now: Failed to create temporary directory'}
    assert merged['crashed'] == results['crashed'] and merged['ok'] == results['ok']
    assert host_entry('lost', merged['lost'])['status'] == 'unreachable'
    assert host_entry('crashed', merged['crashed'])['status'] == 'error'
    assert report_module.with_lost_hosts(results, {}) == results
    assert report_module.with_lost_hosts(results, {'elsewhere': {'unreachable': True}}) == results


def test_default_report_dir_keeps_reports_out_of_an_installed_collection(tmp_path):
    checkout = tmp_path / 'project' / 'playbooks'
    checkout.mkdir(parents=True)
    assert report_module.default_report_dir(str(checkout), 'daily', {}) == str(
        tmp_path / 'project' / 'reports' / 'daily')
    installed = tmp_path / 'collections' / 'ansible_collections' / 'runbook' / 'ops' / 'playbooks'
    installed.mkdir(parents=True)
    state = str(tmp_path / 'state')
    assert report_module.default_report_dir(str(installed), 'weekly', {'XDG_STATE_HOME': state}) == (
        os.path.join(state, 'runbook.ops', 'reports', 'weekly'))
    assert report_module.default_report_dir(str(installed), 'daily', {}) == os.path.join(
        os.path.expanduser('~'), '.local', 'state', 'runbook.ops', 'reports', 'daily')
    # a development link (ansible.cfg's .collections) to a checkout is the checkout
    link = tmp_path / 'dev' / 'ansible_collections' / 'runbook'
    link.mkdir(parents=True)
    (link / 'ops').symlink_to(tmp_path / 'project')
    assert report_module.default_report_dir(str(link / 'ops' / 'playbooks'), 'daily', {}) == str(
        tmp_path / 'project' / 'reports' / 'daily')
