#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: log_rotate_check
short_description: Report on log files and logrotate coverage; compress, prune and write policies
version_added: "0.1.0"
description:
  - Over directories (recursively) or globs it reports, as checks in the one result shape
    of runbook.ops, the files over O(max_size), the files older than O(max_age), the total
    size against O(budget), log files that no logrotate configuration covers, files two
    configurations cover (logrotate refuses such a configuration set) and the outcome of
    C(logrotate -d) on the configuration set.
  - Actions, all off by default, run in this order after all input is validated and a plan
    is made; compress files older than O(compress_after) (gzip or zstd; mode, owner and
    times kept; verified by decompressing before the original goes), delete compressed files
    older than O(delete_after), and write the logrotate policy files of O(policies), each
    validated with C(logrotate -d) before an atomic move into place.
  - A file held open for writing by any process (found in C(/proc/*/fd)) is never
    compressed or deleted. A file older than the deletion age that is not compressed yet is
    deleted without compressing it first.
  - Check mode returns the plan (which files would be compressed or deleted, which policies
    written) and changes nothing; diff mode shows it. A second run changes nothing.
  - The result carries exact counts and bytes of every action, but each list of files in it
    (the plan's, the files compressed and deleted, the files of the checks' details) only the
    first O(list_limit) in path order, with how many were left out. The actions always act on
    every planned file. For the full list, run with C(--diff) (the diff lists every file
    compressed or deleted) or set O(list_limit=0).
author:
  - runbook.ops contributors (@runbook)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runbook.ops.check_result
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
options:
  paths:
    description:
      - Log directories (searched recursively; symlinks are not followed) or globs of files.
    type: list
    elements: str
    default: []
  patterns:
    description:
      - File name patterns (fnmatch) of the files considered, for example C(['*.log', '*.log.*']).
    type: list
    elements: str
    default: ['*']
  log_patterns:
    description:
      - File name patterns of the live log files whose logrotate coverage is checked (rotated and
        compressed files are not expected to be covered).
    type: list
    elements: str
    default: ['*.log']
  max_size:
    description: Report files larger than this (C(100M), C(1G), bytes). A warning.
    type: str
  max_age:
    description: Report files last written longer ago than this (C(30d)). A warning.
    type: str
  budget:
    description:
      - The total size the files may take (C(10G)); critical above it, warning above 90 % of it.
    type: str
  logrotate_config:
    description:
      - The logrotate configuration set (files or directories) to check coverage against and to
        run C(logrotate -d) on. An empty list skips both.
    type: list
    elements: path
    default: [/etc/logrotate.conf]
  logrotate_debug:
    description: Run C(logrotate -d) on O(logrotate_config) (it changes nothing) and report its errors.
    type: bool
    default: true
  logrotate_bin:
    description: The logrotate program.
    type: path
    default: /usr/sbin/logrotate
  compress_after:
    description: Compress files last written longer ago than this (C(7d)). Off when not given.
    type: str
  compress_format:
    description:
      - C(gzip) (Python's gzip, the original mtime in the header) or C(zstd) (the C(zstandard)
        library when importable, else the C(zstd) program).
    type: str
    choices: [gzip, zstd]
    default: gzip
  compress_level:
    description: The compression level; defaults to 6 for gzip and 3 for zstd.
    type: int
  delete_after:
    description: Delete compressed files last written longer ago than this (C(30d)). Off when not given.
    type: str
  list_limit:
    description:
      - How many files each list of the result carries at most, the first in path order, in
        RV(plan.compress), RV(plan.delete), RV(plan.skipped), RV(compressed), RV(deleted) and
        the files in the checks' C(details). Counts and bytes stay exact (RV(plan.counts),
        RV(plan.bytes), RV(done)) and RV(plan.omitted) says how many files each list left out.
      - A first run over a directory never cleaned plans tens of thousands of files; listing
        them all makes a result of many megabytes that Ansible takes seconds to pass on.
      - C(0) lists every file. C(--diff) lists every file compressed or deleted in the diff
        whatever this limit.
    type: int
    default: 100
    aliases: [plan_limit]
  policies:
    description:
      - logrotate policy files to write. Each is rendered, validated with C(logrotate -d) and
        moved into place atomically when its content differs.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: The policy file, for example C(/etc/logrotate.d/batch-logs).
        type: path
        required: true
      paths:
        description: The absolute log paths or globs it rotates.
        type: list
        elements: str
        required: true
      options:
        description:
          - logrotate directives, one per item, for example C([daily, rotate 30, compress,
            delaycompress, missingok, notifempty, create 644 batch batch]).
        type: list
        elements: str
        default: []
      prerotate:
        description: A prerotate script.
        type: str
      postrotate:
        description: A postrotate script, for example C(systemctl reload rsyslog > /dev/null 2>&1 || true).
        type: str
      firstaction:
        description: A firstaction script.
        type: str
      lastaction:
        description: A lastaction script.
        type: str
      mode:
        description: The file mode; logrotate ignores policies writable by group or others.
        type: str
        default: '0644'
notes:
  - Coverage is computed by expanding every log block's globs of the configuration set on this
    file system, as logrotate does; C(include) of files and directories is followed and files with
    logrotate's taboo extensions are skipped.
seealso:
  - module: runbook.ops.log_scan
"""

EXAMPLES = r"""
- name: Report big and old logs and the logrotate coverage of runbook 003's log directory
  runbook.ops.log_rotate_check:
    paths: [/var/log/logcaster]
    max_size: 100M
    max_age: 30d

- name: Runbook 000's weekly clean-up - compress after 7 days, delete after 30
  runbook.ops.log_rotate_check:
    paths: [/opt/3gpp-analysis/logs]
    patterns: ['*.log', '*.log.*', '*.gz']
    compress_after: 7d
    delete_after: 30d
    logrotate_config: []

- name: What the clean-up of a neglected host would do, every file listed in the diff
  runbook.ops.log_rotate_check:
    paths: [/opt/3gpp-analysis/logs]
    compress_after: 7d
    delete_after: 30d
    logrotate_config: []
  check_mode: true
  diff: true
  register: cleanup

- name: Its totals (the lists in the result hold the first 100 files)
  ansible.builtin.debug:
    msg: "{{ cleanup.plan.counts }} files, {{ cleanup.plan.bytes }} bytes"

- name: Runbook 001's logrotate policy for the batch logs
  runbook.ops.log_rotate_check:
    policies:
      - dest: /etc/logrotate.d/batch-logs
        paths: [/var/log/batch/*.log]
        options: [daily, rotate 30, compress, delaycompress, missingok, notifempty, create 644 batch batch]
        postrotate: systemctl reload rsyslog > /dev/null 2>&1 || true
"""

RETURN = r"""
status:
  description: The worst status of all checks.
  returned: always
  type: str
  sample: warning
counts:
  description: How many checks ended in each status.
  returned: always
  type: dict
  sample: {ok: 4, warning: 1, unknown: 0, critical: 0}
checks:
  description:
    - C(large_files), C(old_files), C(total_size), C(uncovered), C(duplicates) and C(logrotate_debug),
      each where asked for, in the one check result shape; C(details) lists the files (the first
      O(list_limit) in path order; C(details.omitted) counts the others, C(value) all of them).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: large_files, kind: logrotate, status: warning, value: 1, unit: files, warning: 0, critical: null,
       message: 'files over 100.0 MiB: 1', duration_ms: 3.2,
       details: {files: [{path: /var/log/logcaster/server.log, size: 209715200}], omitted: 0}}
plan:
  description: What the run does or, in check mode, would do.
  returned: always
  type: dict
  contains:
    compress:
      description:
        - Files to compress, with C(dest), C(size) and C(age) in seconds; the first O(list_limit) in path order.
      type: list
      elements: dict
    delete:
      description: Files to delete; the first O(list_limit) in path order.
      type: list
      elements: dict
    skipped:
      description:
        - Files old enough but left alone, with the reason (open for writing, target exists); the first
          O(list_limit) in path order.
      type: list
      elements: dict
    counts:
      description: How many files each action has in all (C(compress), C(delete), C(skipped)).
      type: dict
    bytes:
      description: The bytes of those files in all, per action.
      type: dict
    omitted:
      description: How many files each action's list leaves out (its count less the files listed).
      type: dict
    truncated:
      description: Whether any of the lists leaves files out.
      type: bool
    limit:
      description: The O(list_limit) the lists were cut at (C(0), none).
      type: int
    policies:
      description: Policy files to write.
      type: list
      elements: str
  sample: {compress: [{path: /opt/app/logs/app.log.3, dest: /opt/app/logs/app.log.3.gz, size: 1024,
           age: 700000.0, age_text: 8d2h}], delete: [], skipped: [], policies: [],
           counts: {compress: 1, delete: 0, skipped: 0}, bytes: {compress: 1024, delete: 0, skipped: 0},
           omitted: {compress: 0, delete: 0, skipped: 0}, truncated: false, limit: 100}
compressed:
  description: Files compressed, as their new paths; the first O(list_limit) in path order (RV(done) counts all).
  returned: always
  type: list
  elements: str
deleted:
  description: Files deleted; the first O(list_limit) in path order (RV(done) counts all).
  returned: always
  type: list
  elements: str
done:
  description:
    - What the run did (all zero in check mode), with the keys of RV(plan.counts); when every action succeeded,
      C(done.counts) equals the plan's C(compress) and C(delete) counts.
  returned: always
  type: dict
  contains:
    counts:
      description: Files compressed (C(compress)) and deleted (C(delete)).
      type: dict
    bytes:
      description:
        - C(compress), the bytes of the files compressed; C(written), the bytes of their compressed copies;
          C(delete), the bytes of the files deleted.
      type: dict
    truncated:
      description: Whether RV(compressed) or RV(deleted) leaves files out.
      type: bool
  sample: {counts: {compress: 38341, delete: 49990}, bytes: {compress: 956768, written: 1150230, delete: 1225055},
           truncated: true}
files:
  description: Number and total bytes of the files considered.
  returned: always
  type: dict
  sample: {count: 12, bytes: 104857600}
"""

import os
import shutil
import stat
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.runbook.ops.plugins.module_utils.fileio import write_atomically
from ansible_collections.runbook.ops.plugins.module_utils.checks import (
    CRITICAL, OK, WARNING, InvalidProbe, check_result, format_duration, parse_duration, summarize,
)
from ansible_collections.runbook.ops.plugins.module_utils.logrotate import (
    COMPRESS, DELETE, KIND, block_targets, bounded, compress_file, count_check, debug_outcome, human, list_bound,
    parse_size, read_config_set, render_policy, survey,
)


def logrotate_debug(module, binary, configs):
    """(rc, out, err) of ``logrotate -d`` with a throwaway state file."""
    state_dir = tempfile.mkdtemp(prefix='runbook-logrotate-')
    try:
        argv = [binary, '-d', '-s', os.path.join(state_dir, 'status')] + list(configs)
        return module.run_command(argv, environ_update={'LANG': 'C', 'LC_ALL': 'C'})
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def plan_policy(module, policy, index, binary):
    """(text, current text or None, changed, errors) of one policy file; the new text is
    checked with logrotate -d in a private directory before anything is written."""
    what = 'policies[%d] (%s)' % (index, policy['dest'])
    text = render_policy(policy, what)
    try:
        mode = int(str(policy['mode']), 8)
    except ValueError:
        raise InvalidProbe('%s: mode %r is not an octal mode such as 0644' % (what, policy['mode']))
    if mode & 0o022:
        raise InvalidProbe('%s: mode %s is writable by group or others; logrotate ignores such a file, '
                           'use 0644' % (what, policy['mode']))
    directory = os.path.dirname(policy['dest'])
    if not os.path.isdir(directory):
        raise InvalidProbe('%s: directory %s does not exist' % (what, directory))
    current = None
    if os.path.exists(policy['dest']):
        with open(policy['dest']) as stream:
            current = stream.read()
    scratch = tempfile.mkdtemp(prefix='runbook-policy-')
    try:
        candidate = os.path.join(scratch, os.path.basename(policy['dest']))
        with open(candidate, 'w') as stream:
            stream.write(text)
        os.chmod(candidate, 0o644)
        rc, out, err = logrotate_debug(module, binary, [candidate])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    status, errors = debug_outcome(rc, out, err)
    if status != OK:
        raise InvalidProbe('%s: logrotate -d rejects the policy: %s' % (what, '; '.join(errors)))
    changed = current != text or (os.path.exists(policy['dest'])
                                  and stat.S_IMODE(os.stat(policy['dest']).st_mode) != mode)
    return text, current, changed, mode


def listed(files, count):
    """A check's details: the files listed (the first list_limit) and how many it leaves out."""
    return {'files': files, 'omitted': count - len(files)}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type='list', elements='str', default=[]),
            patterns=dict(type='list', elements='str', default=['*']),
            log_patterns=dict(type='list', elements='str', default=['*.log']),
            max_size=dict(type='str'),
            max_age=dict(type='str'),
            budget=dict(type='str'),
            logrotate_config=dict(type='list', elements='path', default=['/etc/logrotate.conf']),
            logrotate_debug=dict(type='bool', default=True),
            logrotate_bin=dict(type='path', default='/usr/sbin/logrotate'),
            compress_after=dict(type='str'),
            compress_format=dict(type='str', default='gzip', choices=['gzip', 'zstd']),
            compress_level=dict(type='int'),
            delete_after=dict(type='str'),
            list_limit=dict(type='int', default=100, aliases=['plan_limit']),
            policies=dict(type='list', elements='dict', default=[], options=dict(
                dest=dict(type='path', required=True),
                paths=dict(type='list', elements='str', required=True),
                options=dict(type='list', elements='str', default=[]),
                prerotate=dict(type='str'),
                postrotate=dict(type='str'),
                firstaction=dict(type='str'),
                lastaction=dict(type='str'),
                mode=dict(type='str', default='0644'),
            )),
        ),
        supports_check_mode=True,
    )
    params = module.params
    limit = params['list_limit']
    started = time.monotonic()
    now = time.time()
    uses_logrotate = bool(params['policies']) or (params['logrotate_config'] and params['logrotate_debug'])
    if uses_logrotate and not os.access(params['logrotate_bin'], os.X_OK):
        module.fail_json(msg='logrotate is not installed at %s (logrotate_bin); install the logrotate '
                             'package or set logrotate_config: [] and no policies' % params['logrotate_bin'])
    # ---- validate everything and plan ----
    try:
        if limit < 0:
            raise InvalidProbe('list_limit %d is negative; give how many files a list may carry, or 0 for all'
                               % limit)
        max_size = parse_size(params['max_size'], 'max_size')
        budget = parse_size(params['budget'], 'budget')
        max_age = parse_duration(params['max_age'], 'max_age')
        compress_after = parse_duration(params['compress_after'], 'compress_after')
        delete_after = parse_duration(params['delete_after'], 'delete_after')
        if compress_after is not None and delete_after is not None and delete_after < compress_after:
            raise InvalidProbe('delete_after %s is shorter than compress_after %s: files would be deleted '
                               'before they are compressed' % (params['delete_after'], params['compress_after']))
        if (compress_after is not None or delete_after is not None) and not params['paths']:
            raise InvalidProbe('compress_after and delete_after need paths, the log directories to act on')
        if params['compress_format'] == 'zstd' and compress_after is not None:
            try:
                import zstandard  # noqa: F401  pylint: disable=unused-import
            except ImportError:
                if not module.get_bin_path('zstd'):
                    raise InvalidProbe('compress_format zstd needs the zstandard Python library or the zstd '
                                       'program on the host; install one or use gzip')
        policy_plans = []
        dests = set()
        for index, policy in enumerate(params['policies']):
            if policy['dest'] in dests:
                raise InvalidProbe('policies[%d]: %s is written twice' % (index, policy['dest']))
            dests.add(policy['dest'])
            policy_plans.append((policy,) + plan_policy(module, policy, index, params['logrotate_bin']))
        blocks = read_config_set(params['logrotate_config'], exclude=dests) if params['logrotate_config'] else []
        # a policy must not rotate what the rest of the configuration set already rotates
        existing = block_targets(blocks)
        for policy, _text, _current, _changed, _mode in policy_plans:
            mine = block_targets([{'file': policy['dest'], 'line': 1, 'patterns': policy['paths']}])
            clash = sorted(set(mine) & set(existing))
            if clash:
                raise InvalidProbe('policy %s would rotate %s, which %s already rotates; logrotate refuses '
                                   'a log covered twice' % (policy['dest'], clash[0], existing[clash[0]][0]))
    except InvalidProbe as exc:
        module.fail_json(msg=str(exc))
    # one pass over the files keeps counts, sums and the first list_limit files of each list, and
    # plans: every file to compress or delete only when they are acted on or shown in the diff
    targets = block_targets(blocks + [{'file': p[0]['dest'], 'line': 1, 'patterns': p[0]['paths']}
                                      for p in policy_plans]) if params['logrotate_config'] else None
    problems = {}
    found = survey(params['paths'], params['patterns'], now, max_size=max_size, max_age=max_age,
                   live_patterns=params['log_patterns'], targets=targets, compress_after=compress_after,
                   delete_after=delete_after, fmt=params['compress_format'], problems=problems,
                   sample=list_bound(limit), plan_limit=limit, keep_plan=module._diff or not module.check_mode)
    plan = found.plan.result()
    plan['policies'] = [p[0]['dest'] for p in policy_plans if p[3]]

    # ---- report ----
    checks = []
    if max_size is not None:
        checks.append(count_check('large_files', found.large.count, 'files over %s' % human(max_size),
                                  details=listed([{'path': path, 'size': size} for path, size in found.large.items()],
                                                 found.large.count)))
    if max_age is not None:
        checks.append(count_check('old_files', found.old.count, 'files last written more than %s ago'
                                  % format_duration(max_age),
                                  details=listed([{'path': path, 'age': round(age, 1)}
                                                  for path, age in found.old.items()], found.old.count)))
    total = found.bytes
    if budget is not None:
        status = CRITICAL if total > budget else WARNING if total > 0.9 * budget else OK
        checks.append(check_result('total_size', KIND, status, '%d files take %s of a budget of %s'
                                   % (found.count, human(total), human(budget)),
                                   value=round(total / 1048576.0, 2), unit='MiB',
                                   warning=round(0.9 * budget / 1048576.0, 2),
                                   critical=round(budget / 1048576.0, 2)))
    if params['logrotate_config']:
        duplicates = [(path, refs) for path, refs in sorted(targets.items()) if len(refs) > 1]
        if params['paths']:
            checks.append(count_check('uncovered', found.uncovered.count, 'log files no logrotate configuration '
                                      'covers', details=listed([path for path, _none in found.uncovered.items()],
                                                               found.uncovered.count)))
        shown, omitted = bounded(duplicates, limit)
        checks.append(count_check('duplicates', len(duplicates), 'log files two logrotate configurations '
                                  'cover (logrotate refuses them)', warning=None, critical=0,
                                  details={'files': dict(shown), 'omitted': omitted}))
        if params['logrotate_debug']:
            rc, out, err = logrotate_debug(module, params['logrotate_bin'], params['logrotate_config'])
            status, errors = debug_outcome(rc, out, err)
            checks.append(check_result('logrotate_debug', KIND, status,
                                       'logrotate -d %s: %s' % (' '.join(params['logrotate_config']),
                                                                'no errors' if status == OK else
                                                                '; '.join(errors[:5])),
                                       value=rc, details={'rc': rc, 'errors': errors[:50]}))
    if problems:
        shown, omitted = bounded(sorted(problems.items()), limit)
        checks.append(check_result('paths', KIND, 'unknown', '%d path%s cannot be read: %s' % (
            len(problems), '' if len(problems) == 1 else 's',
            '; '.join('%s: %s' % item for item in shown[:10])),
            value=len(problems), details={'problems': dict(shown), 'omitted': omitted}))

    acting = found.plan.count()
    changed = bool(acting or plan['policies'])
    diff = []
    if acting and module._diff:
        diff.append(found.plan.diff())  # every file, whatever list_limit
    for policy, text, current, policy_changed, _mode in policy_plans:
        if policy_changed:
            diff.append({'before_header': policy['dest'], 'after_header': policy['dest'],
                         'before': current or '', 'after': text})
    compressed, deleted = [], []
    done = {'counts': {COMPRESS: 0, DELETE: 0}, 'bytes': {COMPRESS: 0, 'written': 0, DELETE: 0}, 'truncated': False}
    result = dict(changed=changed, plan=plan, compressed=compressed, deleted=deleted, done=done,
                  files={'count': found.count, 'bytes': total})
    if module._diff:
        result['diff'] = diff

    # ---- act ----
    if changed and not module.check_mode:
        failures = []
        # every planned file, in path order; the result lists the first list_limit of what was done
        bound = list_bound(limit)
        for path, size, _age, _code in found.plan.records(COMPRESS):
            try:
                dest = compress_file(path, params['compress_format'], params['compress_level'])
            except (IOError, OSError) as exc:
                failures.append('cannot compress %s: %s' % (path, exc))
                continue
            done['counts'][COMPRESS] += 1
            done['bytes'][COMPRESS] += size
            try:
                done['bytes']['written'] += os.lstat(dest).st_size
            except OSError:
                pass
            if len(compressed) < bound:
                compressed.append(dest)
        for path, size, _age, _code in found.plan.records(DELETE):
            try:
                os.unlink(path)
            except OSError as exc:
                failures.append('cannot delete %s: %s' % (path, exc))
                continue
            done['counts'][DELETE] += 1
            done['bytes'][DELETE] += size
            if len(deleted) < bound:
                deleted.append(path)
        done['truncated'] = done['counts'][COMPRESS] > len(compressed) or done['counts'][DELETE] > len(deleted)
        for policy, text, _current, policy_changed, mode in policy_plans:
            if policy_changed:
                try:
                    # '~' is one of logrotate's taboo extensions: a run reading the directory meanwhile skips it
                    write_atomically(policy['dest'], text, mode=mode, move=module.atomic_move, suffix='~')
                except (IOError, OSError) as exc:
                    failures.append('cannot write %s: %s' % (policy['dest'], exc))
        if failures:
            summary = summarize(checks)
            shown, omitted = bounded(failures, min(limit or 10, 10))
            module.fail_json(msg='%d action%s failed: %s%s' % (len(failures), '' if len(failures) == 1 else 's',
                                                               '; '.join(shown),
                                                               ' (and %d more)' % omitted if omitted else ''),
                             checks=checks, status=summary['status'],
                             counts=summary['counts'], **result)
    summary = summarize(checks)
    for check in checks:
        check['duration_ms'] = round((time.monotonic() - started) * 1000.0, 3)
    module.exit_json(checks=checks, status=summary['status'], counts=summary['counts'], **result)


if __name__ == '__main__':
    main()
