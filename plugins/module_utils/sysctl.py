# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel parameters: names, values, sysctl.d precedence and the plan of sysctl_tune.

Pure functions except read_live/write_live/config_files, which touch only the paths
they are given (so that tests point them at a temporary tree).

Precedence follows systemd's sysctl.d(5), which ``sysctl --system`` (procps) shares:
files named ``*.conf`` in every search directory are sorted by file name across all
directories; a file in an earlier directory masks a file of the same name in a later
one (a link to /dev/null masks without setting anything); within the sequence a later
assignment wins. ``sysctl --system`` then applies /etc/sysctl.conf last.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fnmatch
import os
import re

SEARCH_DIRS = ('/etc/sysctl.d', '/run/sysctl.d', '/usr/local/lib/sysctl.d',
               '/usr/lib/sysctl.d', '/lib/sysctl.d')
SYSCTL_CONF = '/etc/sysctl.conf'
PROC_ROOT = '/proc/sys'
MISSING_POLICIES = ('fail', 'warn', 'skip')
NAME_RE = re.compile(r'^[A-Za-z0-9_.-]+$')
INT_RE = re.compile(r'^-?[0-9]+$')


class SysctlError(Exception):
    """Bad input or a failed step, with a message naming the key and the fix."""


# ---- names and values ---------------------------------------------------------

def normalize_key(key):
    """systemd's canonical name: dots separate; when the first separator is a slash,
    slashes separate and dots are literal (an interface such as eth0.100), which the
    canonical name writes as slashes: net/ipv4/conf/eth0.100/rp_filter ->
    net.ipv4.conf.eth0/100.rp_filter."""
    key = str(key).strip()
    slash, dot = key.find('/'), key.find('.')
    if slash >= 0 and (dot < 0 or slash < dot):
        key = key.translate({ord('/'): '.', ord('.'): '/'})
    return key.strip('.')


def key_path(key, proc_root=PROC_ROOT):
    """The /proc/sys file of a (canonical) key."""
    parts = [part.replace('/', '.') for part in normalize_key(key).split('.')]
    return os.path.join(proc_root, *parts)


def validate_key(key):
    """Raise SysctlError unless key is a plausible kernel parameter name."""
    canonical = normalize_key(key)
    parts = canonical.split('.')
    if not canonical or '' in parts or any(p in ('..', '.') for p in parts) \
            or any(c in canonical for c in '*?[]=\n\t ') or canonical.startswith('-'):
        raise SysctlError('%r is not a kernel parameter name (expected dotted words such as '
                          'net.core.somaxconn)' % (key,))
    return canonical


def normalize_value(value):
    """The value as the kernel prints it, for comparison: booleans as 1/0, lists and
    runs of whitespace as single spaces (tcp_rmem "4096  87380\t16777216")."""
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, (list, tuple)):
        return ' '.join(normalize_value(item) for item in value)
    if value is None:
        return ''
    return ' '.join(str(value).split())


def values_equal(first, second):
    return normalize_value(first) == normalize_value(second)


def is_numeric(value):
    tokens = normalize_value(value).split()
    return bool(tokens) and all(INT_RE.match(token) for token in tokens)


def check_value(key, wanted, live):
    """Raise SysctlError when wanted cannot suit a key whose live value is live:
    a numeric key needs integers, as many as it has now."""
    text = normalize_value(wanted)
    if text == '':
        raise SysctlError('%s: empty value; give the value to set' % key)
    if '\n' in str(wanted):
        raise SysctlError('%s: the value has a line break' % key)
    if live is not None and is_numeric(live):
        tokens = text.split()
        bad = [token for token in tokens if not INT_RE.match(token)]
        if bad:
            raise SysctlError('%s is numeric (now %r) but the profile gives %r; give an integer'
                              % (key, normalize_value(live), text))
        count = len(normalize_value(live).split())
        if len(tokens) != count:
            raise SysctlError('%s takes %d integer(s) (now %r) but the profile gives %d (%r)'
                              % (key, count, normalize_value(live), len(tokens), text))
    return text


