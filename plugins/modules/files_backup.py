#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: files_backup
short_description: Back up configuration and data paths and live SQLite databases, verified and manifested
version_added: "0.1.0"
description:
  - Archives O(paths) (files, directories, symbolic links as links; modes, owners and sub-second
    mtimes in a PAX tar) into C(<backup_root>/<label>/<timestamp>/files.tar.gz) (or C(.tar.zst),
    C(.tar)), written under a temporary C(.partial-*) name and renamed only when the archive and
    its manifest are fsynced, so an interrupted run never leaves a backup that looks complete.
  - Copies each live SQLite database of O(sqlite) through SQLite's online backup API (a consistent
    snapshot while the application keeps writing), checks the copy with C(PRAGMA integrity_check)
    and counts its tables' rows; the snapshot goes into the archive under the database's own path,
    in place of the live file and its C(-wal), C(-shm) and C(-journal) files.
  - Writes C(manifest.json) with every archive file's size and sha256 and every member's type, mode,
    owner, mtime, size and sha256, and (O(verify=archive)) reads the whole archive back against it
    before the backup counts.
  - Shares the layout, lock, periods and retention of M(runbook.ops.pg_backup). With O(period) a
    verified backup of the label in the current period makes the call a no-op (C(changed=false)).
author:
  - runbook.ops contributors (@runbook)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Walks the paths and returns what would be taken (RV(would_take)) and deleted (RV(would_delete));
      writes nothing.
  diff_mode:
    support: full
    details: The list of backups of the label before and after.
  platform:
    support: full
    platforms: posix
