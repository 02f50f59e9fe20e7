"""playbooks/daily.yml the way AWX runs it: through ansible-runner, first in-process
(``ansible_runner.run``), then along AWX's own path, ``ansible-runner transmit |
docker run <EE> ansible-runner worker | ansible-runner process``, in the execution
environment tests/ee/build.sh builds (the Debian variant of execution-environment.yml).

What AWX shows of a job is what these tests assert: the job events, the
``playbook_on_stats`` event's ``artifact_data`` (set_stats, what a workflow hands to its
next node) and the job's status; and the report files the playbook writes. A host whose
Python lacks psycopg2/redis/docker (an EE without the collection's requirements.txt)
reports those probes as unknown naming the library.

Not tested here (no AWX runs on these machines): AWX's own callback receiver, the UI and
the API; see docs/awx.md.
"""

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile

import pytest

ansible_runner = pytest.importorskip('ansible_runner')

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
# What AWX 24 puts in a job's environment: its requirements dir, the project's
# ansible.cfg collections_path, then the EE's default paths.
AWX_COLLECTIONS_PATH = ('/runner/requirements_collections:.collections:~/.ansible/collections:'
                        '/usr/share/ansible/collections')
ARTIFACT_MAX_HOSTS = 20
# The libraries the collection's requirements.txt names, as the probes report them missing.
MISSING = {'db': 'psycopg2', 'cache': 'redis', 'engine': 'docker'}


def closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def inventory(port, bare_python, warn_hosts):
    """good (ok), down (critical: nothing listens), nolib (unknown: its Python lacks the
    probe libraries) and warn01.. (warning: disk above a tiny threshold)."""
    local = {'ansible_connection': 'local', 'ansible_python_interpreter': '{{ ansible_playbook_python }}'}
    hosts = {
        'good': dict(local),
        'down': dict(local, daily_checks_probes=[
            {'name': 'cache', 'kind': 'redis', 'host': '127.0.0.1', 'port': port, 'timeout': 1}]),
        'nolib': dict(local, ansible_python_interpreter=bare_python, daily_checks_probes=[
            {'name': 'db', 'kind': 'postgres', 'host': '127.0.0.1', 'port': port, 'timeout': 1},
            {'name': 'cache', 'kind': 'redis', 'host': '127.0.0.1', 'port': port, 'timeout': 1},
            {'name': 'engine', 'kind': 'docker_container', 'container': 'none'}]),
    }
    for index in range(1, warn_hosts + 1):
        hosts['warn%02d' % index] = dict(local, daily_checks_probes=[
            {'name': 'root disk', 'kind': 'disk', 'paths': ['/'], 'warning': 0.001}])
    return {'all': {
        'vars': {'runbook_ops_system': 'awx test',
                 'daily_checks_common_probes': [{'name': 'memory', 'kind': 'memory',
                                                 'warning': 99.9, 'critical': 99.99}]},
        'hosts': hosts}}


def stats_event(events):
    stats = [e for e in events if e.get('event') == 'playbook_on_stats']
    assert len(stats) == 1, [e.get('event') for e in events]
    return stats[0]


def task_events(events, task, event='runner_on_ok'):
    return [e for e in events if e.get('event') == event
            and e.get('event_data', {}).get('task') == task]


@pytest.fixture(scope='module')
def bare_python(tmp_path_factory):
    """A Python with the standard library only: an EE that lacks requirements.txt."""
    directory = tmp_path_factory.mktemp('bare') / 'venv'
    base = getattr(sys, '_base_executable', None) or shutil.which('python3')
    subprocess.run([base, '-m', 'venv', '--without-pip', str(directory)], check=True)
    python = str(directory / 'bin' / 'python')
    probe = subprocess.run([python, '-c', 'import psycopg2'], stderr=subprocess.PIPE, check=False)
    assert probe.returncode != 0, 'the bare venv must not see psycopg2'
    return python


@pytest.fixture(scope='module')
def runner_run(tmp_path_factory, bare_python):
    """ansible_runner.run of daily.yml, with the project directory this checkout (AWX
    runs from the project checkout, so the project's ansible.cfg applies)."""
    base = tmp_path_factory.mktemp('runner')
    private = base / 'private'
    (private / 'inventory').mkdir(parents=True)
    warn_hosts = ARTIFACT_MAX_HOSTS + 2
    (private / 'inventory' / 'hosts.json').write_text(
        json.dumps(inventory(closed_port(), bare_python, warn_hosts)))
    reports = base / 'reports'
    run = ansible_runner.run(
        private_data_dir=str(private), project_dir=ROOT, playbook='playbooks/daily.yml',
        extravars={'daily_checks_report_dir': str(reports)},
        envvars={'ANSIBLE_COLLECTIONS_PATH': AWX_COLLECTIONS_PATH, 'ANSIBLE_NOCOLOR': '1',
                 'PATH': os.pathsep.join([BIN, os.environ.get('PATH', '')])},
        ident='daily', quiet=True, timeout=None)
    events = list(run.events)
    return run, events, reports, warn_hosts