def parse_profile(profile, default_missing='fail'):
    """profile: {key: value} or {key: {value: v, missing: fail|warn|skip}}.
    Returns [(canonical key, value text, missing policy)] in profile order; raises
    SysctlError listing every bad entry."""
    entries, errors, seen = [], [], {}
    for key, spec in (profile or {}).items():
        missing = default_missing
        if isinstance(spec, dict):
            unknown = sorted(set(spec) - set(['value', 'missing']))
            if unknown or 'value' not in spec:
                errors.append('%s: give a value or {value: ..., missing: fail|warn|skip}'
                              % key)
                continue
            missing = spec.get('missing') or default_missing
            spec = spec['value']
        if missing not in MISSING_POLICIES:
            errors.append('%s: missing must be one of %s, not %r'
                          % (key, ', '.join(MISSING_POLICIES), missing))
            continue
        try:
            canonical = validate_key(key)
        except SysctlError as exc:
            errors.append(str(exc))
            continue
        if canonical in seen:
            errors.append('%s is given twice (as %r and %r)' % (canonical, seen[canonical], key))
            continue
        seen[canonical] = key
        text = normalize_value(spec)
        if text == '' or '\n' in str(spec):
            errors.append('%s: give a non-empty, one-line value' % canonical)
            continue
        entries.append((canonical, text, missing))
    if errors:
        raise SysctlError('; '.join(errors))
    if not entries:
        raise SysctlError('the profile is empty; give at least one key: value')
    return entries


# ---- sysctl.d files -------------------------------------------------------------

def parse_conf(text):
    """[(line number, canonical key or glob, value, ignore_failure)] of a sysctl.d file."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line[0] in '#;' or '=' not in line:
            continue
        key, value = line.split('=', 1)
        key = key.strip()
        ignore = key.startswith('-')
        if ignore:
            key = key[1:].strip()
        if key.startswith('!'):
            continue  # an exclusion of a glob: sets nothing
        entries.append((number, normalize_key(key), normalize_value(value), ignore))
    return entries


def render_conf(entries, name, source='runbook.ops.sysctl_tune'):
    """The drop-in's text: entries are (key, value, missing policy); keys that may be
    missing on a kernel get systemd's and procps's '-' prefix (ignore a failure)."""
    lines = ['# %s: written by %s; local changes are overwritten.' % (name, source)]
    for key, value, missing in entries:
        lines.append('%s%s = %s' % ('-' if missing != 'fail' else '', key, value))
    return '\n'.join(lines) + '\n'


def config_files(search_dirs=SEARCH_DIRS, sysctl_conf=SYSCTL_CONF, extra=None):
    """The files systemd-sysctl / ``sysctl --system`` apply, in order:
    [{'path', 'name', 'dir', 'masked_by': None}] plus masked entries (masked_by set)
    that are not applied. extra: a path to count as present (the planned drop-in)."""
    chosen, masked, seen_dirs = {}, [], set()
    for directory in search_dirs:
        real = os.path.realpath(directory)
        if real in seen_dirs:  # /lib -> /usr/lib on merged-/usr systems
            continue
        seen_dirs.add(real)
        names = []
        try:
            names = [n for n in os.listdir(directory) if n.endswith('.conf')]
        except OSError:
            pass
        if extra and os.path.dirname(extra) == directory.rstrip('/') \
                and os.path.basename(extra) not in names:
            names.append(os.path.basename(extra))
        for name in names:
            path = os.path.join(directory, name)
            if name in chosen:
                masked.append({'path': path, 'name': name, 'dir': directory,
                               'masked_by': chosen[name]['path']})
            else:
                chosen[name] = {'path': path, 'name': name, 'dir': directory, 'masked_by': None}
    ordered = [chosen[name] for name in sorted(chosen)]
    if sysctl_conf and (os.path.exists(sysctl_conf) or extra == sysctl_conf):
        ordered.append({'path': sysctl_conf, 'name': os.path.basename(sysctl_conf),
                        'dir': os.path.dirname(sysctl_conf), 'masked_by': None})
    return ordered, masked


def read_text(path):
    """A file's text; '' for /dev/null links and unreadable files."""
    if os.path.realpath(path) == '/dev/null':
        return ''
    try:
        with open(path, 'r') as stream:
            return stream.read()
    except (IOError, OSError, UnicodeDecodeError):
        return ''


def find_overrides(entries, dropin, files, texts):
    """Assignments that would override the drop-in's values at boot.

    entries: [(key, value, missing)]; dropin: its path; files: config_files() order;
    texts: {path: text} (the drop-in's planned text included). Returns
    (overrides, boot) where overrides is [{key, file, line, value, wanted}] for every
    later assignment of a profile key with another value, and boot is
    {key: {'value', 'file', 'line'}} the value each key would have after boot."""
    wanted = dict((key, value) for key, value, _missing in entries)
    boot, overrides, after = {}, [], False
    for info in files:
        path = info['path']
        is_dropin = path == dropin
        for number, key, value, _ignore in parse_conf(texts.get(path, '')):
            matches = [k for k in wanted if k == key or
                       (any(c in key for c in '*?[') and fnmatch.fnmatchcase(k, key))]
            for match in matches:
                boot[match] = {'value': value, 'file': path, 'line': number}
                if after and not is_dropin and value != wanted[match]:
                    overrides.append({'key': match, 'file': path, 'line': number,
                                      'value': value, 'wanted': wanted[match]})
        if is_dropin:
            after = True
    return overrides, boot


