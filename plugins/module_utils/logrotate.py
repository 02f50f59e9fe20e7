# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Log file housekeeping for runbook.ops.log_rotate_check: an inventory of log files
(sizes, ages), logrotate configuration coverage (paths no configuration rotates, paths
two configurations rotate), a plan of compressions and deletions, the compression
itself (gzip or zstd; mode, owner and times kept; verified before the original goes)
and logrotate policy files rendered from options.

Pure functions apart from the file system; nothing here imports Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import glob
import gzip
import hashlib
import os
import re
import shlex
import stat
import subprocess
import tempfile
import time

from ansible_collections.runbook.ops.plugins.module_utils.fileio import fsync_dir_quietly
from ansible_collections.runbook.ops.plugins.module_utils.checks import (
    CRITICAL, OK, WARNING, InvalidProbe, check_result, format_duration, parse_duration,
)

KIND = 'logrotate'
COMPRESSED_EXTENSIONS = ('.gz', '.zst', '.bz2', '.xz', '.lz4', '.zip')
FORMATS = {'gzip': '.gz', 'zstd': '.zst'}
# logrotate's own default taboo extensions: files in an included directory it skips.
TABOO = (',v', '.cfsaved', '.disabled', '.dpkg-bak', '.dpkg-del', '.dpkg-dist', '.dpkg-new',
         '.dpkg-old', '.dpkg-tmp', '.rhn-cfg-tmp-*', '.rpmnew', '.rpmorig', '.rpmsave', '.swp',
         '.ucf-dist', '.ucf-new', '.ucf-old', '~')
_SIZE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$', re.I)
_SIZE_UNITS = {'': 1, 'k': 1024, 'm': 1024 ** 2, 'g': 1024 ** 3, 't': 1024 ** 4}
CHUNK = 1024 * 1024


def parse_size(value, what):
    """Bytes from 1048576, '100M', '1.5G', '512k' (powers of 1024); InvalidProbe otherwise."""
    if value is None or value == '':
        return None
    if isinstance(value, bool):
        raise InvalidProbe('%s: %r is not a size' % (what, value))
    if isinstance(value, (int, float)):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise InvalidProbe("%s: %r is not a size; write bytes or a number with K, M, G or T, "
                               "e.g. '100M'" % (what, value))
        size = float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if size < 0:
        raise InvalidProbe('%s: size %r is negative' % (what, value))
    return int(size)


def human(size):
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if abs(size) < 1024 or unit == 'GiB':
            return ('%d %s' % (size, unit)) if unit == 'B' else ('%.1f %s' % (size, unit))
        size /= 1024.0
    return '%.1f GiB' % size


class FileInfo:
    __slots__ = ('path', 'size', 'mtime', 'atime', 'mode', 'uid', 'gid', 'dev', 'ino')

    def __init__(self, path, info):
        self.path = path
        self.size = info.st_size
        self.mtime = info.st_mtime
        self.atime = info.st_atime
        self.mode = info.st_mode
        self.uid = info.st_uid
        self.gid = info.st_gid
        self.dev = info.st_dev
        self.ino = info.st_ino

    @property
    def compressed(self):
        return self.path.endswith(COMPRESSED_EXTENSIONS)


def name_matcher(patterns, empty=True):
    """``match(name)`` of one compiled regex joining the fnmatch patterns (what
    ``fnmatch.fnmatchcase`` answers for any of them, in one call); None when every name
    matches ('*' among them, or, with ``empty``, no patterns at all); False when no name
    can match (no patterns and not ``empty``)."""
    patterns = [p for p in (patterns or []) if p != '']  # '' matches no file name
    if '*' in patterns or (not patterns and empty):
        return None
    if not patterns:
        return False
    return re.compile('|'.join('(?:%s)' % fnmatch.translate(p) for p in patterns)).match


_SUFFIX_ONLY = re.compile(r'^\*[^*?\[]+$')


def name_suffixes(patterns):
    """The tuple of suffixes when every pattern is '*' and a literal ('*.log'), for which
    ``name.endswith(suffixes)`` answers as fnmatch does; else None."""
    patterns = [p for p in (patterns or []) if p != '']
    if patterns and all(_SUFFIX_ONLY.match(p) for p in patterns):
        return tuple(p[1:] for p in patterns)
    return None


def _first(pair):
    return pair[0]


def _second(pair):
    return pair[1]


class Sample:
    """How many items were added and the ``limit`` first of them in path order, kept
    without holding them all: the memory stays bounded whatever the count."""
    __slots__ = ('count', 'limit', '_items', '_bound')

    def __init__(self, limit=100):
        self.count = 0
        self.limit = limit
        self._items = []
        self._bound = None  # once trimmed, the greatest path kept: any later one is beyond it

    def add(self, path, value=None):
        self.count += 1
        self.offer(path, value)

    def offer(self, path, value=None):
        """Keep the item if it may be among the first; the caller counts it."""
        if self._bound is None or path < self._bound:
            self._items.append((path, value))
            if len(self._items) >= 4 * self.limit + 256:
                self._trim()

    def beyond(self, prefix):
        """Whether every path that starts with ``prefix`` comes after the ones kept."""
        return self._bound is not None and prefix > self._bound

    def _trim(self):
        self._items.sort(key=_first)
        del self._items[self.limit:]
        if self._items and len(self._items) == self.limit:
            self._bound = self._items[-1][0]

    def items(self):
        """[(path, value)] of the first ``limit`` paths."""
        self._trim()
        return list(self._items)


