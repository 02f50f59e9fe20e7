"""playbooks/weekly.yml and playbooks/monthly.yml, run as their AWX job templates run them
(ansible_runner.run with the surveys' variables): runbook 000's weekly and monthly reviews
over a real application log with known answers, rotated and compressed by the weekly
maintenance that runs first.

The log: app.log holds 50 requests of the last three days (10 ms each, one TimeoutError);
app.log.1, last written 12 days ago, holds 10 requests from 15 to 12 days ago (100 ms each,
all DbError). The weekly maintenance compresses app.log.1 (older than 7 days); the weekly
review (7 days) then sees only app.log, the monthly review (30 days) reads app.log.1.gz too.
"""

import datetime
import json
import os
import sys

import pytest

ansible_runner = pytest.importorskip('ansible_runner')

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
NOW = datetime.datetime.now(datetime.timezone.utc)


def json_line(when, ms, error, error_type=None):
    return json.dumps({'timestamp': when.strftime('%Y-%m-%dT%H:%M:%SZ'), 'level': 'ERROR' if error else 'INFO',
                       'execution_time_ms': ms, 'status': 'error' if error else 'success',
                       'error_type': error_type}) + '\n'


@pytest.fixture(scope='module')
def system(tmp_path_factory):
    base = tmp_path_factory.mktemp('reviews')
    logs = base / 'logs'
    logs.mkdir()
    recent = [json_line(NOW - datetime.timedelta(hours=70 - index), 10, index == 25,
                        'TimeoutError' if index == 25 else None) for index in range(50)]
    (logs / 'app.log').write_text(''.join(recent))
    old = [json_line(NOW - datetime.timedelta(days=15, hours=-7 * index), 100, True, 'DbError') for index in range(10)]
    rotated = logs / 'app.log.1'
    rotated.write_text(''.join(old))
    twelve_days_ago = (NOW - datetime.timedelta(days=12)).timestamp()
    os.utime(rotated, (twelve_days_ago, twelve_days_ago))
    app_log = str(logs / 'app.log')
    metrics = {
        'weekly': [
            {'name': 'latency', 'type': 'stats', 'field': 'execution_time_ms', 'unit': 'ms', 'since': '7d',
             'buckets': [25, 50], 'warning': 50, 'critical': 100},
            {'name': 'error_rate', 'type': 'rate', 'field': 'status', 'match': 'error', 'since': '7d',
             'warning': 2, 'critical': 5},
            {'name': 'error_types', 'type': 'values', 'field': 'error_type', 'where': {'level': 'ERROR'},
             'since': '7d'}],
    }
    metrics['monthly'] = [dict(metric, since='30d') for metric in metrics['weekly']]
    hosts = {'localhost': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}}
    inventory = {'all': {'hosts': hosts, 'vars': {
        'runbook_ops_system': 'review test',
        'log_maintenance_paths': [str(logs)],
        'log_maintenance_logrotate_config': [],
        'weekly_probes': [{'name': 'app', 'kind': 'log', 'paths': [app_log], 'metrics': metrics['weekly']}],
        'monthly_probes': [{'name': 'app', 'kind': 'log', 'paths': [app_log], 'metrics': metrics['monthly']},
                           {'name': 'capacity', 'kind': 'disk', 'paths': [str(base)],
                            'warning': 99.8, 'critical': 99.9}],
    }}}
    return base, logs, inventory


def run_template(base, inventory, playbook, ident, extravars):
    private = base / ident
    (private / 'inventory').mkdir(parents=True)
    (private / 'inventory' / 'hosts.json').write_text(json.dumps(inventory))
    run = ansible_runner.run(
        private_data_dir=str(private), project_dir=ROOT, playbook=playbook, extravars=extravars,
        envvars={'ANSIBLE_NOCOLOR': '1', 'PATH': os.pathsep.join([BIN, os.environ.get('PATH', '')])},
        ident=ident, quiet=True, timeout=None)
    events = list(run.events)
    stats = [event for event in events if event.get('event') == 'playbook_on_stats']
    assert len(stats) == 1
    return run, stats[0]['event_data'].get('artifact_data') or {}


