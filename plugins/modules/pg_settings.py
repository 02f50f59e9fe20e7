#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_settings
short_description: Set or reset PostgreSQL server parameters with ALTER SYSTEM, reload, report what waits for a restart
version_added: "0.1.0"
description:
  - Sets every parameter of O(settings) in one call with C(ALTER SYSTEM SET), only where the
    configured value differs, then reloads the configuration (C(pg_reload_conf())).
  - Values are compared in the parameter's own unit, so C(256MB) equals 32768 pages of 8kB,
    C(1min) equals C(60s), C(on) equals C(true); lists such as C(shared_preload_libraries)
    are compared item by item. The value compared with is the one in C(postgresql.auto.conf)
    when ALTER SYSTEM set one, else the running one.
  - Every parameter of O(reset) that C(postgresql.auto.conf) sets is taken back with
    C(ALTER SYSTEM RESET), so it falls back to C(postgresql.conf) (or the built-in default);
    one that C(postgresql.auto.conf) does not set is left alone.
  - Every name and value is validated against C(pg_settings) (type, unit, range, enum values)
    before anything is changed; when an C(ALTER SYSTEM) fails, those already made are undone.
  - The server is never restarted. Parameters that need one (context C(postmaster), such as
    C(shared_buffers) or C(shared_preload_libraries)) are returned in RV(pending_restart).
author:
  - runbook.ops contributors (@runbook)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runbook.ops.postgres
attributes:
  check_mode:
    support: full
    details: In check mode nothing is altered; the changes and the restarts they would need are returned.
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
options:
  settings:
    description:
      - Parameter names and values as in C(postgresql.conf) (C(256MB), C(0.9), C(on),
        C(pg_stat_statements)); a list is joined with commas.
      - At least one of O(settings) and O(reset) is needed; a name cannot be in both.
    type: dict
    default: {}
  reset:
    description:
      - Names of parameters to take back with C(ALTER SYSTEM RESET); they leave
        C(postgresql.auto.conf) and fall back to C(postgresql.conf) or the built-in default.
      - Only those C(postgresql.auto.conf) sets are reset; the others are left alone.
    type: list
    elements: str
    default: []
  reload:
    description: Reload the configuration after a change (C(pg_reload_conf())).
    type: bool
    default: true
  reload_wait:
    description: Seconds to wait for the reloaded values to show in C(pg_settings).
    type: float
    default: 5
notes:
  - Needs a superuser (or, on PostgreSQL 15 and later, a role granted ALTER SYSTEM on the
    parameters and C(pg_read_all_settings)) to read C(pg_file_settings) and use ALTER SYSTEM.
"""

EXAMPLES = r"""
- name: PostgreSQL settings of runbook 000
  runbook.ops.pg_settings:
    login_unix_socket: /var/run/postgresql
    settings:
      shared_buffers: 256MB
      effective_cache_size: 1GB
      work_mem: 4MB
      maintenance_work_mem: 64MB
      checkpoint_completion_target: 0.9
      wal_buffers: 16MB
      random_page_cost: 1.1
      max_connections: 100
      shared_preload_libraries: pg_stat_statements
  register: pg

- name: Take back a tuning (the parameters fall back to postgresql.conf)
  runbook.ops.pg_settings:
    login_unix_socket: /var/run/postgresql
    reset: [work_mem, shared_buffers]

- name: Tell the operator which settings wait for a restart
  ansible.builtin.debug:
    msg: "Restart PostgreSQL to apply {{ pg.pending_restart | join(', ') }}"
  when: pg.pending_restart | length > 0
"""

RETURN = r"""
changes:
  description:
    - The parameters altered (in check mode, that would be), with the value compared before and the one set;
      C(action) is C(set) or C(reset).
    - A reset has C(after=null), C(falls_back_to) (the value of C(postgresql.conf), or the built-in
      default) and C(restart) (whether the running value differs from it and only a restart applies it).
  returned: always
  type: list
  elements: dict
  sample: [{name: work_mem, before: "4096 (x kB)", after: 8MB, context: user, action: set},
           {name: shared_buffers, before: 256MB, after: null, context: postmaster, action: reset,
            falls_back_to: 128MB, restart: false}]
