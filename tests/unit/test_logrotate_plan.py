# -*- coding: utf-8 -*-
"""The bounded plan of log_rotate_check (logrotate.Plan, bounded(), list_bound(), OpenFiles):
exact counts and bytes per action whatever the limit, the first ``limit`` files of each
action in path order, how many each list leaves out, every file kept to act on and to
diff; and survey()'s plan against plan_maintenance() over every file of a real tree with
real mtimes, at several limits."""

import os
import time

import pytest

from ansible_collections.runbook.ops.plugins.module_utils import logrotate

DAY = 86400
NOW = time.time()


def test_bounded_keeps_the_first_and_counts_the_rest():
    assert logrotate.bounded(['a', 'b', 'c'], 2) == (['a', 'b'], 1)
    assert logrotate.bounded(['a', 'b'], 2) == (['a', 'b'], 0)
    assert logrotate.bounded(iter(['a', 'b', 'c']), 0) == (['a', 'b', 'c'], 0)  # 0: no limit
    assert logrotate.bounded([], 5) == ([], 0)
    assert logrotate.list_bound(0) == logrotate.UNLIMITED and logrotate.list_bound(7) == 7


def records(prefix, names, size=10, age=10 * DAY, code=0):
    return [(prefix + name, size, age, code) for name in names]


def filled_plan(limit, keep=True):
    """Three directories added in an order that is not path order, as a walk finds them."""
    plan = logrotate.Plan(limit, keep, 'gzip')
    plan.actions['compress'].add('/l/b/', records('/l/b/', ['z.log', 'a.log', 'm.log']))
    plan.actions['compress'].add('/l/a/', records('/l/a/', ['y.log', 'x.log'], size=5))
    plan.actions['delete'].add('/l/a/', records('/l/a/', ['old.log'], size=7, age=40 * DAY, code=logrotate.OLD))
    plan.actions['delete'].add('/l/c/', records('/l/c/', ['%02d.gz' % n for n in range(30, 0, -1)], size=1))
    plan.actions['skipped'].add('/l/b/', records('/l/b/', ['held.log'], code=logrotate.HELD)
                                + records('/l/b/', ['there.log'], code=logrotate.EXISTS))
    return plan


@pytest.mark.parametrize('keep', [True, False])
def test_plan_result_counts_all_and_lists_the_first_in_path_order(keep):
    result = filled_plan(2, keep).result()
    assert result['counts'] == {'compress': 5, 'delete': 31, 'skipped': 2}
    assert result['bytes'] == {'compress': 3 * 10 + 2 * 5, 'delete': 7 + 30, 'skipped': 20}
    assert [e['path'] for e in result['compress']] == ['/l/a/x.log', '/l/a/y.log']
    assert [e['dest'] for e in result['compress']] == ['/l/a/x.log.gz', '/l/a/y.log.gz']
    assert [e['path'] for e in result['delete']] == ['/l/a/old.log', '/l/c/01.gz']
    assert result['delete'][0]['reason'] == 'older than the deletion age; not compressed first'
    assert 'reason' not in result['delete'][1]
    assert [(e['path'], e['reason']) for e in result['skipped']] == [
        ('/l/b/held.log', 'open for writing'), ('/l/b/there.log', '/l/b/there.log.gz already exists')]
    assert result['omitted'] == {'compress': 3, 'delete': 29, 'skipped': 0}
    assert result['truncated'] is True and result['limit'] == 2
    assert result['compress'][0]['age'] == 10 * DAY and result['compress'][0]['age_text'] == '10d0h'


def test_plan_without_limit_lists_everything_and_is_not_truncated():
    result = filled_plan(0).result()
    assert len(result['compress']) == 5 and len(result['delete']) == 31
    assert result['omitted'] == {'compress': 0, 'delete': 0, 'skipped': 0}
    assert result['truncated'] is False and result['limit'] == 0
    assert filled_plan(31).result()['truncated'] is False  # exactly at the limit: nothing left out
    assert filled_plan(30).result()['omitted']['delete'] == 1


