# -*- coding: utf-8 -*-
"""Unit tests of plugins/module_utils/sysctl.py: names, values, the sysctl.d
precedence (on a temporary tree) and the plan.  /proc/sys is a fake tree here;
the integration tests use the real one."""

import os

import pytest

from ansible_collections.runbook.ops.plugins.module_utils.sysctl import (
    SysctlError, apply_live, check_value, config_files, find_overrides, key_path, masking,
    normalize_key, normalize_value, parse_conf, parse_profile, plan, read_live, render_conf,
)


def test_normalize_key_dots_and_slashes():
    assert normalize_key('net.core.somaxconn') == 'net.core.somaxconn'
    assert normalize_key('net/core/somaxconn') == 'net.core.somaxconn'
    assert normalize_key('net/ipv4/conf/eth0.100/rp_filter') == 'net.ipv4.conf.eth0/100.rp_filter'
    assert key_path('net.ipv4.conf.eth0/100.rp_filter', '/p') == '/p/net/ipv4/conf/eth0.100/rp_filter'


def test_normalize_value():
    assert normalize_value('4096   87380\t16777216 ') == '4096 87380 16777216'
    assert normalize_value(True) == '1'
    assert normalize_value(False) == '0'
    assert normalize_value(65535) == '65535'
    assert normalize_value([4096, 87380, 16777216]) == '4096 87380 16777216'


@pytest.mark.parametrize('key', ['', 'net..core', 'net.*.x', 'a b', '-net.core.x', 'k=v'])
def test_bad_key_names(key):
    with pytest.raises(SysctlError, match='not a kernel parameter name'):
        parse_profile({key: 1})


def test_parse_profile_policies_and_errors():
    entries = parse_profile({'vm.swappiness': 10, 'x.y': {'value': 1, 'missing': 'skip'}}, 'warn')
    assert entries == [('vm.swappiness', '10', 'warn'), ('x.y', '1', 'skip')]
    with pytest.raises(SysctlError) as info:
        parse_profile({'a.b': {'value': 1, 'missing': 'maybe'}, 'c.d': '', 'e.f': {'val': 1}})
    message = str(info.value)
    assert 'a.b: missing must be one of' in message
    assert 'c.d: give a non-empty' in message
    assert 'e.f: give a value' in message
    with pytest.raises(SysctlError, match='given twice'):
        parse_profile({'net.core.somaxconn': 1, 'net/core/somaxconn': 2})
    with pytest.raises(SysctlError, match='empty'):
        parse_profile({})


def test_check_value_numeric_keys():
    assert check_value('vm.swappiness', '10', '60') == '10'
    with pytest.raises(SysctlError, match='numeric.*give an integer'):
        check_value('vm.swappiness', 'ten', '60')
    with pytest.raises(SysctlError, match='takes 3 integer'):
        check_value('net.ipv4.tcp_rmem', '4096 87380', '4096 131072 6291456')
    # a string key takes a string
    assert check_value('net.ipv4.tcp_congestion_control', 'bbr', 'cubic') == 'bbr'


def test_parse_and_render_conf():
    text = ('# comment\n; other\n\nvm.swappiness=10\n -net.x.y = 1  2 \nbad line\n'
            'net/ipv4/tcp_fin_timeout = 15\n!net.ipv4.conf.lo.rp_filter\n')
    assert parse_conf(text) == [(4, 'vm.swappiness', '10', False), (5, 'net.x.y', '1 2', True),
                                (7, 'net.ipv4.tcp_fin_timeout', '15', False)]
    rendered = render_conf([('vm.swappiness', '10', 'fail'), ('x.y', '1', 'warn')], 'mem')
    assert parse_conf(rendered) == [(2, 'vm.swappiness', '10', False), (3, 'x.y', '1', True)]


@pytest.fixture
def tree(tmp_path):
    """etc/ run/ lib/ sysctl.d directories and a sysctl.conf."""
    dirs = [tmp_path / name for name in ('etc', 'run', 'lib')]
    for directory in dirs:
        directory.mkdir()
    return tmp_path, [str(d) for d in dirs]


def test_config_files_order_and_masking(tree):
    root, dirs = tree
    (root / 'lib' / '50-default.conf').write_text('vm.swappiness = 60\n')
    (root / 'lib' / '90-mem.conf').write_text('vm.swappiness = 1\n')
    (root / 'run' / '10-early.conf').write_text('vm.swappiness = 5\n')
    (root / 'etc' / '99-late.conf').write_text('vm.swappiness = 30\n')
    (root / 'etc' / 'README').write_text('not a conf file\n')
    (root / 'sysctl.conf').write_text('vm.dirty_ratio = 40\n')
    dropin = str(root / 'etc' / '90-mem.conf')
    files, masked = config_files(dirs, str(root / 'sysctl.conf'), extra=dropin)
    assert [f['path'] for f in files] == [
        str(root / 'run' / '10-early.conf'), str(root / 'lib' / '50-default.conf'), dropin,
        str(root / 'etc' / '99-late.conf'), str(root / 'sysctl.conf')]
    assert masked == [{'path': str(root / 'lib' / '90-mem.conf'), 'name': '90-mem.conf',
                       'dir': dirs[2], 'masked_by': dropin}]
    entries = [('vm.swappiness', '10', 'fail'), ('vm.dirty_ratio', '15', 'fail')]
    texts = dict((f['path'], open(f['path']).read()) for f in files if f['path'] != dropin)
    texts[dropin] = render_conf(entries, 'mem')
    overrides, boot = find_overrides(entries, dropin, files, texts)
    assert overrides == [
        {'key': 'vm.swappiness', 'file': str(root / 'etc' / '99-late.conf'), 'line': 1,
         'value': '30', 'wanted': '10'},
        {'key': 'vm.dirty_ratio', 'file': str(root / 'sysctl.conf'), 'line': 1, 'value': '40',
         'wanted': '15'}]
    assert boot['vm.swappiness']['value'] == '30'
    assert masking(dropin, masked) is None


