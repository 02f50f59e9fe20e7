# -*- coding: utf-8 -*-
"""disk, memory, cpu, process, file_freshness, command and systemd_unit probes through
ansible-playbook on this machine: real filesystems, /proc, processes, files with
mtimes set by os.utime, and real commands."""

import os
import re
import shutil
import subprocess
import textwrap

import pytest


# ---- disk, memory, cpu ----------------------------------------------------------------

@pytest.fixture(scope='module')
def resources_run(run_probes, state_dir):
    path = str(state_dir)
    never = {'warning': 100, 'critical': 100}  # a percentage is never above 100
    return run_probes([
        {'name': 'disk-ok', 'kind': 'disk', 'paths': [path], 'warning': 100, 'critical': 100,
         'thresholds': {'inodes': never}},
        # any real filesystem holding files uses more than 0.001 %
        {'name': 'disk-warning', 'kind': 'disk', 'paths': [path], 'warning': 0.001,
         'critical': 100, 'thresholds': {'inodes': never}},
        {'name': 'disk-critical', 'kind': 'disk', 'paths': [path], 'warning': 0.001,
         'critical': 0.001, 'thresholds': {'inodes': never}},
        {'name': 'disk-free', 'kind': 'disk', 'paths': [path], 'warning': 100,
         'critical': 100, 'thresholds': {'inodes': never,
                                         'free': {'warning': 1000000, 'critical': 0}}},
        {'name': 'disk-missing', 'kind': 'disk', 'paths': ['/nonexistent/runbook-ops']},
        {'name': 'disk-mounts', 'kind': 'disk', 'warning': 100, 'critical': 100,
         'thresholds': {'inodes': never}},
        {'name': 'memory-ok', 'kind': 'memory', 'warning': 100, 'critical': 100},
        {'name': 'memory-warning', 'kind': 'memory', 'warning': 0, 'critical': 100},
        {'name': 'memory-critical', 'kind': 'memory', 'warning': 0, 'critical': 0},
    ], fail_on_critical=False)


def test_disk_ok_warning_critical(resources_run, state_dir):
    path = str(state_dir)
    ok = resources_run.check('disk-ok[%s]' % path)
    assert ok['status'] == 'ok'
    assert ok['kind'] == 'disk' and ok['unit'] == '%'
    assert 0 < ok['value'] <= 100
    assert 'disk usage of %s is' % path in ok['message']
    assert 'warning > 100 %, critical > 100 %' in ok['message']
    assert ok['details']['free_gib'] >= 0
    warning = resources_run.check('disk-warning[%s]' % path)
    assert warning['status'] == 'warning'
    assert 'warning > 0.001 %' in warning['message'] or 'warning > 0.00 %' in warning['message']
    assert resources_run.check('disk-critical[%s]' % path)['status'] == 'critical'


def test_disk_inodes_and_free_space(resources_run, state_dir):
    path = str(state_dir)
    inodes = resources_run.checks.get('disk-ok[%s].inodes' % path)
    if inodes is not None:  # filesystems without inode counts give none
        assert inodes['status'] == 'ok' and inodes['unit'] == '%'
        assert 'inode usage of %s' % path in inodes['message']
    free = resources_run.check('disk-free[%s].free' % path)
    assert free['status'] == 'warning'  # fewer than a million GiB free
    assert free['unit'] == 'GiB'
    assert free['value'] == resources_run.check('disk-free[%s]' % path)['details']['free_gib']
    assert 'free space on %s' % path in free['message']
    assert 'warning < 1000000 GiB' in free['message']
    assert 'disk-ok[%s].free' % path not in resources_run.checks  # no thresholds, no check


def test_disk_missing_path_is_unknown(resources_run):
    check = resources_run.check('disk-missing[/nonexistent/runbook-ops]')
    assert check['status'] == 'unknown'
    assert 'cannot stat /nonexistent/runbook-ops' in check['message']


def test_disk_defaults_to_every_real_mount(resources_run):
    names = [name for name in resources_run.checks if name.startswith('disk-mounts[')]
    assert 'disk-mounts[/]' in names
    assert not [name for name in names if name.startswith(('disk-mounts[/proc', 'disk-mounts[/sys'))]
    assert resources_run.check('disk-mounts[/]')['status'] == 'ok'


