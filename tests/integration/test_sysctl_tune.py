# -*- coding: utf-8 -*-
"""runbook.ops.sysctl_tune through ansible-playbook against this machine's real /proc/sys.

vm.* keys are changed for real and restored by the ``vm_keys`` fixture, which
snapshots every vm.* key these tests touch.  net.* keys are changed only inside a
network namespace of the test's own: the module's interpreter is a wrapper that runs
``ip netns exec <ns> python``, so /proc/sys/net is the namespace's and the host's
network settings are never touched.  The drop-in directory and the sysctl.d search
path point at a temporary tree.  Needs root (it is what the tests run as here).
"""

import os
import subprocess
import uuid
from pathlib import Path

import pytest

PYTHON = str(Path(__file__).resolve().parents[2] / '.venv' / 'bin' / 'python')

MODULE = 'runbook.ops.sysctl_tune'
VM_KEYS = ('vm.swappiness', 'vm.dirty_ratio', 'vm.dirty_background_ratio')

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='sets real kernel parameters: needs root')


def proc(key, root='/proc/sys'):
    return os.path.join(root, *key.split('.'))


def live(key):
    with open(proc(key)) as stream:
        return ' '.join(stream.read().split())


def set_live(key, value):
    with open(proc(key), 'w') as stream:
        stream.write(str(value) + '\n')


def other(value, *candidates):
    """A candidate that differs from the current value, so a run must change it."""
    for candidate in candidates:
        if str(candidate) != value:
            return str(candidate)
    raise AssertionError('no candidate differs from %r' % value)


@pytest.fixture
def vm_keys():
    """Snapshot every vm.* key the tests touch, restore them afterwards."""
    saved = dict((key, live(key)) for key in VM_KEYS)
    yield saved
    for key, value in saved.items():
        if live(key) != value:
            set_live(key, value)
    assert dict((key, live(key)) for key in VM_KEYS) == saved


@pytest.fixture
def tree(tmp_path):
    """A temporary sysctl.d layout: etc/ (drop-ins) run/ lib/ and a sysctl.conf."""
    for name in ('etc', 'run', 'lib'):
        (tmp_path / name).mkdir()
    return tmp_path


def paths(tree):
    return {'dropin_dir': str(tree / 'etc'),
            'search_dirs': [str(tree / 'etc'), str(tree / 'run'), str(tree / 'lib')],
            'sysctl_conf': str(tree / 'sysctl.conf')}


@pytest.fixture
def netns(tmp_path):
    """A network namespace of this test and an interpreter that runs the module in it."""
    name = 'rbtune-%s' % uuid.uuid4().hex[:8]
    subprocess.run(['ip', 'netns', 'add', name], check=True)
    wrapper = tmp_path / 'python-in-netns'
    wrapper.write_text('#!/bin/sh\nexec ip netns exec %s %s "$@"\n' % (name, PYTHON))
    wrapper.chmod(0o755)

    def read(key):
        out = subprocess.run(['ip', 'netns', 'exec', name, 'cat', proc(key)], check=True,
                             stdout=subprocess.PIPE, universal_newlines=True).stdout
        return ' '.join(out.split())
    yield {'name': name, 'python': str(wrapper), 'read': read}
    subprocess.run(['ip', 'netns', 'del', name], check=True)


def in_netns(netns, args):
    return {MODULE: args, 'vars': {'ansible_python_interpreter': netns['python']}}


# ---- vm.* on the real /proc/sys -----------------------------------------------

def test_memory_profile_check_apply_idempotent(run_module, vm_keys, tree):
    wanted = {'vm.swappiness': other(vm_keys['vm.swappiness'], 10, 11),
              'vm.dirty_ratio': other(vm_keys['vm.dirty_ratio'], 15, 16),
              'vm.dirty_background_ratio': other(vm_keys['vm.dirty_background_ratio'], 5, 6)}
    args = dict(paths(tree), name='memory', profile=wanted)
    dropin = tree / 'etc' / '90-memory.conf'

    checked = run_module(MODULE, args, check=True, diff=True)
    assert checked.rc == 0, checked
    assert checked.result['changed'] is True
    assert sorted(checked.result['set']) == sorted(VM_KEYS)
    assert not dropin.exists()
    assert dict((key, live(key)) for key in VM_KEYS) == vm_keys
    file_diff, live_diff = checked.result['diff']
    assert 'vm.swappiness = %s' % wanted['vm.swappiness'] in file_diff['after']
    assert 'vm.swappiness = %s' % vm_keys['vm.swappiness'] in live_diff['before']

    applied = run_module(MODULE, args)
    assert applied.result['changed'] is True, applied
    assert dict((key, live(key)) for key in VM_KEYS) == wanted
    assert oct(dropin.stat().st_mode & 0o777) == '0o644'
    lines = [line for line in dropin.read_text().splitlines() if not line.startswith('#')]
    assert lines == ['%s = %s' % (key, value) for key, value in wanted.items()]

    again = run_module(MODULE, args)
    assert again.result['changed'] is False, again
    assert again.result['set'] == [] and again.result['drift'] == []

    # drift: someone changes a value live; check mode reports it and changes nothing
    set_live('vm.swappiness', vm_keys['vm.swappiness'])
    drifted = run_module(MODULE, args, check=True)
    assert drifted.result['drift'] == [{'key': 'vm.swappiness', 'live': vm_keys['vm.swappiness'],
                                        'persisted': wanted['vm.swappiness']}]
    assert drifted.result['set'] == ['vm.swappiness'] and drifted.result['file_changed'] is False
    assert live('vm.swappiness') == vm_keys['vm.swappiness']


