# -*- coding: utf-8 -*-
"""logrotate.survey(), the one-pass file walk behind log_rotate_check, against a plain
reference (the walk it replaced: a FileInfo per file, fnmatch per pattern, realpath per
file, the plan over every file) on a real generated tree: nested directories, symlinks
to files and directories, a dangling symlink, a fifo, compressed siblings that already
exist, overlapping roots and globs, a file held open for writing by this process, and
directories an unprivileged user cannot read or search (checked as ``nobody`` through
setpriv when the tests run as root, since root reads everything)."""

import fnmatch
import glob
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

import pytest

if __name__ == '__main__':  # run as another user by the test below
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '.collections'))

from ansible_collections.runbook.ops.plugins.module_utils import logrotate  # noqa: E402

DAY = 86400
NOW = time.time()
OPTIONS = {'max_size': 300, 'max_age': 30 * DAY, 'compress_after': 7 * DAY, 'delete_after': 30 * DAY}


# ---- the reference: the straightforward walk and report --------------------------------

def reference_inventory(paths, patterns, problems):
    patterns = [p for p in (patterns or []) if p not in ('*', '')]
    found = {}

    def wanted(name):
        return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)

    def walk(top):
        stack = [top]
        while stack:
            directory = stack.pop()
            try:
                entries = os.scandir(directory)
            except OSError as exc:
                problems[directory] = exc.strerror or str(exc)
                continue
            with entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False) and wanted(entry.name):
                            found[entry.path] = logrotate.FileInfo(entry.path, entry.stat(follow_symlinks=False))
                    except OSError as exc:
                        problems[entry.path] = exc.strerror or str(exc)

    for path in paths:
        names = glob.glob(path) if re.search(r'[*?[]', path) else [path]
        if not names:
            problems[path] = 'no file matches' if re.search(r'[*?[]', path) else 'does not exist'
        for name in names:
            try:
                info = os.lstat(name)
            except OSError as exc:
                problems[name] = exc.strerror or str(exc)
                continue
            if stat.S_ISDIR(info.st_mode):
                walk(name)
            elif stat.S_ISREG(info.st_mode) and wanted(os.path.basename(name)):
                found[name] = logrotate.FileInfo(name, info)
    return [found[path] for path in sorted(found)]


def reference_report(paths, patterns, log_patterns, blocks, sample=100, fmt='gzip'):
    problems = {}
    files = reference_inventory(paths, patterns, problems)
    large = [(f.path, f.size) for f in files if f.size > OPTIONS['max_size']]
    old = [(f.path, round(NOW - f.mtime, 1)) for f in files if NOW - f.mtime > OPTIONS['max_age']]
    targets = {}
    for block in blocks:
        for pattern in block['patterns']:
            for name in glob.glob(pattern):
                if os.path.isfile(name):
                    targets[os.path.realpath(name)] = True
    live = [f for f in files if any(fnmatch.fnmatchcase(os.path.basename(f.path), p) for p in log_patterns)]
    uncovered = [f.path for f in live if os.path.realpath(f.path) not in targets]
    held = logrotate.open_for_writing(files)
    plan = logrotate.plan_maintenance(files, NOW, OPTIONS['compress_after'], OPTIONS['delete_after'], fmt, held)
    return {'count': len(files), 'bytes': sum(f.size for f in files),
            'large': [len(large), large[:sample]], 'old': [len(old), old[:sample]],
            'uncovered': [len(uncovered), uncovered[:sample]], 'plan': plan, 'problems': problems}


def fast_report(paths, patterns, log_patterns, blocks, sample=100, fmt='gzip'):
    """survey() wired as plugins/modules/log_rotate_check.py wires it."""
    problems = {}
    found = logrotate.survey(paths, patterns, NOW, max_size=OPTIONS['max_size'], max_age=OPTIONS['max_age'],
                             live_patterns=log_patterns, targets=logrotate.block_targets(blocks),
                             compress_after=OPTIONS['compress_after'], delete_after=OPTIONS['delete_after'],
                             fmt=fmt, problems=problems, sample=sample)
    plan = found.plan.full()
    return {'count': found.count, 'bytes': found.bytes,
            'large': [found.large.count, found.large.items()],
            'old': [found.old.count, [(p, round(age, 1)) for p, age in found.old.items()]],
            'uncovered': [found.uncovered.count, [p for p, _none in found.uncovered.items()]],
            'plan': plan, 'problems': problems}