def test_memory_thresholds(resources_run):
    ok = resources_run.check('memory-ok')
    assert ok['status'] == 'ok'
    assert ok['unit'] == '%' and 0 < ok['value'] < 100
    assert 'memory usage' in ok['message']
    assert 'warning > 100 %, critical > 100 %' in ok['message']
    assert ok['details']['memtotal'] > 0
    assert resources_run.check('memory-warning')['status'] == 'warning'
    critical = resources_run.check('memory-critical')
    assert critical['status'] == 'critical'
    assert 'critical > 0 %' in critical['message']


def test_cpu_thresholds(run_probes, busy_cpu):
    """A process spinning on one core keeps the sampled CPU usage above 0 %."""
    load = {'load': {'warning': 100000, 'critical': 100000}}
    run = run_probes([
        {'name': 'cpu-ok', 'kind': 'cpu', 'sample_seconds': 0.3, 'warning': 100,
         'critical': 100, 'thresholds': load},
        {'name': 'cpu-warning', 'kind': 'cpu', 'sample_seconds': 0.3, 'warning': 0,
         'critical': 100, 'thresholds': load},
        {'name': 'cpu-critical', 'kind': 'cpu', 'sample_seconds': 0.3, 'warning': 0,
         'critical': 0, 'thresholds': load},
        {'name': 'cpu-load', 'kind': 'cpu', 'sample_seconds': 0.3,
         'thresholds': {'load': {'warning': 0, 'critical': 100000}}},
    ], fail_on_critical=False)
    ok = run.check('cpu-ok')
    assert ok['status'] == 'ok'
    assert ok['unit'] == '%' and 0 < ok['value'] <= 100
    assert 'CPU usage over 0.30s' in ok['message']
    assert 'warning > 100 %, critical > 100 %' in ok['message']
    assert run.check('cpu-warning')['status'] == 'warning'
    assert run.check('cpu-critical')['status'] == 'critical'
    load_ok = run.check('cpu-ok.load')
    assert load_ok['status'] == 'ok'
    assert load_ok['unit'] == 'per core'
    assert load_ok['details']['cores'] >= 1
    assert 'load average' in load_ok['message']
    load_warning = run.check('cpu-load.load')
    # the spinning process keeps the 1-minute load above 0 once it has run a while;
    # right after it starts the load may still read 0.00
    assert load_warning['status'] in ('warning', 'ok')
    if load_warning['value'] > 0:
        assert load_warning['status'] == 'warning'
    # usage has its default thresholds 80/95 when none are given
    assert (run.check('cpu-load')['warning'], run.check('cpu-load')['critical']) == (80, 95)


# ---- process ------------------------------------------------------------------------------

@pytest.fixture
def stale_pid():
    """The pid of a process that has exited and been reaped."""
    process = subprocess.Popen(['true'])
    process.wait()
    return process.pid


@pytest.fixture
def long_named_process(tmp_path):
    """`sleep` copied to a name longer than the 15 characters of /proc/<pid>/comm."""
    binary = tmp_path / 'runbook-long-sleeper-name'
    shutil.copy(shutil.which('sleep'), str(binary))
    process = subprocess.Popen([str(binary), '300'])
    yield process
    process.kill()
    process.wait()


