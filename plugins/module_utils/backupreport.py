# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup runs and DR drills as checks of the one result shape (checks.py), so that
runbook.ops.health_report writes their reports and AWX gets the same counts.  Pure
functions over registered module results; used by the filters of plugins/filter/backup.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.runbook.ops.plugins.module_utils.checks import (
    ABOVE, CRITICAL, OK, UNKNOWN, WARNING, check_result, format_duration, metric_check, worst,
)


def outcome(result):
    """One series of a backup run from its registered loop result (pg_backup or
    files_backup, with ``kind`` added): what happened, in a few plain keys."""
    item = result.get('item') or {}
    label = result.get('label') or item.get('label') or item.get('database') or '?'
    taken = result.get('taken') or None
    if result.get('failed'):
        state = 'failed'
    elif taken:
        state = 'taken'
    elif result.get('skipped_reason'):
        state = 'current'
    else:
        state = 'none'
    directory = result.get('backup_dir')
    newest = result.get('newest_verified')
    return {'kind': result.get('kind') or 'backup', 'label': label, 'state': state,
            'failed': bool(result.get('failed')), 'msg': result.get('msg') or '',
            'taken': taken.get('name') if taken else None,
            'size': taken.get('size') if taken else None,
            'duration_seconds': taken.get('duration_seconds') if taken else None,
            'skipped_reason': result.get('skipped_reason'),
            'newest_verified': newest, 'rpo_seconds': result.get('rpo_seconds'),
            'backup_dir': directory,
            'newest_path': '%s/%s' % (directory, newest) if directory and newest else None,
            'deleted': list(result.get('deleted') or [])}


def backup_checks(outcomes, copies=None, rpo_warning=None, rpo_critical=None):
    """A host's backup run as checks: one per series (critical when it failed; value the
    age of its newest verified backup against the RPO thresholds) and one per copy to the
    backup host (critical when the copy does not match its manifest)."""
    checks = []
    for entry in outcomes or []:
        name = '%s:%s' % (entry['kind'], entry['label'])
        if entry['failed']:
            checks.append(check_result(name, 'backup', CRITICAL, entry['msg'] or 'the backup failed', unit='s',
                                       warning=rpo_warning, critical=rpo_critical))
            continue
        if entry['rpo_seconds'] is None:
            checks.append(check_result(name, 'backup', CRITICAL, 'no verified backup of %s' % entry['label'],
                                       unit='s', warning=rpo_warning, critical=rpo_critical))
            continue
        check = metric_check(name, 'backup', entry['rpo_seconds'], 's', rpo_warning, rpo_critical, ABOVE,
                             'age of the newest verified backup',
                             details={'taken': entry['taken'], 'newest_verified': entry['newest_verified'],
                                      'size': entry['size'], 'deleted': entry['deleted']})
        what = ('took %s' % entry['taken']) if entry['taken'] else (entry['skipped_reason'] or 'nothing taken')
        check['message'] = '%s; newest verified %s is %s old' % (what, entry['newest_verified'],
                                                                 format_duration(entry['rpo_seconds']))
        checks.append(check)
    for copy in copies or []:
        name = 'copy:%s' % copy.get('label', '?')
        if copy.get('failed') or copy.get('status') != 'passed':
            checks.append(check_result(name, 'backup_copy', CRITICAL, copy.get('msg') or 'the copy does not '
                                       'match its manifest: %s' % '; '.join(copy.get('problems') or [])))
        else:
            checks.append(check_result(name, 'backup_copy', OK, '%s on %s matches its manifest%s' % (
                copy.get('path'), copy.get('host', 'the backup host'),
                ' (copied now)' if copy.get('committed') else '')))
    return checks


