# -*- coding: utf-8 -*-
"""runbook.ops.log_rotate_check through a real ansible-playbook against a real tree
with real mtimes (os.utime), a file held open for writing by a real process, and the
distribution's /usr/sbin/logrotate on the policy it writes."""

import gzip
import os
import subprocess
import time

import pytest

LOGROTATE = '/usr/sbin/logrotate'
DAY = 86400


def make_tree(root):
    """logs/: a.log 8 d old, b.log 1 d, c.log.1 10 d, old.log.2.gz 40 d, d.log.gz 8 d,
    e.log 45 d (uncompressed, past the deletion age), open.log 9 d (held open)."""
    now = time.time()
    logs = root / 'logs'
    (logs / 'sub').mkdir(parents=True)
    ages = {'a.log': 8, 'b.log': 1, 'sub/c.log.1': 10, 'old.log.2.gz': 40, 'd.log.gz': 8,
            'e.log': 45, 'open.log': 9}
    for name, age in ages.items():
        path = logs / name
        if name.endswith('.gz'):
            with gzip.open(str(path), 'wb') as stream:
                stream.write(b'old\n')
        else:
            path.write_text('line %s\n' % name * 100)
        os.chmod(str(path), 0o640)
        os.utime(str(path), (now - age * DAY, now - age * DAY))
    return logs


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path)


@pytest.fixture
def holder(tree):
    """A real process holding logs/open.log open for appending."""
    path = tree / 'open.log'
    mtime = os.stat(str(path)).st_mtime
    process = subprocess.Popen(['sh', '-c', 'exec sleep 600 >> "$0"', str(path)])
    for _attempt in range(100):  # until the shell has opened it
        if any(os.path.realpath('/proc/%d/fd/%s' % (process.pid, fd)) == str(path)
               for fd in os.listdir('/proc/%d/fd' % process.pid)):
            break
        time.sleep(0.05)
    os.utime(str(path), (mtime, mtime))
    yield path
    process.kill()
    process.wait()


def names(entries, key='path'):
    return sorted(os.path.basename(e[key] if isinstance(e, dict) and key else e) for e in entries)


def test_compress_delete_plan_check_mode_and_second_run(run_module, tree, holder):
    args = {'paths': [str(tree)], 'compress_after': '7d', 'delete_after': '30d', 'logrotate_config': [],
            'max_size': '1k', 'max_age': '30d'}
    modes_before = dict((p, os.stat(str(tree / p)).st_mtime) for p in ('a.log', 'sub/c.log.1'))

    check = run_module('runbook.ops.log_rotate_check', args, check=True, diff=True)
    assert check.rc == 0, check
    plan = check.result['plan']
    assert check.result['changed'] is True
    assert names(plan['compress']) == ['a.log', 'c.log.1']
    assert names(plan['delete']) == ['e.log', 'old.log.2.gz']
    assert [(os.path.basename(e['path']), e['reason']) for e in plan['skipped']] == [
        ('open.log', 'open for writing')]
    assert 'a.log' in check.result['diff'][0]['before']
    assert check.result['diff'][0]['after'].count('.gz') == 2
    # check mode changed nothing
    assert sorted(os.listdir(str(tree))) == ['a.log', 'b.log', 'd.log.gz', 'e.log', 'old.log.2.gz',
                                             'open.log', 'sub']
    checks = check.checks
    assert checks['old_files']['value'] == 2 and checks['old_files']['status'] == 'warning'
    assert checks['large_files']['value'] == 5

    run = run_module('runbook.ops.log_rotate_check', args)
    assert run.rc == 0 and run.result['changed'] is True, run
    assert names(run.result['compressed']) == ['a.log.gz', 'c.log.1.gz']
    assert names(run.result['deleted']) == ['e.log', 'old.log.2.gz']
    assert sorted(os.listdir(str(tree))) == ['a.log.gz', 'b.log', 'd.log.gz', 'open.log', 'sub']
    for name in ('a.log', 'sub/c.log.1'):
        info = os.stat(str(tree / (name + '.gz')))
        assert oct(info.st_mode & 0o777) == oct(0o640)
        assert abs(info.st_mtime - modes_before[name]) < 1e-3
        with gzip.open(str(tree / (name + '.gz')), 'rb') as stream:
            assert stream.read() == ('line %s\n' % name * 100).encode()
    assert (tree / 'open.log').exists()

    again = run_module('runbook.ops.log_rotate_check', args)
    assert again.rc == 0 and again.result['changed'] is False, again
    assert again.result['plan']['compress'] == [] and again.result['plan']['delete'] == []