# what a plan does with a file, and why a file is deleted uncompressed or left alone
COMPRESS, DELETE, SKIPPED = 'compress', 'delete', 'skipped'
ACTIONS = (COMPRESS, DELETE, SKIPPED)
OLD, HELD, EXISTS = 1, 2, 3
UNLIMITED = 2 ** 62  # a Sample limit no list reaches


def list_bound(limit):
    """The Sample limit of a ``list_limit`` option: 0 means no limit."""
    return UNLIMITED if not limit else limit


def bounded(items, limit):
    """(the first ``limit`` items, how many were left out); ``limit`` 0 keeps all."""
    items = list(items)
    if not limit or len(items) <= limit:
        return items, 0
    return items[:limit], len(items) - limit


class PlanAction:
    """One action of a plan: the exact ``count`` and ``bytes`` of its files, the first of
    them in path order (a Sample of (path, record)) and, when kept, every record
    (path, size, age in seconds, reason code) to act on."""
    __slots__ = ('count', 'bytes', 'sample', 'records')

    def __init__(self, limit, keep):
        self.count = 0
        self.bytes = 0
        self.sample = Sample(limit)
        self.records = [] if keep else None

    def add(self, prefix, batch):
        """Account for the records of one directory (all paths start with ``prefix``)."""
        self.count += len(batch)
        self.bytes += sum(map(_second, batch))
        if self.records is not None:
            self.records.extend(batch)
        if not self.sample.beyond(prefix):
            offer = self.sample.offer
            for record in batch:
                offer(record[0], record)


class Plan:
    """The compressions and deletions of a run, made while survey() walks: per action the
    exact count and bytes, the first ``limit`` files in path order for the result, and,
    with ``keep``, every file (what acting and a diff need).  A file that is neither
    (the plan holds only what is old enough) costs nothing here."""
    __slots__ = ('limit', 'suffix', 'actions')

    def __init__(self, limit=100, keep=True, fmt='gzip'):
        self.limit = limit
        self.suffix = FORMATS[fmt]
        self.actions = dict((action, PlanAction(list_bound(limit), keep)) for action in ACTIONS)

    def count(self, action=None):
        """The number of files of one action, or of compress and delete together."""
        if action is None:
            return self.actions[COMPRESS].count + self.actions[DELETE].count
        return self.actions[action].count

    def records(self, action):
        """Every record of ``action`` in path order; only for a plan that keeps them."""
        records = self.actions[action].records
        if records is None:
            raise ValueError('this plan keeps only the first %s files of each action' % self.limit)
        records.sort(key=_first)
        return records

    def entry(self, action, record):
        """The result's dict of one record, as plan_maintenance() writes it."""
        path, size, age, code = record
        entry = {'path': path, 'size': size, 'age': round(age, 1), 'age_text': format_duration(age)}
        if action == COMPRESS:
            entry['dest'] = path + self.suffix
        elif code:
            entry['reason'] = self.reason(path, code)
        return entry

    def reason(self, path, code):
        if code == OLD:
            return 'older than the deletion age; not compressed first'
        if code == HELD:
            return 'open for writing'
        return '%s already exists' % (path + self.suffix)

    def result(self):
        """The plan as the module returns it: the first ``limit`` files of each action in
        path order, and exact ``counts``, ``bytes`` and ``omitted`` of every action."""
        plan = {}
        for action in ACTIONS:
            plan[action] = [self.entry(action, record) for _path, record in self.actions[action].sample.items()]
        plan['counts'] = dict((action, self.actions[action].count) for action in ACTIONS)
        plan['bytes'] = dict((action, self.actions[action].bytes) for action in ACTIONS)
        plan['omitted'] = dict((action, plan['counts'][action] - len(plan[action])) for action in ACTIONS)
        plan['truncated'] = any(plan['omitted'].values())
        plan['limit'] = self.limit or 0
        return plan

    def full(self):
        """{'compress', 'delete', 'skipped'}: every file, as plan_maintenance() returns them."""
        return dict((action, [self.entry(action, record) for record in self.records(action)])
                    for action in ACTIONS)

    def diff(self):
        """The diff of the files (every one, in path order): before, the files compressed
        or deleted; after, the compressed files."""
        compress, delete = self.records(COMPRESS), self.records(DELETE)
        return {'before_header': 'log files (%d to compress, %d to delete)' % (len(compress), len(delete)),
                'after_header': 'log files after compression and deletion',
                'before': ''.join('%s\n' % record[0] for record in compress + delete),
                'after': ''.join('%s%s\n' % (r[0], self.suffix) for r in compress)}