def checks_of(report_dir):
    with open(os.path.join(report_dir, 'latest', 'report.json')) as stream:
        report = json.load(stream)
    (host,) = report['hosts']
    return report, {check['name']: check for check in host['checks']}


@pytest.fixture(scope='module')
def weekly(system):
    base, logs, inventory = system
    reports = base / 'weekly-reports'
    run, artifact = run_template(base, inventory, 'playbooks/weekly.yml', 'weekly', {
        'weekly_hosts': 'all', 'weekly_fail_on': 'critical', 'weekly_report_dir': str(reports)})
    return run, artifact, reports


def test_weekly_compresses_then_reviews_the_week(weekly, system):
    run, artifact, reports = weekly
    logs = system[1]
    assert run.status == 'successful', run.stdout.read()
    # the maintenance compressed the rotated log (mtime kept), the review read the week
    assert sorted(os.listdir(logs)) == ['app.log', 'app.log.1.gz']
    assert abs(os.stat(logs / 'app.log.1.gz').st_mtime - (NOW - datetime.timedelta(days=12)).timestamp()) < 2
    report, checks = checks_of(reports)
    assert report['title'].startswith('Weekly review')
    latency = checks['app.latency']
    assert latency['status'] == 'ok' and latency['value'] == 10
    assert latency['details']['stats']['count'] == 50
    assert [b['count'] for b in latency['details']['buckets']] == [50, 0, 0]
    assert 'count 50' in latency['message'] and '<25 50 (100.0 %)' in latency['message']
    assert checks['app.error_rate']['value'] == 2 and checks['app.error_rate']['status'] == 'ok'
    assert checks['app.error_types']['details']['top'] == [{'value': 'TimeoutError', 'count': 1}]
    assert 'top: TimeoutError 1' in checks['app.error_types']['message']
    assert artifact['weekly_review']['status'] == 'ok'
    assert artifact['weekly_review']['report']['json'].startswith(str(reports))
    assert 'daily_checks' not in artifact


def test_monthly_reads_the_compressed_month_and_fails_on_critical(weekly, system):
    base, _logs, inventory = system
    reports = base / 'monthly-reports'
    run, artifact = run_template(base, inventory, 'playbooks/monthly.yml', 'monthly', {
        'monthly_hosts': 'all', 'monthly_fail_on': 'critical', 'monthly_report_dir': str(reports)})
    # 11 errors in 60 requests: critical, and the job fails after the report is written
    assert run.status == 'failed'
    report, checks = checks_of(reports)
    assert report['title'].startswith('Monthly review') and report['status'] == 'critical'
    assert checks['app.latency']['details']['stats']['count'] == 60
    assert checks['app.latency']['value'] == pytest.approx((50 * 10 + 10 * 100) / 60, abs=0.01)
    assert checks['app.latency']['status'] == 'ok'
    assert checks['app.error_rate']['value'] == pytest.approx(100 * 11 / 60, abs=0.01)
    assert checks['app.error_rate']['status'] == 'critical'
    assert checks['app.error_types']['details']['top'] == [
        {'value': 'DbError', 'count': 10}, {'value': 'TimeoutError', 'count': 1}]
    assert checks['capacity[%s]' % base]['status'] == 'ok'
    assert artifact['monthly_review']['status'] == 'critical'
    assert artifact['monthly_review']['hosts_not_ok'] == {'localhost': 'critical'}


def test_monthly_fail_on_never_reports_without_failing(weekly, system):
    base, _logs, inventory = system
    reports = base / 'monthly-never'
    run, artifact = run_template(base, inventory, 'playbooks/monthly.yml', 'monthly-never', {
        'monthly_fail_on': 'never', 'monthly_report_dir': str(reports)})
    assert run.status == 'successful'
    assert checks_of(reports)[0]['status'] == 'critical'
    assert artifact['monthly_review']['status'] == 'critical'
