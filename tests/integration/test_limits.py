# -*- coding: utf-8 -*-
"""runbook.ops.limits_dropin through ansible-playbook.  Most tests write into a temporary
drop-in directory; one writes a real /etc/security/limits.d file for a throwaway system
user and proves through runuser (whose PAM stack runs pam_limits here) that a new
session gets the limits.  Both are removed afterwards."""

import os
import subprocess
import uuid

import pytest

MODULE = 'runbook.ops.limits_dropin'
LOGCASTER = [{'domain': 'logcaster', 'item': 'nofile', 'value': 65535},
             {'domain': 'logcaster', 'item': 'nproc', 'value': 32768}]


@pytest.fixture
def dirs(tmp_path):
    (tmp_path / 'limits.d').mkdir()
    (tmp_path / 'limits.conf').write_text('# main file\n*  soft  core  0\n'
                                          'logcaster  soft  nofile  1024  # old setting\n')
    return {'dropin_dir': str(tmp_path / 'limits.d'), 'limits_conf': str(tmp_path / 'limits.conf')}


def test_write_check_idempotent_and_others(run_module, dirs):
    args = dict(dirs, name='logcaster', limits=LOGCASTER)
    path = os.path.join(dirs['dropin_dir'], 'logcaster.conf')
    checked = run_module(MODULE, args, check=True, diff=True).result
    assert checked['changed'] is True, checked
    assert not os.path.exists(path)
    assert 'logcaster        -     nofile     65535' in checked['diff']['after']

    applied = run_module(MODULE, args).result
    assert applied['changed'] is True
    assert applied['others'] == [{'file': dirs['limits_conf'], 'line': 3, 'domain': 'logcaster',
                                  'type': 'soft', 'item': 'nofile', 'value': '1024',
                                  'wanted': '65535'}]
    assert any('limits.conf:3 also sets logcaster soft nofile = 1024' in w
               for w in applied['warnings'])
    assert oct(os.stat(path).st_mode & 0o777) == '0o644'
    assert run_module(MODULE, args).result['changed'] is False

    removed = run_module(MODULE, dict(dirs, name='logcaster', state='absent')).result
    assert removed['changed'] is True and not os.path.exists(path)


@pytest.mark.parametrize('limits, expected', [
    ([{'domain': 'svc', 'item': 'nofiles', 'value': 1}], "unknown item 'nofiles'"),
    ([{'domain': 'svc', 'item': 'nofile', 'value': 'lots'}], 'nofile takes a whole number'),
    ([{'domain': 'svc', 'item': 'nofile', 'value': 99999999}], 'above fs.nr_open'),
    ([{'domain': 'svc', 'item': 'nproc', 'value': 10, 'type': 'soft'},
      {'domain': 'svc', 'item': 'nproc', 'value': 5, 'type': 'hard'}], 'soft nproc 10 is above its hard limit 5'),
    ([{'domain': 'svc', 'item': 'nproc', 'value': 10, 'type': 'both'}], 'type is soft, hard or -'),
    ([{'domain': 'svc', 'item': 'nproc'}], 'missing value'),
])
def test_bad_input_writes_nothing(run_module, dirs, limits, expected):
    result = run_module(MODULE, dict(dirs, name='svc', limits=limits)).result
    assert result['failed'] is True
    assert expected in result['msg'], result['msg']
    assert os.listdir(dirs['dropin_dir']) == []


@pytest.mark.skipif(os.geteuid() != 0, reason='creates a system user and a real limits.d file')
def test_real_pam_session_gets_the_limits(run_module):
    user = 'rbt%s' % uuid.uuid4().hex[:8]
    name = 'runbook-test-%s' % user
    subprocess.run(['useradd', '--system', '--no-create-home', '--shell', '/bin/sh', user], check=True)
    try:
        result = run_module(MODULE, {'name': name, 'limits': [
            # below this machine's hard nofile (20000): without CAP_SYS_RESOURCE here,
            # pam_limits cannot raise a hard limit and skips it silently
            {'domain': user, 'item': 'nofile', 'value': 4096, 'type': 'soft'},
            {'domain': user, 'item': 'nofile', 'value': 8192, 'type': 'hard'},
            {'domain': user, 'item': 'nproc', 'value': 32768, 'type': 'hard'},
            {'domain': user, 'item': 'nproc', 'value': 4096, 'type': 'soft'}]}).result
        assert result['changed'] is True, result
        out = subprocess.run(['runuser', '-u', user, '--', 'bash', '-c',
                              'ulimit -Sn; ulimit -Hn; ulimit -Su; ulimit -Hu'], check=True,
                             stdout=subprocess.PIPE, universal_newlines=True).stdout
        assert out.split() == ['4096', '8192', '4096', '32768']
    finally:
        path = '/etc/security/limits.d/%s.conf' % name
        if os.path.exists(path):
            os.unlink(path)
        subprocess.run(['userdel', user], check=True)