class OpenFiles:
    """The regular files processes hold open, read once from /proc/<pid>/fd (one stat per
    descriptor): ``inodes`` answers "maybe" cheaply, ``writing(dev, ino)`` reads the
    descriptors' /proc/<pid>/fdinfo flags only for a file asked about."""
    __slots__ = ('proc', 'inodes', '_fds', '_answers')

    def __init__(self, proc='/proc'):
        self.proc = proc
        self.inodes = set()
        self._fds = {}
        self._answers = {}
        try:
            pids = [entry for entry in os.listdir(proc) if entry.isdigit()]
        except OSError:
            return
        for pid in pids:
            fd_dir = os.path.join(proc, pid, 'fd')
            try:
                fds = os.listdir(fd_dir)
            except OSError:
                continue
            for fd in fds:
                try:
                    info = os.stat(os.path.join(fd_dir, fd))
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode):
                    self.inodes.add(info.st_ino)
                    self._fds.setdefault((info.st_dev, info.st_ino), []).append((pid, fd))

    def writing(self, dev, ino):
        """Whether some process holds (dev, ino) open for writing (or cannot be told)."""
        key = (dev, ino)
        answer = self._answers.get(key)
        if answer is None:
            answer = False
            for pid, fd in self._fds.get(key, ()):
                try:
                    with open(os.path.join(self.proc, pid, 'fdinfo', fd)) as stream:
                        flags = next((int(line.split()[1], 8) for line in stream if line.startswith('flags:')), 0)
                except (IOError, OSError, ValueError, IndexError):
                    answer = True  # cannot tell: treat it as written to
                    break
                if flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
                    answer = True
                    break
            self._answers[key] = answer
        return answer


class Survey:
    """What one pass over the files found (see survey()): ``count`` and ``bytes`` of all
    files; ``large``, ``old``, ``uncovered`` as Samples; ``plan`` (a Plan of the files old
    enough to compress or delete); ``files`` (all FileInfo, only when kept)."""
    __slots__ = ('count', 'bytes', 'large', 'old', 'uncovered', 'plan', 'opened', 'proc', 'files', 'problems')

    def __init__(self, sample, keep, problems, plan, proc='/proc'):
        self.count = 0
        self.bytes = 0
        self.large = Sample(sample)
        self.old = Sample(sample)
        self.uncovered = Sample(sample)
        self.plan = plan
        self.opened = None  # OpenFiles, read at the first file old enough to act on
        self.proc = proc
        self.files = [] if keep else None
        self.problems = problems


class _Given:
    """A file named in ``paths`` (or by a glob) standing in for a DirEntry."""
    __slots__ = ('name', '_info')

    def __init__(self, name, info):
        self.name = name
        self._info = info

    def is_file(self, follow_symlinks=True):
        return True

    def is_dir(self, follow_symlinks=True):
        return False

    def stat(self, follow_symlinks=True):
        return self._info


def _ancestors(path):
    """``path`` and the directories above it, as strings: 'a/b' -> 'a/b', 'a', ''."""
    yield path
    while path not in ('', '/'):
        cut = path.rfind('/')
        path = path[:cut] if cut > 0 else ('/' if cut == 0 else '')
        yield path


def _roots(paths, problems):
    """(directories, [(path, lstat)] of regular files, [(index, directory, last component)]
    of globs to read while walking, {index: entries matched}) that ``paths`` (directories,
    files, globs) name, each once; symlinks are not followed.

    A glob with a wildcard in its last component is matched on the listing of each of its
    directories while they are read (streamed), unless the directory lies in (or is) one
    that another path names or another glob reads, where its files could be reached twice:
    those globs are expanded here, as glob.glob does, and their files named like files."""
    directories, files, seen, candidates = [], [], set(), []
    matched = {}
    for index, path in enumerate(paths):
        is_glob = _MAGIC.search(path)
        if is_glob:
            head, tail = os.path.split(path)
            matched[index] = 0
            if tail and _MAGIC.search(tail):
                for directory in (glob.glob(head) if _MAGIC.search(head) else [head]):
                    candidates.append((index, directory.rstrip('/') or directory, tail))
                continue
        names = glob.glob(path) if is_glob else [path]
        if is_glob:
            matched[index] += len(names)
        _name_roots(names, directories, files, seen, problems)
    owners = {}
    for index, directory, _tail in candidates:
        owners.setdefault(directory, []).append(index)
    roots = set(directories)
    streams = []
    for index, directory, tail in candidates:
        shared = False
        for level, above in enumerate(_ancestors(directory)):
            others = owners.get(above, ())
            if above in roots or (others and (level > 0 or min(others) < index)):
                shared = True
                break
        if not shared:
            streams.append((index, directory, tail))
            continue
        names = glob.glob(os.path.join(glob.escape(directory), tail))
        matched[index] += len(names)
        _name_roots(names, directories, files, seen, problems)
    return directories, files, streams, matched


def _name_roots(names, directories, files, seen, problems):
    for name in names:
        try:
            info = os.lstat(name)
        except OSError as exc:
            problems[name] = exc.strerror or str(exc)
            continue
        if stat.S_ISDIR(info.st_mode):
            top = name.rstrip('/') or '/'  # scandir's entries of 'x/' are 'x/<name>' as those of 'x'
            if top not in seen:
                seen.add(top)
                directories.append(top)
        elif stat.S_ISREG(info.st_mode) and name not in seen:
            seen.add(name)
            files.append((name, info))


