"""The lab: playbooks/daily.yml across three real hosts (containers with systemd as
PID 1, built locally by tests/lab/lab.sh), and the harness's own promises: a host
lost mid-run is reported unreachable while the others complete, an interrupted lab
comes back with a second `lab.sh up`, and a failing Molecule scenario leaves no
container behind.

The lab's containers have fixed names (inventories/lab); when a lab was already up
before these tests, it is left up, otherwise it is removed at the end.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / 'tests' / 'lab' / 'lab.sh'
BIN = ROOT / '.venv' / 'bin'
HOSTS = ('runbook-lab-app', 'runbook-lab-db', 'runbook-lab-backup')
ENV = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
           PATH='%s%s%s' % (BIN, os.pathsep, os.environ.get('PATH', '')))


def lab(*args):
    return subprocess.run(['bash', str(LAB)] + list(args), cwd=str(ROOT), env=ENV,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False)


def docker(*args):
    return subprocess.run(['docker'] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False)


def running(name):
    return docker('inspect', '-f', '{{.State.Running}}', name).stdout.strip() == 'true'


@pytest.fixture(scope='module')
def lab_up():
    images = lab('images')
    if images.returncode == 3:
        pytest.skip('no container engine can run here: %s' % images.stderr.strip())
    assert images.returncode == 0, images.stderr
    was_up = all(running(name) for name in HOSTS)
    up = lab('up')
    assert up.returncode == 0, up.stderr
    yield
    if not was_up:
        lab('down')


def daily(tmp_path, inventory=None, wait=True):
    report_dir = tmp_path / 'reports'
    argv = [str(BIN / 'ansible-playbook'), '-i', str(inventory or ROOT / 'inventories' / 'lab'),
            str(ROOT / 'playbooks' / 'daily.yml'), '-e', 'daily_checks_report_dir=%s' % report_dir]
    process = subprocess.Popen(argv, cwd=str(ROOT), env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, universal_newlines=True)
    if not wait:
        return process, report_dir
    output = process.communicate()[0]
    return process.returncode, output, report_dir


def hosts_of(report_dir):
    report = json.loads((report_dir / 'latest' / 'report.json').read_text())
    return dict((h['host'], h) for h in report['hosts'])


def checks_of(entry):
    return dict((c['name'], c) for c in entry['checks'])


def test_daily_runs_across_the_three_lab_hosts(lab_up, tmp_path):
    rc, output, report_dir = daily(tmp_path)
    hosts = hosts_of(report_dir)
    assert sorted(hosts) == sorted(HOSTS), output
    for name in HOSTS:
        assert hosts[name]['status'] not in ('unreachable', 'error'), hosts[name]
    # What each host really runs, seen through its own probes.
    app, db = checks_of(hosts['runbook-lab-app']), checks_of(hosts['runbook-lab-db'])
    assert app['api']['status'] == 'ok', app['api']
    assert app['health service']['status'] == 'ok'
    assert app['db reachable from app']['status'] == 'ok'
    assert db['db']['status'] == 'ok', db['db']
    assert db['redis']['status'] == 'ok', db['redis']
    assert db['postgresql unit']['value'] == 'active'
    markdown = (report_dir / 'latest' / 'report.md').read_text()
    for name in HOSTS:
        assert name in markdown
    # The verdict fails a host only for what its report says (cpu is the machine's).
    failed = [name for name in HOSTS if hosts[name]['status'] == 'critical']
    assert (rc == 0) == (not failed), output


def test_a_host_stopped_mid_run_is_unreachable_and_the_others_complete(lab_up, tmp_path):
    inventory = tmp_path / 'inventory'
    shutil.copytree(str(ROOT / 'inventories' / 'lab'), str(inventory))
    (inventory / 'host_vars').mkdir()
    # The backup host gets a probe that runs long enough to be stopped during it.
    (inventory / 'host_vars' / 'runbook-lab-backup.yml').write_text(json.dumps({
        'daily_checks_probes': [{'name': 'long batch', 'kind': 'command',
                                 'command': ['sleep', '47.5'], 'timeout': 120}]}))
    try:
        process, report_dir = daily(tmp_path, inventory, wait=False)
        for _attempt in range(240):
            if 'sleep 47.5' in docker('top', 'runbook-lab-backup').stdout:
                break
            assert process.poll() is None, process.communicate()[0]
            time.sleep(0.25)
        else:
            pytest.fail('the long probe never started on runbook-lab-backup')
        assert docker('stop', '-t', '1', 'runbook-lab-backup').returncode == 0
        output = process.communicate()[0]
        hosts = hosts_of(report_dir)
        assert hosts['runbook-lab-backup']['status'] == 'unreachable', (hosts['runbook-lab-backup'], output)
        assert 'lost during the probes' in hosts['runbook-lab-backup']['message']
        for name in ('runbook-lab-app', 'runbook-lab-db'):
            assert hosts[name]['status'] not in ('unreachable', 'error'), hosts[name]
            assert hosts[name]['checks'], hosts[name]
        assert process.returncode != 0  # an unreachable host counts as critical
    finally:
        assert lab('up').returncode == 0


def test_a_second_up_after_an_interrupted_one_brings_the_lab_back(lab_up):
    # What an interrupted run can leave: a stopped host, a missing one, a container
    # of the right name that was created but never started.
    assert docker('stop', '-t', '1', 'runbook-lab-app').returncode == 0
    assert docker('rm', '-f', 'runbook-lab-db').returncode == 0
    assert docker('create', '--name', 'runbook-lab-db', '--label', 'runbook.ops.lab=1',
                  'runbook-ops/busybox:test', 'true').returncode == 0
    up = lab('up')
    assert up.returncode == 0, up.stderr
    for name in HOSTS:
        assert running(name), name
    image = docker('inspect', '-f', '{{.Config.Image}}', 'runbook-lab-db').stdout.strip()
    assert image == 'runbook-ops/bookworm:db'
    ready = docker('exec', 'runbook-lab-db', 'runuser', '-u', 'postgres', '--', 'pg_isready')
    assert ready.returncode == 0, ready.stdout + ready.stderr


BROKEN_SCENARIO = """---
prerun: false
dependency: {name: galaxy, enabled: false}
driver: {name: docker}
platforms:
  - name: molecule-harness-broken
    image: runbook-ops/bookworm:base
    pre_build_image: true
    command: sleep infinity