def masking(dropin, masked):
    """The file that masks the drop-in (a same-named file in an earlier directory)."""
    for info in masked:
        if info['path'] == dropin:
            return info['masked_by']
    return None


# ---- /proc/sys ------------------------------------------------------------------

def proc_read_only(proc_root=PROC_ROOT):
    try:
        return bool(os.statvfs(proc_root).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def read_live(key, proc_root=PROC_ROOT):
    """The live value (normalised), or None when this kernel has no such key.
    Raises SysctlError for a key that cannot be read (write-only actions)."""
    path = key_path(key, proc_root)
    if os.path.isdir(path):
        raise SysctlError('%s is a directory of parameters, not a parameter; name one of '
                          'the keys under it' % key)
    try:
        with open(path, 'r') as stream:
            return normalize_value(stream.read())
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise SysctlError('%s cannot be read (%s): it is an action such as vm.drop_caches, '
                              'not a setting; remove it from the profile' % (key, exc.strerror))
        raise SysctlError('%s cannot be read: %s' % (key, exc))


def writable(key, proc_root=PROC_ROOT):
    return os.access(key_path(key, proc_root), os.W_OK)


def write_live(key, value, proc_root=PROC_ROOT):
    """Write one value; raise SysctlError naming the kernel's answer."""
    path = key_path(key, proc_root)
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, (value + '\n').encode('utf-8'))
        finally:
            os.close(fd)
    except (IOError, OSError) as exc:
        reason = {errno.EINVAL: 'the kernel rejected the value (EINVAL: out of range or '
                                'malformed)',
                  errno.EROFS: '/proc/sys is read-only here (a container?)',
                  errno.EACCES: 'the key is read-only here (in a network namespace or a '
                                'container only the host may set it)',
                  errno.EPERM: 'not permitted (needs root / CAP_SYS_ADMIN on the host)'}
        raise SysctlError('setting %s = %r failed: %s' % (
            key, value, reason.get(exc.errno, exc.strerror or str(exc))))


# ---- plan -------------------------------------------------------------------------

def plan(entries, live, persisted):
    """entries: parse_profile(); live: {key: value or None}; persisted: {key: value} of
    the drop-in as it is. Returns (keep, to_set, skipped, warnings, errors, drift):
    keep: entries to write into the drop-in; to_set: [(key, old, new)] live writes;
    drift: [{key, live, persisted}] where the live value is not the persisted one."""
    keep, to_set, skipped, warnings, errors, drift = [], [], [], [], [], []
    for key, value, missing in entries:
        current = live.get(key)
        if current is None:
            message = '%s does not exist on this kernel (module not loaded, or a typo)' % key
            if missing == 'fail':
                errors.append(message + '; fix the name, or set missing: warn or skip for it')
            elif missing == 'warn':
                warnings.append(message + '; persisted with "-" so boot ignores it, not set live')
                keep.append((key, value, missing))
            else:
                skipped.append(key)
            continue
        try:
            check_value(key, value, current)
        except SysctlError as exc:
            errors.append(str(exc))
            continue
        keep.append((key, value, missing))
        if key in persisted and persisted[key] != current:
            drift.append({'key': key, 'live': current, 'persisted': persisted[key]})
        if current != value:
            to_set.append((key, current, value))
    return keep, to_set, skipped, warnings, errors, drift


def apply_live(to_set, proc_root=PROC_ROOT):
    """Write each key; on a failure (or a read-back that differs) restore the keys
    already written, in reverse, and raise SysctlError saying what was rolled back."""
    done = []
    try:
        for key, old, new in to_set:
            write_live(key, new, proc_root)
            done.append((key, old, new))
            back = read_live(key, proc_root)
            if back != new:
                raise SysctlError('%s: the kernel accepted %r but reads back %r (clamped?); '
                                  'give a value within its range' % (key, new, back))
    except SysctlError as exc:
        failed = []
        for key, old, _new in reversed(done):
            try:
                write_live(key, old, proc_root)
            except SysctlError as again:
                failed.append(str(again))
        message = str(exc)
        if done:
            message += '; rolled back %s' % ', '.join(key for key, _old, _new in done)
        if failed:
            message += '; ROLLBACK FAILED: %s' % '; '.join(failed)
        raise SysctlError(message)
    return [key for key, _old, _new in done]
