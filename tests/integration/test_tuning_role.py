# -*- coding: utf-8 -*-
"""playbooks/tune.yml (the tuning role) on localhost against the real /proc/sys (vm.*
keys, snapshotted and restored), the real PostgreSQL and Redis fixtures, with the
sysctl and limits drop-ins in a temporary tree: check mode changes nothing, a run
applies, a second run changes nothing, the report says what changed and what waits."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

psycopg2 = pytest.importorskip('psycopg2')
redis = pytest.importorskip('redis')

REPO = Path(__file__).resolve().parents[2]
VM = {'vm.swappiness': '10', 'vm.dirty_ratio': '15', 'vm.dirty_background_ratio': '5'}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='sets real kernel parameters: needs root')


def live(key):
    with open('/proc/sys/' + key.replace('.', '/')) as stream:
        return stream.read().strip()


@pytest.fixture
def restored(postgres, redis_server):
    """Snapshot the vm.* keys the memory profile touches and Redis's policy; restore
    them, and reset what ALTER SYSTEM set, afterwards."""
    saved = dict((key, live(key)) for key in VM)
    client = redis.Redis(host=redis_server['host'], port=redis_server['port'])
    policy = client.config_get('maxmemory-policy')['maxmemory-policy']
    maxmemory = client.config_get('maxmemory')['maxmemory']
    yield
    for key, value in saved.items():
        with open('/proc/sys/' + key.replace('.', '/'), 'w') as stream:
            stream.write(value + '\n')
    client.config_set('maxmemory-policy', policy)
    client.config_set('maxmemory', maxmemory)
    client.close()
    connection = psycopg2.connect(host=postgres['host'], port=postgres['port'], user='postgres',
                                  password=postgres['password'], dbname='postgres')
    connection.autocommit = True
    connection.cursor().execute('ALTER SYSTEM RESET ALL')
    connection.cursor().execute('SELECT pg_reload_conf()')
    connection.close()


def playbook(extra, check=False):
    argv = [str(REPO / '.venv' / 'bin' / 'ansible-playbook'), '-i', 'localhost,',
            str(REPO / 'playbooks' / 'tune.yml'), '-e', '@' + extra]
    if check:
        argv += ['--check', '--diff']
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    process = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, check=False)
    recap = re.search(r'localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)',
                      process.stdout)
    assert process.returncode == 0 and recap, process.stdout
    return int(recap.group(2)), process.stdout


def test_tune_playbook(tmp_path, postgres, redis_server, restored):
    for name in ('sysctl.d', 'limits.d', 'reports'):
        (tmp_path / name).mkdir()
    extra = tmp_path / 'vars.json'
    extra.write_text(json.dumps({
        'ansible_connection': 'local',
        'ansible_python_interpreter': str(REPO / '.venv' / 'bin' / 'python'),
        'tuning_profiles': ['memory', 'logcaster_limits', 'postgres_004', 'redis_004', 'redis_memory'],
        # Redis answers CONFIG GET maxmemory in bytes: 1gb must read as 1073741824 on the second run
        'tuning_extra_catalog': {'redis_memory': {'redis': {'maxmemory': '1gb'}}},
        'tuning_sysctl_dropin_dir': str(tmp_path / 'sysctl.d'),
        'tuning_sysctl_search_dirs': [str(tmp_path / 'sysctl.d')],
        'tuning_sysctl_conf': str(tmp_path / 'sysctl.conf'),
        'tuning_limits_dir': str(tmp_path / 'limits.d'),
        'tuning_postgres_login': {'login_host': postgres['host'], 'login_port': postgres['port'],
                                  'passfile': postgres['passfile']},
        'tuning_redis_host': redis_server['host'], 'tuning_redis_port': redis_server['port'],
        'tuning_report_dir': str(tmp_path / 'reports'),
    }))
    before = dict((key, live(key)) for key in VM)
    client = redis.Redis(host=redis_server['host'], port=redis_server['port'])
    policy = client.config_get('maxmemory-policy')['maxmemory-policy']

    changed, out = playbook(str(extra), check=True)
    assert changed >= 1, out
    assert dict((key, live(key)) for key in VM) == before
    assert os.listdir(str(tmp_path / 'sysctl.d')) == [] and os.listdir(str(tmp_path / 'limits.d')) == []
    assert client.config_get('maxmemory-policy')['maxmemory-policy'] == policy

    changed, out = playbook(str(extra))
    assert changed >= 3, out
    assert dict((key, live(key)) for key in VM) == VM
    assert client.config_get('maxmemory-policy')['maxmemory-policy'] == 'allkeys-lru'
    assert (tmp_path / 'limits.d' / 'runbook-tuning.conf').exists()
    report = json.loads((tmp_path / 'reports' / 'localhost.json').read_text())
    assert sorted(report['sysctl']['set']) == sorted(k for k in VM if before[k] != VM[k])
    assert 'max_connections' in report['postgres']['pending_restart']
    assert client.config_get('maxmemory')['maxmemory'] == '1073741824'
    assert report['redis']['set'] == (['maxmemory-policy'] if policy != 'allkeys-lru' else []) + ['maxmemory']
    assert 'runs without a config file' in out  # the fixture's Redis has none

    changed, out = playbook(str(extra))
    assert changed == 0, out
    report = json.loads((tmp_path / 'reports' / 'localhost.json').read_text())
    assert report['sysctl']['set'] == [] and report['redis']['set'] == []
    assert 'max_connections' in report['postgres']['pending_restart']

    # Reverting postgres_004: its parameters are taken back with ALTER SYSTEM RESET
    settings = json.loads(extra.read_text())
    settings.update(tuning_profiles=['memory', 'logcaster_limits', 'redis_004', 'redis_memory'],
                    tuning_postgres_reset=['max_connections', 'shared_buffers', 'effective_cache_size',
                                           'work_mem', 'maintenance_work_mem', 'random_page_cost'])
    extra.write_text(json.dumps(settings))
    changed, out = playbook(str(extra))
    assert changed == 1, out
    report = json.loads((tmp_path / 'reports' / 'localhost.json').read_text())
    reset = report['postgres']['changes']
    assert set(c['action'] for c in reset) == {'reset'}
    assert 'max_connections' in [c['name'] for c in reset] and 'random_page_cost' not in [c['name'] for c in reset]
    assert report['postgres']['pending_restart'] == []  # 200 connections never ran: nothing waits
    with open(postgres['data'] + '/postgresql.auto.conf') as stream:
        assert 'max_connections' not in stream.read()
    client.close()