def drill_outcome(result):
    """One drilled series from its registered result: pg_backup state=verified with
    verify=restore_test, or files_restore into a scratch directory (``kind`` added)."""
    if 'proven' in result and 'item' not in result:
        return result                                  # already an outcome
    item = result.get('item') or {}
    if 'would_verify' in result and not result.get('failed'):
        # check mode: pg_backup restored nothing; it names the backup a drill would restore
        planned = result.get('would_verify') or {}
        label = result.get('label') or item.get('label') or item.get('database') or '?'
        msg = ('check mode: would restore %s into a scratch database and prove it; nothing was restored'
               % planned['backup']) if planned else 'check mode: there is no backup to restore'
        return {'label': label, 'backup': planned.get('backup'), 'into': None, 'failed': False, 'proven': False,
                'planned': True, 'msg': msg, 'rto_seconds': None, 'rpo_seconds': result.get('rpo_seconds')}
    verification = result.get('verification') or {}
    test = verification.get('restore_test') or {}
    label = result.get('label') or item.get('label') or item.get('database') or '?'
    if result.get('kind') == 'files' or 'restored' in result:
        backup, into = result.get('backup'), ', '.join(result.get('restored') or []) or item.get('target_root')
        health = result.get('health_check') or {}
        extra = (' and passed %s' % health.get('message')) if health.get('passed') else ''
    else:
        backup, into = verification.get('backup'), test.get('scratch_database')
        extra = ', row counts of every table compared with the manifest' if test else ''
    failed = bool(result.get('failed'))
    return {'label': label, 'backup': backup, 'into': into, 'failed': failed, 'proven': not failed,
            'msg': result.get('msg') if failed else 'restored %s into %s and proved it%s' % (backup, into, extra),
            'rto_seconds': result.get('rto_seconds'), 'rpo_seconds': result.get('rpo_seconds'),
            'properties': test.get('database_properties')}


def drill_checks(drills, rto_target=None, rpo_target=None, warning_ratio=0.75):
    """A host's DR drill as checks: per drilled series, ``restore:<label>`` (proven or
    not), ``rto:<label>`` (measured restore time) and ``rpo:<label>`` (age of the backup
    restored) against the targets (critical) and ``warning_ratio`` of them (warning)."""
    def limits(target):
        if target is None:
            return None, None
        return round(target * warning_ratio, 1), target
    checks = []
    for drill in (drill_outcome(d) for d in drills or []):
        label = drill.get('label') or '?'
        proven = not drill.get('failed') and drill.get('proven', True)
        planned = drill.get('planned')
        message = drill.get('msg') or ('restored %s into %s and proved it' % (drill.get('backup'), drill.get('into'))
                                       if proven else 'the restore failed')
        checks.append(check_result('restore:%s' % label, 'dr_restore',
                                   UNKNOWN if planned else OK if proven else CRITICAL, message,
                                   details={'backup': drill.get('backup'), 'into': drill.get('into')}))
        for metric, target in (('rto', rto_target), ('rpo', rpo_target)):
            warning, critical = limits(target)
            value = drill.get('%s_seconds' % metric)
            name = '%s:%s' % (metric, label)
            if value is None and planned and metric == 'rto':
                checks.append(check_result(name, 'dr_rto', UNKNOWN, 'no RTO measured: %s' % message, unit='s',
                                           warning=warning, critical=critical))
                continue
            if value is None:
                checks.append(check_result(name, 'dr_' + metric, CRITICAL,
                                           'no %s measured: %s' % (metric.upper(), message), unit='s',
                                           warning=warning, critical=critical))
                continue
            check = metric_check(name, 'dr_' + metric, value, 's', warning, critical, ABOVE,
                                 'measured %s' % metric.upper())
            check['message'] = 'measured %s %s (%ss)%s' % (
                metric.upper(), format_duration(value), value,
                ', target %s' % format_duration(target) if target is not None else '')
            checks.append(check)
        properties = _properties_check(label, drill.get('properties'))
        if properties is not None:
            checks.append(properties)
    return checks


def _properties_check(label, report):
    """``properties:<label>``: the backup records its database's owner, GRANTs, settings,
    comment and connection limit, and every role they name exists on this server (a
    warning otherwise: a restore here could not bring them all back).  None when the drill
    did not report on them (files, check mode, a failed restore)."""
    if not isinstance(report, dict):
        return None
    missing = report.get('missing_roles') or []
    warnings = report.get('warnings') or []
    if warnings or missing:
        message = '; '.join(warnings) or 'roles missing on this server: %s' % ', '.join(missing)
    else:
        message = 'database properties recorded (owner %s); every role they name exists here' % report.get('owner')
    return check_result('properties:%s' % label, 'dr_properties', WARNING if warnings or missing else OK, message,
                        value=len(missing), unit='roles missing', warning=1)


def summary(checks):
    """Counts by status and the worst status of a list of checks."""
    counts = dict((status, 0) for status in (OK, WARNING, 'unknown', CRITICAL))
    for check in checks:
        counts[check['status']] = counts.get(check['status'], 0) + 1
    return {'status': worst([c['status'] for c in checks]) if checks else OK, 'counts': counts}
