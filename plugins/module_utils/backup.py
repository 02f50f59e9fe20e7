# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every runbook.ops backup shares, whatever it backs up (PostgreSQL, files):

* the layout ``<backup_root>/<label>/<timestamp>/`` with a ``manifest.json`` inside
  that lists every file with its size and sha256;
* atomic directories: a backup is written under ``.partial-<timestamp>-<pid>`` and
  renamed to its timestamp only when every file and its manifest are fsynced, so a
  partial backup never looks complete;
* a per-label lock, so that two runs for one label never overlap;
* periods (hourly/daily/weekly/monthly) for idempotence;
* retention (keep_last, keep_days, GFS keep_daily/keep_weekly/keep_monthly) as a pure
  function over (name, time, verification status) records.

Nothing here imports Ansible, so it is unit-tested directly.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import time

from ansible_collections.runbook.ops.plugins.module_utils.fileio import fsync_path, write_atomically

MANIFEST = 'manifest.json'
MANIFEST_VERSION = 1
LOCK_FILE = '.lock'
PARTIAL_PREFIX = '.partial-'
CHUNK = 1024 * 1024

PASSED = 'passed'
FAILED = 'failed'
UNVERIFIED = 'unverified'
INCOMPLETE = 'incomplete'   # a timestamp directory without a readable manifest
# A backup named more than this after "now" comes from a wrong clock (this host's now, or
# the one that took it): it is never the newest, never counts for RPO and retention
# neither counts nor deletes it.
FUTURE_TOLERANCE = datetime.timedelta(minutes=5)

PERIODS = ('hourly', 'daily', 'weekly', 'monthly')
NAME_FORMAT = '%Y%m%dT%H%M%SZ'
NAME_RE = re.compile(r'^\d{8}T\d{6}Z$')
LABEL_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*$')


class BackupError(Exception):
    """A backup could not be taken, verified, pruned or restored; the message says
    what and why, and never holds a secret."""


class LockTimeout(BackupError):
    """Another run holds the label's lock longer than the timeout."""


# ---- names, times and periods ------------------------------------------------------

def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def backup_name(when):
    """The directory name of a backup started at ``when`` (an aware datetime)."""
    return when.astimezone(datetime.timezone.utc).strftime(NAME_FORMAT)


def parse_name(name):
    """The UTC start time of backup directory ``name``, or None if it is not one."""
    if not NAME_RE.match(name or ''):
        return None
    try:
        return datetime.datetime.strptime(name, NAME_FORMAT).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def isoformat(when):
    return when.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def parse_iso(text):
    return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)


def period_key(when, period):
    """The period (UTC) that ``when`` falls in: '2026-03-01T14' (hourly), '2026-03-01'
    (daily), '2026-W09' (ISO week) or '2026-03' (monthly)."""
    when = when.astimezone(datetime.timezone.utc)
    if period == 'hourly':
        return when.strftime('%Y-%m-%dT%H')
    if period == 'daily':
        return when.strftime('%Y-%m-%d')
    if period == 'weekly':
        year, week = when.isocalendar()[:2]
        return '%04d-W%02d' % (year, week)
    if period == 'monthly':
        return when.strftime('%Y-%m')
    raise ValueError('unknown period %r: use one of %s' % (period, ', '.join(PERIODS)))


def validate_label(label):
    if not LABEL_RE.match(label or '') or label in ('.', '..'):
        raise BackupError('label %r must be a plain name of letters, digits, ".", "_" and "-" '
                          '(it becomes a directory under backup_root)' % (label,))
    return label


# ---- files: checksums, fsync, modes ------------------------------------------------

def sha256_file(path, chunk=CHUNK):
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        while True:
            block = stream.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def walk_files(root):
    """Relative paths of the regular files under ``root`` (sorted), except the manifest."""
    found = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in filenames:
            relative = os.path.relpath(os.path.join(directory, filename), root)
            if relative != MANIFEST:
                found.append(relative)
    return sorted(found)


