#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: backup_check
short_description: Check a backup directory against its manifest, and commit a received copy
version_added: "0.1.0"
description:
  - Compares every file of a M(runbook.ops.pg_backup) or M(runbook.ops.files_backup) backup directory
    with its C(manifest.json) (size and sha256; nothing missing, nothing extra).
  - With O(commit_to), O(path) is a copy being received (for example on a backup host), written under a
    C(.partial-*) name; only when every file matches is it sealed (files 0600, directories 0700,
    fsynced) and renamed to O(commit_to). A failed check leaves it where it is and fails.
  - When O(commit_to) already holds the backup, it is checked and the call reports C(changed=false).
  - When O(commit_to) exists but no longer matches its manifest (damaged), a received copy is not thrown away;
    the damaged directory is moved to C(.damaged-<name>-<time>) beside it (kept) and the copy, once it matches,
    takes its place. If the copy does not match either, the damaged one is put back and the call fails.
author:
  - runbook.ops contributors (@runbook)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Checks, renames nothing.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  path:
    description: The backup directory (or the received copy) to check.
    type: path
    required: true
  commit_to:
    description: The final name of a received copy (C(<root>/<label>/<timestamp>)).
    type: path
"""

EXAMPLES = r"""
- name: Seal a backup copied to the backup host once its manifest matches
  runbook.ops.backup_check:
    path: /srv/backups/db1/shop/.partial-20261121T020000Z-copy
    commit_to: /srv/backups/db1/shop/20261121T020000Z
  delegate_to: backup1
"""

RETURN = r"""
status:
  description: C(passed) or C(failed).
  returned: always
  type: str
problems:
  description: Files missing, extra or different from the manifest.
  returned: always
  type: list
  elements: str
committed:
  description: Whether the copy was renamed to O(commit_to) by this call.
  returned: always
  type: bool
path:
  description: The directory that was judged (O(commit_to) when the backup is there).
  returned: always
  type: str
replaced_damaged:
  description:
    - When O(commit_to) existed but no longer matched its manifest and the received copy did, where the damaged
      directory was moved (C(.damaged-<name>-<time>) beside it; kept, never deleted).
  returned: when a damaged backup was replaced
  type: str
damaged_problems:
  description: What was wrong with the damaged O(commit_to).
  returned: when a damaged backup was replaced (or would be, in check mode)
  type: list
  elements: str
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.runbook.ops.plugins.module_utils.backup import PASSED, BackupError
from ansible_collections.runbook.ops.plugins.module_utils.filesbackup import receive_copy


def main():
    module = AnsibleModule(argument_spec=dict(path=dict(type='path', required=True), commit_to=dict(type='path')),
                           supports_check_mode=True)
    path, final = module.params['path'], module.params['commit_to']
    try:
        result = receive_copy(path, final, check_mode=module.check_mode)
    except (BackupError, OSError) as exc:
        module.fail_json(msg='backup_check of %s failed: %s' % (path, exc))
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg='backup_check of %s failed: its manifest or files are not what a backup holds (%s: %s); '
                         'copy the backup again' % (path, type(exc).__name__, exc), exception=traceback.format_exc())
    changed = result['committed'] or bool(result.pop('would_commit', False))
    if result['status'] != PASSED:
        module.fail_json(msg='backup %s does not match its manifest: %s'
                         % (result['path'], '; '.join(result['problems'][:10])), changed=False, **result)
    module.exit_json(changed=changed, **result)


if __name__ == '__main__':
    main()
