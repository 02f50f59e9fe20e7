#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_backup
short_description: Take, verify and prune PostgreSQL backups that cannot fail silently
version_added: "0.1.0"
description:
  - Dumps one database with C(pg_dump) into C(<backup_root>/<label>/<timestamp>/) (UTC), written
    under a temporary C(.partial-*) name and renamed only when every file and the manifest are
    fsynced, so an interrupted or failed run never leaves a backup that looks complete.
  - Writes C(manifest.json) beside the dump with every file's size and sha256, the database,
    server and pg_dump versions, start, end, duration and the exact row count of every dumped
    table, counted in the same snapshot that pg_dump dumps (C(pg_export_snapshot)).
  - Records in the manifest (C(postgresql.database_properties)) what pg_dump without C(--create)
    leaves out, so that runbook.ops.pg_restore can bring it back - the database's owner,
    encoding, C(LC_COLLATE), C(LC_CTYPE), locale provider and ICU locale, tablespace, connection
    limit, GRANTs (C(pg_database.datacl) as aclitem text, null for the default), comment and
    settings (C(pg_db_role_setting) - C(ALTER DATABASE ... SET) with role null and C(ALTER ROLE ...
    IN DATABASE ... SET) with its role). Older manifests without it still restore.
  - Checks the exit code of every program in the pipeline, refuses an empty dump and reads the
    new archive's table of contents back (C(pg_restore --list)) before it counts; O(verify=full)
    also decompresses every byte.
  - A lock per label serialises runs; a second run waits up to O(lock_timeout) seconds, then fails.
  - With O(period), a verified backup of the label in the current period makes the call a no-op
    (C(changed=false)).
  - Applies O(retention) in the same call (or alone with O(state=pruned)); the newest verified
    backup is never deleted and nothing is deleted while the newest backup failed verification.
  - O(state=verified) verifies the newest backup (checksums, archive, optionally a restore test
    into a scratch database) and returns the measured RTO and the RPO.
  - A restore test creates its scratch database with the backup's recorded encoding and locale,
    owned by the login user, with C(CONNECT) revoked from C(PUBLIC) and no recorded GRANTs or
    settings, so that no application can reach it. It reports the record (present, roles this
    server lacks) in C(verification.restore_test.database_properties) and warns when a restore here
    could not bring the properties back.
author:
  - runbook.ops contributors (@runbook)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runbook.ops.postgres
attributes:
  check_mode:
    support: full
    details: Returns what would be taken (RV(would_take)), verified (RV(would_verify)) and deleted
      (RV(would_delete)); it connects to the server to check the login but writes nothing (no
      verification record, no removal of stale partial directories).
  diff_mode:
    support: full
    details: The list of backups of the label before and after.
  platform:
    support: full
    platforms: posix