def test_process_probes(run_probes, sleeper, stale_pid, work_dir, long_named_process):
    process, marker = sleeper
    pattern = '^sleep %s$' % re.escape(marker)
    live = work_dir / 'sleeper.pid'
    live.write_text('%d\n' % process.pid)
    stale = work_dir / 'stale.pid'
    stale.write_text('%d\n' % stale_pid)
    garbage = work_dir / 'garbage.pid'
    garbage.write_text('not a pid\n')
    run = run_probes([
        {'name': 'by-name', 'kind': 'process', 'process_name': 'sleep'},
        {'name': 'by-pattern', 'kind': 'process', 'cmdline_pattern': pattern},
        {'name': 'by-pattern-warning', 'kind': 'process', 'cmdline_pattern': pattern,
         'warning': 2, 'critical': 1},
        {'name': 'by-pattern-critical', 'kind': 'process', 'cmdline_pattern': pattern,
         'critical': 2},
        {'name': 'absent', 'kind': 'process', 'process_name': 'no-such-daemon'},
        {'name': 'long-name', 'kind': 'process', 'process_name': 'runbook-long-sleeper-name'},
        {'name': 'pidfile', 'kind': 'process', 'pidfile': str(live)},
        {'name': 'pidfile-stale', 'kind': 'process', 'pidfile': str(stale)},
        {'name': 'pidfile-missing', 'kind': 'process', 'pidfile': str(work_dir / 'none.pid')},
        {'name': 'pidfile-garbage', 'kind': 'process', 'pidfile': str(garbage)},
    ], fail_on_critical=False)

    by_name = run.check('by-name')
    assert by_name['status'] == 'ok'
    assert by_name['value'] >= 1
    assert process.pid in by_name['details']['pids']
    assert 'processes named sleep' in by_name['message']
    assert 'critical < 1' in by_name['message']

    by_pattern = run.check('by-pattern')
    assert by_pattern['status'] == 'ok'
    assert by_pattern['value'] == 1
    assert by_pattern['details']['pids'] == [process.pid]
    assert 'processes matching /%s/' % pattern in by_pattern['message']
    warning = run.check('by-pattern-warning')
    assert warning['status'] == 'warning'
    assert 'warning < 2, critical < 1' in warning['message']
    assert run.check('by-pattern-critical')['status'] == 'critical'

    absent = run.check('absent')
    assert absent['status'] == 'critical'
    assert absent['value'] == 0
    assert 'processes named no-such-daemon is 0' in absent['message']

    long_name = run.check('long-name')
    assert long_name['status'] == 'ok'
    assert long_name['details']['pids'] == [long_named_process.pid]

    pidfile = run.check('pidfile')
    assert pidfile['status'] == 'ok'
    assert pidfile['value'] == 1
    assert 'pidfile %s (pid %d)' % (live, process.pid) in pidfile['message']
    stale_check = run.check('pidfile-stale')
    assert stale_check['status'] == 'critical'
    assert stale_check['value'] == 0
    assert '(pid %d)' % stale_pid in stale_check['message']
    missing = run.check('pidfile-missing')
    assert missing['status'] == 'critical'
    assert 'cannot be read' in missing['message']
    assert run.check('pidfile-garbage')['status'] == 'critical'
    assert 'not a process id' in run.check('pidfile-garbage')['message']


# ---- file_freshness ---------------------------------------------------------------------

@pytest.fixture(scope='module')
def freshness_run(run_probes, file_tree):
    root = str(file_tree)
    limits = {'warning': '25h', 'critical': '49h'}
    return run_probes([
        dict(limits, name='fresh', kind='file_freshness', path=root + '/fresh/*.dump'),
        dict(limits, name='stale', kind='file_freshness', path=root + '/stale/*.dump'),
        dict(limits, name='old', kind='file_freshness', path=root + '/old/*.dump'),
        dict(limits, name='newest-anywhere', kind='file_freshness', path=root + '/**/*.dump'),
        {'name': 'deep', 'kind': 'file_freshness', 'path': root + '/deep/**/*.dump',
         'warning': '90m', 'critical': '1d'},
        {'name': 'seconds', 'kind': 'file_freshness', 'path': root + '/fresh/*.dump',
         'warning': 1800, 'critical': 3000},
        dict(limits, name='nothing', kind='file_freshness', path=root + '/empty/*.dump'),
        # '**' matches old/ itself too; a directory's mtime must not count as a file's
        dict(limits, name='dir-glob', kind='file_freshness', path=root + '/old/**'),
        dict(limits, name='only-a-dir', kind='file_freshness', path=root + '/empty'),
    ], fail_on_critical=False)


# The file tree is made once per session, so a file set to 1 h old may be a little
# older by the time a probe looks at it; each case is far from its thresholds.
SLACK = 1800


def test_file_freshness_ok(freshness_run, file_tree):
    path = file_tree / 'fresh' / 'a.dump'
    check = freshness_run.check('fresh')
    assert check['status'] == 'ok'
    assert check['unit'] == 's'
    assert 3600 <= check['value'] < 3600 + SLACK
    assert (check['warning'], check['critical']) == (25 * 3600, 49 * 3600)
    assert check['details']['path'] == str(path)
    assert check['details']['mtime'] == path.stat().st_mtime
    assert re.search(r'^newest file %s is 1h\d+m old ' % re.escape(str(path)), check['message'])
    assert 'warning > 1d1h, critical > 2d1h' in check['message']