def test_runner_job_status_and_events(runner_run):
    run, events, _reports, warn_hosts = runner_run
    # 'down' is critical, so the verdict fails it after the report: a failed job.
    assert run.status == 'failed' and run.rc == 2, run.stdout.read()
    kinds = [e['event'] for e in events]
    assert kinds[0] == 'playbook_on_start' and kinds[-1] == 'playbook_on_stats'
    probed = task_events(events, 'Run the host\'s probes in one call')
    assert sorted(e['event_data']['host'] for e in probed) == sorted(
        ['good', 'down', 'nolib'] + ['warn%02d' % i for i in range(1, warn_hosts + 1)])
    # The report and set_stats run once for the whole play.
    assert len(task_events(events, 'Write Markdown, JSON and JUnit reports of every host')) == 1
    assert len(task_events(events, 'Hand the summary to AWX and other callers')) == 1
    failed = sorted(e['event_data']['host'] for e in events if e['event'] == 'runner_on_failed')
    assert failed == ['down'], failed
    assert run.stats['failures'] == {'down': 1}
    assert 'Traceback' not in json.dumps(events)


def test_runner_artifact_is_small_and_worst_first(runner_run):
    _run, events, reports, warn_hosts = runner_run
    artifact = stats_event(events)['event_data']['artifact_data']['daily_checks']
    assert artifact['status'] == 'critical'
    assert artifact['hosts_by_status'] == {'ok': 1, 'warning': warn_hosts, 'unknown': 1,
                                           'critical': 1, 'unreachable': 0, 'error': 0}
    assert artifact['checks_by_status']['unknown'] == 3
    # Worst first, capped: critical, unknown, then warnings in name order.
    not_ok = list(artifact['hosts_not_ok'].items())
    assert len(not_ok) == ARTIFACT_MAX_HOSTS
    assert not_ok[:3] == [('down', 'critical'), ('nolib', 'unknown'), ('warn01', 'warning')]
    assert artifact['hosts_not_ok_omitted'] == warn_hosts + 2 - ARTIFACT_MAX_HOSTS
    assert 'good' not in artifact['hosts_not_ok']
    latest = os.path.realpath(str(reports / 'latest'))
    assert artifact['report'] == {'markdown': os.path.join(latest, 'report.md'),
                                  'json': os.path.join(latest, 'report.json'),
                                  'junit': os.path.join(latest, 'junit.xml')}
    # No per-host dictionary of every host: it stays small for 500 hosts too.
    assert len(json.dumps(artifact)) < 2048, len(json.dumps(artifact))


def test_runner_report_files_and_missing_libraries(runner_run):
    _run, _events, reports, warn_hosts = runner_run
    report = json.loads((reports / 'latest' / 'report.json').read_text())
    assert len(report['hosts']) == warn_hosts + 3
    nolib = next(h for h in report['hosts'] if h['host'] == 'nolib')
    assert nolib['status'] == 'unknown'
    checks = dict((c['name'], c) for c in nolib['checks'])
    for name, library in MISSING.items():
        assert checks[name]['status'] == 'unknown', checks[name]
        assert library in checks[name]['message'] and 'not installed' in checks[name]['message']
    assert (reports / 'latest' / 'report.md').read_text().startswith('# Daily health check: awx test')


# ---- AWX's own path: transmit | worker in the EE | process ---------------------------------

@pytest.fixture(scope='module')
def ee_image():
    """The Debian EE (tests/ee/build.sh: cached, seconds when current)."""
    build = subprocess.run(['bash', os.path.join(ROOT, 'tests', 'ee', 'build.sh')],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, check=False)
    if build.returncode == 3:
        pytest.skip('no container engine can run here: %s' % build.stderr.strip())
    assert build.returncode == 0, build.stderr
    return build.stdout.strip().splitlines()[-1]


def project_checkout(directory):
    """The project as AWX checks it out: the files git knows, which is what the
    collection tarball tests/ee/build.sh made holds."""
    tarball = os.path.join(ROOT, 'tests', 'output', 'ee', 'runbook-ops.tar.gz')
    with tarfile.open(tarball) as archive:
        archive.extractall(str(directory))  # noqa: S202 - our own build output