def test_zstd_compression(run_module, tree):
    run = run_module('runbook.ops.log_rotate_check', {
        'paths': [str(tree / 'sub')], 'compress_after': '7d', 'compress_format': 'zstd',
        'logrotate_config': []})
    assert run.rc == 0 and run.result['changed'], run
    dest = tree / 'sub' / 'c.log.1.zst'
    out = subprocess.run(['zstd', '-dc', str(dest)], capture_output=True, check=True).stdout
    assert out == ('line sub/c.log.1\n' * 100).encode()


def test_bad_input_is_refused_before_anything_changes(run_module, tree):
    run = run_module('runbook.ops.log_rotate_check', {
        'paths': [str(tree)], 'compress_after': '30d', 'delete_after': '7d', 'logrotate_config': []})
    assert run.result['failed'] and 'shorter than compress_after' in run.result['msg']
    run = run_module('runbook.ops.log_rotate_check', {'paths': [str(tree)], 'max_size': 'huge',
                                                      'logrotate_config': []})
    assert run.result['failed'] and "'huge' is not a size" in run.result['msg']
    assert (tree / 'a.log').exists() and (tree / 'e.log').exists()


@pytest.mark.skipif(not os.access(LOGROTATE, os.X_OK), reason='logrotate is not installed')
def test_policy_written_validated_and_coverage(run_module, tree, tmp_path):
    confd = tmp_path / 'logrotate.d'
    confd.mkdir()
    (confd / 'other').write_text('%s/b.log {\n    weekly\n}\n' % tree)
    policy = {'dest': str(confd / 'app'), 'paths': ['%s/*.log' % tree],
              'options': ['daily', 'rotate 30', 'compress', 'delaycompress', 'missingok', 'notifempty',
                          'create 644 root root'],
              'postrotate': 'true'}
    # b.log is rotated by 'other' already: refused, nothing written
    clash = run_module('runbook.ops.log_rotate_check', {'logrotate_config': [str(confd)], 'policies': [policy]})
    assert clash.result['failed'] and 'already rotates' in clash.result['msg'], clash
    assert not (confd / 'app').exists()

    (confd / 'other').unlink()
    check = run_module('runbook.ops.log_rotate_check', {'logrotate_config': [str(confd)], 'policies': [policy],
                                                        'paths': [str(tree)]}, check=True, diff=True)
    assert check.result['changed'] and not (confd / 'app').exists(), check
    assert 'rotate 30' in check.result['diff'][-1]['after']

    run = run_module('runbook.ops.log_rotate_check', {'logrotate_config': [str(confd)], 'policies': [policy],
                                                      'paths': [str(tree)]})
    assert run.rc == 0 and run.result['changed'], run
    text = (confd / 'app').read_text()
    assert 'postrotate\n        true\n    endscript' in text
    assert oct(os.stat(str(confd / 'app')).st_mode & 0o777) == oct(0o644)
    # the distribution's logrotate accepts what was written
    debug = subprocess.run([LOGROTATE, '-d', '-s', str(tmp_path / 'state'), str(confd / 'app')],
                           capture_output=True, text=True, check=False)
    assert debug.returncode == 0, debug.stderr
    assert run.check('logrotate_debug')['status'] == 'ok'
    assert run.check('uncovered')['value'] == 0  # every *.log is now covered
    assert run.check('duplicates')['value'] == 0

    again = run_module('runbook.ops.log_rotate_check', {'logrotate_config': [str(confd)], 'policies': [policy]})
    assert again.result['changed'] is False, again

    # a policy logrotate rejects is never written
    bad = dict(policy, dest=str(confd / 'bad'), options=['rotate thirty'])
    refused = run_module('runbook.ops.log_rotate_check', {'logrotate_config': [], 'policies': [bad]})
    assert refused.result['failed'] and 'logrotate -d rejects' in refused.result['msg'], refused
    assert not (confd / 'bad').exists()


