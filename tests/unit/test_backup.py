# -*- coding: utf-8 -*-
"""Unit tests of the shared backup logic (manifest checks, lock, atomic directories)
and the pure parts of the PostgreSQL backup (table patterns, dump plans, SQL)."""

import multiprocessing
import os
import re
import stat
import time

import pytest

from ansible_collections.runbook.ops.plugins.module_utils import backup as bk
from ansible_collections.runbook.ops.plugins.module_utils import pgbackup as pg


def make_backup(root, name, content=b'data'):
    path = root / name
    path.mkdir(parents=True)
    (path / 'db.dump').write_bytes(content)
    manifest = {'files': bk.describe_files(str(path)), 'verification': {'status': bk.PASSED}}
    bk.write_json_atomic(str(path / bk.MANIFEST), manifest)
    return path


def test_check_files_finds_a_flipped_byte_a_missing_and_an_extra_file(tmp_path):
    path = make_backup(tmp_path, '20250101T000000Z', b'x' * 5000)
    manifest = bk.read_manifest(str(path))
    assert bk.check_files(str(path), manifest) == []
    data = bytearray((path / 'db.dump').read_bytes())
    data[2500] ^= 0x01
    (path / 'db.dump').write_bytes(bytes(data))
    problems = bk.check_files(str(path), manifest)
    assert len(problems) == 1 and 'sha256' in problems[0]
    (path / 'extra').write_text('x')
    (path / 'db.dump').unlink()
    problems = bk.check_files(str(path), manifest)
    assert 'db.dump is missing' in problems and 'extra is not in the manifest' in problems


def test_list_backups_ignores_partials_and_marks_incomplete(tmp_path):
    make_backup(tmp_path, '20250101T000000Z')
    (tmp_path / '20250102T000000Z').mkdir()                      # no manifest
    (tmp_path / '.partial-20250103T000000Z-99').mkdir()
    listed = bk.list_backups(str(tmp_path))
    expected = [('20250101T000000Z', bk.PASSED), ('20250102T000000Z', bk.INCOMPLETE)]
    assert [(b['name'], b['status']) for b in listed] == expected
    assert bk.partial_dirs(str(tmp_path)) == [str(tmp_path / '.partial-20250103T000000Z-99')]


def test_seal_and_commit_set_modes_and_refuse_to_replace(tmp_path):
    partial = bk.new_partial_dir(str(tmp_path), '20250101T000000Z')
    os.mkdir(os.path.join(partial, 'sub'))
    with open(os.path.join(partial, 'sub', 'f'), 'w') as stream:
        stream.write('x')
    bk.seal_tree(partial)
    assert stat.S_IMODE(os.stat(partial).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(partial, 'sub', 'f')).st_mode) == 0o600
    final = str(tmp_path / '20250101T000000Z')
    bk.commit_partial(partial, final)
    assert os.path.isdir(final) and not os.path.exists(partial)
    other = bk.new_partial_dir(str(tmp_path), '20250101T000000Z')
    with pytest.raises(bk.BackupError, match='refusing to replace'):
        bk.commit_partial(other, final)


def _hold(path, seconds, ready):
    with bk.LabelLock(path, 5):
        ready.set()
        time.sleep(seconds)


def test_lock_waits_then_fails_naming_the_holder(tmp_path):
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(str(tmp_path), 3, ready))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(bk.LockTimeout, match=r'pid %d' % holder.pid):
            bk.LabelLock(str(tmp_path), 0.5).acquire()
        lock = bk.LabelLock(str(tmp_path), 30).acquire()       # waits for the holder to finish
        assert lock.waited > 0
        lock.release()
    finally:
        holder.join()


@pytest.mark.parametrize('label', ['', '.', '..', 'a/b', '-x', 'a b'])
def test_bad_labels(label):
    with pytest.raises(bk.BackupError, match='label'):
        bk.validate_label(label)


