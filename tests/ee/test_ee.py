"""The execution environment definitions and what they read: ansible-builder turns both
into a build context offline; the collection's bindep.txt names the same tools for dpkg
and rpm platforms (parsed by bindep itself, in the EE base image); the apt wrapper refuses
what it does not understand; the installed collection playbook runs in the built EE.
The production (RPM) image itself is not built here: its base cannot be pulled."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, 'tests', 'ee', 'build.sh')
BIN = os.path.dirname(sys.executable)
TOOLS = {'logrotate', 'gzip', 'zstd', 'lz4', 'tar'}


def run(command, **kwargs):
    return subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          check=False, env=dict(os.environ, RUNBOOK_OPS_BIN=BIN), **kwargs)


@pytest.fixture(scope='module')
def ee_image():
    build = run(['bash', BUILD])
    if build.returncode == 3:
        pytest.skip('no container engine can run here: %s' % build.stderr.strip())
    assert build.returncode == 0, build.stderr
    return build.stdout.strip().splitlines()[-1]


def test_production_definition_makes_a_build_context():
    created = run(['bash', BUILD, 'rpm', '--context'])
    assert created.returncode == 0, created.stderr
    context = created.stdout.strip().splitlines()[-1]
    containerfile = open(os.path.join(context, 'Dockerfile')).read()
    assert 'FROM $EE_BASE_IMAGE AS base' in containerfile
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in containerfile
    assert 'ARG PKGMGR="/usr/bin/dnf"' in containerfile
    assert '/output/scripts/pip_install $PYCMD' in containerfile
    assert 'introspect' in containerfile and 'ENV RUNBOOK_OPS_REPORT_DIR=' in containerfile
    requirements = open(os.path.join(context, '_build', 'requirements.yml')).read()
    assert 'collections/runbook-ops.tar.gz' in requirements
    assert os.path.getsize(os.path.join(context, '_build', 'collections', 'runbook-ops.tar.gz')) > 0


def test_debian_definition_skips_pip_bootstrap_and_uses_the_apt_wrapper(ee_image):
    # Its own context: the image may come from the cache, built from another checkout.
    created = run(['bash', BUILD, 'debian', '--context'])
    assert created.returncode == 0, created.stderr
    containerfile = open(os.path.join(created.stdout.strip().splitlines()[-1], 'Dockerfile')).read()
    assert 'ARG PKGMGR="/usr/local/bin/apt-dnf"' in containerfile
    assert 'pip_install $PYCMD' not in containerfile
    labels = json.loads(run(['docker', 'image', 'inspect', '-f', '{{json .Config.Labels}}', ee_image]).stdout)
    assert labels['ansible-execution-environment'] == 'true' and labels['runbook.ops.inputs']


def test_bindep_names_the_tools_for_both_platforms(ee_image):
    script = ('import json, bindep.depends as d\n'
              'deps = d.Depends(open("/tmp/bindep.txt").read())\n'
              'out = {}\n'
              'for name, profiles in (("dpkg", ["platform:dpkg", "platform:debian"]),\n'
              '                       ("rpm", ["platform:rpm", "platform:redhat"])):\n'
              '    out[name] = sorted(r[0] for r in deps.active_rules(profiles))\n'
              'print(json.dumps(out))\n')
    result = run(['docker', 'run', '--rm', '-v', '%s:/tmp/bindep.txt:ro' % os.path.join(ROOT, 'bindep.txt'),
                  ee_image, 'python3', '-c', script])
    assert result.returncode == 0, result.stderr
    platforms = json.loads(result.stdout)
    assert set(platforms['dpkg']) == TOOLS | {'postgresql-client'}
    assert set(platforms['rpm']) == TOOLS | {'postgresql'}


def test_the_ee_has_the_tools_libraries_and_collection(ee_image):
    script = ('set -e; for t in pg_dump pg_restore psql pg_isready logrotate zstd lz4 gzip tar; do command -v $t; done;'
              'python3 -c "import psycopg2, redis, docker, cryptography";'
              'ansible-galaxy collection list runbook.ops; ansible-doc runbook.ops.health_probe | head -1')
    result = run(['docker', 'run', '--rm', ee_image, 'bash', '-c', script])
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'runbook.ops' in result.stdout and '/usr/share/ansible/collections' in result.stdout


def test_apt_wrapper_refuses_what_it_does_not_know(ee_image):
    result = run(['docker', 'run', '--rm', '--user', '0', ee_image, '/usr/local/bin/apt-dnf', 'upgrade', '-y'])
    assert result.returncode == 2 and 'unsupported package manager call: upgrade' in result.stderr


def test_collection_playbook_runs_in_the_ee(ee_image, tmp_path):
    inventory = tmp_path / 'hosts.json'
    inventory.write_text(json.dumps({'all': {'hosts': {'here': {
        'ansible_connection': 'local', 'ansible_python_interpreter': '{{ ansible_playbook_python }}',
        'daily_checks_probes': [{'name': 'root', 'kind': 'disk', 'paths': ['/']}]}}}}))
    result = run(['docker', 'run', '--rm', '-v', '%s:/tmp/hosts.json:ro' % inventory, ee_image,
                  'ansible-playbook', 'runbook.ops.daily', '-i', '/tmp/hosts.json'])
    assert result.returncode == 0, result.stdout + result.stderr
    # The default report directory of an installed collection playbook is the EE's.
    assert 'Report: /runner/reports/daily/' in result.stdout