def test_dropin_masked_by_earlier_dir_and_globs(tree):
    root, dirs = tree
    (root / 'etc' / '90-mem.conf').symlink_to('/dev/null')
    (root / 'run' / '95-glob.conf').write_text('net.ipv4.conf.*.rp_filter = 2\n')
    dropin = str(root / 'lib' / '90-mem.conf')
    files, masked = config_files(dirs, str(root / 'absent.conf'), extra=dropin)
    assert masking(dropin, masked) == str(root / 'etc' / '90-mem.conf')
    assert dropin not in [f['path'] for f in files]
    entries = [('net.ipv4.conf.lo.rp_filter', '1', 'fail')]
    texts = {str(root / 'run' / '95-glob.conf'): 'net.ipv4.conf.*.rp_filter = 2\n'}
    # the masked drop-in never applies, so the glob is not "after" it: no override but
    # the boot value comes from the glob
    overrides, boot = find_overrides(entries, dropin, files, texts)
    assert boot['net.ipv4.conf.lo.rp_filter']['value'] == '2'


def test_same_value_later_is_no_override(tree):
    root, dirs = tree
    (root / 'etc' / '99-same.conf').write_text('net.ipv4.tcp_rmem = 4096\t87380   16777216\n')
    dropin = str(root / 'etc' / '60-net.conf')
    files, _masked = config_files(dirs, None, extra=dropin)
    entries = [('net.ipv4.tcp_rmem', '4096 87380 16777216', 'fail')]
    texts = {str(root / 'etc' / '99-same.conf'): (root / 'etc' / '99-same.conf').read_text(),
             dropin: render_conf(entries, 'net')}
    overrides, boot = find_overrides(entries, dropin, files, texts)
    assert overrides == []
    assert boot['net.ipv4.tcp_rmem']['file'].endswith('99-same.conf')


def test_merged_usr_dirs_are_read_once(tmp_path):
    (tmp_path / 'usr').mkdir()
    (tmp_path / 'usr' / '50-x.conf').write_text('a.b = 1\n')
    (tmp_path / 'lib').symlink_to(tmp_path / 'usr')
    files, masked = config_files([str(tmp_path / 'usr'), str(tmp_path / 'lib')], None)
    assert len(files) == 1 and masked == []


def test_plan_policies_and_drift():
    entries = [('vm.swappiness', '10', 'fail'), ('vm.dirty_ratio', '15', 'fail'),
               ('x.warn', '1', 'warn'), ('x.skip', '1', 'skip'), ('x.fail', '1', 'fail')]
    live = {'vm.swappiness': '60', 'vm.dirty_ratio': '15', 'x.warn': None, 'x.skip': None,
            'x.fail': None}
    keep, to_set, skipped, warnings, errors, drift = plan(entries, live, {'vm.swappiness': '10'})
    assert [k for k, _v, _m in keep] == ['vm.swappiness', 'vm.dirty_ratio', 'x.warn']
    assert to_set == [('vm.swappiness', '60', '10')]
    assert skipped == ['x.skip']
    assert len(warnings) == 1 and 'x.warn' in warnings[0]
    assert len(errors) == 1 and 'x.fail does not exist' in errors[0]
    assert drift == [{'key': 'vm.swappiness', 'live': '60', 'persisted': '10'}]


@pytest.fixture
def fake_proc(tmp_path):
    """A directory standing in for /proc/sys (plain files: no EINVAL here)."""
    (tmp_path / 'vm').mkdir()
    for name, value in (('a', '1'), ('b', '2'), ('c', '3')):
        (tmp_path / 'vm' / name).write_text(value + '\n')
    return str(tmp_path)


def test_apply_live_rolls_back_on_failure(fake_proc):
    os.mkdir(os.path.join(fake_proc, 'vm', 'd'))  # writing to a directory fails
    with pytest.raises(SysctlError) as info:
        apply_live([('vm.a', '1', '10'), ('vm.b', '2', '20'), ('vm.d', 'x', '4')], fake_proc)
    assert 'rolled back vm.a, vm.b' in str(info.value)
    assert read_live('vm.a', fake_proc) == '1'
    assert read_live('vm.b', fake_proc) == '2'


def test_apply_live_and_read_missing(fake_proc):
    assert apply_live([('vm.c', '3', '30')], fake_proc) == ['vm.c']
    assert read_live('vm.c', fake_proc) == '30'
    assert read_live('vm.nope', fake_proc) is None
    with pytest.raises(SysctlError, match='directory of parameters'):
        read_live('vm', fake_proc)