@pytest.mark.skipif(not os.access(LOGROTATE, os.X_OK), reason='logrotate is not installed')
def test_duplicates_and_uncovered_are_reported(run_module, tree, tmp_path):
    confd = tmp_path / 'conf'
    confd.mkdir()
    (confd / 'one').write_text('%s/a.log {\n    missingok\n}\n' % tree)
    (confd / 'two').write_text('%s/*.log {\n    missingok\n}\n' % tree)
    run = run_module('runbook.ops.log_rotate_check', {'paths': [str(tree)], 'logrotate_config': [str(confd)]})
    assert run.rc == 0, run
    duplicates = run.check('duplicates')
    assert duplicates['status'] == 'critical' and duplicates['value'] == 1
    assert list(duplicates['details']['files']) == [str(tree / 'a.log')]
    assert run.check('logrotate_debug')['status'] == 'critical'  # logrotate itself refuses it
    (confd / 'two').unlink()
    run = run_module('runbook.ops.log_rotate_check', {'paths': [str(tree)], 'logrotate_config': [str(confd)]})
    uncovered = run.check('uncovered')
    assert names(uncovered['details']['files'], key=None) == ['b.log', 'e.log', 'open.log']


def make_big_tree(root):
    """90 files in three directories with real mtimes: 40 logs to compress (8-29 days), 20
    compressed ones past 30 days and 10 logs past 45 days to delete, 2 logs whose compressed
    name exists (skipped), 18 young logs; returns {action: set of paths}."""
    now = time.time()
    expected = {'compress': set(), 'delete': set(), 'skipped': set(), 'young': set()}
    for index in range(90):
        directory = root / ('d%d' % (index % 3)) / ('e%d' % (index % 2))
        directory.mkdir(parents=True, exist_ok=True)
        if index < 40:
            name, age, action = 'app%02d.log' % index, 8 + index % 22, 'compress'
        elif index < 60:
            name, age, action = 'app%02d.log.1.gz' % index, 31 + index % 20, 'delete'
        elif index < 70:
            name, age, action = 'app%02d.log' % index, 46 + index % 10, 'delete'
        elif index < 72:
            name, age, action = 'app%02d.log' % index, 10, 'skipped'
            (directory / (name + '.gz')).write_bytes(gzip.compress(b'older copy\n'))
            os.utime(str(directory / (name + '.gz')), (now - DAY, now - DAY))
        else:
            name, age, action = 'app%02d.log' % index, index % 7, 'young'
        path = directory / name
        if name.endswith('.gz'):
            path.write_bytes(gzip.compress(b'rotated %d\n' % index))
        else:
            path.write_text('line %d\n' % index * (index + 1))
        os.utime(str(path), (now - age * DAY, now - age * DAY))
        expected[action].add(str(path))
    return expected


