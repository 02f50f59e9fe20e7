"""Verify runbook.ops.daily_checks against the real state of each Molecule host.

testinfra runs this once per host (``host`` is that container).  The role writes
its report on the controller, so the report is read here from the path converge
used (RUNBOOK_OPS_REPORT_DIR); what it says about each host is compared with what
the host itself shows: the health service really running or not, the marker file
really there.
"""

import json
import os
import xml.etree.ElementTree as ET

import pytest

REPORT_DIR = os.environ['RUNBOOK_OPS_REPORT_DIR']


@pytest.fixture(scope='module')
def report():
    latest = os.path.join(REPORT_DIR, 'latest')
    assert os.path.islink(latest), 'no report was written under %s' % REPORT_DIR
    with open(os.path.join(latest, 'report.json')) as stream:
        return json.load(stream)


@pytest.fixture
def entry(host, report):
    name = host.backend.get_hostname()
    hosts = dict((h['host'], h) for h in report['hosts'])
    assert name in hosts, '%s missing from the report (hosts: %s)' % (name, sorted(hosts))
    return hosts[name]


def checks(entry):
    return dict((c['name'], c) for c in entry['checks'])


def test_report_covers_every_host_in_all_formats(report):
    latest = os.path.join(REPORT_DIR, 'latest')
    assert sorted(h['host'] for h in report['hosts']) == ['molecule-daily-degraded',
                                                          'molecule-daily-healthy']
    suites = ET.parse(os.path.join(latest, 'junit.xml')).getroot()
    assert sorted(s.get('name') for s in suites.iter('testsuite')) == [
        'molecule-daily-degraded', 'molecule-daily-healthy']
    with open(os.path.join(latest, 'report.md')) as stream:
        markdown = stream.read()
    assert 'molecule daily_checks' in markdown
    for name in ('report.md', 'report.json', 'junit.xml'):
        assert os.stat(os.path.join(latest, name)).st_size > 0


def test_unit_check_matches_the_unit(host, entry):
    service = host.service('runbook-health')
    unit = checks(entry)['health service']
    if service.is_running:
        assert unit['status'] == 'ok', unit
    else:
        assert unit['status'] == 'critical', unit
        assert 'inactive' in unit['message'], unit


def test_http_check_matches_the_listener(host, entry):
    listening = host.socket('tcp://0.0.0.0:8080').is_listening
    api = checks(entry)['api']
    assert (api['status'] == 'ok') == listening, (listening, api)


def test_degraded_host_is_critical_and_healthy_host_ok(host, entry):
    if 'degraded' in host.backend.get_hostname():
        assert not host.service('runbook-health').is_running
        assert entry['status'] == 'critical', entry
    else:
        assert host.service('runbook-health').is_running
        assert entry['status'] in ('ok', 'warning'), entry  # memory/disk are the machine's


def test_marker_freshness_matches_the_file(host, entry):
    marker = host.file('/var/lib/runbook-lab/marker')
    assert marker.exists
    check = checks(entry)['marker']
    assert check['status'] == 'ok', check
    assert check['value'] < 3600, check  # seconds since prepare wrote it


def test_cron_really_runs_and_is_reported(host, entry):
    assert host.service('cron').is_running
    assert checks(entry)['cron']['status'] == 'ok'


def test_the_role_left_no_files_on_the_host(host):
    """A daily check reads; it leaves nothing on the host but Ansible's own tmp."""
    assert not host.file('/root/daily_checks').exists
    found = host.run('find / -xdev -newer /var/lib/runbook-lab/marker -type f '
                     '-not -path "/proc/*" -not -path "/root/.ansible/*" -not -path "/var/log/*" '
                     '-not -path "/var/lib/systemd/*" -not -path "/tmp/*" -not -path "/var/tmp/*"')
    assert found.rc == 0
    assert found.stdout.split() == [], found.stdout
