# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File backups for runbook.ops.files_backup and runbook.ops.files_restore.

A backup is one tar archive (PAX: modes, owners, sub-second mtimes, symbolic links as
links) of configuration and data paths, compressed with gzip (Python's zlib) or zstd
(the ``zstd`` program, streamed), plus consistent copies of live SQLite databases taken
through the sqlite3 online backup API and stored in the archive under the database's own
path.  Every member's type, mode, owner, mtime, size and sha256 go into the manifest, so
that a backup can be proven by reading it back and a restore by comparing what it wrote.

A restore extracts into a staging path beside each target (same filesystem), proves it
against the manifest, moves the current data aside by rename, renames the staging path
into place, runs a health-check command, and on failure renames everything back.

Layout, lock, periods, manifest checks and retention come from backup.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import hashlib
import os
import shlex
import shutil
import sqlite3
import stat
import subprocess
import tarfile
import time

from urllib.request import pathname2url

from ansible_collections.runbook.ops.plugins.module_utils.fileio import fsync_dir_quietly
from ansible_collections.runbook.ops.plugins.module_utils.backup import (
    CHUNK, FAILED, MANIFEST, MANIFEST_VERSION, PASSED, BackupError, LabelLock, VerificationFailed,
    age_seconds, backup_name, backups_diff, check_copy, check_files, commit_partial, current_backup,
    describe_files, describe_os_error, record_verification,
    ensure_label_dir, find_backup, freshness, isoformat, label_dir, list_backups,
    new_partial_dir, parse_iso, partial_dirs, remove_tree, seal_tree, select_retention, utcnow,
    read_manifest, validate_retention, write_json_atomic,
)
from ansible_collections.runbook.ops.plugins.module_utils.backup import summary as backup_summary

try:
    import grp
    import pwd
except ImportError:  # pragma: no cover - posix only
    grp = pwd = None

COMPRESSIONS = ('gzip', 'zstd', 'none')
VERIFY_LEVELS = ('none', 'checksum', 'archive')
# Level 1: the same reasoning and measurements as pg_backup (MEASURED.md): level 6
# costs about three times the time of level 1 for little size.
DEFAULT_LEVEL = {'gzip': 1, 'zstd': 1, 'none': 0}
LEVELS = {'gzip': (1, 9), 'zstd': (1, 19), 'none': (0, 0)}
ARCHIVE_NAME = {'gzip': 'files.tar.gz', 'zstd': 'files.tar.zst', 'none': 'files.tar'}
SQLITE_SIDECARS = ('-wal', '-shm', '-journal')
KIND = 'files'


# ---- input ---------------------------------------------------------------------

def clean_path(path, what):
    """An absolute, normalised path; '/' and relative paths are refused."""
    if not isinstance(path, str) or not path.strip():
        raise BackupError('%s: %r is not a path' % (what, path))
    if not os.path.isabs(path):
        raise BackupError('%s: %s is not an absolute path; give the full path' % (what, path))
    normal = os.path.normpath(path)
    if normal.startswith('//'):
        normal = '/' + normal.lstrip('/')
    if normal == '/':
        raise BackupError('%s: refusing to back up or restore / as a whole; list the directories' % what)
    return normal


def inside(path, root):
    """True when ``path`` is ``root`` or below it."""
    return path == root or path.startswith(root.rstrip('/') + '/')


def arcname(path):
    return path.lstrip('/')


def resolve_compression(compression, level):
    compression = compression or 'gzip'
    if compression not in COMPRESSIONS:
        raise BackupError('compression %r: use one of %s' % (compression, ', '.join(COMPRESSIONS)))
    if level is None:
        level = DEFAULT_LEVEL[compression]
    low, high = LEVELS[compression]
    if compression != 'none' and not low <= level <= high:
        raise BackupError('compression_level %d is out of range for %s: give %d-%d' % (level, compression, low, high))
    if compression == 'zstd' and shutil.which('zstd') is None:
        raise BackupError('compression zstd needs the zstd program on the host; install zstd or use gzip')
    return compression, (level if compression != 'none' else 0)


def backup_plan(params):
    """Validate the paths of a backup and return its plan: roots (what the archive holds,
    sorted), the SQLite databases and where their snapshots go, excludes, compression."""
    paths = [clean_path(p, 'paths') for p in params.get('paths') or []]
    databases = [clean_path(p, 'sqlite') for p in params.get('sqlite') or []]
    if not paths and not databases:
        raise BackupError('nothing to back up: give paths and/or sqlite')
    for index, path in enumerate(paths):
        for other in paths[:index] + paths[index + 1:]:
            if path != other and inside(path, other):
                raise BackupError('paths: %s is inside %s; list only %s' % (path, other, other))
    for database in databases:
        if databases.count(database) > 1:
            raise BackupError('sqlite: %s is listed twice' % database)
    roots = sorted(set(paths) | set(d for d in databases if not any(inside(d, p) for p in paths)))
    excludes = list(params.get('exclude') or [])
    for pattern in excludes:
        if not isinstance(pattern, str) or not pattern:
            raise BackupError('exclude: %r is not a glob pattern' % (pattern,))
    compression, level = resolve_compression(params.get('compression'), params.get('compression_level'))
    return {'roots': roots, 'paths': sorted(set(paths)), 'sqlite': sorted(set(databases)), 'exclude': excludes,
            'compression': compression, 'level': level, 'archive': ARCHIVE_NAME[compression],
            'allow_missing': bool(params.get('allow_missing'))}


def is_excluded(path, patterns):
    """A glob matches the absolute path or the base name."""
    name = os.path.basename(path)
    return any(fnmatch.fnmatchcase(path, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


# ---- what goes into the archive ----------------------------------------------------

def _owner_names(uid, gid):
    user = group = ''
    if pwd is not None:
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            pass
        try:
            group = grp.getgrgid(gid).gr_name
        except KeyError:
            pass
    return user, group


def entry_of(path, info):
    """The manifest entry of one file system object (without sha256)."""
    if stat.S_ISDIR(info.st_mode):
        kind = 'dir'
    elif stat.S_ISREG(info.st_mode):
        kind = 'file'
    elif stat.S_ISLNK(info.st_mode):
        kind = 'symlink'
    else:
        kind = 'other'
    entry = {'path': arcname(path), 'type': kind, 'mode': '%04o' % stat.S_IMODE(info.st_mode),
             'uid': info.st_uid, 'gid': info.st_gid, 'mtime': info.st_mtime,
             'size': info.st_size if kind == 'file' else 0}
    if kind == 'symlink':
        entry['target'] = os.readlink(path)
    return entry


def scan(plan):
    """Walk the roots: (entries in archive order, skipped [(path, reason)], missing roots).
    Live SQLite databases (and their -wal/-shm/-journal) are left out of the walk: their
    consistent snapshot takes their place."""
    live = set()
    for database in plan['sqlite']:
        live.add(database)
        live.update(database + side for side in SQLITE_SIDECARS)
    entries, skipped, missing = [], [], []
    for root in plan['roots']:
        try:
            info = os.lstat(root)
        except OSError:
            missing.append(root)
            continue
        if root in plan['sqlite']:
            entries.append(dict(entry_of(root, info), sqlite=True))
            continue
        if not stat.S_ISDIR(info.st_mode):
            entry = entry_of(root, info)
            if entry['type'] == 'other':
                skipped.append((root, 'not a file, directory or symbolic link'))
            else:
                entries.append(entry)
            continue
        entries.append(entry_of(root, info))
        for directory, dirnames, filenames in os.walk(root):
            kept = []
            for dirname in sorted(dirnames):
                path = os.path.join(directory, dirname)
                if is_excluded(path, plan['exclude']):
                    skipped.append((path, 'excluded'))
                    continue
                info = os.lstat(path)
                if stat.S_ISLNK(info.st_mode):       # os.walk lists links to directories here
                    entries.append(entry_of(path, info))
                    continue
                kept.append(dirname)
                entries.append(entry_of(path, info))
            dirnames[:] = kept
            for filename in sorted(filenames):
                path = os.path.join(directory, filename)
                if path in plan['sqlite']:
                    entries.append(dict(entry_of(path, os.lstat(path)), sqlite=True))
                    continue
                if path in live:
                    skipped.append((path, 'SQLite journal of a database backed up through its online backup'))
                    continue
                if is_excluded(path, plan['exclude']):
                    skipped.append((path, 'excluded'))
                    continue
                try:
                    info = os.lstat(path)
                except OSError:
                    skipped.append((path, 'vanished during the backup'))
                    continue
                entry = entry_of(path, info)
                if entry['type'] == 'other':
                    skipped.append((path, 'not a file, directory or symbolic link'))
                    continue
                entries.append(entry)
    order = dict((e['path'], i) for i, e in enumerate(entries))
    entries.sort(key=lambda e: (_root_index(e['path'], plan['roots']), order[e['path']]))
    return entries, skipped, missing


def _root_index(path, roots):
    for index, root in enumerate(roots):
        if inside('/' + path, root):
            return index
    return len(roots)


# ---- SQLite online backups --------------------------------------------------------

def sqlite_snapshot(source, destination, timeout=60):
    """Copy the live database ``source`` into ``destination`` through SQLite's online
    backup API (one step: a consistent snapshot even while others write), check the copy
    (PRAGMA integrity_check) and count its tables' rows."""
    if not os.path.isfile(source):
        raise BackupError('sqlite: %s does not exist or is not a file' % source)
    started = time.monotonic()
    # A plain connection: the backup API only reads the source, and a read-only URI
    # cannot replay a WAL that no writer has checkpointed.
    src = sqlite3.connect(source, timeout=timeout)
    try:
        dst = sqlite3.connect(destination)
        try:
            src.backup(dst)
            integrity = dst.execute('PRAGMA integrity_check').fetchall()
            tables = [row[0] for row in dst.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            counts = dict((name, dst.execute('SELECT count(*) FROM "%s"' % name.replace('"', '""')).fetchone()[0])
                          for name in tables)
            journal = dst.execute('PRAGMA journal_mode').fetchone()[0]
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError('sqlite: the online backup of %s failed: %s' % (source, exc))
    finally:
        src.close()
    for side in SQLITE_SIDECARS:
        if os.path.exists(destination + side):
            os.unlink(destination + side)
    problems = [row[0] for row in integrity if row[0] != 'ok']
    if problems:
        raise BackupError('sqlite: the snapshot of %s fails PRAGMA integrity_check: %s'
                          % (source, '; '.join(problems[:5])))
    return {'path': source, 'tables': counts, 'total_rows': sum(counts.values()), 'journal_mode': journal,
            'integrity': 'ok', 'seconds': round(time.monotonic() - started, 3)}


def check_sqlite_file(path):
    """Problems of a SQLite file (integrity_check); empty when it is sound."""
    try:
        connection = sqlite3.connect('file:%s?mode=ro' % pathname2url(path), uri=True)
        try:
            rows = connection.execute('PRAGMA integrity_check').fetchall()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        return ['%s is not a readable SQLite database: %s' % (path, exc)]
    return ['%s: %s' % (path, row[0]) for row in rows if row[0] != 'ok']


# ---- writing and reading archives ------------------------------------------------

class HashingReader:
    """Reads at most ``size`` bytes of a file and hashes them (tarfile's fileobj)."""

    def __init__(self, stream):
        self.stream = stream
        self.digest = hashlib.sha256()

    def read(self, size=-1):
        block = self.stream.read(size)
        self.digest.update(block)
        return block


class ArchiveWriter:
    """A tar stream into ``path``: gzip by Python, zstd through the zstd program."""

    def __init__(self, path, compression, level):
        self.path = path
        self.process = None
        self.output = None
        if compression == 'gzip':
            self.tar = tarfile.open(path, 'w:gz', compresslevel=level, format=tarfile.PAX_FORMAT)
        elif compression == 'zstd':
            self.output = open(path, 'wb')
            self.process = subprocess.Popen(['zstd', '-q', '-%d' % level, '-c'], stdin=subprocess.PIPE,
                                            stdout=self.output, stderr=subprocess.PIPE)
            self.tar = tarfile.open(fileobj=self.process.stdin, mode='w|', format=tarfile.PAX_FORMAT)
        else:
            self.tar = tarfile.open(path, 'w', format=tarfile.PAX_FORMAT)

    def close(self):
        self.tar.close()
        if self.process is not None:
            self.process.stdin.close()
            stderr = self.process.stderr.read()
            rc = self.process.wait()
            self.output.close()
            if rc != 0:
                raise BackupError('zstd failed with exit code %d: %s' % (rc, stderr.decode('utf-8', 'replace').strip()))

    def abort(self):
        try:
            if self.process is not None:
                self.process.kill()
                self.process.wait()
                self.output.close()
            else:
                self.tar.fileobj.close()
        except (OSError, ValueError):
            pass


def tarinfo_of(entry):
    info = tarfile.TarInfo(entry['path'] + ('/' if entry['type'] == 'dir' else ''))
    info.name = entry['path']
    info.mode = int(entry['mode'], 8)
    info.uid, info.gid = entry['uid'], entry['gid']
    info.uname, info.gname = _owner_names(entry['uid'], entry['gid'])
    info.mtime = entry['mtime']
    if entry['type'] == 'dir':
        info.type = tarfile.DIRTYPE
    elif entry['type'] == 'symlink':
        info.type = tarfile.SYMTYPE
        info.linkname = entry['target']
    else:
        info.type = tarfile.REGTYPE
        info.size = entry['size']
    return info


def add_file(writer, entry, source):
    """Add one regular file, hashing what is read; notes when it changed while read."""
    fd = os.open(source, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
    with os.fdopen(fd, 'rb') as stream:
        before = os.fstat(fd)
        entry['size'] = before.st_size
        reader = HashingReader(stream)
        try:
            writer.tar.addfile(tarinfo_of(entry), reader)
        except OSError as exc:
            if 'unexpected end of data' in str(exc):
                raise BackupError('%s shrank while it was read; retry when it is not being rewritten, '
                                  'or exclude it' % source)
            raise
        after = os.fstat(fd)
    entry['sha256'] = reader.digest.hexdigest()
    return after.st_size != before.st_size or after.st_mtime != before.st_mtime


def write_archive(partial, plan, entries, timeout=60):
    """Write the archive into ``partial``; returns (SQLite details, paths that changed while read)."""
    path = os.path.join(partial, plan['archive'])
    scratch = os.path.join(partial, '.sqlite')
    writer = ArchiveWriter(path, plan['compression'], plan['level'])
    details, changed = [], []
    try:
        for entry in entries:
            source = '/' + entry['path']
            if entry.get('sqlite'):
                if not os.path.isdir(scratch):
                    os.mkdir(scratch, 0o700)
                copy = os.path.join(scratch, 'snapshot.db')
                snapshot = sqlite_snapshot(source, copy, timeout=timeout)
                live = entry['size']
                add_file(writer, entry, copy)
                snapshot.update(size=entry['size'], sha256=entry['sha256'], live_size=live)
                details.append(snapshot)
                os.unlink(copy)
            elif entry['type'] == 'file':
                try:
                    if add_file(writer, entry, source):
                        changed.append(source)
                except (IOError, OSError) as exc:
                    if not os.path.lexists(source):
                        entry['vanished'] = True
                        continue
                    raise BackupError(describe_os_error(exc, 'reading %s' % source))
            else:
                writer.tar.addfile(tarinfo_of(entry))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        if os.path.isdir(scratch):
            shutil.rmtree(scratch, ignore_errors=True)
    return details, changed


def open_archive(path, compression):
    """(tarfile in stream mode, process or None) to read an archive sequentially."""
    if compression == 'zstd':
        process = subprocess.Popen(['zstd', '-dcq', path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return tarfile.open(fileobj=process.stdout, mode='r|'), process
    return tarfile.open(path, 'r|gz' if compression == 'gzip' else 'r|'), None


def close_archive(tar, process):
    tar.close()
    if process is None:
        return None
    process.stdout.read()
    stderr = process.stderr.read()
    rc = process.wait()
    if rc != 0:
        return 'zstd -d failed with exit code %d: %s' % (rc, stderr.decode('utf-8', 'replace').strip())
    return None


def member_type(member):
    if member.isdir():
        return 'dir'
    if member.issym():
        return 'symlink'
    if member.isreg():
        return 'file'
    return 'other'


def compare_member(member, entry, digest=None):
    """Differences between an archive member and its manifest entry."""
    problems = []
    name = entry['path']
    if member_type(member) != entry['type']:
        return ['%s is a %s in the archive, the manifest says %s' % (name, member_type(member), entry['type'])]
    if '%04o' % member.mode != entry['mode']:
        problems.append('%s has mode %04o in the archive, the manifest says %s' % (name, member.mode, entry['mode']))
    if (member.uid, member.gid) != (entry['uid'], entry['gid']):
        problems.append('%s is owned by %d:%d in the archive, the manifest says %d:%d'
                        % (name, member.uid, member.gid, entry['uid'], entry['gid']))
    if entry['type'] == 'symlink' and member.linkname != entry.get('target'):
        problems.append('%s points to %s in the archive, the manifest says %s'
                        % (name, member.linkname, entry.get('target')))
    if entry['type'] == 'file':
        if member.size != entry['size']:
            problems.append('%s has %d bytes in the archive, the manifest says %d' % (name, member.size, entry['size']))
        elif digest is not None and digest != entry.get('sha256'):
            problems.append('%s has sha256 %s in the archive, the manifest says %s'
                            % (name, digest, entry.get('sha256')))
    return problems


def check_archive(backup_dir, manifest):
    """Read the whole archive back: every member against its manifest entry (type, mode,
    owner, size, sha256, link target), nothing missing, nothing extra; SQLite snapshots
    pass integrity_check.  A list of problems, empty when it is sound."""
    details = manifest.get('files_backup') or {}
    path = os.path.join(backup_dir, details.get('archive') or '')
    entries = dict((e['path'], e) for e in details.get('entries') or [] if not e.get('vanished'))
    problems, seen = [], set()
    try:
        tar, process = open_archive(path, details.get('compression'))
    except (OSError, tarfile.TarError) as exc:
        return ['cannot open the archive %s: %s' % (path, exc)]
    try:
        for member in tar:
            entry = entries.get(member.name)
            if entry is None:
                problems.append('%s is in the archive but not in the manifest' % member.name)
                continue
            seen.add(member.name)
            digest = None
            if member.isreg():
                hasher = hashlib.sha256()
                stream = tar.extractfile(member)
                while True:
                    block = stream.read(CHUNK)
                    if not block:
                        break
                    hasher.update(block)
                digest = hasher.hexdigest()
            problems.extend(compare_member(member, entry, digest))
    except (OSError, EOFError, tarfile.TarError) as exc:
        problems.append('the archive %s cannot be read to its end: %s' % (path, exc))
    finally:
        error = close_archive(tar, process)
        if error:
            problems.append(error)
    for name in sorted(set(entries) - seen):
        problems.append('%s is in the manifest but not in the archive' % name)
    return problems


def verify_backup(backup, level, now=None):
    """Verify a stored files backup at ``level`` (checksum < archive); the record
    written to its manifest."""
    now = now or utcnow()
    record = {'level': level, 'at': isoformat(now), 'problems': []}
    manifest = backup.get('manifest')
    if manifest is None:
        record.update(status=FAILED, problems=['%s has no readable manifest' % backup['path']])
        return record
    if manifest.get('kind') != KIND:
        record.update(status=FAILED, problems=['%s is a %s backup, not a files backup'
                                               % (backup['path'], manifest.get('kind'))])
        return record
    started = time.monotonic()
    problems = check_files(backup['path'], manifest)
    if not problems and level == 'archive':
        problems = check_archive(backup['path'], manifest)
    record.update(problems=problems, status=FAILED if problems else PASSED,
                  duration_seconds=round(time.monotonic() - started, 3))
    return record


def summary(backup):
    details = (backup.get('manifest') or {}).get('files_backup') or {}
    return backup_summary(backup, paths=details.get('roots'), compression=details.get('compression'),
                          entries=len(details.get('entries') or []))


# ---- taking a backup ------------------------------------------------------------

class FilesBackup:
    """One files_backup call: plan (paths, period, retention), then act (archive,
    verify, prune) under the label's lock."""

    def __init__(self, params, check_mode=False, now=None):
        self.params = params
        self.check_mode = check_mode
        self.now = now or utcnow()
        self.label = params['label']
        self.root = params['backup_root']
        self.directory = label_dir(self.root, self.label)
        self.retention = validate_retention(params.get('retention'))
        self.level = params.get('verify') or 'archive'
        self.result = {'changed': False, 'label': self.label, 'backup_dir': self.directory, 'taken': None,
                       'deleted': [], 'would_delete': [], 'skipped_reason': None}

    def _retention_plan(self, backups, extra=None):
        records = [{'name': b['name'], 'time': b['time'], 'status': b['status']} for b in backups]
        if extra:
            records.append(extra)
        return select_retention(records, self.now, self.retention)

    def _covered(self, backups):
        period = self.params.get('period')
        if not period:
            return None
        return current_backup(backups, self.now, period, self.level == 'none')

    def run(self):
        state = self.params.get('state') or 'present'
        # Taking or verifying refuses a label that holds another kind of backup; retention
        # alone (state=pruned, as the backup role applies it on the backup host to every
        # series it received) works on any kind.
        kind = None if state == 'pruned' else KIND
        plan = backup_plan(self.params) if state == 'present' else None
        if state == 'present':
            missing = [r for r in plan['roots'] if not os.path.lexists(r)]
            if missing and not plan['allow_missing']:
                raise BackupError('paths %s do not exist; fix paths or set allow_missing=true' % ', '.join(missing))
            if missing and len(missing) == len(plan['roots']):
                raise BackupError('none of the paths exists (%s): there is nothing to back up' % ', '.join(missing))
        if self.check_mode:
            backups = list_backups(self.directory, kind=kind) if os.path.isdir(self.directory) else []
            return self._plan(state, plan, backups)
        ensure_label_dir(self.root, self.label)
        before = [b['name'] for b in list_backups(self.directory, kind=kind)]
        lock = LabelLock(self.directory, self.params.get('lock_timeout', 600))
        with lock:
            self.result['lock_waited_seconds'] = round(lock.waited, 3)
            stale = partial_dirs(self.directory)
            for path in stale:
                remove_tree(path)
            self.result['removed_partials'] = stale
            if stale:
                self.result['changed'] = True
            backups = list_backups(self.directory, kind=kind)
            if state == 'present':
                self._take(plan, backups)
            elif state == 'verified':
                self._verify_newest(backups)
            backups = list_backups(self.directory, kind=kind)
            if self.retention:
                decision = self._retention_plan(backups)
                self.result['retention'] = decision
                for name in decision['delete']:
                    remove_tree(os.path.join(self.directory, name))
                    self.result['deleted'].append(name)
                if decision['delete']:
                    self.result['changed'] = True
        backups = list_backups(self.directory, kind=kind)
        self.result['diff'] = backups_diff(self.directory, before, [b['name'] for b in backups])
        self.result['backups'] = [summary(b) for b in backups]
        self.result['rpo_seconds'], self.result['newest_verified'] = freshness(backups, utcnow())
        return self.result

    def _plan(self, state, plan, backups):
        before = [b['name'] for b in backups]
        would_take, record = None, None
        if state == 'present':
            current = self._covered(backups)
            if current is None:
                entries, skipped, missing = scan(plan)
                name = backup_name(self.now)
                would_take = {'name': name, 'path': os.path.join(self.directory, name), 'archive': plan['archive'],
                              'paths': plan['roots'], 'sqlite': plan['sqlite'], 'missing': missing,
                              'entries': len(entries), 'bytes': sum(e['size'] for e in entries),
                              'skipped': ['%s (%s)' % s for s in skipped],
                              'compression': plan['compression'], 'compression_level': plan['level']}
                record = {'name': name, 'time': self.now, 'status': PASSED}
                self.result['changed'] = True
            else:
                self.result['skipped_reason'] = 'backup %s already covers the %s period' % (
                    current['name'], self.params['period'])
        elif state == 'verified' and not any(b['manifest'] for b in backups):
            raise BackupError('there is no backup to verify in %s' % self.directory)
        self.result['would_take'] = would_take
        if self.retention:
            decision = self._retention_plan(backups, record)
            self.result['retention'] = decision
            self.result['would_delete'] = decision['delete']
            if decision['delete']:
                self.result['changed'] = True
        after = [n for n in before if n not in self.result['would_delete']]
        if would_take:
            after.append(would_take['name'])
        self.result['diff'] = backups_diff(self.directory, before, sorted(after))
        self.result['backups'] = [summary(b) for b in backups]
        self.result['rpo_seconds'], self.result['newest_verified'] = freshness(backups, self.now)
        return self.result

    def _verify_newest(self, backups):
        target = next((b for b in reversed(backups) if b['manifest'] is not None), None)
        if target is None:
            raise BackupError('there is no backup to verify in %s' % self.directory)
        if self.level == 'none':
            raise BackupError('state=verified needs verify set to checksum or archive')
        record = verify_backup(target, self.level)
        record_verification(target, record)
        self.result['verification'] = dict(record, backup=target['name'])
        if record['status'] == FAILED:
            raise VerificationFailed('backup %s failed verification: %s'
                                     % (target['path'], '; '.join(record['problems'])), self.result)

    def _take(self, plan, backups):
        current = self._covered(backups)
        if current is not None:
            self.result['skipped_reason'] = 'backup %s already covers the %s period' % (
                current['name'], self.params['period'])
            return
        name = backup_name(utcnow())
        if os.path.exists(os.path.join(self.directory, name)):
            time.sleep(1.05)                 # we hold the lock: the next second's name is ours
            name = backup_name(utcnow())
        final = os.path.join(self.directory, name)
        old_umask = os.umask(0o077)
        partial = None
        started = utcnow()
        clock = time.monotonic()
        try:
            partial = new_partial_dir(self.directory, name)
            entries, skipped, missing = scan(plan)
            if not entries:
                raise BackupError('the paths hold nothing to back up (%s): refusing an empty backup'
                                  % ', '.join(plan['roots']))
            sqlite_details, changed = write_archive(partial, plan, entries,
                                                    timeout=self.params.get('lock_timeout', 600))
            kept = [e for e in entries if not e.get('vanished')]
            skipped += [('/' + e['path'], 'vanished during the backup') for e in entries if e.get('vanished')]
            finished = utcnow()
            files = describe_files(partial)
            manifest = {
                'manifest_version': MANIFEST_VERSION, 'kind': KIND, 'label': self.label, 'name': name,
                'started': isoformat(started), 'finished': isoformat(finished),
                'duration_seconds': round(time.monotonic() - clock, 3), 'period': self.params.get('period'),
                'files': files, 'host': os.uname()[1],
                'files_backup': {
                    'archive': plan['archive'], 'compression': plan['compression'],
                    'compression_level': plan['level'], 'roots': [r for r in plan['roots'] if r not in missing],
                    'missing': missing, 'paths': plan['paths'], 'sqlite': sqlite_details, 'exclude': plan['exclude'],
                    'entries': kept, 'skipped': ['%s (%s)' % s for s in skipped],
                    'changed_during_backup': changed,
                    'counts': dict((kind, sum(1 for e in kept if e['type'] == kind))
                                   for kind in ('file', 'dir', 'symlink')),
                    'bytes': sum(e['size'] for e in kept),
                },
            }
            if self.level != 'none':
                problems = check_archive(partial, manifest) if self.level == 'archive' else []
                if problems:
                    raise BackupError('the new archive does not read back as written, refusing it: %s'
                                      % '; '.join(problems[:10]))
                manifest['verification'] = {'status': PASSED, 'level': self.level, 'at': isoformat(utcnow()),
                                            'problems': []}
            write_json_atomic(os.path.join(partial, MANIFEST), manifest)
            seal_tree(partial)
            commit_partial(partial, final)
            partial = None
        except OSError as exc:
            raise BackupError(describe_os_error(exc, 'writing the backup into %s' % self.directory))
        finally:
            os.umask(old_umask)
            if partial is not None:
                remove_tree(partial)
        details = manifest['files_backup']
        self.result['changed'] = True
        self.result['taken'] = {'name': name, 'path': final, 'files': files, 'entries': len(kept),
                                'counts': details['counts'], 'bytes': details['bytes'],
                                'size': sum(f['size'] for f in files), 'sqlite': sqlite_details,
                                'missing': missing, 'changed_during_backup': changed,
                                'duration_seconds': manifest['duration_seconds']}
        self.result['verification'] = dict(manifest.get('verification') or {'status': 'unverified'}, backup=name)


# ---- restoring ------------------------------------------------------------------

def command_argv(command, what):
    if command is None or command == '' or command == []:
        return None
    if isinstance(command, str):
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise BackupError('%s: cannot split %r: %s' % (what, command, exc))
    elif isinstance(command, list):
        argv = [str(part) for part in command]
    else:
        raise BackupError('%s must be a command line or a list of arguments' % what)
    if not argv:
        raise BackupError('%s is empty' % what)
    return argv


def run_command(argv, timeout, what):
    """(ok, one line about it): runs ``argv`` without a shell."""
    started = time.monotonic()
    try:
        process = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                                 check=False)
    except subprocess.TimeoutExpired:
        return False, '%s (%s) did not finish within %ss' % (what, ' '.join(argv), timeout), None
    except OSError as exc:
        return False, '%s (%s) cannot run: %s' % (what, ' '.join(argv), exc), None
    output = process.stdout.decode('utf-8', 'replace').strip()
    tail = output.splitlines()[-1][:300] if output else ''
    seconds = round(time.monotonic() - started, 3)
    if process.returncode != 0:
        return False, '%s (%s) exited %d%s' % (what, ' '.join(argv), process.returncode,
                                               ': %s' % tail if tail else ''), seconds
    return True, '%s (%s) exited 0' % (what, ' '.join(argv)), seconds


def current_matches(destination, root, entries):
    """Differences between what is at ``destination`` now and the backup's entries under
    ``root`` (type, mode, owner, size, sha256, mtime, link target); empty when equal."""
    prefix = arcname(root)
    wanted = dict((e['path'], e) for e in entries if e['path'] == prefix or e['path'].startswith(prefix + '/'))
    differences = []
    present = set()
    if not os.path.lexists(destination):
        return ['%s does not exist' % destination]
    info = os.lstat(destination)
    walk = [(destination, prefix, info)]
    if stat.S_ISDIR(info.st_mode):
        for directory, dirnames, filenames in os.walk(destination):
            for name in dirnames + filenames:
                path = os.path.join(directory, name)
                walk.append((path, prefix + path[len(destination):], os.lstat(path)))
    sidecars = set(e['path'] + side for e in wanted.values() if e.get('sqlite') for side in SQLITE_SIDECARS)
    for path, name, info in walk:
        present.add(name)
        entry = wanted.get(name)
        if entry is None and name in sidecars:
            continue                     # a live database's journal: the database itself is compared
        if entry is None:
            differences.append('%s is not in the backup' % path)
            continue
        now = entry_of(path, info)
        for key in ('type', 'mode', 'uid', 'gid'):
            if now[key] != entry[key]:
                differences.append('%s: %s is %s, the backup has %s' % (path, key, now[key], entry[key]))
                break
        else:
            if entry['type'] == 'symlink' and now.get('target') != entry.get('target'):
                differences.append('%s points elsewhere' % path)
            elif entry['type'] == 'file':
                if now['size'] != entry['size'] or abs(now['mtime'] - entry['mtime']) > 1e-3:
                    differences.append('%s differs in size or mtime' % path)
                elif sha256_of(path) != entry['sha256']:
                    differences.append('%s differs in content' % path)
    for name in sorted(set(wanted) - present):
        differences.append('/%s is missing' % name)
    return differences


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(CHUNK), b''):
            digest.update(block)
    return digest.hexdigest()


def unique_path(path):
    candidate, number = path, 1
    while os.path.lexists(candidate):
        number += 1
        candidate = '%s.%d' % (path, number)
    return candidate


def _set_attrs(path, entry, link=False):
    if os.geteuid() == 0:
        os.lchown(path, entry['uid'], entry['gid'])
    if not link:
        os.chmod(path, int(entry['mode'], 8))
        os.utime(path, (entry['mtime'], entry['mtime']))
    elif os.utime in getattr(os, 'supports_follow_symlinks', ()):
        os.utime(path, (entry['mtime'], entry['mtime']), follow_symlinks=False)


def extract(backup_dir, manifest, targets):
    """Extract the members under each root of ``targets`` ({root: staging path}) in one
    pass over the archive, checking every file's sha256 against the manifest.  Owners
    (when root), modes and mtimes are set as recorded; directories last, deepest first."""
    details = manifest['files_backup']
    entries = dict((e['path'], e) for e in details['entries'] if not e.get('vanished'))
    prefixes = sorted(((arcname(root), staging) for root, staging in targets.items()),
                      key=lambda item: -len(item[0]))
    directories, written = [], set()
    tar, process = open_archive(os.path.join(backup_dir, details['archive']), details['compression'])
    try:
        for member in tar:
            name = member.name
            staging = None
            for prefix, candidate in prefixes:
                if name == prefix or name.startswith(prefix + '/'):
                    staging, rest = candidate, name[len(prefix):]
                    break
            if staging is None:
                continue
            if '..' in rest.split('/'):
                raise BackupError('the archive member %s leaves its directory; refusing it' % name)
            entry = entries.get(name)
            if entry is None:
                raise BackupError('the archive member %s is not in the manifest' % name)
            path = staging + rest
            if member.isdir():
                os.mkdir(path, 0o700)
                directories.append((path, entry))
            elif member.issym():
                os.symlink(member.linkname, path)
                _set_attrs(path, entry, link=True)
            elif member.isreg():
                digest = hashlib.sha256()
                source = tar.extractfile(member)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0), 0o600)
                with os.fdopen(fd, 'wb') as stream:
                    while True:
                        block = source.read(CHUNK)
                        if not block:
                            break
                        digest.update(block)
                        stream.write(block)
                    stream.flush()
                    os.fsync(stream.fileno())
                if digest.hexdigest() != entry['sha256']:
                    raise BackupError('%s from the archive has sha256 %s, the manifest says %s; the backup is '
                                      'damaged' % (name, digest.hexdigest(), entry['sha256']))
                _set_attrs(path, entry)
            written.add(name)
    finally:
        error = close_archive(tar, process)
    if error:
        raise BackupError(error)
    for path, entry in sorted(directories, key=lambda item: -len(item[0])):
        _set_attrs(path, entry)
        fsync_dir_quietly(path)
    missing = [n for n in entries if n not in written and any(n == p or n.startswith(p + '/') for p, s in prefixes)]
    if missing:
        raise BackupError('the archive lacks %s, which the manifest lists' % ', '.join(sorted(missing)[:10]))
    return len(written)


def remove_path(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


class FilesRestore:
    """One files_restore call: verify, extract beside the targets, prove, move the current
    data aside, swap, health-check, and roll back when the check fails."""

    def __init__(self, params, check_mode=False, now=None):
        self.params = params
        self.check_mode = check_mode
        self.now = now or utcnow()
        self.stamp = self.now.strftime('%Y%m%dT%H%M%SZ')
        self.result = {'changed': False, 'rolled_back': False, 'restored': [], 'moved_aside': [], 'plan': []}

    def _destination(self, root):
        target_root = self.params.get('target_root') or '/'
        if target_root == '/':
            return root
        return os.path.join(clean_path(target_root, 'target_root'), arcname(root))

    def run(self):
        params = self.params
        backup = find_backup(params.get('backup_root'), params.get('label'), params.get('backup'))
        manifest = backup['manifest']
        if manifest is None:
            raise BackupError('%s has no readable manifest: it is not a complete backup; refusing to restore it'
                              % backup['path'])
        if manifest.get('kind') != KIND:
            raise BackupError('%s is a %s backup; restore it with its own module'
                              % (backup['path'], manifest.get('kind')))
        details = manifest.get('files_backup')
        roots = details.get('roots') if isinstance(details, dict) else None
        if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
            raise BackupError('%s/manifest.json has no list of roots under files_backup: the manifest is damaged; '
                              'restore another backup' % backup['path'])
        wanted = [clean_path(p, 'paths') for p in params.get('paths') or []] or list(roots)
        unknown = [p for p in wanted if p not in roots]
        if unknown:
            raise BackupError('paths %s are not roots of backup %s (it holds %s)'
                              % (', '.join(unknown), backup['name'], ', '.join(roots)))
        health = command_argv(params.get('health_check'), 'health_check')
        stop = command_argv(params.get('stop_command'), 'stop_command')
        start = command_argv(params.get('start_command'), 'start_command')
        self.result.update(backup=backup['name'], backup_path=backup['path'], label=manifest.get('label'),
                           backup_finished=manifest.get('finished'))
        if manifest.get('finished'):
            try:
                self.result['rpo_seconds'] = round(age_seconds(parse_iso(manifest['finished']), utcnow()), 1)
            except (TypeError, ValueError):
                self.result['rpo_seconds'] = None
                self.result['warnings'] = ['%s/manifest.json: finished %r is not a UTC time like 2026-03-01T02:00:00Z; '
                                           'rpo_seconds is unknown' % (backup['path'], manifest['finished'])]
        lock = None
        if not self.check_mode and os.path.isdir(os.path.dirname(backup['path'])):
            lock = LabelLock(os.path.dirname(backup['path']), params.get('lock_timeout', 600)).acquire()
        try:
            record = verify_backup(backup, params.get('verify') or 'archive')
            self.result['verification'] = record
            if record['status'] != PASSED:
                raise BackupError('backup %s failed verification, refusing to restore it: %s'
                                  % (backup['path'], '; '.join(record['problems'][:10])))
            todo = []
            for root in wanted:
                destination = self._destination(root)
                differences = current_matches(destination, root, details['entries'])
                if differences or params.get('force'):
                    todo.append((root, destination, differences))
            if not todo:
                self.result['skipped_reason'] = '%s already match backup %s' % (', '.join(wanted), backup['name'])
                return self.result
            self.result['changed'] = True
            self.result['diff'] = {
                'before': ''.join('%s: %s\n' % (item[1], '; '.join(item[2][:3]) or 'as in the backup')
                                  for item in todo),
                'after': ''.join('%s: as in %s/%s\n' % (item[1], manifest.get('label'), backup['name'])
                                 for item in todo)}
            self.result['plan'] = self._describe(todo, stop, start, health)
            if self.check_mode:
                return self.result
            return self._apply(backup, todo, stop, start, health)
        finally:
            if lock is not None:
                lock.release()

    def _describe(self, todo, stop, start, health):
        steps = ['extract %s beside %s and prove every file against the manifest'
                 % (', '.join(r for r, d, x in todo), ', '.join(d for r, d, x in todo))]
        if stop:
            steps.append('run %s' % ' '.join(stop))
        for destination in [item[1] for item in todo]:
            if os.path.lexists(destination):
                steps.append('move %s aside to %s.before-%s' % (destination, destination, self.stamp))
            steps.append('rename the extracted copy to %s' % destination)
        if start:
            steps.append('run %s' % ' '.join(start))
        if health:
            steps.append('health check %s; on failure put the old data back' % ' '.join(health))
        if not self.params.get('keep_replaced', True):
            steps.append('remove the moved-aside data')
        return steps

    def _apply(self, backup, todo, stop, start, health):
        params = self.params
        started = time.monotonic()
        staging = {}
        created = []
        try:
            for root, destination, _differences in todo:
                parent = os.path.dirname(destination)
                if not os.path.isdir(parent):
                    missing = parent
                    while not os.path.isdir(os.path.dirname(missing)):
                        missing = os.path.dirname(missing)
                    os.makedirs(parent, 0o755)
                    created.append(missing)
                name = '.%s.restore-%s' % (os.path.basename(destination), self.stamp)
                staging[root] = unique_path(os.path.join(parent, name))
            count = extract(backup['path'], backup['manifest'], staging)
        except BaseException:
            for path in staging.values():
                remove_path(path)
            for path in created:
                remove_path(path)
            raise
        self.result['extracted'] = count
        self.result['extract_seconds'] = round(time.monotonic() - started, 3)
        if stop:
            ok, message, seconds = run_command(stop, params.get('health_check_timeout', 60), 'stop_command')
            self.result['stop_command'] = message
            if not ok:
                for path in staging.values():
                    remove_path(path)
                raise BackupError('%s; nothing was changed' % message)
        swapped = []
        try:
            for root, destination, _differences in todo:
                aside = None
                sidecars = []
                if os.path.lexists(destination):
                    aside = unique_path('%s.before-%s' % (destination, self.stamp))
                    os.rename(destination, aside)
                    swapped.append((destination, aside, sidecars))   # moved: from now on it must come back
                    for side in SQLITE_SIDECARS:       # a stale WAL must never meet the restored database
                        if os.path.lexists(destination + side):
                            os.rename(destination + side, aside + side)
                            sidecars.append(side)
                else:
                    swapped.append((destination, aside, sidecars))
                os.rename(staging[root], destination)
                del staging[root]
                fsync_dir_quietly(os.path.dirname(destination))
        except OSError as exc:
            problem = describe_os_error(exc, 'swapping in the restored data')
            self._roll_back(swapped, staging, problem)
            raise BackupError('%s; everything was put back' % problem)
        for destination, aside in [item[:2] for item in swapped]:
            self.result['restored'].append(destination)
            if aside:
                self.result['moved_aside'].append(aside)
        problem = None
        if start:
            ok, message, seconds = run_command(start, params.get('health_check_timeout', 60), 'start_command')
            self.result['start_command'] = message
            if not ok:
                problem = message
        if health and problem is None:
            attempts = max(1, (params.get('health_check_retries') or 0) + 1)
            for attempt in range(attempts):
                ok, message, seconds = run_command(health, params.get('health_check_timeout', 60), 'health_check')
                self.result['health_check'] = {'passed': ok, 'message': message, 'attempts': attempt + 1}
                if ok:
                    break
                if attempt + 1 < attempts:
                    time.sleep(params.get('health_check_delay', 2))
            if not ok:
                problem = message
        if problem is not None:
            if stop:
                ok, message, seconds = run_command(stop, params.get('health_check_timeout', 60), 'stop_command')
                self.result['stop_before_rollback'] = message
                if not ok:
                    problem = '%s; then %s (rolling back anyway: the restored data is not healthy)' % (problem, message)
            failed = self._roll_back(swapped, {}, problem, keep_failed=params.get('keep_failed', False))
            if start:
                ok, message, seconds = run_command(start, params.get('health_check_timeout', 60), 'start_command')
                self.result['start_after_rollback'] = message
                if not ok:
                    problem = '%s; after the rollback %s' % (problem, message)
            self.result.update(rolled_back=True, restored=[], moved_aside=[], failed_copies=failed)
            raise RolledBack('%s; rolled back: %s %s back as before' % (
                problem, ', '.join(d for d, a, s in swapped), 'is' if len(swapped) == 1 else 'are'), self.result)
        if not params.get('keep_replaced', True):
            for aside, sidecars in [item[1:] for item in swapped]:
                if aside:
                    remove_path(aside)
                    for side in sidecars:
                        remove_path(aside + side)
            self.result['removed_aside'] = self.result['moved_aside']
            self.result['moved_aside'] = []
        self.result['rto_seconds'] = round(time.monotonic() - started, 3)
        return self.result

    def _roll_back(self, swapped, staging, problem, keep_failed=False):
        """Put every moved-aside path back: the restored copy first goes to
        ``<path>.failed-<time>`` (renamed, never deleted before the old data is back),
        then the old data and its SQLite sidecars return.  Every path is tried; when one
        cannot be put back, RollbackFailed names where each old and each failed copy is."""
        failed, errors = [], []
        for destination, aside, sidecars in reversed(swapped):
            copy = None
            try:
                if os.path.lexists(destination):
                    copy = unique_path('%s.failed-%s' % (destination, self.stamp))
                    os.rename(destination, copy)
                    for side in SQLITE_SIDECARS:   # written beside the restored database: its own
                        if aside and os.path.lexists(destination + side):
                            os.rename(destination + side, copy + side)
                if aside:
                    os.rename(aside, destination)
                    for side in list(sidecars):
                        os.rename(aside + side, destination + side)
                        sidecars.remove(side)
                fsync_dir_quietly(os.path.dirname(destination))
            except OSError as exc:
                where = []
                if aside and os.path.lexists(aside):
                    where.append('the old data is at %s' % aside)
                elif not aside:
                    where.append('%s did not exist before' % destination)
                if sidecars:
                    where.append('its old %s at %s' % ('/'.join(sidecars), ', '.join(aside + x for x in sidecars)))
                if copy and os.path.lexists(copy):
                    where.append('the restored copy is at %s' % copy)
                    failed.append(copy)
                elif os.path.lexists(destination) and (not aside or os.path.lexists(aside)):
                    where.append('the restored copy is still at %s' % destination)
                errors.append('%s could not be put back (%s): %s' % (
                    destination, describe_os_error(exc, 'moving it back'), '; '.join(where)))
                continue
            if copy and not keep_failed:
                for part in [copy] + [copy + side for side in SQLITE_SIDECARS]:
                    remove_path(part)
            if copy and os.path.lexists(copy):
                failed.append(copy)
        for path in staging.values():
            remove_path(path)
        if errors:
            put_back = [d for d, a, s in swapped if not any(e.startswith(d + ' could not') for e in errors)]
            self.result.update(rolled_back=False, restored=[], moved_aside=[], failed_copies=failed,
                               rollback_errors=errors, put_back=put_back)
            raise RollbackFailed('%s; the rollback was incomplete: %s%s' % (
                problem, ' | '.join(errors),
                '; put back as before: %s' % ', '.join(put_back) if put_back else ''), self.result)
        return failed


class RolledBack(BackupError):
    def __init__(self, message, result):
        BackupError.__init__(self, message)
        self.result = result


class RollbackFailed(RolledBack):
    """A rollback that could not put every path back; the message says where each copy is."""


def _manifest_problems(directory):
    manifest = read_manifest(directory)
    if manifest is None:
        return ['%s has no readable manifest' % directory]
    try:
        return check_files(directory, manifest)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return ['the manifest of %s is malformed (%s: %s)' % (directory, type(exc).__name__, exc)]


def receive_copy(path, final=None, stamp=None, check_mode=False):
    """backup_check: check_copy, but a damaged ``final`` never makes a good incoming copy
    be thrown away.  When ``final`` exists and does not match its manifest while ``path``
    (the received copy) has a readable manifest, the damaged directory is renamed to
    ``.damaged-<name>-<stamp>`` beside it (kept, never deleted) and the copy is checked
    and committed in its place; if the copy fails too, the damaged one is put back.
    Returns {status, problems, committed, path} plus ``would_commit`` in check mode and
    ``replaced_damaged``/``damaged_problems`` when a damaged one was replaced."""
    incoming = bool(final) and path != final and os.path.isdir(path)
    if not final or not os.path.isdir(final):
        if not check_mode:
            return check_copy(path, final)
        problems = _manifest_problems(path)
        return {'status': FAILED if problems else PASSED, 'problems': problems, 'committed': False,
                'path': path, 'would_commit': bool(final) and not problems}
    damaged_problems = _manifest_problems(final)
    if not damaged_problems or not incoming or read_manifest(path) is None:
        if incoming and not check_mode:
            remove_tree(path)          # the same backup is already there (or no usable copy came)
        return {'status': FAILED if damaged_problems else PASSED, 'problems': damaged_problems,
                'committed': False, 'path': final}
    if check_mode:
        problems = _manifest_problems(path)
        return {'status': FAILED if problems else PASSED, 'problems': problems, 'committed': False,
                'path': path, 'would_commit': not problems, 'damaged_problems': damaged_problems}
    damaged = unique_path(os.path.join(os.path.dirname(final), '.damaged-%s-%s' % (
        os.path.basename(final), stamp or utcnow().strftime('%Y%m%dT%H%M%SZ'))))
    os.rename(final, damaged)
    try:
        result = check_copy(path, final)
    except BaseException:
        if not os.path.lexists(final):
            os.rename(damaged, final)
        raise
    if not result['committed']:
        os.rename(damaged, final)
        result['problems'] = ['%s is damaged too: %s' % (final, '; '.join(damaged_problems[:5]))] + result['problems']
        return result
    result.update(replaced_damaged=damaged, damaged_problems=damaged_problems)
    return result