def describe_files(root, known=None):
    """[{path, size, sha256}] for every file under ``root``; ``known`` maps relative
    paths to sha256 sums already computed while the file was streamed."""
    known = known or {}
    described = []
    for relative in walk_files(root):
        path = os.path.join(root, relative)
        described.append({'path': relative, 'size': os.path.getsize(path),
                          'sha256': known.get(relative) or sha256_file(path)})
    return described


def seal_tree(root, file_mode=0o600, dir_mode=0o700):
    """Set modes and fsync every file and directory under ``root`` (deepest first)."""
    for directory, dirnames, filenames in os.walk(root, topdown=False):
        for filename in filenames:
            path = os.path.join(directory, filename)
            os.chmod(path, file_mode)
            fsync_path(path)
        for dirname in dirnames:
            os.chmod(os.path.join(directory, dirname), dir_mode)
        fsync_path(directory)
    os.chmod(root, dir_mode)


def write_json_atomic(path, document, mode=0o600):
    """Write ``document`` as JSON to ``path`` through a fsynced temporary file and a rename."""
    write_atomically(path, json.dumps(document, indent=2, sort_keys=True) + '\n', mode=mode)


def read_manifest(directory):
    """The manifest of the backup in ``directory`` or None when it has none or it is unreadable."""
    try:
        with open(os.path.join(directory, MANIFEST)) as stream:
            manifest = json.load(stream)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get('files'), list):
        return None
    return manifest


def check_files(directory, manifest):
    """Compare the files in ``directory`` with the manifest; a list of problems
    (missing, extra, size or sha256 differs), empty when all match."""
    problems = []
    listed = dict((entry['path'], entry) for entry in manifest.get('files', []))
    present = set(walk_files(directory))
    for relative in sorted(listed):
        entry = listed[relative]
        path = os.path.join(directory, relative)
        if relative not in present:
            problems.append('%s is missing' % relative)
            continue
        size = os.path.getsize(path)
        if size != entry.get('size'):
            problems.append('%s has %d bytes, the manifest says %s' % (relative, size, entry.get('size')))
            continue
        digest = sha256_file(path)
        if digest != entry.get('sha256'):
            problems.append('%s has sha256 %s, the manifest says %s' % (relative, digest, entry.get('sha256')))
    for relative in sorted(present - set(listed)):
        problems.append('%s is not in the manifest' % relative)
    if not listed:
        problems.append('the manifest lists no files')
    return problems


def format_bytes(count):
    value = float(count)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if value < 1024 or unit == 'TiB':
            return ('%d %s' % (value, unit)) if unit == 'B' else ('%.1f %s' % (value, unit))
        value /= 1024.0
    return '%d B' % count


def describe_os_error(exc, what):
    """A clear sentence for an OSError while ``what`` (no space, permission...)."""
    if getattr(exc, 'errno', None) == errno.ENOSPC:
        return 'no space left on the device while %s' % what
    if getattr(exc, 'errno', None) in (errno.EACCES, errno.EPERM):
        return 'permission denied while %s: %s' % (what, exc)
    return '%s failed: %s' % (what, exc)


# ---- the label directory: lock, partial directories, listing ---------------------