# Read directories through a descriptor: entries are lstat-ed relative to it (fstatat),
# a one-component lookup for the kernel instead of the whole path's.
_FD_WALK = os.scandir in getattr(os, 'supports_fd', ()) and os.stat in getattr(os, 'supports_dir_fd', ())
_DIR_FLAGS = os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0) | getattr(os, 'O_CLOEXEC', 0)


def survey(paths, patterns=None, now=None, max_size=None, max_age=None, live_patterns=None, targets=None,
           compress_after=None, delete_after=None, fmt='gzip', problems=None, sample=100, keep=False,
           plan_limit=None, keep_plan=True, proc='/proc'):
    """One pass over the regular files under directories (recursively; symlinks are not
    followed) or matching globs, whose names match one of ``patterns`` (fnmatch).  It keeps
    what a report needs, not the files: their count and total bytes; those over ``max_size``
    bytes and those last written more than ``max_age`` seconds before ``now`` (counts and the
    first ``sample`` in path order); the live files (names matching ``live_patterns``) whose
    real path is not among ``targets`` (block_targets(); None skips coverage); and, for
    ``compress_after``/``delete_after``, the plan (a Plan: what plan_maintenance() decides,
    made while walking; /proc/*/fd is read once, at the first file old enough) with exact
    counts and bytes per action, the first ``plan_limit`` files of each (default ``sample``;
    0: all) and, with ``keep_plan``, every file to act on.  ``keep`` also keeps every file.
    ``problems`` collects {path: reason} for what cannot be read.

    Each directory is read once (scandir on its descriptor), each file lstat-ed once
    relative to it, and its real path for coverage is its directory's (resolved once per
    directory) plus its name: a regular file is no symlink."""
    problems = {} if problems is None else problems
    plan = Plan(sample if plan_limit is None else plan_limit, keep_plan, fmt)
    result = Survey(sample, keep, problems, plan, proc)
    settings = dict(
        now=time.time() if now is None else now, max_size=max_size, max_age=max_age,
        match=name_matcher(patterns), suffixes=name_suffixes(patterns), targets=targets,
        live=name_matcher(live_patterns, empty=False) if targets is not None else False,
        live_suffixes=name_suffixes(live_patterns), covered=_by_directory(targets),
        compress_after=compress_after, delete_after=delete_after, suffix=FORMATS[fmt])
    directories, given, streams, matched = _roots(paths, problems)
    explicit = set(name for name, _info in given)
    groups = {}  # files named by paths or globs, by directory: its real path is resolved once
    for name, info in given:
        cut = name.rfind('/') + 1
        groups.setdefault(name[:cut], []).append(_Given(name[cut:], info))
    for head, entries in groups.items():
        _scan(result, settings, head, entries, None, head or '.', None)
    del given, groups
    visited = set(directories)
    for index, directory, tail in streams:
        pattern = [re.compile(fnmatch.translate(tail)).match, tail.startswith('.'), 0]
        for sub in _read(result, settings, directory, explicit, pattern, quiet=True):
            if sub not in visited:
                visited.add(sub)
                directories.append(sub)
        matched[index] += pattern[2]
    stack = list(reversed(directories))
    while stack:
        for sub in _read(result, settings, stack.pop(), explicit):
            if sub not in visited:
                visited.add(sub)
                stack.append(sub)
    for index, count in sorted(matched.items()):
        if not count:
            problems[paths[index]] = 'no file matches'
    if keep:
        result.files.sort(key=_path_of)
    return result


def _read(result, settings, directory, explicit, pattern=None, quiet=False):
    """_scan() one directory read through its descriptor; its subdirectories."""
    fd = None
    try:
        if _FD_WALK:
            fd = os.open(directory or '.', _DIR_FLAGS)
        entries = os.scandir((directory or '.') if fd is None else fd)
    except OSError as exc:
        if not quiet:  # glob.glob passes over directories it cannot read
            result.problems[directory] = exc.strerror or str(exc)
        if fd is not None:
            os.close(fd)
        return []
    try:
        with entries:
            return _scan(result, settings, directory if directory.endswith('/') or not directory else directory + '/',
                         entries, fd, directory or '.', explicit, pattern)
    finally:
        if fd is not None:
            os.close(fd)


def _by_directory(targets):
    """{real directory + '/': set of names} of block_targets()."""
    covered = {}
    for real in targets or ():
        cut = real.rfind('/') + 1
        covered.setdefault(real[:cut], set()).add(real[cut:])
    return covered


def _path_of(info):
    return info.path


