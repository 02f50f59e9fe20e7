#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_restore
short_description: Restore a runbook.ops.pg_backup backup without risking the current data
version_added: "0.1.0"
description:
  - Verifies the backup first (checksums against its manifest and the archive itself) and refuses
    a backup that fails.
  - Restores a whole database into a new database, proves it (every table's row count against the
    manifest, then O(assertions)) and only then swaps it in by renaming; the replaced database is
    kept under C(<database>_replaced_<time>) unless O(keep_replaced=false). A restore or proof that
    fails drops the new database and leaves the current one untouched.
  - The swap renames both databases in one transaction. If it fails, nothing is renamed and nothing
    is dropped; the error names the current database and the new, proven one (kept under
    C(<database>_restore_<time>_<pid>_<random>)) so that the swap can be retried.
  - Holds the label's lock (as runbook.ops.pg_backup does) while it verifies and restores, so that a
    backup run's retention cannot delete the backup mid-restore; waits up to O(lock_timeout) seconds.
  - Plain SQL backups run through C(psql) with C(ON_ERROR_STOP) in one transaction; archives
    through C(pg_restore) with O(jobs) parallel jobs.
  - With O(tables), replaces the rows of those tables only (custom or directory backups), in one
    transaction that also keeps a copy of the old rows and checks the row counts and assertions
    before it commits.
  - A single-table restore (O(tables)) changes no database-level property.
  - A single-table restore records the backup in each table's comment (replacing the comment the
    table had). Tables whose comment names the same backup are left alone (C(changed=false)) unless
    O(force=true), so a rerun does not replace rows written since.
  - A whole-database restore brings back the database-level properties that runbook.ops.pg_backup
    recorded in the manifest (pg_dump without C(--create) leaves them out). The new database is
    created from C(template0) with the recorded owner, encoding, C(LC_COLLATE), C(LC_CTYPE), locale
    provider and tablespace; the recorded GRANTs on the database (C(pg_database.datacl), replayed
    exactly, in their order), settings (C(ALTER DATABASE ... SET), C(ALTER ROLE ... IN DATABASE ...
    SET)), connection limit and comment are applied in the transaction that swaps it in. When the
    record has GRANTs of its own, only its owner (and superusers) may connect to it until then.
    See O(properties) for what wins when the replaced database differs.
  - Roles the record names that do not exist on this server (a restore onto a server without the
    globals) are skipped, each with a warning that names the role and the fix; a missing owner falls
    back to the login user. A property statement the login may not run (for example C(ALTER ROLE ...
    IN DATABASE) without superuser) is rolled back alone and returned as a warning with its SQL. The
    restore itself never fails for a property.
  - A backup taken before pg_backup recorded the properties still restores, with a warning naming
    what it cannot restore; the restored database keeps the properties of the database it replaces.
  - A database restored from the same backup before (recorded in its setting
    C(runbook_ops.restored_from), or, by older versions, in its comment) is left alone
    (C(changed=false)) unless O(force=true).
author:
  - runbook.ops contributors (@runbook)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runbook.ops.postgres
attributes:
  check_mode:
    support: full
    details: Verifies the backup (reads it) and returns the plan; creates, restores and renames nothing.
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
options:
  backup:
    description:
      - The backup to restore - an absolute path of a backup directory, a backup name (timestamp)
        under O(backup_root)/O(label), or C(latest), the newest verified backup of the label.
    type: str
    default: latest
  backup_root:
    description: The directory that holds one directory per label (as given to pg_backup).
    type: path
  label:
    description: The backup series (as given to pg_backup).
    type: str
  database:
    description: The database to restore; defaults to the database the backup was taken of.
    type: str
  tables:
    description:
      - Restore only these tables (C(schema.table), C(public) when unqualified, one schema per
        call) into the existing O(database), replacing their rows.
    type: list
    elements: str
  jobs:
    description: Parallel pg_restore jobs (archives that pg_dump wrote itself).
    type: int
    default: 2
  assertions:
    description:
      - SQL queries run against the restored data before it replaces the current data; the first
        column of each one's first row must be true.
    type: list
    elements: str
  keep_replaced:
    description:
      - Keep the replaced database (renamed C(<database>_replaced_<time>)) or, with O(tables),
        copies of the old rows (C(<table>_before_<time>)).
    type: bool
    default: true
  force:
    description: Restore even when the database (or, with O(tables), the tables) was already restored from this backup.
    type: bool
    default: false
  lock_timeout:
    description: Seconds to wait for a pg_backup or pg_restore run holding the label's lock to finish.
    type: int
    default: 600
  verify:
    description:
      - How deeply to verify the backup before restoring (see runbook.ops.pg_backup).
        C(full) also reads every compressed byte back.
    type: str
    choices: [checksum, archive, full]
    default: archive
  pg_bin_dir:
    description: The directory of pg_restore and psql (see runbook.ops.pg_backup).
    type: path
  properties:
    description:
      - Which database-level properties (owner, encoding and locale, tablespace, GRANTs, settings,
        connection limit, comment) the restored database gets. Ignored with O(tables).
      - C(backup), the ones recorded in the backup - the database as it was backed up. When the
        replaced database differs, the backup wins and C(changed) of RV(properties) lists every
        difference. A backup without a record (older pg_backup) keeps the replaced database's.
      - C(current), the ones of the database being replaced (with the backup's encoding and
        locale), for example to restore a production backup onto a staging server whose roles and
        grants differ; the backup's when there is no such database.
      - C(none), the server's defaults, owned by the login user (what restores did before the record existed), for
        example when this server lacks the recorded locale.
    type: str
    choices: [backup, current, none]
    default: backup
