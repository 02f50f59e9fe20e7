"""controller/configure.yml against the real awx.awx modules (shipped in the ``ansible``
package), with no AWX behind them: a controller address where nothing listens. The modules
validate their arguments before they connect, so every task that reaches "Connection
refused" has passed the module's argument spec (names, types, choices, the survey as a
dict). Whether AWX then accepts the objects is not tested here (no AWX runs on these
machines; docs/awx.md says so)."""

import os
import socket
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(ROOT, 'controller', 'configure.yml')
BIN = os.path.dirname(sys.executable)

with open(PLAYBOOK) as stream:
    TASKS = [task['name'] for task in yaml.safe_load(stream)[0]['tasks']
             if any(key.startswith('awx.awx.') for key in task)]


def closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def controller_env():
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                CONTROLLER_HOST='https://127.0.0.1:%d' % closed_port(),
                CONTROLLER_USERNAME='nobody', CONTROLLER_PASSWORD='not-a-secret',
                CONTROLLER_VERIFY_SSL='false')


def test_configure_covers_every_awx_object():
    assert len(TASKS) == 6


@pytest.mark.parametrize('task', TASKS)
def test_task_arguments_pass_the_awx_modules_specs(task, controller_env):
    run = subprocess.run([os.path.join(BIN, 'ansible-playbook'), PLAYBOOK, '--start-at-task', task],
                         cwd=ROOT, env=controller_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, check=False)
    assert run.returncode == 2, run.stdout
    started = run.stdout.split('TASK [%s]' % task, 1)
    assert len(started) == 2, run.stdout
    failure = started[1].split('PLAY RECAP')[0]
    assert 'Connection refused' in failure, failure
    for wrong in ('Unsupported parameters', 'value of', 'must be', 'is not a valid', 'Traceback'):
        assert wrong not in failure, failure