options:
  label:
    description: The name of this backup series, a directory under O(backup_root).
    type: str
    required: true
  backup_root:
    description: The directory that holds one directory per label.
    type: path
    required: true
  state:
    description:
      - C(present) takes a backup (unless O(period) is already covered) and applies O(retention).
      - C(verified) verifies the newest backup at the level O(verify) and applies O(retention).
      - C(pruned) only applies O(retention).
    type: str
    choices: [present, verified, pruned]
    default: present
  paths:
    description:
      - Absolute paths of files and directories to archive (C(/) is refused; a path inside another
        listed path is refused).
    type: list
    elements: path
  sqlite:
    description:
      - Absolute paths of live SQLite databases to copy through the online backup API. A database
        inside one of O(paths) takes its place in that directory's archive; others are archived
        under their own path.
    type: list
    elements: path
  exclude:
    description: Glob patterns of paths or base names to leave out (C(*.tmp), C(/var/lib/app/cache)).
    type: list
    elements: str
  allow_missing:
    description: Record paths that do not exist in the manifest instead of failing (at least one must exist).
    type: bool
    default: false
  compression:
    description:
      - C(gzip) by Python's zlib; C(zstd) through the C(zstd) program (faster for the same size); C(none).
    type: str
    choices: [gzip, zstd, none]
    default: gzip
  compression_level:
    description: The compression level; defaults to 1 (gzip 1-9, zstd 1-19).
    type: int
  period:
    description:
      - Take at most one verified backup per UTC hour, day, ISO week or month; when the current
        period already has one, nothing is taken and C(changed) is false.
    type: str
    choices: [hourly, daily, weekly, monthly]
  retention:
    description:
      - What to keep; a backup is kept when any rule keeps it. Without rules nothing is deleted. The
        rules of M(runbook.ops.pg_backup).
    type: dict
    suboptions:
      keep_last:
        description: Keep the newest N backups.
        type: int
      keep_days:
        description: Keep every backup younger than N days.
        type: int
      keep_daily:
        description: Keep the newest backup of each of the newest N days that have one.
        type: int
      keep_weekly:
        description: Keep the newest backup of each of the newest N ISO weeks that have one.
        type: int
      keep_monthly:
        description: Keep the newest backup of each of the newest N months that have one.
        type: int
  verify:
    description:
      - C(checksum) compares the archive with the manifest's sha256; C(archive) also reads every member
        back (type, mode, owner, size, sha256, link target) and finds missing and extra members.
      - With O(state=present) the new backup is verified; with O(state=verified) the newest one.
      - With C(none) a new backup is recorded unverified, and O(period) accepts unverified backups.
    type: str
    choices: [none, checksum, archive]
    default: archive
  lock_timeout:
    description: Seconds to wait for another run of the same label (and for a SQLite writer's lock).
    type: int
    default: 600
notes:
  - Backup files are written 0600 and directories 0700. Timestamps and periods are UTC.
  - Hard links are archived as separate files. Sockets, FIFOs and devices are skipped and listed.
  - A file that changes while it is read is archived as read and listed in C(changed_during_backup) of RV(taken);
    one that shrinks fails the call. Use O(sqlite) for SQLite databases, never O(paths) alone.
seealso:
  - module: runbook.ops.files_restore
  - module: runbook.ops.pg_backup
"""

EXAMPLES = r"""
- name: Configuration of runbook 000/002 (.env, compose file, nginx, TLS)
  runbook.ops.files_backup:
    label: app-config
    backup_root: /var/backups/files
    paths: [/opt/app/.env, /opt/app/docker-compose.yml, /etc/nginx, /etc/letsencrypt]
    period: daily
    retention: {keep_daily: 7, keep_weekly: 4, keep_monthly: 12}

- name: Logcaster data, configuration and its SQLite database (runbook 003)
  runbook.ops.files_backup:
    label: logcaster
    backup_root: /var/backups/files
    paths: [/var/lib/logcaster, /etc/logcaster]
    sqlite: [/var/lib/logcaster/data.db]
    exclude: ['*.tmp']
    compression: zstd
    period: hourly
    retention: {keep_last: 48}
"""

RETURN = r"""
taken:
  description:
    - The backup taken by this call (name, path, files with size and sha256, entries, counts by type, bytes,
      sqlite snapshots with row counts, missing paths, changed_during_backup).
  returned: when a backup was taken
  type: dict
would_take:
  description: In check mode, the backup that would be taken (paths, entries, bytes, skipped), or null.
  returned: check mode
  type: dict
deleted:
  description: Names of the backups deleted by retention.
  returned: always
  type: list
  elements: str
would_delete:
  description: In check mode, the names of the backups retention would delete.
  returned: always
  type: list
  elements: str
retention:
  description: The retention decision (keep with reasons, delete, held).
  returned: when O(retention) is set
  type: dict
skipped_reason:
  description: Why no backup was taken (the period is covered).
  returned: always
  type: str
verification:
  description: The verification of the new (or newest) backup; status, level, problems.
  returned: when verified
  type: dict
rpo_seconds:
  description: Age of the newest verified backup (from its end), seconds; null when there is none.
  returned: always
  type: float
newest_verified:
  description: The name of the newest verified backup.
  returned: always
  type: str
backups:
  description: Every backup of the label after the call (name, path, status, started, finished, size, paths).
  returned: always
  type: list
  elements: dict
removed_partials:
  description: Leftover C(.partial-*) directories of interrupted runs that were removed.
  returned: when not in check mode
  type: list
  elements: str
backup_dir:
  description: The label's directory.
  returned: always
  type: str
label:
  description: The label.
  returned: always
  type: str
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.runbook.ops.plugins.module_utils.backup import BackupError
from ansible_collections.runbook.ops.plugins.module_utils.filesbackup import FilesBackup, VerificationFailed


def argument_spec():
    return dict(
        label=dict(type='str', required=True),
        backup_root=dict(type='path', required=True),
        state=dict(type='str', default='present', choices=['present', 'verified', 'pruned']),
        paths=dict(type='list', elements='path'),
        sqlite=dict(type='list', elements='path'),
        exclude=dict(type='list', elements='str'),
        allow_missing=dict(type='bool', default=False),
        compression=dict(type='str', default='gzip', choices=['gzip', 'zstd', 'none']),
        compression_level=dict(type='int'),
        period=dict(type='str', choices=['hourly', 'daily', 'weekly', 'monthly']),
        retention=dict(type='dict', options=dict(
            keep_last=dict(type='int'), keep_days=dict(type='int'), keep_daily=dict(type='int'),
            keep_weekly=dict(type='int'), keep_monthly=dict(type='int'))),
        verify=dict(type='str', default='archive', choices=['none', 'checksum', 'archive']),
        lock_timeout=dict(type='int', default=600),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = dict(module.params)
    if params['lock_timeout'] < 0:
        module.fail_json(msg='lock_timeout must be 0 or more seconds')
    try:
        result = FilesBackup(params, check_mode=module.check_mode).run()
    except VerificationFailed as exc:
        module.fail_json(msg=str(exc), **exc.result)
    except BackupError as exc:
        module.fail_json(msg='files_backup %s: %s' % (params['label'], exc))
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg='files_backup of %s failed unexpectedly: %s' % (params['label'], exc),
                         exception=traceback.format_exc())
    if not module._diff:  # pylint: disable=protected-access
        result.pop('diff', None)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