def test_plan_over_the_list_limit_counts_all_lists_some_and_acts_on_all(run_module, tmp_path):
    logs = tmp_path / 'big'
    expected = make_big_tree(logs)
    sizes = dict((p, os.path.getsize(p)) for paths in expected.values() for p in paths)
    args = {'paths': [str(logs)], 'compress_after': '7d', 'delete_after': '30d', 'logrotate_config': [],
            'max_age': '7d', 'list_limit': 5}

    check = run_module('runbook.ops.log_rotate_check', args, check=True, diff=True)
    assert check.rc == 0 and check.result['changed'] is True, check
    plan = check.result['plan']
    # exact counts and bytes of every planned file; the lists carry the first 5 in path order
    assert plan['counts'] == {'compress': 40, 'delete': 30, 'skipped': 2}
    for action in ('compress', 'delete', 'skipped'):
        assert plan['bytes'][action] == sum(sizes[p] for p in expected[action])
        listed = [e['path'] for e in plan[action]]
        assert listed == sorted(expected[action])[:5]
        assert plan['omitted'][action] == len(expected[action]) - len(listed)
    assert plan['truncated'] is True and plan['limit'] == 5
    assert plan['compress'][0]['dest'] == plan['compress'][0]['path'] + '.gz'
    # the diff lists every file to compress or delete, whatever the limit
    diff = check.result['diff'][0]
    assert sorted(diff['before'].splitlines()) == sorted(expected['compress'] | expected['delete'])
    assert sorted(diff['after'].splitlines()) == sorted(p + '.gz' for p in expected['compress'])
    # the checks' file lists are bounded too, their counts exact
    old = check.check('old_files')
    assert old['value'] == 72 and len(old['details']['files']) == 5 and old['details']['omitted'] == 67
    assert check.result['done'] == {'counts': {'compress': 0, 'delete': 0},
                                    'bytes': {'compress': 0, 'written': 0, 'delete': 0}, 'truncated': False}
    assert all(os.path.exists(p) for paths in expected.values() for p in paths)  # check mode changed nothing

    # without --diff, check mode lists no more than the limit (the alias plan_limit names the same option)
    quiet = run_module('runbook.ops.log_rotate_check', dict((k, v) for k, v in args.items() if k != 'list_limit'),
                       check=True)
    assert 'diff' not in quiet.result and quiet.result['plan']['limit'] == 100  # the default
    assert len(quiet.result['plan']['compress']) == 40  # under the default limit: all listed
    without_limit = dict((k, v) for k, v in args.items() if k != 'list_limit')
    alias = run_module('runbook.ops.log_rotate_check', dict(without_limit, plan_limit=3), check=True)
    assert alias.rc == 0, alias
    assert [len(alias.result['plan'][a]) for a in ('compress', 'delete', 'skipped')] == [3, 3, 2]

    contents = dict((p, open(p, 'rb').read()) for p in expected['compress'])
    run = run_module('runbook.ops.log_rotate_check', args)
    assert run.rc == 0 and run.result['changed'] is True, run
    done = run.result['done']
    assert done['counts'] == {'compress': 40, 'delete': 30} and done['truncated'] is True
    assert done['bytes']['compress'] == plan['bytes']['compress'] and done['bytes']['delete'] == plan['bytes']['delete']
    assert run.result['compressed'] == sorted(p + '.gz' for p in expected['compress'])[:5]
    assert run.result['deleted'] == sorted(expected['delete'])[:5]
    # every planned file was acted on, not only the listed ones
    for path in expected['compress']:
        assert not os.path.exists(path)
        with gzip.open(path + '.gz', 'rb') as stream:
            assert stream.read() == contents[path]
    for path in expected['delete']:
        assert not os.path.exists(path)
    assert done['bytes']['written'] == sum(os.path.getsize(p + '.gz') for p in expected['compress'])
    for path in expected['skipped'] | expected['young']:
        assert os.path.exists(path)

    again = run_module('runbook.ops.log_rotate_check', args)
    assert again.rc == 0 and again.result['changed'] is False, again
    assert again.result['plan']['counts'] == {'compress': 0, 'delete': 0, 'skipped': 2}
    assert again.result['done']['counts'] == {'compress': 0, 'delete': 0}


def test_list_limit_zero_lists_all_and_a_negative_one_is_refused(run_module, tmp_path):
    logs = tmp_path / 'big'
    expected = make_big_tree(logs)
    args = {'paths': [str(logs)], 'compress_after': '7d', 'delete_after': '30d', 'logrotate_config': []}
    every = run_module('runbook.ops.log_rotate_check', dict(args, list_limit=0), check=True)
    assert every.rc == 0, every
    plan = every.result['plan']
    assert sorted(e['path'] for e in plan['delete']) == sorted(expected['delete'])
    assert plan['truncated'] is False and plan['limit'] == 0
    refused = run_module('runbook.ops.log_rotate_check', dict(args, list_limit=-1))
    assert refused.result['failed'] and 'list_limit -1 is negative' in refused.result['msg'], refused
    assert all(os.path.exists(p) for paths in expected.values() for p in paths)