pending_restart:
  description:
    - The parameters of O(settings) and O(reset) whose new value waits for a server restart (also those
      left pending by an earlier run; in check mode, those a change would leave pending).
    - A reset parameter is pending only when the server runs with another value than the one it
      falls back to (taking back a value that never ran needs no restart).
  returned: always
  type: list
  elements: str
  sample: [shared_buffers, shared_preload_libraries]
reloaded:
  description: Whether C(pg_reload_conf()) was called.
  returned: always
  type: bool
server_version:
  description: The server's version number.
  returned: when connected
  type: int
  sample: 150014
"""

import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.runbook.ops.plugins.module_utils.pg_settings import (
    SettingError, normalize, parse_reset, parse_settings, plan, plan_resets, reset_settled,
)
from ansible_collections.runbook.ops.plugins.module_utils.postgres import (
    connect_kwargs, describe_server, postgres_argument_spec,
)

PSYCOPG2_IMPORT_ERROR = None
try:
    import psycopg2
    from psycopg2 import sql
except ImportError:
    psycopg2 = None
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()

# names are compared in lower case: pg_settings spells some in mixed case (TimeZone)
ROWS_SQL = ('SELECT lower(name), setting, unit, vartype, context, min_val, max_val, enumvals, '
            'pending_restart, boot_val FROM pg_settings WHERE lower(name) = ANY(%s)')
CONFIGURED_SQL = ("SELECT lower(name), setting FROM pg_file_settings WHERE lower(name) = ANY(%s) "
                  "AND sourcefile LIKE '%%postgresql.auto.conf' ORDER BY seqno")
# what a reset falls back to: postgresql.conf and its includes (the last assignment wins)
FALLBACK_SQL = ("SELECT lower(name), setting FROM pg_file_settings WHERE lower(name) = ANY(%s) "
                "AND sourcefile NOT LIKE '%%postgresql.auto.conf' AND error IS NULL ORDER BY seqno")


def fetch(cursor, names):
    cursor.execute(ROWS_SQL, (names,))
    columns = [c[0] for c in cursor.description]
    rows = dict((row[0], dict(zip(['name'] + columns[1:], row))) for row in cursor.fetchall())
    cursor.execute(CONFIGURED_SQL, (names,))
    configured = dict(cursor.fetchall())  # the last assignment wins
    return rows, configured


def alter(cursor, name, value):
    if value is None:
        cursor.execute(sql.SQL('ALTER SYSTEM RESET {}').format(sql.Identifier(name)))
    else:
        cursor.execute(sql.SQL('ALTER SYSTEM SET {} = %s').format(sql.Identifier(name)),
                       (value,))


def wait_reloaded(cursor, names, changes, timeout, fallback=None, before_rows=None):
    """Poll pg_settings until every reloadable change shows (and every reset settles);
    returns the rows."""
    wanted = dict((c['name'], c['after']) for c in changes if c['after'] is not None)
    resets = [c for c in changes if c['after'] is None]
    fallback, before_rows = fallback or {}, before_rows or {}
    deadline = time.monotonic() + timeout
    while True:
        rows, _configured = fetch(cursor, names)
        waiting = [c['name'] for c in resets
                   if not reset_settled(c, rows.get(c['name']),
                                        fallback.get(c['name'], before_rows.get(c['name'], {}).get('boot_val')))]
        for name, text in wanted.items():
            row = rows.get(name)
            if row is None or row['pending_restart']:
                continue
            if normalize(name, row['setting'], row) != normalize(name, text, row):
                waiting.append(name)
        if not waiting or time.monotonic() >= deadline:
            return rows, waiting
        time.sleep(0.1)


def main():
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        settings=dict(type='dict', default={}),
        reset=dict(type='list', elements='str', default=[]),
        reload=dict(type='bool', default=True),
        reload_wait=dict(type='float', default=5),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if psycopg2 is None:
        module.fail_json(msg=missing_required_lib('psycopg2 (or psycopg2-binary)'),
                         exception=PSYCOPG2_IMPORT_ERROR)
    params = module.params
    try:
        entries = parse_settings(params['settings'], required=False)
    except SettingError as exc:
        module.fail_json(msg='settings: %s' % exc)
    try:
        resets = parse_reset(params['reset'], entries)
    except SettingError as exc:
        module.fail_json(msg='nothing changed: %s' % exc)
    if not entries and not resets:
        module.fail_json(msg='nothing to do: give settings (parameter: value), reset (names), or both')
    names = [name for name, _text in entries] + resets
    where = describe_server(params)
    try:
        connection = psycopg2.connect(**connect_kwargs(params))
    except psycopg2.Error as exc:
        module.fail_json(msg='cannot connect to PostgreSQL at %s: %s' % (where, str(exc).strip()))
    connection.autocommit = True  # ALTER SYSTEM cannot run inside a transaction block
    result = dict(changed=False, changes=[], pending_restart=[], reloaded=False,
                  server_version=connection.server_version)
    try:
        cursor = connection.cursor()
        try:
            rows, configured = fetch(cursor, names)
            fallback = {}
            if resets:
                cursor.execute(FALLBACK_SQL, (resets,))
                fallback = dict(cursor.fetchall())
        except psycopg2.Error as exc:
            module.fail_json(msg='reading pg_settings/pg_file_settings at %s failed: %s; log in as '
                                 'a superuser' % (where, str(exc).strip()), **result)
        changes, errors = plan(entries, rows, configured)
        reset_changes, reset_errors = plan_resets(resets, rows, configured, fallback)
        changes += reset_changes
        errors += reset_errors
        if errors:
            module.fail_json(msg='nothing changed: %s' % '; '.join(errors), **result)
        result['changes'] = changes
        result['changed'] = bool(changes)
        reset_names = set(c['name'] for c in reset_changes)
        # a reset parameter waits for a restart only if the running value differs from its fallback
        pending = set(n for n in names if n not in reset_names and rows.get(n, {}).get('pending_restart'))
        pending.update(c['name'] for c in changes if c['context'] == 'postmaster' and c['action'] == 'set')
        pending.update(c['name'] for c in reset_changes if c['restart'])
        if module._diff:
            result['diff'] = {'before_header': 'postgresql.auto.conf', 'after_header': 'postgresql.auto.conf',
                              'before': ''.join('%s = %s\n' % (c['name'], c['before']) for c in changes),
                              'after': ''.join('%s = %s\n' % (c['name'], c['after']) for c in changes
                                               if c['after'] is not None)}
        if module.check_mode or not changes:
            result['pending_restart'] = sorted(pending)
            module.exit_json(**result)

        done = []
        for change in changes:
            try:
                alter(cursor, change['name'], change['after'])
            except psycopg2.Error as exc:
                undo_errors = []
                for name in reversed(done):
                    try:
                        alter(cursor, name, configured.get(name))
                    except psycopg2.Error as again:
                        undo_errors.append('%s: %s' % (name, str(again).strip()))
                if change['after'] is None:
                    message = 'ALTER SYSTEM RESET %s failed: %s' % (change['name'], str(exc).strip())
                else:
                    message = 'ALTER SYSTEM SET %s = %r failed: %s' % (
                        change['name'], change['after'], str(exc).strip())
                if done:
                    message += '; undone: %s' % ', '.join(done)
                if undo_errors:
                    message += '; UNDO FAILED: %s' % '; '.join(undo_errors)
                result.update(changed=bool(undo_errors), changes=[])
                module.fail_json(msg=message, **result)
            done.append(change['name'])
        if params['reload']:
            cursor.execute('SELECT pg_reload_conf()')
            result['reloaded'] = True
            rows, waiting = wait_reloaded(cursor, names, changes, params['reload_wait'], fallback, rows)
            # the server's own word after the reload: for a reset it replaces the prediction
            pending.difference_update(reset_names)
            pending.update(n for n in names if rows.get(n, {}).get('pending_restart'))
            if waiting:
                module.warn('after the reload %s still show the old value; check the server log'
                            % ', '.join(waiting))
        result['pending_restart'] = sorted(pending)
        module.exit_json(**result)
    finally:
        connection.close()


if __name__ == '__main__':
    main()