@pytest.mark.parametrize('pattern, tables, chosen', [
    ('orders', [('public', 'orders'), ('sales', 'orders'), ('public', 'orders2')],
     [('public', 'orders'), ('sales', 'orders')]),
    ('public.ord*', [('public', 'orders'), ('sales', 'orders'), ('public', 'x')], [('public', 'orders')]),
    ('ORDERS', [('public', 'orders'), ('public', 'ORDERS')], [('public', 'orders')]),
    ('"ORDERS"', [('public', 'orders'), ('public', 'ORDERS')], [('public', 'ORDERS')]),
    ('s?.t', [('s1', 't'), ('s12', 't')], [('s1', 't')]),
])
def test_table_patterns_follow_pg_dump(pattern, tables, chosen):
    assert pg.select_tables(tables, include=[pattern]) == chosen


def test_exclude_patterns():
    tables = [('public', 'a'), ('public', 'log_1'), ('public', 'log_2')]
    assert pg.select_tables(tables, exclude=['log_*']) == [('public', 'a')]


@pytest.mark.parametrize('fmt, compression, major, by, output, seekable', [
    ('custom', 'gzip', 15, 'pg_dump', 'db.dump', True),
    ('custom', 'zstd', 15, 'zstd', 'db.dump.zst', False),
    ('custom', 'zstd', 16, 'pg_dump', 'db.dump', True),
    ('plain', 'lz4', 15, 'lz4', 'db.sql.lz4', True),
    ('plain', 'gzip', 15, 'pg_dump', 'db.sql.gz', True),
    ('directory', 'none', 15, 'pg_dump', 'db.dir', True),
])
def test_dump_plans(fmt, compression, major, by, output, seekable):
    plan = pg.dump_plan({'format': fmt, 'compression': compression, 'jobs': 1}, major, 'db')
    assert (plan['compressed_by'], plan['output']) == (by, output)
    assert plan['seekable'] == (seekable if fmt != 'plain' else plan['seekable'])
    assert not any('password' in arg and '=' in arg for arg in plan['argv'])


def test_directory_with_zstd_needs_pg_dump_16():
    with pytest.raises(pg.BackupError, match='pg_dump 16'):
        pg.dump_plan({'format': 'directory', 'compression': 'zstd'}, 15, 'db')
    assert '--compress=zstd:3' in pg.dump_plan({'format': 'directory', 'compression': 'zstd',
                                                'compression_level': 3}, 16, 'db')['argv']


def test_compression_level_range():
    with pytest.raises(pg.BackupError, match='out of range'):
        pg.dump_plan({'format': 'custom', 'compression': 'gzip', 'compression_level': 12}, 15, 'db')


def test_password_only_in_the_environment():
    env = pg.login_env({'login_host': 'h', 'login_password': 's3cret', 'login_port': 5433})
    assert env['PGPASSWORD'] == 's3cret' and env['PGPORT'] == '5433'


def test_compare_counts():
    assert pg.compare_counts({'public.a': 2, 'public.b': 1}, {'public.a': 2, 'public.b': 1}) == []
    problems = pg.compare_counts({'public.a': 2, 'public.b': 1}, {'public.a': 3})
    assert problems == ['table public.a has 3 rows, the backup had 2', 'table public.b is missing after the restore']


def test_scratch_names_fit_postgres_limit():
    import datetime
    name = pg.scratch_name('x' * 80, 'verify', datetime.datetime(2025, 1, 1))
    # <database>_<purpose>_<time>_<pid>_<random>: unique even for two runs in one second
    assert len(name) == 63 and re.search(r'_verify_20250101000000_\d+_[0-9a-f]+$', name), name
    assert name != pg.scratch_name('x' * 80, 'verify', datetime.datetime(2025, 1, 1))


def test_toc_has_data_matches_names_with_spaces():
    text = ('; Archive created at 2026-01-01\n'
            '3345; 0 16390 TABLE DATA public Mixed Case postgres\n'
            '3346; 0 16391 TABLE DATA sales lines postgres\n'
            '3348; 2606 16393 CONSTRAINT public orders orders_pkey postgres\n')
    assert pg.toc_has_data(text, 'public.Mixed Case') and pg.toc_has_data(text, 'sales.lines')
    assert not pg.toc_has_data(text, 'public.orders') and not pg.toc_has_data(text, 'public.Mixed')