def _scan(result, settings, prefix, entries, fd, directory, explicit, pattern=None):
    """Account for the entries of one directory (or one given file); the subdirectories
    to read next, in the order found.  ``pattern``: [match, hidden, count] of a glob's last
    component: only the entries it matches count, as glob.glob matches them (names that
    start with '.' only when ``hidden``), and it counts them."""
    problems = result.problems
    match, suffixes = settings['match'], settings['suffixes']
    now = settings['now']
    max_size, max_age, live, live_suffixes = (settings['max_size'], settings['max_age'], settings['live'],
                                              settings['live_suffixes'])
    compress_after, delete_after, suffix = (settings['compress_after'], settings['delete_after'],
                                            settings['suffix'])
    acting = compress_after is not None or delete_after is not None
    # the least age at which a file is compressed or deleted: a younger one plans nothing
    least = min(limit for limit in (compress_after, delete_after) if limit is not None) if acting else None
    keep = result.files is not None
    plain = max_size is None and max_age is None and live is False and not acting and not keep
    # samples whose kept paths all come before this directory's only count its files
    large, old, uncovered = result.large, result.old, result.uncovered
    large_beyond, old_beyond, uncovered_beyond = large.beyond(prefix), old.beyond(prefix), uncovered.beyond(prefix)
    large_count = old_count = uncovered_count = 0
    covered = None  # the names of this directory's real path that logrotate covers, when needed
    # the compressed names of this directory, to tell whether a compression's target exists
    suffixed = set() if compress_after is not None and fd is not None else None
    pending = []  # (record) of files to compress once the directory's names are known
    deleting, skipping = [], []
    held = result.opened.inodes if result.opened is not None else None
    subdirectories = []
    count = total = 0
    globbed, hidden = (pattern[0], pattern[1]) if pattern else (None, False)
    for entry in entries:
        name = entry.name
        if suffixed is not None and name.endswith(suffix):
            suffixed.add(name)
        if globbed is not None:
            if (name.startswith('.') and not hidden) or globbed(name) is None:
                continue
            pattern[2] += 1
        try:
            if entry.is_file(follow_symlinks=False):
                if match is not None and (not name.endswith(suffixes) if suffixes else match(name) is None):
                    continue
                info = entry.stat(follow_symlinks=False)
            elif entry.is_dir(follow_symlinks=False):
                subdirectories.append(prefix + name)
                continue
            else:
                continue  # symlinks, sockets, fifos are nobody's log file
        except OSError as exc:
            problems[prefix + name] = exc.strerror or str(exc)
            continue
        if explicit and prefix + name in explicit:
            continue  # named in paths as well: accounted for once, as given
        size = info.st_size
        count += 1
        total += size
        if plain:
            continue
        age = now - info.st_mtime
        if max_size is not None and size > max_size:
            large_count += 1
            if not large_beyond:
                large.offer(prefix + name, size)
        if max_age is not None and age > max_age:
            old_count += 1
            if not old_beyond:
                old.offer(prefix + name, age)
        if live is not False and (live is None or (name.endswith(live_suffixes) if live_suffixes
                                                   else live(name) is not None)):
            if covered is None:
                covered = settings['covered'].get(os.path.join(os.path.realpath(directory), ''), ())
            if name not in covered:
                uncovered_count += 1
                if not uncovered_beyond:
                    uncovered.offer(prefix + name)
        if keep:
            result.files.append(FileInfo(prefix + name, info))
        if acting and age > least:
            if name.endswith(COMPRESSED_EXTENSIONS):
                if delete_after is None or age <= delete_after:
                    continue
                batch, code = deleting, 0
            elif compress_after is None or age <= compress_after:
                continue
            elif delete_after is not None and age > delete_after:
                batch, code = deleting, OLD
            else:
                batch, code = pending, 0
            if held is None:
                result.opened = OpenFiles(result.proc)
                held = result.opened.inodes
            if info.st_ino in held and result.opened.writing(info.st_dev, info.st_ino):
                batch, code = skipping, HELD
            batch.append((prefix + name, size, age, code))
    if pending or deleting or skipping:
        compressing = pending
        if pending and (suffixed or suffixed is None):  # some compressed name of the directory may be in the way
            cut = len(prefix)
            compressing = []
            for record in pending:
                target = record[0] + suffix
                if (target[cut:] in suffixed) if suffixed is not None else os.path.lexists(target):
                    skipping.append(record[:3] + (EXISTS,))
                else:
                    compressing.append(record)
        plan = result.plan.actions
        for action, batch in ((COMPRESS, compressing), (DELETE, deleting), (SKIPPED, skipping)):
            if batch:
                plan[action].add(prefix, batch)
    result.count += count
    result.bytes += total
    large.count += large_count
    old.count += old_count
    uncovered.count += uncovered_count
    return subdirectories


def inventory_files(paths, patterns=None, problems=None):
    """The regular files under directories (recursively) or matching globs, whose
    names match one of ``patterns`` (fnmatch, e.g. '*.log'), as FileInfo in path order;
    symlinks are not followed.  ``problems`` collects {path: reason} for what cannot be
    read.  It holds every file: survey() answers a report without."""
    return survey(paths, patterns, problems=problems, keep=True).files


# ---- logrotate configuration --------------------------------------------------------

class ConfigError(ValueError):
    pass


def _taboo(name):
    return any(fnmatch.fnmatchcase(name, '*' + ext) for ext in TABOO)