@pytest.fixture(scope='module')
def worker_run(tmp_path_factory, ee_image):
    base = tmp_path_factory.mktemp('worker')
    private = base / 'private'
    (private / 'inventory').mkdir(parents=True)
    (private / 'env').mkdir()
    project_checkout(private / 'project')
    bare = '/tmp/bare/bin/python'
    (private / 'inventory' / 'hosts.json').write_text(json.dumps(inventory(closed_port(), bare, 1)))
    # The report directory is a host path exposed to the job (AWX: "Paths to expose to
    # isolated jobs"); the EE runs as uid 1000.
    reports = base / 'reports'
    reports.mkdir()
    os.chmod(str(reports), 0o777)
    (private / 'env' / 'extravars').write_text(json.dumps({'daily_checks_report_dir': '/reports'}))
    (private / 'env' / 'envvars').write_text(json.dumps(
        {'ANSIBLE_COLLECTIONS_PATH': AWX_COLLECTIONS_PATH, 'ANSIBLE_NOCOLOR': '1'}))
    runner = os.path.join(BIN, 'ansible-runner')
    transmit = subprocess.Popen([runner, 'transmit', str(private), '-p', 'playbooks/daily.yml',
                                 '--ident', 'ee'], stdout=subprocess.PIPE)
    # The worker's Python libraries are the EE's; /tmp/bare is a Python without them.
    worker = subprocess.Popen(
        ['docker', 'run', '--rm', '-i', '-v', '%s:/reports' % reports, ee_image, 'bash', '-c',
         'python3 -m venv --without-pip /tmp/bare && exec ansible-runner worker'],
        stdin=transmit.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    transmit.stdout.close()
    process = subprocess.run([runner, 'process', str(private), '--ident', 'ee'], stdin=worker.stdout,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, check=False)
    worker.stdout.close()
    worker_err = worker.stderr.read().decode('utf-8', 'replace')
    artifacts = private / 'artifacts' / 'ee'
    # The worker exits with the job's rc (2: a host failed the verdict); process only
    # turns the stream back into artifacts, as AWX's receptor and callback receiver do.
    assert transmit.wait() == 0, worker_err
    assert worker.wait() == 2, worker_err
    assert process.returncode == 0, process.stdout
    events = [json.loads(open(path).read()) for path in glob.glob(str(artifacts / 'job_events' / '*.json'))]
    events.sort(key=lambda e: e['counter'])
    return artifacts, events, reports, process.stdout


def test_worker_in_the_ee_status_events_and_artifact(worker_run):
    artifacts, events, reports, stdout = worker_run
    assert (artifacts / 'status').read_text() == 'failed', stdout
    assert (artifacts / 'rc').read_text() == '2'
    starts = [e for e in events if e['event'] == 'playbook_on_start']
    assert starts and starts[0]['event_data']['playbook'] == 'playbooks/daily.yml'
    artifact = stats_event(events)['event_data']['artifact_data']['daily_checks']
    assert artifact['status'] == 'critical'
    assert artifact['hosts_not_ok'] == {'down': 'critical', 'nolib': 'unknown', 'warn01': 'warning'}
    assert artifact['hosts_not_ok_omitted'] == 0
    # Paths inside the EE, where the job wrote them.
    assert artifact['report']['json'].startswith('/reports/')
    report = json.loads((reports / 'latest' / 'report.json').read_text())
    statuses = dict((h['host'], h['status']) for h in report['hosts'])
    assert statuses == {'good': 'ok', 'down': 'critical', 'nolib': 'unknown', 'warn01': 'warning'}
    nolib = next(h for h in report['hosts'] if h['host'] == 'nolib')
    for check in nolib['checks']:
        if check['name'] in MISSING:
            assert MISSING[check['name']] in check['message'] and check['status'] == 'unknown'
    assert 'Traceback' not in stdout


def test_worker_used_the_collection_installed_in_the_ee(worker_run):
    artifacts, events, _reports, _stdout = worker_run
    # The project checkout has no .collections link and no ansible_collections tree, so
    # runbook.ops can only have come from the EE's /usr/share/ansible/collections, where
    # ansible-builder installed the collection tarball.
    project = artifacts.parent.parent / 'project'
    assert not (project / '.collections').exists()
    assert not list(project.glob('**/ansible_collections'))
    probes = [e for e in events if e['event'] == 'runner_on_ok'
              and e['event_data'].get('resolved_action') == 'runbook.ops.health_probe']
    assert sorted(e['event_data']['host'] for e in probes) == ['down', 'good', 'nolib', 'warn01']