def test_einval_rolls_back_keys_already_set(run_module, vm_keys, tree):
    swappiness = other(vm_keys['vm.swappiness'], 10, 11)
    # dirty_ratio is 0..100: the kernel answers EINVAL for 1000, after swappiness was set
    result = run_module(MODULE, dict(paths(tree), name='memory', profile={
        'vm.swappiness': swappiness, 'vm.dirty_ratio': 1000})).result
    assert result['failed'] is True
    assert 'setting vm.dirty_ratio' in result['msg'] and 'EINVAL' in result['msg']
    assert 'rolled back vm.swappiness' in result['msg']
    assert 'the drop-in is as it was' in result['msg']
    assert dict((key, live(key)) for key in VM_KEYS) == vm_keys
    assert os.listdir(str(tree / 'etc')) == []


def test_rollback_restores_previous_dropin(run_module, vm_keys, tree):
    dropin = tree / 'etc' / '90-memory.conf'
    dropin.write_text('# before\nvm.swappiness = %s\n' % vm_keys['vm.swappiness'])
    result = run_module(MODULE, dict(paths(tree), name='memory', profile={
        'vm.swappiness': other(vm_keys['vm.swappiness'], 10, 11),
        'vm.dirty_ratio': 1000})).result
    assert result['failed'] is True
    assert dropin.read_text() == '# before\nvm.swappiness = %s\n' % vm_keys['vm.swappiness']
    assert sorted(os.listdir(str(tree / 'etc'))) == ['90-memory.conf']


@pytest.mark.parametrize('profile, expected', [
    ({'vm.swappiness': 10, 'vm.no_such_key': 1}, 'vm.no_such_key does not exist on this kernel'),
    ({'vm.swappiness': 'ten'}, 'vm.swappiness is numeric'),
    ({'net.ipv4.tcp_rmem': '4096 87380'}, 'net.ipv4.tcp_rmem takes 3 integer'),
    ({'vm.drop_caches': 1}, 'vm.drop_caches cannot be read'),
])
def test_bad_input_changes_nothing(run_module, vm_keys, tree, profile, expected):
    result = run_module(MODULE, dict(paths(tree), name='bad', profile=profile)).result
    assert result['failed'] is True
    assert expected in result['msg'], result['msg']
    assert 'nothing changed' in result['msg']
    assert dict((key, live(key)) for key in VM_KEYS) == vm_keys
    assert os.listdir(str(tree / 'etc')) == []


def test_missing_key_policies(run_module, vm_keys, tree):
    swappiness = other(vm_keys['vm.swappiness'], 10, 11)
    run = run_module(MODULE, dict(paths(tree), name='memory', missing='warn', profile={
        'vm.swappiness': swappiness,
        'vm.no_such_key': 1,
        'net.no_such_module.knob': {'value': 2, 'missing': 'skip'}}))
    result = run.result
    assert result['changed'] is True, run
    assert result['skipped'] == ['net.no_such_module.knob']
    assert any('vm.no_such_key does not exist' in w for w in result['warnings'])
    text = (tree / 'etc' / '90-memory.conf').read_text()
    assert '-vm.no_such_key = 1' in text and 'no_such_module' not in text
    assert live('vm.swappiness') == swappiness


def test_unwritable_dropin_dir(run_module, vm_keys, tree):
    target = tree / 'ro'
    target.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', str(target)], check=True)
    try:
        result = run_module(MODULE, dict(paths(tree), dropin_dir=str(target), name='memory',
                                         profile={'vm.swappiness': other(vm_keys['vm.swappiness'],
                                                                         10, 11)})).result
    finally:
        subprocess.run(['umount', str(target)], check=True)
    assert result['failed'] is True
    assert 'drop-in directory %s is not writable' % target in result['msg']
    assert dict((key, live(key)) for key in VM_KEYS) == vm_keys