provisioner:
  name: ansible
  env:
    ANSIBLE_COLLECTIONS_PATH: %s
verifier: {name: ansible}
scenario:
  test_sequence: [destroy, create, converge, verify, destroy]
"""

BROKEN_CONVERGE = """---
- name: Converge
  hosts: all
  gather_facts: false
  tasks:
    - name: Fail half-way, as a broken role would
      ansible.builtin.fail:
        msg: deliberately broken scenario
"""


def test_a_failing_scenario_leaves_no_container(lab_up, tmp_path):
    scenario = tmp_path / 'molecule' / 'broken'
    scenario.mkdir(parents=True)
    (scenario / 'molecule.yml').write_text(BROKEN_SCENARIO % (ROOT / '.collections'))
    (scenario / 'converge.yml').write_text(BROKEN_CONVERGE)
    run = subprocess.run([sys.executable, str(ROOT / 'tests' / 'lab' / 'molecule_run.py'),
                          '--project-dir', str(tmp_path), 'broken'], cwd=str(ROOT), env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, check=False)
    assert run.returncode == 1, run.stdout
    assert 'converge' in run.stdout and 'FAILED' in run.stdout, run.stdout
    assert 'deliberately broken scenario' in run.stdout  # the log's tail is shown
    left = docker('ps', '-a', '--filter', 'name=molecule-harness-broken', '--format', '{{.Names}}')
    assert left.stdout.strip() == '', left.stdout