def config_files(paths):
    """The configuration files of a set: files, and the files of directories (as
    logrotate's include reads them: sorted, taboo extensions skipped)."""
    result = []
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                full = os.path.join(path, name)
                if os.path.isfile(full) and not _taboo(name):
                    result.append(full)
        elif os.path.exists(path):
            result.append(path)
    return result


def parse_config(path, text, seen=None, exclude=()):
    """Log blocks of one configuration text: [{'file', 'line', 'patterns'}], following
    ``include`` directives (files and directories)."""
    seen = set() if seen is None else seen
    blocks = []
    lines = text.splitlines()
    index = 0
    in_block = False
    in_script = False
    pending = []
    while index < len(lines):
        raw = lines[index]
        index += 1
        line = raw.strip()
        if in_script:
            if line == 'endscript':
                in_script = False
            continue
        if not line or line.startswith('#'):
            continue
        if line in ('postrotate', 'prerotate', 'firstaction', 'lastaction', 'preremove'):
            in_script = True
            continue
        if in_block:
            if line.startswith('}'):
                in_block = False
            continue
        word = line.split(None, 1)[0]
        if word == 'include' and not pending:
            target = line.split(None, 1)[1].strip().strip('"\'') if ' ' in line else ''
            for included in config_files([target]):
                real = os.path.realpath(included)
                if real in seen or included in exclude:
                    continue
                seen.add(real)
                try:
                    with open(included) as stream:
                        blocks += parse_config(included, stream.read(), seen, exclude)
                except (IOError, OSError, UnicodeDecodeError):
                    continue
            continue
        if '{' in line:
            head = line.split('{', 1)[0]
            try:
                words = pending + shlex.split(head)
            except ValueError:
                words = pending + head.split()
            pending = []
            if words:
                blocks.append({'file': path, 'line': index, 'patterns': words})
            in_block = not line.rstrip().endswith('}') or line.count('{') > line.count('}')
            if line.split('{', 1)[1].strip().startswith('}'):
                in_block = False
            continue
        if line.startswith('/') or line.startswith('"') or line.startswith("'"):
            try:
                pending += shlex.split(line)
            except ValueError:
                pending += line.split()
    return blocks


def read_config_set(paths, exclude=()):
    """All log blocks of a configuration set (e.g. /etc/logrotate.conf, which includes
    /etc/logrotate.d)."""
    blocks = []
    seen = set()
    for path in config_files(paths):
        if path in exclude:
            continue
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        try:
            with open(path) as stream:
                blocks += parse_config(path, stream.read(), seen, exclude)
        except (IOError, OSError, UnicodeDecodeError):
            continue
    return blocks


def block_targets(blocks):
    """{real file path: [block references 'file:line']} for every file the blocks'
    globs expand to on this file system, as logrotate expands them."""
    targets = {}
    real_dirs = {}
    for block in blocks:
        ref = '%s:%d' % (block['file'], block['line'])
        for pattern in block['patterns']:
            for real in _pattern_files(pattern, real_dirs):
                refs = targets.setdefault(real, [])
                if ref not in refs:
                    refs.append(ref)
    return targets


_MAGIC = re.compile(r'[*?[]')


def _pattern_files(pattern, real_dirs):
    """The real paths of the files (symlinks followed) that glob.glob(pattern) names, or
    ``pattern`` itself when it has no wildcard.  A wildcard in the last component is
    matched on the directory's entries as glob matches them (fnmatch; hidden names only
    by a pattern starting with '.'), and their types come from the directory listing:
    a regular file's real path is its directory's (resolved once) and its name."""
    head, tail = os.path.split(pattern)
    if not _MAGIC.search(pattern):
        return [real for real in [_real_file(pattern, real_dirs)] if real is not None]
    if not _MAGIC.search(tail):
        return [real for real in (_real_file(name, real_dirs) for name in glob.glob(pattern)) if real is not None]
    match = re.compile(fnmatch.translate(tail)).match
    hidden = tail.startswith('.')
    found = []
    for directory in (glob.glob(head) if _MAGIC.search(head) else [head]):
        try:
            entries = os.scandir(directory or '.')
        except OSError:
            continue
        real = None
        with entries:
            for entry in entries:
                name = entry.name
                if (name.startswith('.') and not hidden) or match(name) is None:
                    continue
                try:
                    if entry.is_file(follow_symlinks=False):
                        if real is None:
                            real = real_dirs.get(directory)
                            if real is None:
                                real = real_dirs[directory] = os.path.join(os.path.realpath(directory or '.'), '')
                        found.append(real + name)
                    elif entry.is_symlink() and os.path.isfile(os.path.join(directory, name)):
                        found.append(os.path.realpath(os.path.join(directory, name)))
                except OSError:
                    continue
    return found


def _real_file(name, real_dirs):
    """os.path.realpath(name) when ``name`` is a file (symlinks followed), else None; a
    regular file's is its directory's (resolved once per directory) and its name."""
    try:
        info = os.lstat(name)
    except OSError:
        return None
    if stat.S_ISREG(info.st_mode):
        head, tail = os.path.split(name)
        real = real_dirs.get(head)
        if real is None:
            real = real_dirs[head] = os.path.join(os.path.realpath(head or '.'), '')
        return real + tail
    if stat.S_ISLNK(info.st_mode) and os.path.isfile(name):
        return os.path.realpath(name)
    return None


