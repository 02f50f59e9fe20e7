"""playbooks/daily.yml end to end: every host checked, one report of all of them
(unreachable hosts and hosts with bad probe definitions included) written before
any host is failed, in Markdown, JSON and JUnit XML."""

import json
import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(ROOT, 'playbooks', 'daily.yml')
SECRET = 'never-show-this-s3cret'


def closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def write_inventory(directory, port):
    local = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}
    inventory = {'all': {
        'vars': {'runbook_ops_system': 'test system',
                 'daily_checks_common_probes': [{'name': 'memory', 'kind': 'memory',
                                                 'warning': 99.9, 'critical': 99.99}]},
        'hosts': {
            'good': dict(local),
            'warn': dict(local, daily_checks_probes=[
                {'name': 'root disk', 'kind': 'disk', 'paths': ['/'], 'warning': 0.001}]),
            'down': dict(local, daily_checks_probes=[
                {'name': 'cache', 'kind': 'redis', 'host': '127.0.0.1', 'port': port,
                 'password': SECRET, 'timeout': 1}]),
            'bad': dict(local, daily_checks_probes=[{'name': 'typo', 'kind': 'htpp'}]),
            'gone': {'ansible_host': '127.0.0.1', 'ansible_port': port,
                     'ansible_connection': 'ssh', 'ansible_ssh_common_args':
                     '-o StrictHostKeyChecking=no -o ConnectTimeout=3'},
        }}}
    path = os.path.join(str(directory), 'hosts.json')
    with open(path, 'w') as stream:
        json.dump(inventory, stream)
    return path


def run_daily(inventory, report_dir, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
               ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0')
    command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-v',
               '-i', inventory, PLAYBOOK, '-e', 'daily_checks_report_dir=%s' % report_dir]
    command += list(extra)
    return subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, check=False)


def recap(output):
    """host -> {ok, failed, unreachable, ...} from the PLAY RECAP."""
    hosts = {}
    lines = output.split('PLAY RECAP')[-1].splitlines()[1:]
    for line in lines:
        if ':' not in line:
            continue
        host, _colon, counts = line.partition(':')
        hosts[host.strip()] = dict((k, int(v)) for k, v in
                                   (item.split('=') for item in counts.split()))
    return hosts


@pytest.fixture(scope='module')
def daily_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp('daily')
    inventory = write_inventory(directory, closed_port())
    report_dir = directory / 'reports'
    run = run_daily(inventory, report_dir)
    return run, report_dir, inventory


def test_every_host_is_reported_before_the_verdict(daily_run):
    run, report_dir, _inventory = daily_run
    assert run.returncode == 2, run.stdout
    report = json.loads((report_dir / 'latest' / 'report.json').read_text())
    statuses = dict((h['host'], h['status']) for h in report['hosts'])
    assert statuses == {'good': 'ok', 'warn': 'warning', 'down': 'critical', 'bad': 'error',
                        'gone': 'unreachable'}
    assert report['system'] == 'test system'
    assert report['status'] in ('critical', 'unreachable', 'error')
    assert report['hosts_by_status'] == {'ok': 1, 'warning': 1, 'unknown': 0, 'critical': 1,
                                         'unreachable': 1, 'error': 1}
    # hosts are failed only after the report: critical, unreachable and bad ones
    hosts = recap(run.stdout)
    assert hosts['good']['failed'] == 0 and hosts['warn']['failed'] == 0
    for host in ('down', 'bad', 'gone'):
        assert hosts[host]['failed'] == 1, run.stdout
    assert 'Traceback' not in run.stdout


def test_report_holds_every_check_with_value_and_thresholds(daily_run):
    _run, report_dir, _inventory = daily_run
    report = json.loads((report_dir / 'latest' / 'report.json').read_text())
    warn = next(h for h in report['hosts'] if h['host'] == 'warn')
    disk = next(c for c in warn['checks'] if c['name'] == 'root disk[/]')
    assert disk['status'] == 'warning'
    assert disk['unit'] == '%' and disk['warning'] == 0.001 and disk['critical'] == 90
    assert disk['value'] > 0.001
    assert 'disk usage of /' in disk['message']
    down = next(h for h in report['hosts'] if h['host'] == 'down')
    cache = next(c for c in down['checks'] if c['name'] == 'cache')
    assert cache['status'] == 'critical' and 'does not answer' in cache['message']
    bad = next(h for h in report['hosts'] if h['host'] == 'bad')
    assert "probe 'typo' (htpp): unknown kind 'htpp'" in bad['message']
    gone = next(h for h in report['hosts'] if h['host'] == 'gone')
    assert gone['reachable'] is False and gone['checks'] == []


def test_markdown_and_junit_reports(daily_run):
    _run, report_dir, _inventory = daily_run
    markdown = (report_dir / 'latest' / 'report.md').read_text()
    assert markdown.startswith('# Daily health check: test system')
    assert '**UNREACHABLE** gone' in markdown
    assert '| warn | WARNING |' in markdown
    tree = ET.parse(str(report_dir / 'latest' / 'junit.xml')).getroot()
    suites = dict((s.get('name'), s) for s in tree.findall('testsuite'))
    assert set(suites) == {'good', 'warn', 'down', 'bad', 'gone'}
    assert suites['good'].get('failures') == '0' and suites['good'].get('errors') == '0'
    assert suites['down'].get('failures') == '1'
    assert suites['gone'].get('errors') == '1'
    assert suites['gone'].find('testcase/error').get('type') == 'unreachable'
    warn_case = suites['warn'].find("testcase[@name='root disk[/]']")
    assert warn_case.find('failure') is None
    assert warn_case.find('system-out').text.startswith('WARNING:')


def test_secrets_stay_out_of_output_and_reports(daily_run):
    run, report_dir, _inventory = daily_run
    assert SECRET not in run.stdout
    for name in ('report.md', 'report.json', 'junit.xml'):
        assert SECRET not in (report_dir / 'latest' / name).read_text()


def test_fail_on_warning_and_check_mode(daily_run, tmp_path):
    _run, _report_dir, inventory = daily_run
    run = run_daily(inventory, tmp_path, '--check', '--limit', 'good,warn',
                    '-e', 'daily_checks_fail_on=warning')
    assert run.returncode == 2, run.stdout
    hosts = recap(run.stdout)
    assert hosts['warn']['failed'] == 1 and hosts['good']['failed'] == 0
    assert all(h['changed'] == 0 for h in hosts.values())
    report = json.loads((tmp_path / 'latest' / 'report.json').read_text())
    assert [h['host'] for h in report['hosts']] == ['good', 'warn']
    assert report['meta']['check_mode'] is True


def test_all_hosts_ok_passes_and_reports_twice(tmp_path):
    inventory = write_inventory(tmp_path, closed_port())
    first = run_daily(inventory, tmp_path / 'r', '--limit', 'good')
    second = run_daily(inventory, tmp_path / 'r', '--limit', 'good')
    assert first.returncode == 0 and second.returncode == 0, first.stdout + second.stdout
    runs = sorted(p.name for p in (tmp_path / 'r').iterdir() if p.name != 'latest')
    assert len(runs) == 2
    assert os.readlink(str(tmp_path / 'r' / 'latest')) == runs[-1]
    assert recap(second.stdout)['good']['changed'] == 0
