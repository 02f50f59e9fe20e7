# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL backups for runbook.ops.pg_backup and runbook.ops.pg_restore.

pg_dump, pg_restore and psql run as subprocesses with the login in the
environment (PGHOST, PGPORT, PGUSER, PGPASSWORD or PGPASSFILE), never in their
argument lists.  A dump that pg_dump cannot compress itself is streamed through a
compressor and read by Python in 1 MiB blocks, which writes and hashes it; every
exit code of the pipeline is checked.  Row counts are taken in the snapshot that
pg_dump dumps (pg_export_snapshot + pg_dump --snapshot), concurrently with it, by one
backend without parallel workers (they would compete with pg_dump for the same cores).

Layout, lock, manifest and retention come from backup.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.runbook.ops.plugins.module_utils.backup import (
    CHUNK, FAILED, MANIFEST_VERSION, PASSED, BackupError, LabelLock, VerificationFailed, backup_name,
    backups_diff, check_files, commit_partial, current_backup, describe_files, describe_os_error,
    record_verification, sha256_file, walk_files,
    ensure_label_dir, find_backup, freshness, isoformat, label_dir, list_backups, new_partial_dir,
    partial_dirs, remove_tree, seal_tree, select_retention, utcnow, validate_retention, write_json_atomic,
)
from ansible_collections.runbook.ops.plugins.module_utils.backup import summary as backup_summary
from ansible_collections.runbook.ops.plugins.module_utils import pgproperties as props

try:
    import psycopg2
    import psycopg2.extensions
    from psycopg2 import sql
    HAS_PSYCOPG2 = True
except ImportError:  # pragma: no cover - reported by the modules
    HAS_PSYCOPG2 = False

FORMATS = ('custom', 'directory', 'plain')
COMPRESSIONS = ('none', 'gzip', 'zstd', 'lz4')
# archive reads what is cheap to read (a table of contents, a tail); full reads and
# decompresses every byte; restore_test restores (docs/backup.md, "Performance").
VERIFY_LEVELS = ('none', 'checksum', 'archive', 'full', 'restore_test')
# Level 1 of each: pg_dump's default gzip level (6) costs three times the time of
# level 1 for 12 % less size (docs/backup.md, /work/shared/MEASURED.md).
DEFAULT_LEVEL = {'gzip': 1, 'zstd': 1, 'lz4': 1, 'none': 0}
LEVELS = {'gzip': (1, 9), 'zstd': (1, 19), 'lz4': (1, 12), 'none': (0, 0)}
EXTENSION = {'gzip': '.gz', 'zstd': '.zst', 'lz4': '.lz4', 'none': ''}
COMPRESSOR = {'gzip': 'gzip', 'zstd': 'zstd', 'lz4': 'lz4'}
PLAIN_END = b'-- PostgreSQL database dump complete'
NAME_MAX = 63
DUPLICATE_DATABASE = '42P04'
INSUFFICIENT_PRIVILEGE = '42501'


class LoginError(BackupError):
    """The server refused the login or the database does not exist."""


# ---- login ---------------------------------------------------------------------

LOGIN_OPTIONS = ('login_host', 'login_port', 'login_user', 'login_password', 'passfile', 'login_unix_socket',
                 'connect_timeout')


def login_of(params):
    return dict((key, params.get(key)) for key in LOGIN_OPTIONS)


def login_env(login):
    """libpq environment variables for ``login`` (a dict of the module's login options).
    The password goes only here."""
    env = {}
    host = login.get('login_host') or login.get('login_unix_socket')
    mapping = (('PGHOST', host), ('PGPORT', login.get('login_port')),
               ('PGUSER', login.get('login_user')), ('PGPASSWORD', login.get('login_password')),
               ('PGPASSFILE', login.get('passfile')),
               ('PGCONNECT_TIMEOUT', login.get('connect_timeout')))
    for key, value in mapping:
        if value not in (None, ''):
            env[key] = str(value)
    env['PGAPPNAME'] = 'runbook.ops'
    return env


def tool_env(login):
    env = dict(os.environ)
    for key in ('PGDATABASE', 'PGSERVICE', 'PGOPTIONS'):
        env.pop(key, None)
    env.update(login_env(login))
    return env


def where(login, database=None):
    host = login.get('login_host') or login.get('login_unix_socket') or 'localhost'
    text = '%s:%s' % (host, login.get('login_port') or 5432)
    return '%s/%s' % (text, database) if database else text


def connect(login, database):
    """A psycopg2 connection; LoginError with a clear message (never the password)."""
    if not HAS_PSYCOPG2:
        raise BackupError('psycopg2 is not installed for this Python on the target; install psycopg2-binary')
    params = {'dbname': database, 'application_name': 'runbook.ops'}
    host = login.get('login_host') or login.get('login_unix_socket')
    for key, value in (('host', host), ('port', login.get('login_port')), ('user', login.get('login_user')),
                       ('password', login.get('login_password')), ('passfile', login.get('passfile')),
                       ('connect_timeout', login.get('connect_timeout'))):
        if value not in (None, ''):
            params[key] = value
    try:
        return psycopg2.connect(**params)
    except psycopg2.OperationalError as exc:
        text = ' '.join(str(exc).split())
        password = login.get('login_password')
        if password:
            text = text.replace(password, '********')
        if 'does not exist' in text and 'database' in text:
            raise LoginError('database %s does not exist at %s: %s; check the database name'
                             % (database, where(login), text))
        if 'password authentication failed' in text or 'no password supplied' in text:
            raise LoginError('PostgreSQL at %s refused the login of user %s: %s; check login_password, '
                             'passfile or PGPASSWORD' % (where(login), login.get('login_user') or '(default)',
                                                         text))
        raise LoginError('cannot connect to PostgreSQL at %s: %s' % (where(login, database), text))