def coverage(log_files, blocks):
    """(uncovered paths, {path: [refs]} of paths covered twice or more)."""
    targets = block_targets(blocks)
    uncovered = [f.path for f in log_files if os.path.realpath(f.path) not in targets]
    duplicates = dict((path, refs) for path, refs in sorted(targets.items()) if len(refs) > 1)
    return uncovered, duplicates


def debug_outcome(rc, out, err):
    """(status, errors) of a ``logrotate -d`` run: errors are its 'error:' lines."""
    errors = [line.strip() for line in (out + '\n' + err).splitlines()
              if line.strip().lower().startswith('error')]
    if rc != 0 and not errors:
        errors = [(err or out).strip().splitlines()[-1] if (err or out).strip() else 'exit %d' % rc]
    return (CRITICAL if rc != 0 or errors else OK), errors


# ---- open files ---------------------------------------------------------------------

def open_for_writing(candidates, proc='/proc'):
    """The (dev, ino) of ``candidates`` (FileInfo) that some process holds open for
    writing, read from /proc/<pid>/fd and /proc/<pid>/fdinfo."""
    if not candidates:
        return set()
    opened = OpenFiles(proc)
    return set((f.dev, f.ino) for f in candidates if f.ino in opened.inodes and opened.writing(f.dev, f.ino))


# ---- planning -------------------------------------------------------------------------

def plan_maintenance(files, now, compress_after=None, delete_after=None, fmt='gzip', held=(), dest_exists=None):
    """What a run would do: {'compress': [...], 'delete': [...], 'skipped': [...]}.

    A file older than ``compress_after`` seconds (mtime) that is not compressed yet is
    compressed to <file>.gz (or .zst); a compressed file older than ``delete_after`` is
    deleted; a file both would apply to (an uncompressed log already older than the
    deletion age) is deleted without compressing it first, which is where compressing
    and then deleting it would end.  Files held open for writing are never touched.
    ``files`` may be all files or only those old enough (the others plan nothing);
    ``dest_exists``, a set of the compressed names that exist, replaces looking them up.
    survey() makes the same plan while it walks (Survey.plan), without a FileInfo or an
    entry per file; this form returns every file, for a list of FileInfo."""
    plan = {'compress': [], 'delete': [], 'skipped': []}
    held = set(held)
    if dest_exists is None:
        existing = set(f.path for f in files)

        def exists(target):
            return target in existing or os.path.lexists(target)
    else:
        exists = dest_exists.__contains__
    suffix = FORMATS[fmt]
    for info in files:
        age = now - info.mtime
        if info.compressed:
            if delete_after is None or age <= delete_after:
                continue
            action, extra = 'delete', {}
        elif compress_after is None or age <= compress_after:
            continue
        elif delete_after is not None and age > delete_after:
            action, extra = 'delete', {'reason': 'older than the deletion age; not compressed first'}
        else:
            target = info.path + suffix
            action, extra = 'compress', {'dest': target}
            if exists(target):
                action, extra = 'skipped', {'reason': '%s already exists' % target}
        if (info.dev, info.ino) in held:
            action, extra = 'skipped', {'reason': 'open for writing'}
        entry = {'path': info.path, 'size': info.size, 'age': round(age, 1), 'age_text': format_duration(age)}
        entry.update(extra)
        plan[action].append(entry)
    return plan


# ---- compression --------------------------------------------------------------------

def _zstd_module():
    try:
        import zstandard
        return zstandard
    except ImportError:
        return None


def compress_file(path, fmt='gzip', level=None, zstd_binary='zstd'):
    """Compress ``path`` to path + .gz/.zst next to it, atomically, keeping mode, owner
    and times, verify it by decompressing it again and only then remove the original.
    Returns the destination.  Raises OSError (and leaves the original as it was)
    when anything goes wrong, including the file changing while it is compressed."""
    before = os.stat(path)
    dest = path + FORMATS[fmt]
    directory, name = os.path.split(dest)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % name, suffix='.tmp', dir=directory or '.')
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, 'wb') as raw:
            if fmt == 'gzip':
                with open(path, 'rb') as source:
                    with gzip.GzipFile(filename=os.path.basename(path), mode='wb', fileobj=raw,
                                       compresslevel=level or 6, mtime=int(before.st_mtime)) as out:
                        for chunk in iter(lambda: source.read(CHUNK), b''):
                            digest.update(chunk)
                            out.write(chunk)
            else:
                _zstd_compress(path, raw, level or 3, digest, zstd_binary)
            raw.flush()
            os.fsync(raw.fileno())
        after = os.stat(path)
        if (after.st_size, after.st_mtime, after.st_ino) != (before.st_size, before.st_mtime, before.st_ino):
            raise OSError('%s changed while it was compressed; left as it was' % path)
        if _digest_of(tmp, fmt, zstd_binary) != digest.hexdigest():
            raise OSError('the compressed copy of %s does not decompress to the original' % path)
        os.chmod(tmp, stat.S_IMODE(before.st_mode))
        if os.geteuid() == 0 or before.st_uid == os.geteuid():
            try:
                os.chown(tmp, before.st_uid, before.st_gid)
            except OSError:
                pass
        os.utime(tmp, (before.st_atime, before.st_mtime))
        if os.path.lexists(dest):
            raise OSError('%s appeared while compressing; left %s as it was' % (dest, path))
        os.rename(tmp, dest)
        fsync_dir_quietly(directory or '.')
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    os.unlink(path)
    fsync_dir_quietly(directory or '.')
    return dest