class LabelLock:
    """An exclusive flock on ``<label_dir>/.lock``.  The holder writes its pid and
    start time into the file so that a waiting run can name it."""

    def __init__(self, directory, timeout, poll=0.2):
        self.path = os.path.join(directory, LOCK_FILE)
        self.timeout = timeout
        self.poll = poll
        self.fd = None
        self.waited = 0.0

    def acquire(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        started = time.monotonic()
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            self.waited = time.monotonic() - started
            if self.waited >= self.timeout:
                holder = self.holder()
                os.close(self.fd)
                self.fd = None
                raise LockTimeout('another run holds the lock %s (%s) and did not release it within '
                                  'lock_timeout=%ss; wait for it to finish or raise lock_timeout'
                                  % (self.path, holder or 'holder unknown', self.timeout))
            time.sleep(self.poll)
        self.waited = time.monotonic() - started
        os.ftruncate(self.fd, 0)
        os.write(self.fd, ('pid %d since %s\n' % (os.getpid(), isoformat(utcnow()))).encode())
        return self

    def holder(self):
        try:
            with open(self.path) as stream:
                return stream.read().strip()
        except OSError:
            return None

    def release(self):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()


def label_dir(backup_root, label):
    return os.path.join(backup_root, validate_label(label))


def ensure_label_dir(backup_root, label):
    """Create ``<backup_root>/<label>`` (0700) if needed and return it."""
    path = label_dir(backup_root, label)
    if not os.path.isdir(path):
        os.makedirs(path, 0o700)
        os.chmod(path, 0o700)
    return path


def partial_dirs(directory):
    """Leftovers of interrupted runs: ``.partial-*`` directories."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(os.path.join(directory, n) for n in names if n.startswith(PARTIAL_PREFIX))


def new_partial_dir(directory, name):
    path = os.path.join(directory, '%s%s-%d' % (PARTIAL_PREFIX, name, os.getpid()))
    os.mkdir(path, 0o700)
    os.chmod(path, 0o700)
    return path


def commit_partial(partial, final):
    """Rename a sealed partial directory to its final name and fsync the parent."""
    if os.path.exists(final):
        raise BackupError('%s already exists; refusing to replace a backup' % final)
    os.rename(partial, final)
    fsync_path(os.path.dirname(final))


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)
    try:
        fsync_path(os.path.dirname(path))
    except OSError:
        pass


def verification_status(manifest):
    if manifest is None:
        return INCOMPLETE
    verification = manifest.get('verification') or {}
    return verification.get('status') or UNVERIFIED


def is_future(when, now):
    return when > now + FUTURE_TOLERANCE


def list_backups(directory, kind=None, now=None):
    """Every backup of a label, oldest first: dicts with name, path, time, status
    (passed/failed/unverified/incomplete), manifest and ``future`` (named after now:
    a wrong clock).  With ``kind`` ('postgresql', 'files'), a label directory that
    holds backups of another kind is refused: two kinds under one label would cover
    each other's periods and prune each other."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    now = now or utcnow()
    backups = []
    for name in names:
        when = parse_name(name)
        path = os.path.join(directory, name)
        if when is None or not os.path.isdir(path):
            continue
        manifest = read_manifest(path)
        backups.append({'name': name, 'path': path, 'time': when, 'manifest': manifest,
                        'status': verification_status(manifest), 'future': is_future(when, now)})
    backups.sort(key=lambda b: b['name'])
    if kind:
        others = sorted(set(b['manifest'].get('kind') for b in backups
                            if b['manifest'] is not None and b['manifest'].get('kind') not in (None, kind)))
        if others:
            raise BackupError('%s holds %s backups, not %s ones: give this backup a label of its own '
                              '(two kinds under one label would cover and prune each other)'
                              % (directory, ' and '.join(others), kind))
    return backups


def newest(backups, status=None):
    """The newest backup (with ``status``), leaving out those named in the future."""
    for backup in reversed(backups):
        if backup.get('future'):
            continue
        if status is None or backup['status'] == status:
            return backup
    return None


def current_backup(backups, now, period, accept_unverified=False):
    """The backup that already covers the period of ``now``, or None: the newest
    verified backup started in the same period (or, with ``accept_unverified``, an
    unverified one)."""
    key = period_key(now, period)
    accepted = (PASSED, UNVERIFIED) if accept_unverified else (PASSED,)
    for backup in reversed(backups):
        if is_future(backup['time'], now):
            continue
        if backup['status'] in accepted and period_key(backup['time'], period) == key:
            return backup
    return None


class VerificationFailed(BackupError):
    """A backup failed its verification; ``result`` is the module result to return."""

    def __init__(self, message, result):
        BackupError.__init__(self, message)
        self.result = result


def record_verification(backup, record):
    """Store a verification record in the backup's manifest (atomically): the last ten
    in ``verifications``; ``verification`` (what counts) becomes this record when it
    failed, when it read more than the checksums, or when the current one did not
    pass.  Bulky details (a restore test's own record) stay in the history only."""
    manifest = dict(backup['manifest'])
    manifest['verifications'] = (list(manifest.get('verifications') or []) + [record])[-10:]
    if record['status'] == FAILED or record['level'] != 'checksum' or \
            (manifest.get('verification') or {}).get('status') != PASSED:
        manifest['verification'] = dict((k, v) for k, v in record.items() if k != 'restore_test')
    write_json_atomic(os.path.join(backup['path'], MANIFEST), manifest)
    backup['manifest'] = manifest
    backup['status'] = manifest['verification']['status']
    return manifest


def summary(backup, **details):
    """The public view of a stored backup; ``details`` add what its kind records."""
    manifest = backup.get('manifest') or {}
    view = {'name': backup['name'], 'path': backup['path'], 'status': backup['status'],
            'started': manifest.get('started'), 'finished': manifest.get('finished'),
            'size': sum(f.get('size', 0) for f in manifest.get('files') or [])}
    view.update(details)
    return view


def backups_diff(directory, before, after):
    """Diff-mode before/after of a label directory's backups (names, one per line)."""
    return {'before': '\n'.join(before) + '\n' if before else '',
            'after': '\n'.join(after) + '\n' if after else '',
            'before_header': '%s (backups)' % directory, 'after_header': '%s (backups)' % directory}


# ---- retention --------------------------------------------------------------------

def validate_retention(policy):
    """Normalise a retention policy dict (keep_last, keep_days, keep_daily, keep_weekly,
    keep_monthly: non-negative ints or None)."""
    clean = {}
    for key in ('keep_last', 'keep_days', 'keep_daily', 'keep_weekly', 'keep_monthly'):
        value = (policy or {}).get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BackupError('retention %s must be a whole number >= 0, got %r' % (key, value))
        clean[key] = value
    return clean


def select_retention(backups, now, policy):
    """Decide which backups to keep and which to delete.

    ``backups``: dicts with ``name``, ``time`` (aware datetime) and ``status``.
    Returns ``{'keep': {name: [reasons]}, 'delete': [names oldest first], 'held': reason or None}``.

    Rules: with no rule set nothing is deleted; a backup is kept when any rule keeps it;
    the rules choose among backups that did not fail verification; the newest verified
    backup is always kept; incomplete backups, and backups named after ``now`` (a wrong
    clock), are neither counted nor deleted; and while the newest backup failed
    verification, nothing at all is deleted.
    """
    policy = validate_retention(policy)
    ordered = sorted(backups, key=lambda b: b['time'], reverse=True)   # newest first
    keep = {}

    def hold(backup, reason):
        keep.setdefault(backup['name'], []).append(reason)

    for backup in ordered:
        if is_future(backup['time'], now):
            hold(backup, 'named after now (a wrong clock): not managed by retention')
        elif backup['status'] == INCOMPLETE:
            hold(backup, 'incomplete: not managed by retention')
    complete = [b for b in ordered if b['status'] != INCOMPLETE and not is_future(b['time'], now)]
    if not policy:
        for backup in complete:
            hold(backup, 'no retention rule set')
        return {'keep': keep, 'delete': [], 'held': 'no retention rule set'}
    if complete and complete[0]['status'] == FAILED:
        for backup in complete:
            hold(backup, 'the newest backup failed verification')
        return {'keep': keep, 'delete': [],
                'held': 'the newest backup %s failed verification: nothing is deleted until a '
                        'verified backup follows it' % complete[0]['name']}
    usable = [b for b in complete if b['status'] != FAILED]
    newest_verified = next((b for b in complete if b['status'] == PASSED), None)
    if newest_verified is not None:
        hold(newest_verified, 'newest verified backup')
    if policy.get('keep_last'):
        for backup in usable[:policy['keep_last']]:
            hold(backup, 'keep_last=%d' % policy['keep_last'])
    if policy.get('keep_days'):
        horizon = now - datetime.timedelta(days=policy['keep_days'])
        for backup in usable:
            if backup['time'] >= horizon:
                hold(backup, 'keep_days=%d' % policy['keep_days'])
    for option, period in (('keep_daily', 'daily'), ('keep_weekly', 'weekly'),
                           ('keep_monthly', 'monthly')):
        count = policy.get(option)
        if not count:
            continue
        seen = []
        for backup in usable:              # newest first: the newest of each period
            key = period_key(backup['time'], period)
            if key in seen:
                continue
            if len(seen) >= count:
                break
            seen.append(key)
            hold(backup, '%s=%d (%s)' % (option, count, key))
    delete = [b['name'] for b in sorted(complete, key=lambda b: b['time']) if b['name'] not in keep]
    return {'keep': keep, 'delete': delete, 'held': None}


def age_seconds(when, now):
    return max(0.0, (now - when).total_seconds())


def freshness(backups, now):
    """(age in seconds, name) of the newest verified backup, its age counted from the
    manifest's ``finished`` time (else its start); (None, None) when there is none.
    The recovery point of a label: what the backup-freshness probe and the drills judge."""
    good = newest(backups, PASSED)
    if good is None:
        return None, None
    finished = (good.get('manifest') or {}).get('finished')
    try:
        when = parse_iso(finished) if finished else good['time']
    except ValueError:
        when = good['time']
    return round(age_seconds(when, now), 1), good['name']


def find_backup(backup_root, label, backup=None):
    """The backup a restore names: an absolute path of a backup directory, a name under
    the label, or the newest verified one (None or 'latest')."""
    if backup and os.path.isabs(backup):
        path = backup.rstrip('/')
        manifest = read_manifest(path)
        return {'name': os.path.basename(path), 'path': path, 'manifest': manifest,
                'time': parse_name(os.path.basename(path)), 'status': verification_status(manifest)}
    if not backup_root or not label:
        raise BackupError('name the backup: backup as an absolute path, or backup_root and label '
                          '(with backup a name or latest)')
    directory = label_dir(backup_root, label)
    backups = list_backups(directory)
    if not backup or backup == 'latest':
        chosen = newest(backups, PASSED)
        if chosen is None:
            raise BackupError('no verified backup of label %s in %s' % (label, directory))
        return chosen
    for candidate in backups:
        if candidate['name'] == backup:
            return candidate
    raise BackupError('no backup named %s in %s (have: %s)' % (
        backup, directory, ', '.join(b['name'] for b in backups) or 'none'))


def check_copy(path, final=None):
    """Check a backup directory against its manifest; with ``final``, ``path`` is a copy
    being received (a ``.partial-*`` directory) that is sealed and renamed to ``final``
    only when every file matches.  Returns {status, problems, committed, path}; a
    ``final`` that already holds a matching backup is only checked."""
    if final and os.path.isdir(final):
        manifest = read_manifest(final)
        problems = check_files(final, manifest) if manifest else ['%s has no readable manifest' % final]
        if os.path.isdir(path) and path != final:
            remove_tree(path)
        return {'status': FAILED if problems else PASSED, 'problems': problems, 'committed': False, 'path': final}
    manifest = read_manifest(path)
    problems = check_files(path, manifest) if manifest else ['%s has no readable manifest' % path]
    if problems or not final:
        return {'status': FAILED if problems else PASSED, 'problems': problems, 'committed': False, 'path': path}
    seal_tree(path)
    commit_partial(path, final)
    return {'status': PASSED, 'problems': [], 'committed': True, 'path': final}