def server_info(connection):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version_num')::int, current_setting('server_version')")
        number, version = cursor.fetchone()
    return {'version_num': number, 'version': version, 'major': number // 10000}


# ---- tools -----------------------------------------------------------------------

def tool_major(path):
    """The major version of a PostgreSQL client program (``pg_dump (PostgreSQL) 15.4``)."""
    try:
        output = subprocess.run([path, '--version'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                check=False).stdout.decode('utf-8', 'replace')
    except OSError as exc:
        raise BackupError('cannot run %s: %s' % (path, exc))
    found = re.search(r'(\d+)(?:\.(\d+))?', output)
    if not found:
        raise BackupError('cannot read the version of %s from %r' % (path, output.strip()))
    return int(found.group(1)), output.strip()


def find_bindir(server_major, override=None):
    """The directory of pg_dump/pg_restore/psql for a server of ``server_major``: the
    override, else /usr/lib/postgresql/<major>/bin, else the newest installed major
    that is not older than the server, else PATH."""
    if override:
        if not os.path.exists(os.path.join(override, 'pg_dump')):
            raise BackupError('pg_bin_dir %s holds no pg_dump' % override)
        return override
    exact = '/usr/lib/postgresql/%d/bin' % server_major
    if os.path.exists(os.path.join(exact, 'pg_dump')):
        return exact
    candidates = []
    for path in glob.glob('/usr/lib/postgresql/*/bin/pg_dump'):
        try:
            major = int(path.split('/')[4])
        except (IndexError, ValueError):
            continue
        if major >= server_major:
            candidates.append((major, os.path.dirname(path)))
    if candidates:
        return sorted(candidates)[0][1]
    found = shutil.which('pg_dump')
    if found and tool_major(found)[0] >= server_major:
        return os.path.dirname(found)
    raise BackupError('no pg_dump of major version %d or newer found (looked in /usr/lib/postgresql/*/bin and '
                      'PATH); install the PostgreSQL %d client or set pg_bin_dir' % (server_major, server_major))


def tool(bindir, name):
    return os.path.join(bindir, name)


# ---- table patterns (pg_dump -t / -T, psql rules) ----------------------------------

def pattern_regex(pattern):
    """Compile a pg_dump table pattern (``*``, ``?``, ``schema.table``, double quotes)
    into (schema_regex or None, table_regex)."""
    parts = []
    current = []
    quoted = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == '"':
            if quoted and pattern[index + 1:index + 2] == '"':
                current.append('"')
                index += 1
            else:
                quoted = not quoted
        elif quoted:
            current.append(re.escape(char))
        elif char == '.':
            parts.append(''.join(current))
            current = []
        elif char == '*':
            current.append('.*')
        elif char == '?':
            current.append('.')
        else:
            current.append(re.escape(char.lower()))
        index += 1
    parts.append(''.join(current))
    if len(parts) > 2 or not parts[-1]:
        raise BackupError('table pattern %r is not [schema.]table' % pattern)
    schema = re.compile('^(?:%s)$' % parts[0]) if len(parts) == 2 else None
    return schema, re.compile('^(?:%s)$' % parts[-1])


def table_matches(schema, name, compiled):
    schema_re, table_re = compiled
    return bool(table_re.match(name)) and (schema_re is None or bool(schema_re.match(schema)))


def select_tables(tables, include=None, exclude=None):
    """Filter (schema, table) pairs the way pg_dump's -t and -T do."""
    included = [pattern_regex(p) for p in include or []]
    excluded = [pattern_regex(p) for p in exclude or []]
    chosen = []
    for schema, name in tables:
        if included and not any(table_matches(schema, name, c) for c in included):
            continue
        if any(table_matches(schema, name, c) for c in excluded):
            continue
        chosen.append((schema, name))
    return chosen


def qualified(schema, name):
    return '%s.%s' % (schema, name)


def split_qualified(text):
    if '.' in text:
        schema, name = text.split('.', 1)
        return schema, name
    return 'public', text


TABLES_SQL = """
SELECT n.nspname, c.relname
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname !~ '^pg_(toast|temp_)'
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')
 ORDER BY 1, 2
"""


def list_tables(cursor):
    cursor.execute(TABLES_SQL)
    return [(row[0], row[1]) for row in cursor.fetchall()]


def count_rows(cursor, tables):
    """Exact ``count(*)`` of every (schema, table)."""
    counts = {}
    for schema, name in tables:
        cursor.execute(sql.SQL('SELECT count(*) FROM {}.{}').format(sql.Identifier(schema), sql.Identifier(name)))
        counts[qualified(schema, name)] = cursor.fetchone()[0]
    return counts


def compare_counts(expected, actual):
    """Problems between the manifest's row counts and the restored ones."""
    problems = []
    for table in sorted(expected):
        if table not in actual:
            problems.append('table %s is missing after the restore' % table)
        elif actual[table] != expected[table]:
            problems.append('table %s has %d rows, the backup had %d' % (table, actual[table], expected[table]))
    return problems


def run_assertions(connection, assertions):
    """Each assertion is SQL whose first column of its first row must be true."""
    failures = []
    with connection.cursor() as cursor:
        for assertion in assertions or []:
            try:
                cursor.execute(assertion)
                row = cursor.fetchone()
            except psycopg2.Error as exc:
                connection.rollback()
                failures.append('assertion %r failed: %s' % (assertion, ' '.join(str(exc).split())))
                continue
            if not row or row[0] is not True:
                failures.append('assertion %r returned %r, not true' % (assertion, row[0] if row else None))
    connection.rollback()
    return failures


# ---- dump plans ------------------------------------------------------------------

def safe_filename(text):
    return re.sub(r'[^A-Za-z0-9._-]', '_', text) or 'database'


def resolve_compression(fmt, compression, level, dump_major):
    """(level, by) where ``by`` is 'pg_dump' or the compressor program streamed through."""
    if compression not in COMPRESSIONS:
        raise BackupError('compression %r: use one of %s' % (compression, ', '.join(COMPRESSIONS)))
    if fmt not in FORMATS:
        raise BackupError('format %r: use one of %s' % (fmt, ', '.join(FORMATS)))
    low, high = LEVELS[compression]
    if level is None:
        level = DEFAULT_LEVEL[compression]
    if compression != 'none' and not low <= level <= high:
        raise BackupError('compression_level %s is out of range for %s (%d-%d)' % (level, compression, low, high))
    if compression == 'none':
        return 0, 'pg_dump'
    if compression == 'gzip' or dump_major >= 16:
        return level, 'pg_dump'
    if fmt == 'directory':
        raise BackupError('pg_dump %d cannot write a directory dump with %s (pg_dump 16 can); use '
                          'compression gzip or none, or format custom or plain' % (dump_major, compression))
    return level, COMPRESSOR[compression]


def dump_plan(params, dump_major, database):
    """What pg_dump will be asked to do: argv (without -f), the output name, the compressor."""
    fmt = params['format']
    compression = params['compression']
    level, by = resolve_compression(fmt, compression, params.get('compression_level'), dump_major)
    base = safe_filename(database)
    if fmt == 'directory':
        output = base + '.dir'
    elif fmt == 'custom':
        output = base + '.dump' + (EXTENSION[compression] if by != 'pg_dump' else '')
    else:
        output = base + '.sql' + EXTENSION[compression]
    argv = ['pg_dump', '--format=' + fmt[0], '--no-password']
    if by == 'pg_dump':
        if compression == 'none':
            argv.append('--compress=0')
        elif dump_major >= 16:
            argv.append('--compress=%s:%d' % (compression, level))
        else:
            argv.append('--compress=%d' % level)
    elif fmt == 'custom':
        argv.append('--compress=0')
    if fmt == 'directory' and (params.get('jobs') or 1) > 1:
        argv.append('--jobs=%d' % params['jobs'])
    for pattern in params.get('include_tables') or []:
        argv.append('--table=' + pattern)
    for pattern in params.get('exclude_tables') or []:
        argv.append('--exclude-table=' + pattern)
    argv.extend(params.get('extra_args') or [])
    compressor = None
    if by != 'pg_dump':
        compressor = [by, '-q', '-%d' % level, '-c']
    return {'argv': argv, 'output': output, 'format': fmt, 'compression': compression, 'level': level,
            'compressed_by': by, 'compressor': compressor,
            'seekable': fmt == 'directory' or by == 'pg_dump',
            'schema_output': (base + '.schema.sql') if params.get('schema_dump') else None}


def _describe_exit(name, rc, stderr):
    stderr = ' '.join((stderr or '').split())
    if rc < 0:
        try:
            signame = signal.Signals(-rc).name
        except ValueError:
            signame = 'signal %d' % -rc
        return '%s was killed by %s%s' % (name, signame, (': ' + stderr) if stderr else '')
    return '%s exited with %d%s' % (name, rc, (': ' + stderr) if stderr else '')


def _read_tmp(stream):
    stream.seek(0)
    return stream.read().decode('utf-8', 'replace')[-4000:]


def run_pipeline(commands, env, output=None, want_hash=False, fsync=True):
    """Run ``commands`` (list of argv) as a pipeline; the last one's stdout goes to the
    file ``output`` (written by Python in 1 MiB blocks, hashed on the way when
    ``want_hash``, fsynced unless not ``fsync``) or is discarded.  Checks every exit
    code; BackupError names the first program that failed.  Returns the sha256 hex or None."""
    errs = [tempfile.TemporaryFile() for command in commands]
    processes = []
    previous = None
    digest = hashlib.sha256() if want_hash else None
    out_fd = None
    write_error = None
    try:
        for index, command in enumerate(commands):
            last = index == len(commands) - 1
            stdout = subprocess.PIPE if (not last or output) else subprocess.DEVNULL
            try:
                process = subprocess.Popen(command, stdin=previous, stdout=stdout, stderr=errs[index], env=env,
                                           close_fds=True)
            except OSError as exc:
                raise BackupError('cannot run %s: %s' % (command[0], exc))
            if previous is not None:
                previous.close()
            previous = process.stdout
            processes.append(process)
        if output:
            source = processes[-1].stdout
            try:
                out_fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            except OSError as exc:
                raise BackupError(describe_os_error(exc, 'creating %s' % output))
            reader = source.fileno()
            while True:
                block = os.read(reader, CHUNK)
                if not block:
                    break
                if digest is not None:
                    digest.update(block)
                try:
                    view = memoryview(block)
                    while view:
                        written = os.write(out_fd, view)
                        view = view[written:]
                except OSError as exc:
                    write_error = describe_os_error(exc, 'writing %s' % output)
                    for process in processes:
                        if process.poll() is None:
                            process.kill()
                    break
            source.close()
            if write_error is None and fsync:
                os.fsync(out_fd)
        failures = []
        for command, process, err in zip(commands, processes, errs):
            rc = process.wait()
            if rc != 0:
                failures.append(_describe_exit(os.path.basename(command[0]), rc, _read_tmp(err)))
        if write_error:
            raise BackupError(write_error)
        if failures:
            raise BackupError('; '.join(failures))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        if out_fd is not None:
            os.close(out_fd)
        for err in errs:
            err.close()
    return digest.hexdigest() if digest is not None else None


# ---- archive checks -------------------------------------------------------------

def decompress_argv(compressed_by):
    return [compressed_by, '-q', '-dc'] if compressed_by and compressed_by != 'pg_dump' else None


TOC_DATA = re.compile(r'^\d+; \d+ \d+ TABLE DATA ((?:"(?:[^"]|"")*"|\S+)) ((?:"(?:[^"]|"")*"|\S+)) ', re.M)


def _unquote(name):
    if name.startswith('"') and name.endswith('"'):
        return name[1:-1].replace('""', '"')
    return name


def toc_tables(text):
    """The 'schema.table' of every TABLE DATA entry of a pg_restore --list."""
    return [qualified(_unquote(m.group(1)), _unquote(m.group(2))) for m in TOC_DATA.finditer(text)]


def toc_has_data(text, table):
    """Whether a pg_restore --list has a TABLE DATA entry for 'schema.table' (pg_restore
    prints names unquoted, so names with spaces are matched whole, not split)."""
    schema, name = split_qualified(table)
    needle = re.compile(r' TABLE DATA %s %s \S+$' % (re.escape(schema), re.escape(name)))
    return any(needle.search(line) for line in text.splitlines() if not line.startswith(';'))


def archive_toc(bindir, path, compressed_by, env):
    """pg_restore --list of an archive: the TABLE DATA entries as 'schema.table'."""
    listing = tempfile.NamedTemporaryFile(prefix='runbook-toc-', suffix='.txt', delete=False)
    listing.close()
    try:
        restore = [tool(bindir, 'pg_restore'), '--list', '--file=' + listing.name]
        decompress = decompress_argv(compressed_by)
        if decompress:
            # pg_restore stops reading after the table of contents: the decompressor's
            # broken pipe is expected; the stream's integrity is tested apart.
            run_pipeline([decompress + [path], restore], env)
        else:
            run_pipeline([restore + [path]], env)
        with open(listing.name, 'rb') as stream:
            text = stream.read().decode('utf-8', 'replace')
    finally:
        os.unlink(listing.name)
    return toc_tables(text), text


def plain_tail_problem(commands, env, name):
    """Run ``commands`` (a pipeline printing plain SQL) and check the last 4 KiB for
    pg_dump's completion line; a problem or None."""
    tail = tempfile.NamedTemporaryFile(prefix='runbook-tail-', delete=False)
    tail.close()
    try:
        run_pipeline(commands + [['tail', '-c', '4096']], env, output=tail.name, fsync=False)
        with open(tail.name, 'rb') as stream:
            ending = stream.read()
    finally:
        os.unlink(tail.name)
    if PLAIN_END not in ending:
        return '%s does not end with pg_dump\'s completion line (truncated)' % name
    return None


def check_archive(bindir, backup_dir, manifest, env, full=False):
    """Read the dump beyond its checksums.  Always the cheap reads: pg_restore --list for
    archives (every counted table must have data), the completion line of uncompressed
    plain SQL.  With ``full`` every byte is read and decompressed too: the compressor
    decompresses streamed and compressed plain files (its exit code tests the stream, the
    completion line is checked at the end), pg_restore reads all data of an archive.
    Returns a list of problems."""
    details = manifest.get('postgresql') or {}
    path = os.path.join(backup_dir, details.get('dump', ''))
    problems = []
    by = details.get('compressed_by')
    fmt = details.get('format')
    try:
        if full and fmt == 'plain' and details.get('compression') != 'none':
            decompress = decompress_argv(by) or ['gzip', '-q', '-dc']
            problem = plain_tail_problem([decompress + [path]], env, details.get('dump'))
            if problem:
                problems.append(problem)
        elif full and fmt == 'custom' and by and by != 'pg_dump':
            run_pipeline([decompress_argv(by) + [path], [tool(bindir, 'pg_restore'), '--file=/dev/null']], env)
        elif full and fmt in ('custom', 'directory'):
            run_pipeline([[tool(bindir, 'pg_restore'), '--file=/dev/null', path]], env)
        if fmt in ('custom', 'directory'):
            if fmt == 'custom' and by and by != 'pg_dump':
                text = _archive_toc_streamed(bindir, path, by, env)[1]
            else:
                text = archive_toc(bindir, path, None, env)[1]
            if not text.strip():
                problems.append('pg_restore --list printed nothing for %s' % details.get('dump'))
            missing = [t for t in sorted(details.get('tables') or {}) if not toc_has_data(text, t)]
            if missing:
                problems.append('the archive has no data for %s' % ', '.join(missing[:10]))
        elif fmt == 'plain' and details.get('compression') == 'none':
            with open(path, 'rb') as stream:
                stream.seek(max(0, os.path.getsize(path) - 4096))
                if PLAIN_END not in stream.read():
                    problems.append('%s does not end with pg_dump\'s completion line (truncated)' % details.get('dump'))
    except BackupError as exc:
        problems.append(str(exc))
    return problems


def _archive_toc_streamed(bindir, path, by, env):
    listing = tempfile.NamedTemporaryFile(prefix='runbook-toc-', suffix='.txt', delete=False)
    listing.close()
    try:
        errs = []
        decompress = subprocess.Popen([by, '-q', '-dc', path], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, env=env)
        restore = subprocess.run([tool(bindir, 'pg_restore'), '--list', '--file=' + listing.name],
                                 stdin=decompress.stdout, stderr=subprocess.PIPE, env=env, check=False)
        decompress.stdout.close()
        decompress.kill()
        decompress.wait()
        if restore.returncode != 0:
            errs.append(_describe_exit('pg_restore --list', restore.returncode,
                                       restore.stderr.decode('utf-8', 'replace')))
        if errs:
            raise BackupError('; '.join(errs))
        with open(listing.name, 'rb') as stream:
            text = stream.read().decode('utf-8', 'replace')
    finally:
        os.unlink(listing.name)
    return toc_tables(text), text


# ---- restoring ------------------------------------------------------------------

def restore_commands(bindir, backup_dir, manifest, database, jobs=1, tables=None, data_only=False,
                     to_stdout=False):
    """The pipeline that loads the backup into ``database`` (pg_restore for archives,
    psql with ON_ERROR_STOP in one transaction for plain SQL)."""
    details = manifest.get('postgresql') or {}
    path = os.path.join(backup_dir, details['dump'])
    fmt = details.get('format')
    by = details.get('compressed_by')
    decompress = decompress_argv(by)
    if fmt == 'plain':
        if tables:
            raise BackupError('a plain SQL backup cannot restore single tables; take format custom or directory')
        psql = [tool(bindir, 'psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction',
                '--no-password', '-d', database]
        if details.get('compression') == 'gzip' and by == 'pg_dump':
            decompress = ['gzip', '-dc']
        if decompress:
            return [decompress + [path], psql + ['-f', '-']]
        return [psql + ['-f', path]]
    restore = [tool(bindir, 'pg_restore'), '--no-password', '--exit-on-error']
    restore += ['--file=-'] if to_stdout else ['-d', database]
    if data_only:
        restore.append('--data-only')
    for table in tables or []:
        schema, name = split_qualified(table)
        restore += ['--schema=' + schema, '--table=' + name]
    if decompress:
        return [decompress + [path], restore]
    if jobs and jobs > 1 and not to_stdout:
        restore.append('--jobs=%d' % jobs)
    return [restore + [path]]


def scratch_name(database, purpose, when):
    """A name no other run computes: time, pid and a random part (two runs in the same
    second, on one host or two, get different names)."""
    suffix = '_%s_%s_%d_%s' % (purpose, when.strftime('%Y%m%d%H%M%S'), os.getpid(), os.urandom(3).hex())
    return database[:NAME_MAX - len(suffix)] + suffix


def create_database(admin, name, template='template0', create=None):
    """CREATE DATABASE from ``template`` with the owner, encoding, locale and tablespace
    of ``create`` (pgproperties.plan_properties; None: the server's defaults)."""
    with admin.cursor() as cursor:
        cursor.execute(props.create_statement(name, create or {}, template))


def create_scratch_database(admin, database, purpose, when, create=None):
    """Create a new, unused scratch database (with ``create`` as create_database) and
    return its name.  A name already taken (another run's database) is never dropped:
    another name is tried."""
    tried = 0
    while tried < 5:
        tried += 1
        name = scratch_name(database, purpose, when)
        try:
            create_database(admin, name, create=create)
            return name
        except psycopg2.Error as exc:
            if exc.pgcode != DUPLICATE_DATABASE:
                raise
    raise BackupError('could not find an unused name for a scratch database of %s' % database)


def drop_database(admin, name, force=True):
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL('DROP DATABASE IF EXISTS {}%s' % (' WITH (FORCE)' if force else ''))
                       .format(sql.Identifier(name)))


def database_exists(admin, name):
    with admin.cursor() as cursor:
        cursor.execute('SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s', (name,))
        return cursor.fetchone() is not None


def admin_connection(login, maintenance_db):
    connection = connect(login, maintenance_db)
    connection.autocommit = True
    return connection


def prove_database(login, database, manifest, assertions, tables=None):
    """Row counts of the restored ``database`` against the manifest (only ``tables``
    when given) and the assertions; returns (counts, problems)."""
    expected = dict((manifest.get('postgresql') or {}).get('tables') or {})
    if tables:
        expected = dict((t, n) for t, n in expected.items() if t in set(tables))
    connection = connect(login, database)
    try:
        with connection.cursor() as cursor:
            counts = count_rows(cursor, [split_qualified(t) for t in sorted(expected)]) if expected else {}
    except psycopg2.Error as exc:
        connection.rollback()
        counts = {}
        problems = ['counting rows in %s failed: %s' % (database, ' '.join(str(exc).split()))]
        connection.close()
        return counts, problems
    connection.rollback()
    problems = compare_counts(expected, counts)
    problems += run_assertions(connection, assertions)
    connection.close()
    return counts, problems


def login_facts(admin):
    """(current user, the roles that exist, the roles the current user may make a
    database's owner: all of them for a superuser, else the roles it is a member of)."""
    with admin.cursor() as cursor:
        cursor.execute('SELECT current_user, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user')
        user, superuser = cursor.fetchone()
        roles = props.existing_roles(cursor)
        if superuser:
            return user, roles, roles
        cursor.execute("SELECT rolname FROM pg_catalog.pg_roles WHERE pg_catalog.pg_has_role(current_user, oid, "
                       "'MEMBER')")
        return user, roles, set(row[0] for row in cursor.fetchall())


def drill_properties(record, roles, login_user):
    """What a restore test reports of the backup's database properties: whether they
    are recorded, the roles they name that this server lacks, warnings.  The scratch
    database itself gets only the recorded encoding and locale (the data is proven
    under the collation it has in production), is owned by the login user and only it
    may connect: no application role can reach a drill database by accident."""
    plan = props.plan_properties(record, roles, login_user, drill=True)
    report = {'recorded': record is not None, 'owner': (record or {}).get('owner'),
              'missing_roles': plan['missing_roles'], 'warnings': []}
    if record is None:
        report['warnings'].append(
            'the backup has no record of the database-level properties (owner, GRANTs, settings, comment, '
            'connection limit; taken by an older pg_backup): a restore of it cannot bring them back; take a new '
            'backup')
    elif plan['missing_roles']:
        report['warnings'].append(
            'the backup names roles that do not exist on this server: %s; a restore here would skip their GRANTs '
            'and settings (and own the database by %s if the owner is among them): create them first '
            '(pg_dumpall --globals-only on the source server)' % (', '.join(plan['missing_roles']), login_user))
    return plan, report


def restore_test(login, bindir, backup_dir, manifest, maintenance_db, jobs=2, assertions=None, now=None):
    """Restore into a scratch database, prove it, drop it.  Returns a dict with
    status, rto_seconds, scratch database, problems and the database properties report
    (drill_properties)."""
    details = manifest.get('postgresql') or {}
    database = details.get('database') or 'db'
    env = tool_env(login)
    admin = admin_connection(login, maintenance_db)
    started = time.monotonic()
    problems = []
    restore_seconds = None
    scratch = None
    report = None
    try:
        user, roles = login_facts(admin)[:2]
        plan, report = drill_properties(details.get('database_properties'), roles, user)
        try:
            scratch = create_scratch_database(admin, database, 'verify', now or utcnow(), create=plan['create'])
        except psycopg2.Error as exc:
            locale = ', '.join('%s %s' % (k, plan['create'][k]) for k in props.LOCALE_FIELDS if plan['create'].get(k))
            problems.append('cannot create a database with the backup\'s encoding and locale (%s) on this server: '
                            '%s; a restore here fails the same way (install the locale, or restore with '
                            'properties=none)' % (locale, ' '.join(str(exc).split())))
        if scratch:
            with admin.cursor() as cursor:
                cursor.execute(sql.SQL('REVOKE ALL ON DATABASE {} FROM PUBLIC').format(sql.Identifier(scratch)))
            try:
                run_pipeline(restore_commands(bindir, backup_dir, manifest, scratch, jobs=jobs), env)
            except BackupError as exc:
                problems.append('restoring into the scratch database %s failed: %s' % (scratch, exc))
            restore_seconds = time.monotonic() - started
            if not problems:
                problems += prove_database(login, scratch, manifest, assertions)[1]
    finally:
        try:
            if scratch:
                drop_database(admin, scratch)
        finally:
            admin.close()
    return {'status': FAILED if problems else PASSED, 'problems': problems, 'scratch_database': scratch,
            'restore_seconds': round(restore_seconds, 3) if restore_seconds is not None else None,
            'rto_seconds': round(time.monotonic() - started, 3), 'database_properties': report}


# ---- verification of a stored backup ---------------------------------------------

def verify_backup(backup, level, login=None, bindir=None, env=None, maintenance_db='postgres', jobs=2,
                  assertions=None, now=None):
    """Verify one stored backup at ``level`` (checksum < archive < restore_test).
    Returns the verification record written to its manifest."""
    now = now or utcnow()
    manifest = backup.get('manifest')
    record = {'level': level, 'at': isoformat(now), 'problems': []}
    if manifest is None:
        record.update(status=FAILED, problems=['%s has no readable manifest' % backup['path']])
        return record
    started = time.monotonic()
    problems = check_files(backup['path'], manifest)
    if not problems and level in ('archive', 'full', 'restore_test'):
        # a restore test reads every byte anyway: the cheap archive read is enough before it
        problems = check_archive(bindir, backup['path'], manifest, env, full=level == 'full')
    if not problems and level == 'restore_test':
        test = restore_test(login, bindir, backup['path'], manifest, maintenance_db, jobs=jobs,
                            assertions=assertions, now=now)
        problems = test['problems']
        record['restore_test'] = test
    record['problems'] = problems
    record['status'] = FAILED if problems else PASSED
    record['duration_seconds'] = round(time.monotonic() - started, 3)
    return record


def summary(backup):
    """The public view of a stored backup."""
    details = (backup.get('manifest') or {}).get('postgresql') or {}
    return backup_summary(backup, database=details.get('database'), format=details.get('format'),
                          compression=details.get('compression'))


# ---- taking a backup -------------------------------------------------------------

class Snapshot:
    """A REPEATABLE READ transaction kept open so that pg_dump --snapshot and the row
    counts see the same data; the counts run in a thread while pg_dump runs."""

    def __init__(self, login, database):
        self.connection = connect(login, database)
        self.connection.set_session(isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ,
                                    readonly=True)
        with self.connection.cursor() as cursor:
            cursor.execute('SELECT pg_catalog.pg_export_snapshot()')
            self.id = cursor.fetchone()[0]
        self.counts = None
        self.error = None
        self.thread = None

    def tables(self):
        with self.connection.cursor() as cursor:
            return list_tables(cursor)

    def count_in_background(self, tables):
        def work():
            try:
                with self.connection.cursor() as cursor:
                    # pg_dump and its backend already use a core each: parallel workers
                    # would only add processes (and ~50 % more CPU) competing with them
                    cursor.execute('SET LOCAL max_parallel_workers_per_gather = 0')
                    self.counts = count_rows(cursor, tables)
            except Exception as exc:  # pylint: disable=broad-except
                self.error = exc
        self.thread = threading.Thread(target=work, name='row-counts')
        self.thread.daemon = True
        self.thread.start()

    def wait(self):
        if self.thread is not None:
            self.thread.join()
        if self.error is not None:
            raise BackupError('counting rows in the dump snapshot failed: %s' % ' '.join(str(self.error).split()))
        return self.counts

    def close(self):
        try:
            if self.thread is not None and self.thread.is_alive():
                self.connection.cancel()
                self.thread.join()
            self.connection.rollback()
            self.connection.close()
        except psycopg2.Error:
            pass


def dump_into(partial, params, login, bindir, dump_major, database, snapshot, tables):
    """Run pg_dump (and the schema-only companion) into ``partial``; returns
    (plan, {relative path: sha256 computed while streaming}, row counts)."""
    plan = dump_plan(params, dump_major, database)
    env = tool_env(login)
    argv = [tool(bindir, 'pg_dump')] + plan['argv'][1:] + ['--snapshot=' + snapshot.id]
    output = os.path.join(partial, plan['output'])
    known = {}
    if params.get('row_counts', True):
        snapshot.count_in_background(tables)
    if plan['compressor']:
        known[plan['output']] = run_pipeline([argv + [database], plan['compressor']], env, output=output,
                                             want_hash=True)
    else:
        run_pipeline([argv + ['--file=' + output, database]], env)
    if plan['schema_output']:
        schema_argv = [tool(bindir, 'pg_dump'), '--format=p', '--schema-only', '--no-password',
                       '--snapshot=' + snapshot.id, '--file=' + os.path.join(partial, plan['schema_output'])]
        for pattern in params.get('include_tables') or []:
            schema_argv.append('--table=' + pattern)
        for pattern in params.get('exclude_tables') or []:
            schema_argv.append('--exclude-table=' + pattern)
        run_pipeline([schema_argv + [database]], env)
    counts = snapshot.wait() if params.get('row_counts', True) else {}
    known.update(hash_files(partial, [name for name in walk_files(partial) if name not in known],
                            threads=params.get('jobs') or 1))
    return plan, known, counts


def hash_files(root, names, threads=1):
    """{relative name: sha256} of files under ``root`` read right after they were written
    (from the page cache), in up to ``threads`` threads (hashlib releases the GIL)."""
    paths = [os.path.join(root, name) for name in names]
    if threads <= 1 or len(paths) <= 1:
        return dict((name, sha256_file(path)) for name, path in zip(names, paths))
    with ThreadPoolExecutor(max_workers=min(threads, len(paths))) as pool:
        return dict(zip(names, pool.map(sha256_file, paths)))


def check_nonempty(partial, plan):
    path = os.path.join(partial, plan['output'])
    if plan['format'] == 'directory':
        if not os.path.exists(os.path.join(path, 'toc.dat')) or os.path.getsize(os.path.join(path, 'toc.dat')) == 0:
            raise BackupError('pg_dump wrote no table of contents into %s: refusing an empty dump' % path)
    elif not os.path.exists(path) or os.path.getsize(path) == 0:
        raise BackupError('pg_dump wrote nothing into %s: refusing an empty dump' % path)


class PgBackup:
    """One pg_backup call: plan (period, retention) then act (dump, verify, prune)."""

    def __init__(self, params, check_mode=False, now=None):
        self.params = params
        self.check_mode = check_mode
        self.now = now or utcnow()
        self.login = login_of(params)
        self.label = params.get('label') or params.get('database')
        self.root = params['backup_root']
        self.directory = label_dir(self.root, self.label)
        self.retention = validate_retention(params.get('retention'))
        self.result = {'changed': False, 'label': self.label, 'backup_dir': self.directory,
                       'taken': None, 'deleted': [], 'would_delete': [], 'skipped_reason': None}

    # -- helpers
    def _info(self):
        connection = connect(self.login, self.params['database'])
        try:
            info = server_info(connection)
        finally:
            connection.close()
        bindir = find_bindir(info['major'], self.params.get('pg_bin_dir'))
        dump_major, dump_version = tool_major(tool(bindir, 'pg_dump'))
        if dump_major < info['major']:
            raise BackupError('%s is older than the server (PostgreSQL %s); set pg_bin_dir to the %d client'
                              % (dump_version, info['version'], info['major']))
        return info, bindir, dump_major, dump_version

    def _retention_plan(self, backups, extra_newest=None):
        records = [{'name': b['name'], 'time': b['time'], 'status': b['status']} for b in backups]
        if extra_newest:
            records.append(extra_newest)
        return select_retention(records, self.now, self.retention)

    def run(self):
        params = self.params
        state = params.get('state', 'present')
        if self.check_mode and not os.path.isdir(self.directory):
            backups = []
        else:
            if not self.check_mode:
                ensure_label_dir(self.root, self.label)
            backups = list_backups(self.directory, kind='postgresql')
        before = [b['name'] for b in backups]
        info = bindir = dump_major = dump_version = None
        if state in ('present', 'verified'):
            info, bindir, dump_major, dump_version = self._info()
            dump_plan(params, dump_major, params['database'])          # validates format/compression
        if self.check_mode:
            return self._plan(state, backups, before, dump_major)
        lock = LabelLock(self.directory, params.get('lock_timeout', 600))
        with lock:
            self.result['lock_waited_seconds'] = round(lock.waited, 3)
            stale = partial_dirs(self.directory)
            for path in stale:
                remove_tree(path)
            self.result['removed_partials'] = stale
            if stale:
                self.result['changed'] = True
            backups = list_backups(self.directory, kind='postgresql')
            if state == 'present':
                self._take(backups, info, bindir, dump_major, dump_version)
            elif state == 'verified':
                self._verify_newest(backups, bindir)
            backups = list_backups(self.directory, kind='postgresql')
            if self.retention:
                plan = self._retention_plan(backups)
                self.result['retention'] = plan
                for name in plan['delete']:
                    remove_tree(os.path.join(self.directory, name))
                    self.result['deleted'].append(name)
                if plan['delete']:
                    self.result['changed'] = True
        return self._finish(before)

    def _plan(self, state, backups, before, dump_major):
        params = self.params
        would_take = None
        records = None
        if state == 'present':
            current = current_backup(backups, self.now, params['period'], params.get('verify') == 'none') \
                if params.get('period') else None
            if current is None:
                name = backup_name(self.now)
                plan = dump_plan(params, dump_major, params['database'])
                would_take = {'name': name, 'path': os.path.join(self.directory, name),
                              'files': [plan['output']] + ([plan['schema_output']] if plan['schema_output'] else []),
                              'format': plan['format'], 'compression': plan['compression'],
                              'compression_level': plan['level'], 'compressed_by': plan['compressed_by']}
                records = {'name': name, 'time': self.now, 'status': PASSED}
                self.result['changed'] = True
            else:
                self.result['skipped_reason'] = 'backup %s already covers the %s period' % (
                    current['name'], params['period'])
        self.result['would_take'] = would_take
        if state == 'verified':
            # check mode verifies nothing (a verification writes its record into the manifest):
            # it names the backup a real run would verify
            newest = None
            for backup in reversed(backups):
                if backup['manifest'] is not None:
                    newest = backup
                    break
            self.result['would_verify'] = {'backup': newest['name'], 'path': newest['path'],
                                           'level': params.get('verify') or 'archive',
                                           'status': newest['status']} if newest else None
        if self.retention:
            plan = self._retention_plan(backups, records)
            self.result['retention'] = plan
            self.result['would_delete'] = plan['delete']
            if plan['delete']:
                self.result['changed'] = True
        after = [n for n in before if n not in self.result['would_delete']]
        if would_take:
            after.append(would_take['name'])
        self.result['diff'] = backups_diff(self.directory, before, sorted(after))
        self.result['backups'] = [summary(b) for b in backups]
        self.result['rpo_seconds'], self.result['newest_verified'] = freshness(backups, self.now)
        return self.result

    def _finish(self, before):
        backups = list_backups(self.directory, kind='postgresql')
        after = [b['name'] for b in backups]
        self.result['diff'] = backups_diff(self.directory, before, after)
        self.result['backups'] = [summary(b) for b in backups]
        self.result['rpo_seconds'], self.result['newest_verified'] = freshness(backups, utcnow())
        return self.result

    def _verify(self, backup, level, bindir):
        return verify_backup(backup, level, login=self.login, bindir=bindir, env=tool_env(self.login),
                             maintenance_db=self.params.get('login_db') or 'postgres',
                             jobs=self.params.get('restore_jobs') or 2,
                             assertions=self.params.get('assertions'), now=utcnow())

    def _verify_newest(self, backups, bindir):
        target = None
        for backup in reversed(backups):
            if backup['manifest'] is not None:
                target = backup
                break
        if target is None:
            raise BackupError('there is no backup to verify in %s' % self.directory)
        level = self.params.get('verify') or 'archive'
        if level == 'none':
            raise BackupError('state=verified needs verify set to checksum, archive, full or restore_test')
        record = self._verify(target, level, bindir)
        record_verification(target, record)
        self.result['verification'] = dict(record, backup=target['name'])
        self._rto(record)
        if record['status'] == FAILED:
            raise VerificationFailed('backup %s failed verification: %s'
                                     % (target['path'], '; '.join(record['problems'])), self.result)

    def _rto(self, record):
        test = record.get('restore_test')
        if test:
            self.result['rto_seconds'] = test.get('rto_seconds')
            warnings = (test.get('database_properties') or {}).get('warnings') or []
            if warnings:
                self.result.setdefault('warnings', []).extend(warnings)

    def _take(self, backups, info, bindir, dump_major, dump_version):
        params = self.params
        if params.get('period'):
            current = current_backup(backups, self.now, params['period'], params.get('verify') == 'none')
            if current is not None:
                self.result['skipped_reason'] = 'backup %s already covers the %s period' % (
                    current['name'], params['period'])
                return
        name = backup_name(utcnow())
        if os.path.exists(os.path.join(self.directory, name)):
            time.sleep(1.05)             # we hold the lock: the next second's name is ours
            name = backup_name(utcnow())
        final = os.path.join(self.directory, name)
        if os.path.exists(final):
            raise BackupError('a backup named %s already exists; retry' % final)
        old_umask = os.umask(0o077)
        partial = None
        started = utcnow()
        clock = time.monotonic()
        try:
            partial = new_partial_dir(self.directory, name)
            snapshot = Snapshot(self.login, params['database'])
            try:
                with snapshot.connection.cursor() as cursor:
                    properties = props.read_properties(cursor, params['database'])
                tables = select_tables(snapshot.tables(), params.get('include_tables'), params.get('exclude_tables'))
                plan, known, counts = dump_into(partial, params, self.login, bindir, dump_major,
                                                params['database'], snapshot, tables)
            finally:
                snapshot.close()
            check_nonempty(partial, plan)
            finished = utcnow()
            files = describe_files(partial, known)
            manifest = {
                'manifest_version': MANIFEST_VERSION, 'kind': 'postgresql', 'label': self.label, 'name': name,
                'started': isoformat(started), 'finished': isoformat(finished),
                'duration_seconds': round(time.monotonic() - clock, 3), 'period': params.get('period'),
                'files': files, 'host': os.uname()[1],
                'postgresql': {
                    'database': params['database'], 'server_version': info['version'],
                    'server_version_num': info['version_num'], 'pg_dump_version': dump_version,
                    'format': plan['format'], 'compression': plan['compression'],
                    'compression_level': plan['level'], 'compressed_by': plan['compressed_by'],
                    'seekable': plan['seekable'], 'jobs': params.get('jobs') or 1,
                    'dump': plan['output'], 'schema_dump': plan['schema_output'],
                    'include_tables': params.get('include_tables') or [],
                    'exclude_tables': params.get('exclude_tables') or [],
                    'snapshot': snapshot.id, 'tables': counts,
                    'total_rows': sum(counts.values()) if counts else 0,
                    # owner, encoding, locale, GRANTs, settings, comment: what pg_dump without
                    # --create leaves out (pgproperties.py); absent in older manifests
                    'database_properties': properties,
                },
            }
            level = params.get('verify') or 'archive'
            backup = {'name': name, 'path': partial, 'manifest': manifest}
            if level in ('checksum', 'archive', 'full', 'restore_test'):
                # The sums were just computed from what was written, every exit code is
                # checked; read the archive itself (cheaply unless full).
                problems = check_archive(bindir, partial, manifest, tool_env(self.login), full=level == 'full') \
                    if level != 'checksum' else []
                if problems:
                    raise BackupError('the new dump is unusable, refusing it: %s' % '; '.join(problems))
                done = 'checksum' if level == 'checksum' else ('full' if level == 'full' else 'archive')
                manifest['verification'] = {'status': PASSED, 'level': done, 'at': isoformat(utcnow()),
                                            'problems': []}
            write_json_atomic(os.path.join(partial, 'manifest.json'), manifest)
            seal_tree(partial)
            commit_partial(partial, final)
            partial = None
        except OSError as exc:
            raise BackupError(describe_os_error(exc, 'writing the backup into %s' % self.directory))
        finally:
            os.umask(old_umask)
            if partial is not None:
                remove_tree(partial)
        self.result['changed'] = True
        self.result['taken'] = {'name': name, 'path': final, 'files': files, 'tables': counts,
                                'database_properties': properties,
                                'duration_seconds': manifest['duration_seconds'],
                                'size': sum(f['size'] for f in files)}
        if level == 'restore_test':
            backup = {'name': name, 'path': final, 'manifest': manifest}
            record = self._verify(backup, 'restore_test', bindir)
            record_verification(backup, record)
            self.result['verification'] = dict(record, backup=name)
            self._rto(record)
            if record['status'] == FAILED:
                raise VerificationFailed('the new backup %s failed its restore test: %s'
                                         % (final, '; '.join(record['problems'])), self.result)
        else:
            self.result['verification'] = dict(manifest.get('verification') or {'status': 'unverified'},
                                               backup=name)


__all__ = ['BackupError', 'LoginError', 'PgBackup', 'VerificationFailed', 'find_backup', 'current_backup',
           'check_archive', 'restore_commands', 'commit_partial']


# ---- restoring a backup over a database -------------------------------------------

def _database_comment(admin, database):
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_catalog.shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database "
                       "WHERE datname = %s", (database,))
        row = cursor.fetchone()
    return row[0] if row else None


def _rename_pair(admin, target, replaced, new, final, statements=()):
    """Move ``target`` aside to ``replaced`` (when ``target`` is not None) and ``new``
    into its place (``final``), then run ``statements`` (the database's properties), in
    ONE transaction (ALTER DATABASE RENAME, OWNER, SET, GRANT and COMMENT are all
    transactional): either both renames happen or neither.  Each statement runs under a
    savepoint: one that fails is undone alone and returned as {statement, error}."""
    admin.autocommit = False
    failed = []
    try:
        with admin.cursor() as cursor:
            rename = sql.SQL('ALTER DATABASE {} RENAME TO {}')
            if target is not None:
                cursor.execute(rename.format(sql.Identifier(target), sql.Identifier(replaced)))
            cursor.execute(rename.format(sql.Identifier(new), sql.Identifier(final)))
            for statement in statements:
                cursor.execute('SAVEPOINT runbook_property')
                try:
                    cursor.execute(statement)
                except psycopg2.Error as exc:
                    cursor.execute('ROLLBACK TO SAVEPOINT runbook_property')
                    failed.append({'statement': statement.as_string(admin), 'error': ' '.join(str(exc).split())})
                else:
                    cursor.execute('RELEASE SAVEPOINT runbook_property')
        admin.commit()
    except BaseException:
        try:
            admin.rollback()
        except psycopg2.Error:
            pass
        raise
    finally:
        try:
            admin.autocommit = True
        except psycopg2.Error:
            pass
    return failed


def _allow_connections(admin, database, allow):
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL('ALTER DATABASE {} ALLOW_CONNECTIONS {}').format(
            sql.Identifier(database), sql.SQL('true' if allow else 'false')))