# ---- the tree ------------------------------------------------------------------------------

def make_tree(root, files=1500):
    """``files`` files over three levels; returns the paths of the special entries."""
    logs = os.path.join(root, 'logs')
    names = ('app%04d.log', 'app%04d.log.1', 'app%04d.log.2.gz', 'app%04d.txt', 'app%04d.log.zst')
    for index in range(files):
        directory = os.path.join(logs, 'd%d' % (index % 7), 'e%d' % (index % 3))
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, names[index % len(names)] % index)
        with open(path, 'w') as stream:
            stream.write('x' * ((index * 37) % 700))
        age = (index % 45) * DAY + index
        os.utime(path, (NOW - age, NOW - age))
    special = os.path.join(logs, 'd1', 'e1')
    # a compressed sibling exists already: compressing app9000.log is skipped
    for name, age in (('app9000.log', 9), ('app9000.log.gz', 1), ('app9001.log', 10)):
        with open(os.path.join(special, name), 'w') as stream:
            stream.write('y' * 400)
        os.utime(os.path.join(special, name), (NOW - age * DAY, NOW - age * DAY))
    os.mkdir(os.path.join(special, 'app9001.log.gz'))  # a directory in the way counts too
    os.symlink(os.path.join(logs, 'd0'), os.path.join(logs, 'd2', 'link-to-dir'))
    os.symlink(os.path.join(logs, 'd0', 'e0', 'app0000.log'), os.path.join(logs, 'd3', 'link.log'))
    os.symlink('/nonexistent/x.log', os.path.join(logs, 'd3', 'dangling.log'))
    os.mkfifo(os.path.join(logs, 'd4', 'fifo.log'))
    with open(os.path.join(logs, 'd0', '.hidden.log'), 'w') as stream:  # glob's '*' skips it, '.*' takes it
        stream.write('h')
    for name, mode in (('locked', 0o000), ('listonly', 0o444)):  # unreadable; readable, not searchable
        directory = os.path.join(logs, 'd5', name)
        os.makedirs(directory)
        for index in range(3):
            with open(os.path.join(directory, 'z%d.log' % index), 'w') as stream:
                stream.write('z' * 500)
            os.utime(os.path.join(directory, 'z%d.log' % index), (NOW - 40 * DAY, NOW - 40 * DAY))
        os.chmod(directory, mode)
    held = os.path.join(logs, 'd6', 'e0', 'held.log')
    with open(held, 'w') as stream:
        stream.write('h' * 500)
    os.utime(held, (NOW - 20 * DAY, NOW - 20 * DAY))
    os.symlink(logs, os.path.join(root, 'via'))  # a root reached through a symlink: real paths differ
    conf = os.path.join(root, 'logrotate.conf')
    with open(conf, 'w') as stream:
        stream.write('%s/d0/*/*.log %s/d3/link.log {\n  missingok\n}\n%s/via/d4/*/*.log {\n}\n'
                     % (logs, logs, root))
    return logs, held, conf


def cases(logs):
    """(paths, patterns, log_patterns): one root; overlapping roots, globs and files; filters."""
    return [
        ([logs], ['*'], ['*.log']),
        ([logs + '/', os.path.join(logs, 'd1'), os.path.join(logs, 'd*', 'e2'),
          os.path.join(logs, 'd0', '*', '*.log'), os.path.join(logs, 'd1', 'e1', 'app0001.log.1'),
          os.path.join(logs, 'missing'), os.path.join(logs, 'nomatch*'), os.path.join(logs, 'd2', 'link-to-dir')],
         ['*'], ['*.log', '*.log.1']),
        ([logs], ['*.log', '*.gz', ''], ['*.log']),
        ([os.path.join(logs, 'd6')], ['*.log*'], []),
        ([os.path.join(os.path.dirname(logs), 'via') + '/'], ['*'], ['*.log']),
        # globs read while walking: one per directory; the same directory twice, one inside
        # another glob's directory, unreadable ones, one matching nothing
        ([os.path.join(logs, 'd*', 'e*', '*.log')], ['*'], ['*.log']),
        ([os.path.join(logs, 'd1', 'e1', 'app*'), os.path.join(logs, 'd1', 'e1', '*.gz'), os.path.join(logs, 'd0', '*'),
          os.path.join(logs, 'd0', 'e0', '*.log'), os.path.join(logs, 'd5', '*', '*.log'),
          os.path.join(logs, 'nowhere', '*.log'), os.path.join(logs, 'd3', '*.log'), os.path.join(logs, 'd2', 'e?'),
          os.path.join(logs, 'd4', 'e0', '[.a]*'), os.path.join(logs, 'd6', 'e1', 'app0*.log.1')],
         ['*.log', '*.log.1', '*.gz'], ['*.log']),
    ]


