# -*- coding: utf-8 -*-
"""Unit tests of pg_backup's verification levels and hashing on real files and real
compressors (no PostgreSQL needed): ``archive`` reads only what is cheap, ``full``
decompresses every byte and finds what the cheap read cannot, parallel hashing gives
the sums of a serial read."""

import gzip
import hashlib
import os
import shutil
import subprocess

import pytest

from ansible_collections.runbook.ops.plugins.module_utils import pgbackup as pg

DUMP = (b'--\n-- PostgreSQL database dump\n--\n\nCOPY public.t (a) FROM stdin;\n'
        + b''.join(b'%d\n' % i for i in range(50000))
        + b'\\.\n\n\n--\n-- PostgreSQL database dump complete\n--\n\n')


def manifest(name, compression, compressed_by, fmt='plain'):
    return {'postgresql': {'dump': name, 'format': fmt, 'compression': compression,
                           'compressed_by': compressed_by}}


def test_hash_files_in_threads_gives_the_serial_sums(tmp_path):
    names = []
    for index in range(7):
        name = os.path.join('d', '%d.dat.gz' % index) if index % 2 else '%d.dat' % index
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(os.urandom(1024 * (index + 1) * 300))
        names.append(name)
    expected = dict((n, hashlib.sha256((tmp_path / n).read_bytes()).hexdigest()) for n in names)
    assert pg.hash_files(str(tmp_path), names, threads=1) == expected
    assert pg.hash_files(str(tmp_path), names, threads=4) == expected
    assert pg.hash_files(str(tmp_path), [], threads=4) == {}


def test_plain_sql_without_its_completion_line_fails_even_the_cheap_read(tmp_path):
    details = manifest('db.sql', 'none', 'pg_dump')
    (tmp_path / 'db.sql').write_bytes(DUMP)
    assert pg.check_archive('/nonexistent', str(tmp_path), details, dict(os.environ)) == []
    (tmp_path / 'db.sql').write_bytes(DUMP[:len(DUMP) // 2])
    problems = pg.check_archive('/nonexistent', str(tmp_path), details, dict(os.environ))
    assert len(problems) == 1 and 'completion line' in problems[0]


@pytest.mark.parametrize('compression,by', [('gzip', 'pg_dump'), ('zstd', 'zstd'), ('lz4', 'lz4')])
def test_archive_does_not_decompress_full_does(tmp_path, compression, by):
    if by != 'pg_dump' and not shutil.which(by):
        pytest.skip('%s is not installed' % by)
    name = 'db.sql' + pg.EXTENSION[compression]
    path = tmp_path / name
    if compression == 'gzip':
        path.write_bytes(gzip.compress(DUMP, 1))
    else:
        path.write_bytes(subprocess.run([by, '-q', '-1', '-c'], input=DUMP, stdout=subprocess.PIPE,
                                        check=True).stdout)
    details = manifest(name, compression, by)
    env = dict(os.environ)
    assert pg.check_archive('/nonexistent', str(tmp_path), details, env) == []
    assert pg.check_archive('/nonexistent', str(tmp_path), details, env, full=True) == []
    # a stream cut short (as a broken compressor or a bad copy would leave it, with
    # checksums recomputed over the broken bytes): only the full read finds it
    good = path.read_bytes()
    path.write_bytes(good[:len(good) - 40])
    assert pg.check_archive('/nonexistent', str(tmp_path), details, env) == []
    problems = pg.check_archive('/nonexistent', str(tmp_path), details, env, full=True)
    assert len(problems) == 1, problems
    # a complete, valid stream of a dump that pg_dump did not finish: the completion line
    partial = DUMP[:len(DUMP) // 2]
    if compression == 'gzip':
        path.write_bytes(gzip.compress(partial, 1))
    else:
        path.write_bytes(subprocess.run([by, '-q', '-1', '-c'], input=partial, stdout=subprocess.PIPE,
                                        check=True).stdout)
    problems = pg.check_archive('/nonexistent', str(tmp_path), details, env, full=True)
    assert len(problems) == 1 and 'completion line' in problems[0], problems


def test_verify_levels_are_ordered_and_full_is_one_of_them():
    assert pg.VERIFY_LEVELS == ('none', 'checksum', 'archive', 'full', 'restore_test')