def _terminate(admin, database):
    with admin.cursor() as cursor:
        cursor.execute('SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity '
                       'WHERE datname = %s AND pid <> pg_catalog.pg_backend_pid()', (database,))
        return cursor.fetchone()[0]


def restore_marker(backup):
    manifest = backup.get('manifest') or {}
    digest = hashlib.sha256(repr(sorted((f['path'], f['sha256']) for f in manifest.get('files') or [])).encode())
    return 'runbook.ops pg_restore: %s/%s %s' % (manifest.get('label'), backup['name'], digest.hexdigest()[:16])


def table_restore_sql(tables, counts, keep_copy, suffix, assertions, marker=None):
    """(prologue, epilogue) SQL run in the one transaction of a single-table restore:
    keep a copy, empty the tables; then prove row counts and assertions and record
    ``marker`` as each table's comment before COMMIT."""
    prologue = []
    epilogue = ['RESET search_path;']     # pg_restore's output empties it
    for table in tables:
        schema, name = split_qualified(table)
        target = '%s.%s' % (_ident(schema), _ident(name))
        if keep_copy:
            copy_name = (name[:NAME_MAX - len(suffix)] + suffix)
            prologue.append('CREATE TABLE %s.%s AS TABLE %s;' % (_ident(schema), _ident(copy_name), target))
        prologue.append('TRUNCATE ONLY %s;' % target)
        epilogue.append("DO $runbook$ BEGIN IF (SELECT count(*) FROM %s) <> %d THEN RAISE EXCEPTION "
                        "'row count of %s is %%, the backup has %d', (SELECT count(*) FROM %s); END IF; END "
                        "$runbook$;" % (target, counts[table], table.replace("'", "''"), counts[table], target))
        if marker:
            epilogue.append("COMMENT ON TABLE %s IS '%s';" % (target, marker.replace("'", "''")))
    for assertion in assertions or []:
        epilogue.append("DO $runbook$ BEGIN IF NOT COALESCE((%s), false) THEN RAISE EXCEPTION "
                        "'assertion failed: %s'; END IF; END $runbook$;"
                        % (assertion.rstrip().rstrip(';'), assertion.replace("'", "''").replace('%', '%%')))
    return '\n'.join(prologue), '\n'.join(epilogue)