def compare(logs, conf, sample):
    blocks = logrotate.read_config_set([conf])
    outcome = []
    for paths, patterns, log_patterns in cases(logs):
        for fmt in ('gzip', 'zstd'):
            outcome.append((paths, patterns, fmt, reference_report(paths, patterns, log_patterns, blocks, sample, fmt),
                            fast_report(paths, patterns, log_patterns, blocks, sample, fmt)))
    return outcome


@pytest.fixture(scope='module')
def tree():
    root = tempfile.mkdtemp(prefix='logrotate-survey-')
    os.chmod(root, 0o755)  # nobody must reach it
    try:
        yield make_tree(root)
    finally:
        for directory, _dirs, _files in os.walk(root):
            os.chmod(directory, 0o755)
        shutil.rmtree(root)


def check(outcome):
    for paths, patterns, fmt, expected, got in outcome:
        assert json.loads(json.dumps(got)) == json.loads(json.dumps(expected)), (paths, patterns, fmt)


@pytest.mark.parametrize('sample', [100, 3])
def test_survey_reports_what_the_reference_reports(tree, sample):
    logs, held, conf = tree
    with open(held, 'a'):  # held open for writing by this process: never compressed
        outcome = compare(logs, conf, sample)
    check(outcome)
    report = outcome[0][4]
    # the comparison covers what it claims to: trimmed samples, each kind of plan entry
    assert report['count'] > 1500 and report['large'][0] > sample and report['uncovered'][0] > sample
    plan = report['plan']
    assert plan['compress'] and plan['delete']
    reasons = sorted(set(entry['reason'] for entry in plan['skipped']))
    assert reasons[0].endswith('app9000.log.gz already exists') and reasons[1].endswith('app9001.log.gz already exists')
    assert reasons[2:] == ['open for writing']
    assert not any('link' in entry['path'] or 'fifo' in entry['path'] for entry in plan['delete'] + plan['compress'])
    via = outcome[8][4]  # the fifth case, through the symlinked root, coverage is decided on real paths
    assert via['count'] == report['count'] and via['uncovered'][0] == report['uncovered'][0]


def test_relative_globs_and_directories(tree, monkeypatch):
    logs, _held, conf = tree
    monkeypatch.chdir(os.path.join(logs, 'd1'))
    blocks = logrotate.read_config_set([conf])
    for paths in (['*'], ['e1/*.log', 'e2'], ['e0/app00*', '.']):
        expected = reference_report(paths, ['*'], ['*.log'], blocks)
        got = fast_report(paths, ['*'], ['*.log'], blocks)
        assert json.loads(json.dumps(got)) == json.loads(json.dumps(expected)), paths
        assert got['count'] > 0


def test_overlapping_roots_count_each_file_once(tree):
    logs, _held, conf = tree
    outcome = compare(logs, conf, 100)
    check(outcome)
    whole, overlapping = outcome[0][4], outcome[2][4]
    assert overlapping['count'] == whole['count']
    assert overlapping['problems'][os.path.join(logs, 'missing')] == 'No such file or directory'
    assert overlapping['problems'][os.path.join(logs, 'nomatch*')] == 'no file matches'


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which('setpriv'), reason='needs root to become nobody')
def test_unreadable_directories_as_nobody(tree):
    """As an unprivileged user the locked directory cannot be read and the list-only
    one's files cannot be lstat-ed: both kinds of problem, reported as the reference does."""
    logs, _held, _conf = tree
    nobody = pwd.getpwnam('nobody')
    process = subprocess.run(['setpriv', '--reuid=%d' % nobody.pw_uid, '--regid=%d' % nobody.pw_gid,
                              '--clear-groups', sys.executable, os.path.abspath(__file__), logs],
                             capture_output=True, text=True, check=False, cwd='/')
    assert process.returncode == 0, process.stderr
    outcome = json.loads(process.stdout)
    check(outcome)
    problems = outcome[0][4]['problems']
    assert problems[os.path.join(logs, 'd5', 'locked')] == 'Permission denied'
    assert problems[os.path.join(logs, 'd5', 'listonly', 'z0.log')] == 'Permission denied'