def test_read_only_proc_sys(run_play, vm_keys, tree):
    """/proc/sys read-only as in a container: a private mount namespace of the module."""
    wrapper = tree / 'python-ro-proc'
    wrapper.write_text('#!/bin/sh\nexec unshare -m --propagation private sh -c '
                       '\'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys '
                       '&& exec "$0" "$@"\' %s "$@"\n' % PYTHON)
    wrapper.chmod(0o755)
    profile = {'vm.swappiness': other(vm_keys['vm.swappiness'], 10, 11)}
    run = run_play([
        {MODULE: dict(paths(tree), name='memory', profile=profile),
         'vars': {'ansible_python_interpreter': str(wrapper)}},
        {MODULE: dict(paths(tree), name='memory', profile=profile, apply_live=False),
         'vars': {'ansible_python_interpreter': str(wrapper)}},
    ])
    failed, persisted = run.results
    assert failed['failed'] is True, run
    assert '/proc/sys is mounted read-only (a container?)' in failed['msg']
    assert persisted['changed'] is True and persisted['set'] == []
    assert (tree / 'etc' / '90-memory.conf').exists()
    assert live('vm.swappiness') == vm_keys['vm.swappiness']


# ---- precedence ---------------------------------------------------------------

def test_later_file_overrides_at_boot(run_module, vm_keys, tree):
    swappiness = other(vm_keys['vm.swappiness'], 10, 11)
    (tree / 'lib' / '50-distro.conf').write_text('vm.swappiness = 60\n')
    (tree / 'run' / '95-late.conf').write_text('# operator\n\nvm.swappiness = 33\n')
    (tree / 'sysctl.conf').write_text('vm.dirty_ratio=40\n')
    args = dict(paths(tree), name='memory', profile={'vm.swappiness': swappiness,
                                                     'vm.dirty_ratio': vm_keys['vm.dirty_ratio']})
    warned = run_module(MODULE, args, check=True).result
    assert warned['overrides'] == [
        {'key': 'vm.swappiness', 'file': str(tree / 'run' / '95-late.conf'), 'line': 3,
         'value': '33', 'wanted': swappiness},
        {'key': 'vm.dirty_ratio', 'file': str(tree / 'sysctl.conf'), 'line': 1, 'value': '40',
         'wanted': vm_keys['vm.dirty_ratio']}]
    assert any('95-late.conf:3 sets vm.swappiness = 33' in w for w in warned['warnings'])
    assert warned['keys']['vm.swappiness']['boot']['value'] == '33'

    failed = run_module(MODULE, dict(args, on_conflict='fail')).result
    assert failed['failed'] is True
    assert '%s:3 sets vm.swappiness = 33' % (tree / 'run' / '95-late.conf') in failed['msg']
    assert live('vm.swappiness') == vm_keys['vm.swappiness']
    assert not (tree / 'etc' / '90-memory.conf').exists()

    # raise the priority above the later file: only /etc/sysctl.conf still overrides
    raised = run_module(MODULE, dict(args, priority=97, on_conflict='ignore'), check=True).result
    assert [o['key'] for o in raised['overrides']] == ['vm.dirty_ratio']


def test_masked_dropin(run_module, vm_keys, tree):
    (tree / 'etc' / '90-memory.conf').symlink_to('/dev/null')
    result = run_module(MODULE, dict(paths(tree), dropin_dir=str(tree / 'lib'), name='memory',
                                     on_conflict='fail',
                                     profile={'vm.swappiness': vm_keys['vm.swappiness']})).result
    assert result['failed'] is True
    assert '%s masks the drop-in' % (tree / 'etc' / '90-memory.conf') in result['msg']


# ---- net.* inside a network namespace -------------------------------------------

def test_network_profile_in_namespace(run_play, netns, tree):
    profile = {'net.core.somaxconn': 65535, 'net.ipv4.tcp_max_syn_backlog': 8192,
               'net.ipv4.tcp_fin_timeout': 15, 'net.ipv4.tcp_tw_reuse': 1,
               'net.ipv4.tcp_keepalive_time': 300, 'net.ipv4.tcp_keepalive_probes': 3,
               'net.ipv4.tcp_keepalive_intvl': 30,
               'net.ipv4.tcp_rmem': '4096   87380\t16777216'}
    host_somaxconn = live('net.core.somaxconn')
    args = dict(paths(tree), name='network', profile=profile)
    run = run_play([in_netns(netns, args), in_netns(netns, args)])
    first, second = run.results
    assert first['changed'] is True, run
    assert second['changed'] is False, run
    assert netns['read']('net.core.somaxconn') == '65535'
    assert netns['read']('net.ipv4.tcp_rmem') == '4096 87380 16777216'
    assert live('net.core.somaxconn') == host_somaxconn
    assert 'net.ipv4.tcp_rmem = 4096 87380 16777216' in (tree / 'etc' / '90-network.conf').read_text()


def test_key_read_only_in_namespace(run_play, netns, tree):
    """net.core.rmem_max is per-namespace but only the host may set it."""
    before = netns['read']('net.core.rmem_max')
    run = run_play([in_netns(netns, dict(paths(tree), name='tcp', profile={
        'net.core.somaxconn': 1000, 'net.core.rmem_max': 16777216}))])
    assert run.result['failed'] is True
    assert 'net.core.rmem_max cannot be written here' in run.result['msg']
    assert netns['read']('net.core.somaxconn') != '1000'
    assert netns['read']('net.core.rmem_max') == before