def test_kept_plan_acts_on_and_diffs_every_file():
    plan = filled_plan(1)
    assert [r[0] for r in plan.records('compress')] == ['/l/a/x.log', '/l/a/y.log', '/l/b/a.log', '/l/b/m.log',
                                                        '/l/b/z.log']
    assert len(plan.records('delete')) == 31 and plan.count() == 36 and plan.count('skipped') == 2
    diff = plan.diff()
    assert diff['before'].splitlines() == [r[0] for r in plan.records('compress') + plan.records('delete')]
    assert diff['after'].splitlines() == [r[0] + '.gz' for r in plan.records('compress')]
    assert '5 to compress, 31 to delete' in diff['before_header']
    full = plan.full()
    assert [e['path'] for e in full['delete']][-1] == '/l/c/30.gz' and len(full['skipped']) == 2
    # a plan made for check mode keeps only what it shows: asking for every file is an error, not a short list
    with pytest.raises(ValueError):
        filled_plan(1, keep=False).records('compress')


def test_open_files_tells_writers_from_readers(tmp_path):
    written, read = tmp_path / 'written.log', tmp_path / 'read.log'
    written.write_text('w')
    read.write_text('r')
    with open(str(written), 'a'), open(str(read)):
        opened = logrotate.OpenFiles()
        for path, expected in ((written, True), (read, False)):
            info = os.stat(str(path))
            assert info.st_ino in opened.inodes
            assert opened.writing(info.st_dev, info.st_ino) is expected
    assert logrotate.OpenFiles(str(tmp_path / 'no-proc')).inodes == set()


def make_tree(root):
    """60 files in three directories with real mtimes: to compress, to delete (compressed or
    too old to compress first), targets in the way, young files, one held open."""
    now = time.time()
    for index in range(60):
        directory = root / ('d%d' % (index % 3))
        directory.mkdir(parents=True, exist_ok=True)
        name = ('app%02d.log' if index % 4 else 'app%02d.log.1.gz') % index
        (directory / name).write_text('x' * index)
        age = (2 + index % 45) * DAY
        os.utime(str(directory / name), (now - age, now - age))
    for index in (5, 6, 7):  # compressed copies already there: skipped
        directory = root / ('d%d' % (index % 3))
        (directory / ('app%02d.log.gz' % index)).write_text('z')
    return root


@pytest.mark.parametrize('limit', [0, 1, 4, 1000])
def test_survey_plan_is_plan_maintenance_bounded(tmp_path, limit):
    root = make_tree(tmp_path / 'logs')
    held = root / 'd1' / 'app10.log'
    with open(str(held), 'a'):
        files = logrotate.inventory_files([str(root)])
        reference = logrotate.plan_maintenance(files, NOW, 7 * DAY, 30 * DAY, 'gzip',
                                               logrotate.open_for_writing(files))
        for keep in (True, False):
            found = logrotate.survey([str(root)], ['*'], NOW, compress_after=7 * DAY, delete_after=30 * DAY,
                                     plan_limit=limit, keep_plan=keep)
            result = found.plan.result()
            for action in ('compress', 'delete', 'skipped'):
                assert result['counts'][action] == len(reference[action])
                assert result['bytes'][action] == sum(e['size'] for e in reference[action])
                assert result[action] == reference[action][:limit or None]
                assert result['omitted'][action] == len(reference[action]) - len(result[action])
            if keep:
                assert found.plan.full() == dict((a, reference[a]) for a in ('compress', 'delete', 'skipped'))
    # the tree exercises every kind of entry and more than the smaller limits
    assert len(reference['compress']) > 4 and len(reference['delete']) > 4
    assert sorted(set(e['reason'] for e in reference['skipped'])) == [
        str(root / 'd0' / 'app06.log.gz') + ' already exists', str(root / 'd1' / 'app07.log.gz') + ' already exists',
        'open for writing']
    assert result['truncated'] is (limit in (1, 4))


def test_survey_without_actions_has_an_empty_plan(tmp_path):
    root = make_tree(tmp_path / 'logs')
    result = logrotate.survey([str(root)], ['*'], NOW, max_age=DAY).plan.result()
    assert result['counts'] == {'compress': 0, 'delete': 0, 'skipped': 0}
    assert result['compress'] == [] and result['truncated'] is False
