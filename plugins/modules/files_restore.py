#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: files_restore
short_description: Restore a runbook.ops.files_backup backup, health-check it and roll back on failure
version_added: "0.1.0"
description:
  - Verifies the backup first (sha256 of the archive, then every member against the manifest) and
    refuses a backup that fails.
  - Extracts each restored path into a staging path beside it (same filesystem), checking every
    file's sha256 and setting modes, owners and mtimes as recorded; a failure here removes the
    staging paths and changes nothing.
  - Then runs O(stop_command), moves the current data aside (C(<path>.before-<time>), with a SQLite
    database's C(-wal)/C(-shm)/C(-journal) files) and renames the restored copy into place, runs
    O(start_command) and O(health_check).
  - When the start or the health check fails, renames the restored data away and the old data back,
    so the original files are exactly as they were, runs O(start_command) again and fails.
  - When it passes, keeps the moved-aside data (O(keep_replaced)) or removes it.
  - A path whose current content already equals the backup (types, modes, owners, mtimes, sha256,
    link targets) is left alone (C(changed=false)) unless O(force=true).
author:
  - runbook.ops contributors (@runbook)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Verifies the backup (reads it), compares it with the current data and returns the plan;
      moves, writes and runs nothing.
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
options:
  backup:
    description:
      - The backup to restore - an absolute path of a backup directory, a backup name (timestamp) under
        O(backup_root)/O(label), or C(latest), the newest verified backup of the label.
    type: str
    default: latest
  backup_root:
    description: The directory that holds one directory per label (as given to files_backup).
    type: path
  label:
    description: The backup series (as given to files_backup).
    type: str
  paths:
    description: The backed-up paths to restore (each one of the backup's roots); defaults to all of them.
    type: list
    elements: path
  target_root:
    description:
      - Restore under this directory instead of in place (C(<target_root>/etc/nginx)), for drills and
        for inspecting a backup. Defaults to C(/), the original places.
    type: path
    default: /
  verify:
    description: How to verify the backup before restoring it (C(checksum) or C(archive)).
    type: str
    choices: [checksum, archive]
    default: archive
  stop_command:
    description:
      - A command (list of arguments or a command line, no shell) run after the extraction and before
        the data is swapped, such as C(systemctl stop logcaster); also run before a rollback.
    type: raw
  start_command:
    description: A command run after the swap (and again after a rollback), such as C(systemctl start logcaster).
    type: raw
  health_check:
    description:
      - A command that proves the restored service works; exit code 0 passes. Any other exit code, a
        timeout or a failed O(start_command) rolls the restore back.
    type: raw
  health_check_timeout:
    description: Seconds each command may run.
    type: int
    default: 60
  health_check_retries:
    description: How many more times to run a failing health check before rolling back.
    type: int
    default: 0
  health_check_delay:
    description: Seconds between health-check attempts.
    type: float
    default: 2
  keep_replaced:
    description: Keep the moved-aside data (C(<path>.before-<time>)) after a passed health check.
    type: bool
    default: true
  keep_failed:
    description: On rollback, keep the restored data as C(<path>.failed-<time>) instead of removing it.
    type: bool
    default: false
  force:
    description: Restore even when the current data already equals the backup.
    type: bool
    default: false
  lock_timeout:
    description: Seconds to wait for the label's lock (a backup or retention of the label in progress).
    type: int
    default: 600
notes:
  - Run as root to restore owners; otherwise files belong to the user running the module.
seealso:
  - module: runbook.ops.files_backup
"""

EXAMPLES = r"""
- name: Restore logcaster's data and configuration (runbook 003), rolled back unless it comes up
  runbook.ops.files_restore:
    backup_root: /var/backups/files
    label: logcaster
    stop_command: systemctl stop logcaster
    start_command: systemctl start logcaster
    health_check: systemctl is-active logcaster
    health_check_retries: 5
    health_check_delay: 2

- name: Drill - restore the newest backup under a scratch directory and prove it
  runbook.ops.files_restore:
    backup_root: /var/backups/files
    label: app-config
    target_root: /var/tmp/drill
    health_check: [nginx, -t, -p, /var/tmp/drill/etc/nginx]
    keep_replaced: false
"""

RETURN = r"""
backup:
  description: The name of the restored backup.
  returned: always
  type: str
backup_path:
  description: Its directory.
  returned: always
  type: str
verification:
  description: The verification of the backup before the restore (status, level, problems).
  returned: always
  type: dict
restored:
  description: The paths restored.
  returned: always
  type: list
  elements: str
moved_aside:
  description: Where the replaced data was kept (C(<path>.before-<time>)).
  returned: always
  type: list
  elements: str
removed_aside:
  description: Moved-aside data removed after the health check passed (O(keep_replaced=false)).
  returned: when O(keep_replaced=false)
  type: list
  elements: str
rolled_back:
  description: Whether a failed start or health check put the old data back.
  returned: always
  type: bool
failed_copies:
  description:
    - On rollback, the restored copies kept as C(<path>.failed-<time>) (O(keep_failed=true), or when they could not
      be removed or put aside cleanly).
  returned: on rollback
  type: list
  elements: str
rollback_errors:
  description:
    - The paths a rollback could not put back, each with where its old data and its restored copy now are.
      RV(rolled_back) is then false and the module fails naming them.
  returned: when a rollback was incomplete
  type: list
  elements: str
put_back:
  description: The paths an incomplete rollback did put back as before.
  returned: when a rollback was incomplete
  type: list
  elements: str
health_check:
  description: The last health-check run (passed, message, attempts).
  returned: when O(health_check) ran
  type: dict
plan:
  description: The steps of the restore, in order.
  returned: when something is to be restored
  type: list
  elements: str
rto_seconds:
  description: From the start of the extraction to the passed health check, seconds.
  returned: when restored
  type: float
rpo_seconds:
  description: Age of the restored backup (from its manifest's end time) when the restore started, seconds.
  returned: always
  type: float
skipped_reason:
  description: Why nothing was done (the data already equals the backup).
  returned: when nothing was restored
  type: str
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.runbook.ops.plugins.module_utils.backup import BackupError
from ansible_collections.runbook.ops.plugins.module_utils.filesbackup import FilesRestore, RolledBack


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backup=dict(type='str', default='latest'),
            backup_root=dict(type='path'),
            label=dict(type='str'),
            paths=dict(type='list', elements='path'),
            target_root=dict(type='path', default='/'),
            verify=dict(type='str', default='archive', choices=['checksum', 'archive']),
            stop_command=dict(type='raw'),
            start_command=dict(type='raw'),
            health_check=dict(type='raw'),
            health_check_timeout=dict(type='int', default=60),
            health_check_retries=dict(type='int', default=0),
            health_check_delay=dict(type='float', default=2),
            keep_replaced=dict(type='bool', default=True),
            keep_failed=dict(type='bool', default=False),
            force=dict(type='bool', default=False),
            lock_timeout=dict(type='int', default=600),
        ),
        supports_check_mode=True,
    )
    params = dict(module.params)
    for key in ('health_check_timeout', 'health_check_retries', 'lock_timeout'):
        if params[key] < 0:
            module.fail_json(msg='%s must be 0 or more' % key)
    try:
        result = FilesRestore(params, check_mode=module.check_mode).run()
    except RolledBack as exc:
        module.fail_json(msg=str(exc), **exc.result)
    except BackupError as exc:
        module.fail_json(msg='files_restore: %s' % exc)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg='files_restore failed unexpectedly: %s' % exc, exception=traceback.format_exc())
    if not module._diff:  # pylint: disable=protected-access
        result.pop('diff', None)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