def _zstd_compress(path, raw, level, digest, binary):
    zstandard = _zstd_module()
    if zstandard is not None:
        compressor = zstandard.ZstdCompressor(level=level)
        with open(path, 'rb') as source:
            with compressor.stream_writer(raw, closefd=False) as out:
                for chunk in iter(lambda: source.read(CHUNK), b''):
                    digest.update(chunk)
                    out.write(chunk)
        return
    with open(path, 'rb') as source:
        for chunk in iter(lambda: source.read(CHUNK), b''):
            digest.update(chunk)
    with open(path, 'rb') as source:
        process = subprocess.run([binary, '-q', '-c', '-%d' % level], stdin=source, stdout=raw,
                                 stderr=subprocess.PIPE, check=False)
    if process.returncode != 0:
        raise OSError('%s failed on %s: %s' % (binary, path, process.stderr.decode('utf-8', 'replace').strip()))


def _digest_of(path, fmt, binary='zstd'):
    digest = hashlib.sha256()
    if fmt == 'gzip':
        with gzip.open(path, 'rb') as stream:
            for chunk in iter(lambda: stream.read(CHUNK), b''):
                digest.update(chunk)
        return digest.hexdigest()
    zstandard = _zstd_module()
    if zstandard is not None:
        with open(path, 'rb') as raw:
            with zstandard.ZstdDecompressor().stream_reader(raw) as stream:
                for chunk in iter(lambda: stream.read(CHUNK), b''):
                    digest.update(chunk)
        return digest.hexdigest()
    process = subprocess.Popen([binary, '-dc', '-q', '--', path], stdout=subprocess.PIPE)
    for chunk in iter(lambda: process.stdout.read(CHUNK), b''):
        digest.update(chunk)
    process.stdout.close()
    if process.wait() != 0:
        raise OSError('%s cannot decompress %s' % (binary, path))
    return digest.hexdigest()


# ---- policies --------------------------------------------------------------------------

_SCRIPTS = ('prerotate', 'postrotate', 'firstaction', 'lastaction', 'preremove')


def render_policy(policy, what):
    """The text of a logrotate policy file from {paths, options, <scripts>}."""
    paths = policy.get('paths') or []
    if not paths or not all(isinstance(p, str) and p.startswith('/') for p in paths):
        raise InvalidProbe('%s: paths must be a list of absolute log paths or globs' % what)
    for path in paths:
        if any(c in path for c in '{}\n"'):
            raise InvalidProbe('%s: path %r has a brace, quote or newline' % (what, path))
    options = policy.get('options') or []
    if not isinstance(options, list):
        raise InvalidProbe('%s: options must be a list of logrotate directives, e.g. '
                           "[daily, 'rotate 30', compress]" % what)
    for option in options:
        if not isinstance(option, str) or not option.strip() or any(c in option for c in '{}\n'):
            raise InvalidProbe('%s: option %r must be one logrotate directive on one line, '
                               'without braces' % (what, option))
        if option.split()[0] in _SCRIPTS + ('endscript', 'include'):
            raise InvalidProbe('%s: option %r: give scripts as %s, not as options'
                               % (what, option, '/'.join(_SCRIPTS)))
    lines = ['# Managed by runbook.ops.log_rotate_check: changes here are overwritten.',
             ' '.join('"%s"' % p if ' ' in p else p for p in paths) + ' {']
    lines += ['    ' + option.strip() for option in options]
    for script in _SCRIPTS:
        body = policy.get(script)
        if body:
            if any(line.strip() == 'endscript' for line in body.splitlines()):
                raise InvalidProbe('%s: %s must not contain endscript' % (what, script))
            lines.append('    ' + script)
            lines += ['        ' + line.rstrip() for line in body.strip('\n').splitlines()]
            lines.append('    endscript')
    lines.append('}')
    return '\n'.join(lines) + '\n'


def policy_checks(checks, name, status, message, **kwargs):
    checks.append(check_result(name, KIND, status, message, **kwargs))


def count_check(name, value, what, warning=0, critical=None, details=None, unit='files'):
    """A count where any at all is a warning (or critical)."""
    status = OK
    if critical is not None and value > critical:
        status = CRITICAL
    elif warning is not None and value > warning:
        status = WARNING
    message = '%s: %d' % (what, value)
    return check_result(name, KIND, status, message, value=value, unit=unit, warning=warning,
                        critical=critical, details=details)


def parse_age(value, what):
    return parse_duration(value, what)