notes:
  - Swapping a database in terminates the sessions connected to the database it replaces.
seealso:
  - module: runbook.ops.pg_backup
"""

EXAMPLES = r"""
- name: Restore the newest verified backup of shop, keeping the current database aside
  runbook.ops.pg_restore:
    backup_root: /var/backups/postgres
    label: shop
    assertions:
      - SELECT count(*) > 0 FROM orders

- name: Restore a production backup onto staging, keeping staging's owner and grants
  runbook.ops.pg_restore:
    backup_root: /var/backups/postgres
    label: shop
    properties: current

- name: Put back one table from last night's backup (004)
  runbook.ops.pg_restore:
    backup_root: /var/backups/postgres
    label: shop
    backup: 20260301T020000Z
    tables: [public.invoices]
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
database:
  description: The restored database.
  returned: always
  type: str
verification:
  description: The verification of the backup done first.
  returned: always
  type: dict
restored_into:
  description: The new database the backup was restored into before the swap.
  returned: whole-database restores
  type: str
replaced_database:
  description: The name the replaced database was kept under, or null.
  returned: whole-database restores
  type: str
properties:
  description:
    - The database-level properties of a whole-database restore. C(source) is C(backup),
      C(current), C(none), C(replaced) (an older backup without a record, so the replaced database's)
      or C(unrecorded) (neither); C(recorded) whether the backup has a record; C(owner) the owner
      the restored database gets; C(missing_roles) the roles named by the record that this server
      lacks (their GRANTs and settings are skipped); C(changed) each property that differs between
      the replaced database and the restored one (C({before, after})); C(apply) the SQL run in the
      swap transaction (in check mode, the SQL a real run would run); C(not_applied) statements
      that failed and were rolled back alone (C({statement, error})).
  returned: whole-database restores
  type: dict
  sample:
    source: backup
    recorded: true
    owner: shop
    missing_roles: [reporting]
    changed:
      owner: {before: postgres, after: shop}
    apply:
      - REVOKE ALL ON DATABASE "shop" FROM PUBLIC
      - GRANT CONNECT ON DATABASE "shop" TO "shop_reader"
    not_applied: []
tables:
  description: Row counts of the restored tables.
  returned: whole-database restores
  type: dict
tables_restored:
  description: The tables whose rows were replaced (empty when they were already restored from this backup).
  returned: with O(tables)
  type: list
  elements: str
replaced_copies:
  description: Tables holding the rows that were replaced.
  returned: with O(tables)
  type: list
  elements: str
lock_waited_seconds:
  description: How long the restore waited for the label's lock.
  returned: when the lock was taken (not in check mode)
  type: float
rto_seconds:
  description: Time from the start of the restore to the data being in place.
  returned: when restored
  type: float
plan:
  description: The steps a real run would take.
  returned: check mode
  type: list
  elements: str
skipped_reason:
  description: Why nothing was restored.
  returned: when nothing was done
  type: str
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.runbook.ops.plugins.module_utils.backup import BackupError
from ansible_collections.runbook.ops.plugins.module_utils.pgbackup import (
    HAS_PSYCOPG2, PgRestore,
)
from ansible_collections.runbook.ops.plugins.module_utils.postgres import postgres_argument_spec


def argument_spec():
    spec = postgres_argument_spec()
    spec.update(
        backup=dict(type='str', default='latest'),
        backup_root=dict(type='path'),
        label=dict(type='str'),
        database=dict(type='str'),
        tables=dict(type='list', elements='str'),
        jobs=dict(type='int', default=2),
        assertions=dict(type='list', elements='str'),
        keep_replaced=dict(type='bool', default=True),
        force=dict(type='bool', default=False),
        lock_timeout=dict(type='int', default=600),
        verify=dict(type='str', default='archive', choices=['checksum', 'archive', 'full']),
        pg_bin_dir=dict(type='path'),
        properties=dict(type='str', default='backup', choices=['backup', 'current', 'none']),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = dict(module.params)
    if not HAS_PSYCOPG2:
        module.fail_json(msg='psycopg2 is not installed on this host; install psycopg2-binary')
    if params['jobs'] < 1:
        module.fail_json(msg='jobs must be at least 1')
    if params['lock_timeout'] < 0:
        module.fail_json(msg='lock_timeout must be 0 or more seconds')
    try:
        result = PgRestore(params, check_mode=module.check_mode).run()
    except BackupError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg='pg_restore failed unexpectedly: %s' % exc, exception=traceback.format_exc())
    if not module._diff:  # pylint: disable=protected-access
        result.pop('diff', None)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
