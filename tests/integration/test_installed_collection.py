"""The collection as operators install it: the tarball `ansible-galaxy collection build`
makes (tests/ee/build.sh tarball), installed with `ansible-galaxy collection install` into
a collections path of its own, and a collection playbook run by name
(`ansible-playbook runbook.ops.daily`) from a directory that is not the checkout. Its
reports go to the user's state directory, not into the installed collection that the next
`collection install --force` replaces."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def test_collection_playbook_of_an_installed_collection_reports_to_the_state_dir(tmp_path):
    build = subprocess.run(['bash', os.path.join(ROOT, 'tests', 'ee', 'build.sh'), 'tarball'],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False,
                           env=dict(os.environ, RUNBOOK_OPS_BIN=BIN))
    assert build.returncode == 0, build.stderr
    tarball = build.stdout.strip().splitlines()[-1]
    collections = tmp_path / 'collections'
    env = dict(os.environ, HOME=str(tmp_path / 'home'), XDG_STATE_HOME=str(tmp_path / 'state'),
               ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR='1')
    for name in ('ANSIBLE_CONFIG', 'RUNBOOK_OPS_REPORT_DIR'):
        env.pop(name, None)
    install = subprocess.run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '--offline', tarball,
                              '-p', str(collections)], cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert install.returncode == 0, install.stdout
    installed = collections / 'ansible_collections' / 'runbook' / 'ops'
    assert (installed / 'playbooks' / 'daily.yml').is_file()
    (tmp_path / 'hosts.json').write_text(json.dumps({'all': {'hosts': {'localhost': {
        'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
        'daily_checks_probes': [{'name': 'root disk', 'kind': 'disk', 'paths': ['/'], 'critical': 100}]}}}}))
    run = subprocess.run([os.path.join(BIN, 'ansible-playbook'), 'runbook.ops.daily', '-i', 'hosts.json'],
                         cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, check=False)
    assert run.returncode == 0, run.stdout
    latest = tmp_path / 'state' / 'runbook.ops' / 'reports' / 'daily' / 'latest'
    report = json.loads((latest / 'report.json').read_text())
    assert [host['host'] for host in report['hosts']] == ['localhost']
    assert report['hosts'][0]['checks'][0]['name'] == 'root disk[/]'
    assert str(latest.resolve()) in run.stdout.replace('\n', '')
    assert not (installed / 'reports').exists()