def test_block_targets_expand_as_glob_isfile_realpath(tree):
    logs, _held, conf = tree
    root = os.path.dirname(logs)
    patterns = [os.path.join(logs, 'd3', '*.log'), os.path.join(logs, 'd4', '*.log'),
                os.path.join(logs, '*', 'e1', '*.log*'), os.path.join(logs, 'd1', 'e1', 'app9001.log.gz'),
                os.path.join(logs, 'd0', '.*'), os.path.join(logs, 'd0', '*'),
                os.path.join(root, 'via', 'd*', 'e0', '*.log'), os.path.join(logs, 'd3', 'link.log'),
                os.path.join(logs, 'd3', 'dangling.log'), os.path.join(logs, 'd?', 'e[01]', 'app00[0-4]*'),
                os.path.join(logs, 'nowhere', '*.log'), os.path.join(logs, 'd2', 'link-to-dir', '*', '*.log'),
                os.path.join(logs, 'd0', 'e0', 'app0000.log')]
    blocks = [{'file': conf, 'line': index, 'patterns': [pattern]} for index, pattern in enumerate(patterns)]
    blocks.append({'file': conf, 'line': 99, 'patterns': patterns})
    expected = {}
    for block in blocks:
        ref = '%s:%d' % (block['file'], block['line'])
        for pattern in block['patterns']:
            names = glob.glob(pattern) if re.search(r'[*?[]', pattern) else [pattern]
            for name in names:
                if os.path.isfile(name):
                    refs = expected.setdefault(os.path.realpath(name), [])
                    if ref not in refs:
                        refs.append(ref)
    got = logrotate.block_targets(blocks)
    assert got == expected
    assert os.path.join(logs, 'd0', '.hidden.log') in got and os.path.join(logs, 'd0', 'e0', 'app0000.log') in got
    assert len(got) > 500


def test_name_matcher_is_fnmatch():
    names = ['a.log', 'a.log.1', 'b.gz', '.hidden.log', 'x[1].log', 'CAPS.LOG', '']
    for patterns in (['*.log'], ['*.log', '*.log.[0-9]'], ['?.gz'], ['x[[]1].log'], ['*.LOG', '.*']):
        match = logrotate.name_matcher(patterns)
        assert [n for n in names if match(n)] == [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        suffixes = logrotate.name_suffixes(patterns)
        if suffixes:
            assert [n for n in names if n.endswith(suffixes)] == [n for n in names if match(n)]
    assert logrotate.name_suffixes(['*.log', '*.gz', '']) == ('.log', '.gz')
    assert logrotate.name_suffixes(['*.log.[0-9]']) is None and logrotate.name_suffixes(['a*']) is None
    assert logrotate.name_matcher(['*.log', '*']) is None  # '*' matches every name
    assert logrotate.name_matcher([]) is None and logrotate.name_matcher([''], empty=False) is False


def test_sample_keeps_the_first_in_path_order_and_counts_all():
    sample = logrotate.Sample(limit=10)
    paths = ['/l/%05d' % ((index * 7919) % 5000) for index in range(5000)]
    for path in paths:
        sample.add(path, len(path))
    assert len(sample._items) < 4 * 10 + 256  # pylint: disable=protected-access
    assert sample.count == 5000
    assert sample.items() == [(path, len(path)) for path in sorted(paths)[:10]]
    assert len(sample._items) <= 10  # pylint: disable=protected-access


if __name__ == '__main__':
    print(json.dumps(compare(sys.argv[1], os.path.join(os.path.dirname(sys.argv[1]), 'logrotate.conf'), 100)))