def test_file_freshness_warning_and_critical(freshness_run, file_tree):
    stale = freshness_run.check('stale')
    assert stale['status'] == 'warning'
    assert 26 * 3600 <= stale['value'] < 26 * 3600 + SLACK
    assert 'b.dump is 1d2h old' in stale['message']
    old = freshness_run.check('old')
    assert old['status'] == 'critical'
    assert 50 * 3600 <= old['value'] < 50 * 3600 + SLACK
    assert 'c.dump is 2d2h old' in old['message']
    seconds = freshness_run.check('seconds')
    assert seconds['status'] == 'critical'
    assert 'warning > 30m0s, critical > 50m0s' in seconds['message']


def test_file_freshness_globs(freshness_run, file_tree):
    newest = freshness_run.check('newest-anywhere')
    assert newest['status'] == 'ok'
    assert newest['details']['path'] == str(file_tree / 'fresh' / 'a.dump')
    deep = freshness_run.check('deep')
    assert deep['status'] == 'warning'  # 2 h against 90 min
    assert deep['details']['path'] == str(file_tree / 'deep' / 'x' / 'y' / 'z.dump')
    assert (deep['warning'], deep['critical']) == (5400, 86400)


def test_file_freshness_no_match_is_critical(freshness_run, file_tree):
    check = freshness_run.check('nothing')
    assert check['status'] == 'critical'
    assert check['value'] is None
    assert 'no file matches %s/empty/*.dump' % file_tree in check['message']


def test_file_freshness_ignores_directories(freshness_run, file_tree):
    """old/ was just created (its mtime is now) but holds only a 50 h old file."""
    check = freshness_run.check('dir-glob')
    assert check['status'] == 'critical', check
    assert check['details']['path'] == str(file_tree / 'old' / 'c.dump')
    only_dir = freshness_run.check('only-a-dir')
    assert only_dir['status'] == 'critical'
    assert 'no file matches %s/empty' % file_tree in only_dir['message']


# ---- command -----------------------------------------------------------------------------

def test_command_probes(run_probes):
    run = run_probes([
        {'name': 'cmd-ok', 'kind': 'command', 'command': ['true']},
        {'name': 'cmd-warning', 'kind': 'command', 'warning_rc': [1],
         'command': ['sh', '-c', 'echo queue depth 150; exit 1']},
        {'name': 'cmd-critical', 'kind': 'command', 'command': 'false'},
        {'name': 'cmd-rc', 'kind': 'command', 'command': "sh -c 'exit 3'",
         'expected_rc': [0, 3]},
        {'name': 'cmd-pattern', 'kind': 'command', 'command': ['echo', 'replication OK'],
         'pattern': 'OK$'},
        {'name': 'cmd-pattern-fail', 'kind': 'command',
         'command': ['echo', 'replication BROKEN'], 'pattern': 'OK$'},
        {'name': 'cmd-stderr', 'kind': 'command', 'pattern': 'ready',
         'command': ['sh', '-c', 'echo ready >&2']},
        {'name': 'cmd-timeout', 'kind': 'command', 'command': ['sleep', '30'], 'timeout': 0.5},
        {'name': 'cmd-timeout-unknown', 'kind': 'command', 'command': ['sleep', '30'],
         'timeout': 0.5, 'on_unreachable': 'unknown'},
        {'name': 'cmd-missing', 'kind': 'command', 'command': ['/nonexistent/check_queue']},
    ], fail_on_critical=False)
    ok = run.check('cmd-ok')
    assert ok['status'] == 'ok' and ok['value'] == 0
    assert ok['message'] == 'true exited 0'
    warning = run.check('cmd-warning')
    assert warning['status'] == 'warning' and warning['value'] == 1
    assert 'exited 1 (warning exit codes [1])' in warning['message']
    assert warning['message'].endswith(': queue depth 150')
    assert warning['details']['output'] == 'queue depth 150\n'
    critical = run.check('cmd-critical')
    assert critical['status'] == 'critical' and critical['value'] == 1
    assert 'false exited 1 (expected [0])' in critical['message']
    assert run.check('cmd-rc')['status'] == 'ok' and run.check('cmd-rc')['value'] == 3
    assert run.check('cmd-pattern')['status'] == 'ok'
    pattern_fail = run.check('cmd-pattern-fail')
    assert pattern_fail['status'] == 'critical'
    assert 'output does not match /OK$/' in pattern_fail['message']
    assert run.check('cmd-stderr')['status'] == 'ok'
    timeout = run.check('cmd-timeout')
    assert timeout['status'] == 'critical'
    assert timeout['details'] == {'unreachable': True}
    assert 'command sleep did not finish within' in timeout['message']
    assert run.check('cmd-timeout-unknown')['status'] == 'unknown'
    missing = run.check('cmd-missing')
    assert missing['status'] == 'unknown'
    assert 'cannot run /nonexistent/check_queue' in missing['message']