def _table_comments(login, database, tables):
    """{schema.table: its comment (None without one)} of the existing ``tables``."""
    connection = connect(login, database)
    try:
        with connection.cursor() as cursor:
            comments = {}
            for table in tables:
                schema, name = split_qualified(table)
                cursor.execute("SELECT pg_catalog.obj_description(c.oid, 'pg_class') FROM pg_catalog.pg_class c "
                               "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                               "WHERE n.nspname = %s AND c.relname = %s", (schema, name))
                row = cursor.fetchone()
                if row:
                    comments[table] = row[0]
        connection.rollback()
        return comments
    finally:
        connection.close()


def _unused_name(admin, name):
    candidate = name
    number = 1
    while database_exists(admin, candidate):
        number += 1
        tail = '_%d' % number
        candidate = name[:NAME_MAX - len(tail)] + tail
    return candidate


def _ident(name):
    if re.match(r'^[a-z_][a-z0-9_$]*$', name):
        return name
    return '"%s"' % name.replace('"', '""')


class PgRestore:
    """One pg_restore call: verify the backup, restore into a new database, prove it,
    swap it in by rename (or, for single tables, replace their rows in one proven
    transaction)."""

    def __init__(self, params, check_mode=False, now=None):
        self.params = params
        self.check_mode = check_mode
        self.now = now or utcnow()
        self.login = login_of(params)
        self.result = {'changed': False}

    def run(self):
        params = self.params
        if not params.get('backup') or not os.path.isabs(params['backup']):
            if not params.get('backup_root') or not params.get('label'):
                raise BackupError('name the backup: backup as an absolute path, or backup_root and label '
                                  '(with backup a name or latest)')
        if params.get('backup') and os.path.isabs(params['backup']):
            directory = os.path.dirname(os.path.normpath(params['backup']))
        else:
            directory = label_dir(params['backup_root'], params['label'])
        if self.check_mode or not os.path.isdir(directory):
            return self._run()          # reads only / fails naming the missing backup
        # the label's lock, as pg_backup takes it: its retention cannot delete the backup
        # while it is being verified and restored
        lock = LabelLock(directory, params.get('lock_timeout', 600))
        try:
            lock.acquire()
        except OSError as exc:
            raise BackupError('cannot take the lock of %s (%s); pg_restore holds it so that retention cannot '
                              'delete the backup while it is restored' % (directory, exc))
        try:
            self.result['lock_waited_seconds'] = round(lock.waited, 3)
            return self._run()
        finally:
            lock.release()

    def _run(self):
        params = self.params
        backup = find_backup(params.get('backup_root'), params.get('label'), params.get('backup'))
        if backup['manifest'] is None:
            raise BackupError('%s has no readable manifest: it is not a complete backup; refusing to restore it'
                              % backup['path'])
        manifest = backup['manifest']
        details = manifest.get('postgresql') or {}
        target = params.get('database') or details.get('database')
        self.result.update(backup=backup['name'], backup_path=backup['path'], database=target)
        admin = admin_connection(self.login, params.get('login_db') or 'postgres')
        try:
            info = server_info(admin)
            bindir = find_bindir(info['major'], params.get('pg_bin_dir'))
            env = tool_env(self.login)
            record = verify_backup(backup, params.get('verify') or 'archive', bindir=bindir, env=env, now=utcnow())
            self.result['verification'] = record
            if record['status'] != PASSED:
                if not self.check_mode:
                    try:
                        record_verification(backup, record)
                    except OSError:
                        pass
                raise BackupError('backup %s failed verification, refusing to restore it: %s'
                                  % (backup['path'], '; '.join(record['problems'])))
            if params.get('tables'):
                return self._restore_tables(admin, bindir, env, backup, target)
            return self._restore_database(admin, bindir, env, backup, target)
        finally:
            admin.close()

    def _properties(self, admin, backup, target, exists):
        """The record to apply, its plan on this server and the statements of the swap
        transaction (pgproperties.choose_record and plan_properties)."""
        details = backup['manifest'].get('postgresql') or {}
        recorded = details.get('database_properties')
        user, roles, owners = login_facts(admin)
        with admin.cursor() as cursor:
            current = props.read_properties(cursor, target) if exists else None
            marker = props.read_marker(cursor, target) if exists else None
        source, record, warnings = props.choose_record(self.params.get('properties') or 'backup', recorded,
                                                       current, target, backup['name'])
        plan = props.plan_properties(record, roles, user, owners=owners)
        plan['warnings'] = warnings + plan['warnings']
        after = props.effective_record(plan, record)
        report = {'source': source, 'recorded': recorded is not None, 'owner': plan['owner'],
                  'missing_roles': plan['missing_roles'],
                  'changed': props.compare(current, after) if current is not None else {}}
        return current, marker, plan, after, report

    def _restore_database(self, admin, bindir, env, backup, target):
        params = self.params
        exists = database_exists(admin, target)
        marker = restore_marker(backup)
        current, current_marker, plan, after, report = self._properties(admin, backup, target, exists)
        self.result['properties'] = report
        if exists and not params.get('force') and marker in (current_marker, _database_comment(admin, target)):
            # what differs now was changed after that restore: reported, not undone
            self.result['skipped_reason'] = 'database %s was already restored from %s' % (target, backup['name'])
            return self.result
        statements = props.property_statements(target, plan) + [props.marker_statement(target, marker)]
        report['apply'] = [statement.as_string(admin) for statement in statements]
        self.result['warnings'] = list(plan['warnings'])
        new = scratch_name(target, 'restore', self.now)          # the name actually used is set below
        replaced = _unused_name(admin, scratch_name(target, 'replaced', self.now)) if exists else None
        self.result.update(restored_into=new, replaced_database=replaced if params.get('keep_replaced') else None,
                           changed=True,
                           diff={'before': '%s: %s\n%s' % (target, 'exists' if exists else 'absent',
                                                           props.describe(current)),
                                 'after': '%s: restored from %s/%s\n%s' % (
                                     target, backup['manifest'].get('label'), backup['name'],
                                     props.describe(after))})
        if self.check_mode:
            self.result['plan'] = ['verify %s (done: passed)' % backup['path'],
                                   'create database %s: %s' % (
                                       new, props.create_statement(new, plan['create']).as_string(admin)),
                                   'restore %s into %s' % (backup['name'], new),
                                   'prove %s: row counts of %d tables and %d assertions'
                                   % (new, len((backup['manifest'].get('postgresql') or {}).get('tables') or {}),
                                      len(params.get('assertions') or [])),
                                   ('rename %s to %s' % (target, replaced)) if exists else None,
                                   'rename %s to %s' % (new, target),
                                   'in the same transaction: %s' % '; '.join(report['apply']),
                                   ('drop %s' % replaced) if exists and not params.get('keep_replaced') else None]
            self.result['plan'] = [step for step in self.result['plan'] if step]
            return self.result
        try:
            new = create_scratch_database(admin, target, 'restore', self.now, create=plan['create'])
        except psycopg2.Error as exc:
            raise BackupError('cannot create the database to restore %s into with the backup\'s properties (%s), '
                              '%s is untouched: %s; fix the cause (a locale or tablespace this server lacks) or '
                              'restore with properties=none' % (backup['name'], ', '.join(
                                  '%s %s' % (k, v) for k, v in sorted(plan['create'].items()) if v), target,
                                  ' '.join(str(exc).split())))
        self.result['restored_into'] = new
        started = time.monotonic()
        try:
            if plan['acl'] is not None:
                # nobody but its owner connects to it before the swap sets the recorded GRANTs
                with admin.cursor() as cursor:
                    cursor.execute(sql.SQL('REVOKE ALL ON DATABASE {} FROM PUBLIC').format(sql.Identifier(new)))
            try:
                run_pipeline(restore_commands(bindir, backup['path'], backup['manifest'], new,
                                              jobs=params.get('jobs') or 1), env)
            except BackupError as exc:
                hint = ''
                if re.search(r'role "[^"]*" does not exist', str(exc)):
                    hint = ('; the backup\'s objects name roles this server lacks: create them first '
                            '(pg_dumpall --globals-only on the source server), then run again')
                raise BackupError('restoring %s into the new database %s failed, %s is untouched: %s%s'
                                  % (backup['name'], new, target, exc, hint))
            self.result['restore_seconds'] = round(time.monotonic() - started, 3)
            counts, problems = prove_database(self.login, new, backup['manifest'], params.get('assertions'))
            self.result['tables'] = counts
            if problems:
                raise BackupError('the restored database %s is not what the backup holds, %s is untouched: %s'
                                  % (new, target, '; '.join(problems)))
        except BaseException:
            # only this run's own, unproven database is dropped; once proven it is never
            # dropped (see _swap)
            try:
                drop_database(admin, new)
            except psycopg2.Error:
                pass
            raise
        failed = self._swap(admin, target, new, replaced, statements)
        report['not_applied'] = failed
        for item in failed:
            self.result['warnings'].append('%s was not applied to %s: %s; run it as a superuser'
                                           % (item['statement'], target, item['error']))
        if replaced and not params.get('keep_replaced'):
            drop_database(admin, replaced)
        self.result['rto_seconds'] = round(time.monotonic() - started, 3)
        return self.result

    def _swap(self, admin, target, new, replaced, statements):
        """Put the proven database ``new`` in place of ``target`` and give it its
        properties (``statements``).  The renames and the statements run in one
        transaction; whatever fails of the renames, nothing is dropped and the error names
        where the current data and the restored data are.  A statement that fails (a
        privilege the login lacks) is rolled back alone and returned with its error."""
        if replaced is None:
            try:
                return _rename_pair(admin, None, None, new, target, statements)
            except psycopg2.Error as exc:
                raise BackupError('could not rename the restored and proven database %s to %s (%s); the restored '
                                  'data is kept in %s: rename it to %s once the cause is fixed'
                                  % (new, target, ' '.join(str(exc).split()), new, target))
        try:
            _allow_connections(admin, target, False)
            self.result['terminated_sessions'] = _terminate(admin, target)
            failed = _rename_pair(admin, target, replaced, new, target, statements)
        except psycopg2.Error as exc:
            reason = ' '.join(str(exc).split())
            try:
                state = (database_exists(admin, target), database_exists(admin, new))
            except psycopg2.Error:
                state = None
            if state == (True, True):
                try:
                    _allow_connections(admin, target, True)
                except psycopg2.Error:
                    pass
                raise BackupError('could not swap the restored database in (%s); nothing was renamed: the current '
                                  'data is still in %s and the restored, proven data is kept in %s (retry, or drop '
                                  '%s when it is not wanted)' % (reason, target, new, new))
            raise BackupError('the swap of %s and %s was interrupted (%s) and its outcome is unknown; nothing was '
                              'dropped: the old data of %s is in %s or %s, the restored data in %s or %s'
                              % (target, new, reason, target, target, replaced, new, target))
        _allow_connections(admin, replaced, True)
        return failed

    def _restore_tables(self, admin, bindir, env, backup, target):
        params = self.params
        details = backup['manifest'].get('postgresql') or {}
        if details.get('format') == 'plain':
            raise BackupError('backup %s is plain SQL; single-table restore needs format custom or directory'
                              % backup['name'])
        available = details.get('tables') or {}
        tables = [t if '.' in t else 'public.' + t for t in params['tables']]
        missing = [t for t in tables if t not in available]
        if missing:
            raise BackupError('backup %s has no table %s (it has: %s)' % (
                backup['name'], ', '.join(missing), ', '.join(sorted(available)[:20])))
        schemas = set(split_qualified(t)[0] for t in tables)
        if len(schemas) > 1:
            raise BackupError('restore tables of one schema per call (got %s)' % ', '.join(sorted(schemas)))
        if not database_exists(admin, target):
            raise BackupError('database %s does not exist; a single-table restore replaces rows of an existing '
                              'table' % target)
        marker = restore_marker(backup)
        comments = _table_comments(self.login, target, tables)
        if not params.get('force') and all(comments.get(t) == marker for t in tables):
            self.result.update(tables_restored=[], replaced_copies=[],
                               skipped_reason='the tables %s were already restored from %s (their comment says so); '
                                              'set force=true to replace their rows again'
                                              % (', '.join(tables), backup['name']))
            return self.result
        suffix = '_before_%s' % self.now.strftime('%Y%m%d%H%M%S')
        copies = [split_qualified(t)[0] + '.' + split_qualified(t)[1][:NAME_MAX - len(suffix)] + suffix
                  for t in tables] if params.get('keep_replaced') else []
        self.result.update(changed=True, tables_restored=tables, replaced_copies=copies,
                           diff={'before': ''.join('%s: current rows\n' % t for t in tables),
                                 'after': ''.join('%s: %d rows from %s\n' % (t, available[t], backup['name'])
                                                  for t in tables)})
        if self.check_mode:
            return self.result
        prologue, epilogue = table_restore_sql(tables, available, params.get('keep_replaced'), suffix,
                                               params.get('assertions'), marker=marker)
        commands = restore_commands(bindir, backup['path'], backup['manifest'], target, tables=tables,
                                    data_only=True, to_stdout=True)
        psql = [tool(bindir, 'psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', '--no-password',
                '-d', target, '-c', prologue, '-f', '-', '-c', epilogue]
        started = time.monotonic()
        try:
            run_pipeline(commands + [psql], env)
        except BackupError as exc:
            raise BackupError('restoring %s from %s failed and was rolled back, the tables are untouched: %s'
                              % (', '.join(tables), backup['name'], exc))
        self.result['rto_seconds'] = round(time.monotonic() - started, 3)
        return self.result