options:
  database:
    description: The database to back up.
    type: str
    required: true
  backup_root:
    description: The directory that holds one directory per label.
    type: path
    required: true
  label:
    description:
      - The name of this backup series, a directory under O(backup_root). Defaults to O(database).
    type: str
  state:
    description:
      - C(present) takes a backup (unless O(period) is already covered) and applies O(retention).
      - C(verified) verifies the newest backup at the level O(verify) (which must not be C(none))
        and applies O(retention).
      - C(pruned) only applies O(retention).
    type: str
    choices: [present, verified, pruned]
    default: present
  format:
    description:
      - pg_dump's output format. C(custom) and C(directory) restore in parallel and one table at
        a time; C(plain) is SQL.
    type: str
    choices: [custom, directory, plain]
    default: custom
  compression:
    description:
      - C(gzip) is done by pg_dump itself, which keeps a custom archive's data offsets (parallel
        and single-table restore need them).
      - C(zstd) and C(lz4) are pg_dump's own from pg_dump 16; with an older pg_dump the dump is
        streamed through the C(zstd) or C(lz4) program (not possible for C(directory)), and a
        custom archive written that way restores with one job only.
    type: str
    choices: [none, gzip, zstd, lz4]
    default: gzip
  compression_level:
    description:
      - The compression level. Defaults to 1 for every method, measured three times faster
        than pg_dump's default gzip level 6 for about 12 % more size.
    type: int
  jobs:
    description: Parallel pg_dump jobs (format C(directory) only).
    type: int
    default: 1
  schema_dump:
    description: Also write a schema-only plain SQL companion dump (C(<database>.schema.sql)).
    type: bool
    default: false
  include_tables:
    description: Dump only tables matching these pg_dump C(--table) patterns.
    type: list
    elements: str
  exclude_tables:
    description: Do not dump tables matching these pg_dump C(--exclude-table) patterns.
    type: list
    elements: str
  period:
    description:
      - Take at most one verified backup per UTC hour, day, ISO week or month; when the current
        period already has one, nothing is taken and C(changed) is false.
    type: str
    choices: [hourly, daily, weekly, monthly]
  retention:
    description:
      - What to keep; a backup is kept when any rule keeps it. Without rules nothing is deleted.
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
      - C(checksum) compares files with the manifest (size and sha256).
      - C(archive) also reads what is cheap to read, the archive's table of contents
        (C(pg_restore --list); every counted table must have data in it) and plain SQL's
        completion line when it is not compressed. A new backup is also proven by the exit
        code of every program of the pipeline and by its sha256 computed from the bytes written.
      - C(full) also reads and decompresses every byte (the compressor's test of streamed and
        compressed plain files with the completion line at their end, C(pg_restore) of all of
        an archive's data to C(/dev/null)); it costs a second pass over the dump.
      - C(restore_test) also restores into a scratch database, compares every table's row count
        with the manifest, runs O(assertions) and drops the scratch database.
      - With O(state=present) the new backup is verified; with O(state=verified) the newest one.
      - With C(none) a new backup is recorded unverified, and O(period) accepts unverified backups.
    type: str
    choices: [none, checksum, archive, full, restore_test]
    default: archive
  assertions:
    description:
      - SQL queries run against the restored scratch database (C(restore_test)); the first column
        of each one's first row must be true.
    type: list
    elements: str
  restore_jobs:
    description: Parallel pg_restore jobs of a restore test.
    type: int
    default: 2
  row_counts:
    description:
      - Count every dumped table's rows in the dump's snapshot for the manifest. Without counts a
        restore cannot be proven; turn it off only for very large databases.
    type: bool
    default: true
  lock_timeout:
    description: Seconds to wait for another run of the same label to finish.
    type: int
    default: 600
  pg_bin_dir:
    description:
      - The directory of pg_dump, pg_restore and psql. Defaults to
        C(/usr/lib/postgresql/<server major>/bin), else the newest client not older than the server.
    type: path
notes:
  - Backup files are written 0600 and directories 0700. Timestamps and periods are UTC.
  - The password reaches pg_dump only through C(PGPASSWORD) in its environment.
seealso:
  - module: runbook.ops.pg_restore
"""

EXAMPLES = r"""
- name: Nightly custom-format backup, verified, with GFS retention
  runbook.ops.pg_backup:
    database: shop
    backup_root: /var/backups/postgres
    login_unix_socket: /var/run/postgresql
    period: daily
    schema_dump: true
    retention:
      keep_daily: 7
      keep_weekly: 4
      keep_monthly: 12

- name: "Monthly proof: restore the newest backup into a scratch database"
  runbook.ops.pg_backup:
    database: shop
    backup_root: /var/backups/postgres
    state: verified
    verify: restore_test
    assertions:
      - SELECT count(*) > 0 FROM orders
  register: drill

- name: Fast hourly plain dump through zstd
  runbook.ops.pg_backup:
    database: shop
    label: shop-hourly
    backup_root: /var/backups/postgres
    format: plain
    compression: zstd
    period: hourly
    retention: {keep_last: 48}
"""

RETURN = r"""
taken:
  description:
    - The backup taken by this call (name, path, files with size and sha256, tables, size,
      C(database_properties) as recorded in its manifest).
  returned: when a backup was taken
  type: dict
  sample:
    name: 20260301T020000Z
    database_properties:
      owner: shop
      encoding: UTF8
      collate: C.UTF-8
      ctype: C.UTF-8
      locale_provider: libc
      icu_locale: null
      tablespace: pg_default
      connection_limit: 50
      acl: ["=T/shop", "shop=CTc/shop", "shop_reader=c/shop"]
      comment: Orders and invoices
      settings:
        - {role: null, name: work_mem, value: 64MB}
        - {role: shop_reader, name: search_path, value: "shop, public"}
would_take:
  description: In check mode, the backup that would be taken, or null.
  returned: check mode
  type: dict
would_verify:
  description:
    - In check mode with O(state=verified), the backup a real run would verify (C(backup), C(path),
      C(level), its current C(status)), or null when there is none. Check mode verifies nothing
      and writes no verification record.
  returned: check mode with O(state=verified)
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
  description:
    - The verification of the new (or newest) backup; status, level, problems. After a restore
      test, C(restore_test) holds its scratch database, timings and C(database_properties)
      (C(recorded), C(owner), C(missing_roles), C(warnings)).
  returned: when verified
  type: dict
rto_seconds:
  description: Measured restore time of the restore test, seconds.
  returned: after a restore test
  type: float
rpo_seconds:
  description: Age of the newest verified backup (from its end), seconds; null when there is none.
  returned: always
  type: float
newest_verified:
  description: The name of the newest verified backup.
  returned: always
  type: str
backups:
  description: Every backup of the label after the call (name, path, status, started, finished, size).
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
from ansible_collections.runbook.ops.plugins.module_utils.pgbackup import (
    HAS_PSYCOPG2, PgBackup, VerificationFailed,
)
from ansible_collections.runbook.ops.plugins.module_utils.postgres import postgres_argument_spec


def argument_spec():
    spec = postgres_argument_spec()
    spec.update(
        database=dict(type='str', required=True),
        backup_root=dict(type='path', required=True),
        label=dict(type='str'),
        state=dict(type='str', default='present', choices=['present', 'verified', 'pruned']),
        format=dict(type='str', default='custom', choices=['custom', 'directory', 'plain']),
        compression=dict(type='str', default='gzip', choices=['none', 'gzip', 'zstd', 'lz4']),
        compression_level=dict(type='int'),
        jobs=dict(type='int', default=1),
        schema_dump=dict(type='bool', default=False),
        include_tables=dict(type='list', elements='str'),
        exclude_tables=dict(type='list', elements='str'),
        period=dict(type='str', choices=['hourly', 'daily', 'weekly', 'monthly']),
        retention=dict(type='dict', options=dict(
            keep_last=dict(type='int'), keep_days=dict(type='int'), keep_daily=dict(type='int'),
            keep_weekly=dict(type='int'), keep_monthly=dict(type='int'))),
        verify=dict(type='str', default='archive', choices=['none', 'checksum', 'archive', 'full', 'restore_test']),
        assertions=dict(type='list', elements='str'),
        restore_jobs=dict(type='int', default=2),
        row_counts=dict(type='bool', default=True),
        lock_timeout=dict(type='int', default=600),
        pg_bin_dir=dict(type='path'),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = dict(module.params)
    if not HAS_PSYCOPG2:
        module.fail_json(msg='psycopg2 is not installed for %s on this host; install psycopg2-binary'
                         % module._name)  # pylint: disable=protected-access
    if params['jobs'] < 1 or params['restore_jobs'] < 1:
        module.fail_json(msg='jobs and restore_jobs must be at least 1')
    if params['jobs'] > 1 and params['format'] != 'directory':
        module.fail_json(msg='jobs=%d needs format=directory (pg_dump dumps in parallel only into a directory)'
                         % params['jobs'])
    if params['lock_timeout'] < 0:
        module.fail_json(msg='lock_timeout must be 0 or more seconds')
    try:
        result = PgBackup(params, check_mode=module.check_mode).run()
    except VerificationFailed as exc:
        module.fail_json(msg=str(exc), **exc.result)
    except BackupError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg='pg_backup of %s failed unexpectedly: %s' % (params['database'], exc),
                         exception=traceback.format_exc())
    if not module._diff:  # pylint: disable=protected-access
        result.pop('diff', None)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