# ---- systemd_unit --------------------------------------------------------------------

FAKE_SYSTEMCTL = textwrap.dedent('''\
    #!/bin/sh
    # A stand-in for systemctl: systemd is not PID 1 on the test machine, so real
    # units cannot run here. It answers `systemctl show` for a few made-up units.
    echo "$*" >> "$(dirname "$0")/calls.log"
    unit=""
    for arg in "$@"; do unit="$arg"; done
    show() { printf 'LoadState=%s\\nActiveState=%s\\nSubState=%s\\n' "$1" "$2" "$3"; }
    case "$unit" in
      good.service) show loaded active running ;;
      starting.service) show loaded activating start ;;
      failed.service) show loaded failed failed ;;
      stopped.service) show loaded inactive dead ;;
      missing.service) show not-found inactive dead ;;
      *) echo "Failed to connect to bus: No such file or directory" >&2; exit 1 ;;
    esac
    ''')


def test_systemd_unit_probes(run_probes, tmp_path):
    """systemd cannot run in this test environment (it is not PID 1), so a fake
    `systemctl` script first on PATH stands in for it and answers `systemctl show`.
    Real units are tested in Molecule."""
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    fake = bindir / 'systemctl'
    fake.write_text(FAKE_SYSTEMCTL)
    fake.chmod(0o755)
    run = run_probes([
        {'name': 'good', 'kind': 'systemd_unit', 'unit': 'good.service'},
        {'name': 'starting', 'kind': 'systemd_unit', 'unit': 'starting.service'},
        {'name': 'failed', 'kind': 'systemd_unit', 'unit': 'failed.service'},
        {'name': 'stopped', 'kind': 'systemd_unit', 'unit': 'stopped.service'},
        {'name': 'stopped-expected', 'kind': 'systemd_unit', 'unit': 'stopped.service',
         'expected_state': 'inactive'},
        {'name': 'missing', 'kind': 'systemd_unit', 'unit': 'missing.service'},
        {'kind': 'systemd_unit', 'unit': 'nobus.service'},
    ], fail_on_critical=False, env={'PATH': '%s:%s' % (bindir, os.environ['PATH'])})
    calls = (bindir / 'calls.log').read_text().splitlines()
    assert len(calls) == 7
    assert 'show --no-pager --property=LoadState,ActiveState,SubState -- good.service' in calls
    good = run.check('good')
    assert good['status'] == 'ok'
    assert good['value'] == 'active'
    assert good['message'] == 'unit good.service is active (running)'
    assert good['details'] == {'loadstate': 'loaded', 'activestate': 'active',
                               'substate': 'running'}
    starting = run.check('starting')
    assert starting['status'] == 'warning'
    assert 'unit starting.service is activating (start), expected active' in starting['message']
    failed = run.check('failed')
    assert failed['status'] == 'critical'
    assert 'unit failed.service is failed (failed), expected active' in failed['message']
    assert run.check('stopped')['status'] == 'critical'
    assert run.check('stopped-expected')['status'] == 'ok'
    missing = run.check('missing')
    assert missing['status'] == 'critical'
    assert 'unit missing.service is not installed' in missing['message']
    nobus = run.check('unit:nobus.service')
    assert nobus['status'] == 'unknown'
    assert 'Failed to connect to bus' in nobus['message']
