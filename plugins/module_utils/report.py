# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A run report over many hosts, built from health_probe results, and its
Markdown, JSON and JUnit XML renderings.  Pure functions, no Ansible."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import xml.etree.ElementTree as ET

from ansible_collections.runbook.ops.plugins.module_utils.checks import (
    CRITICAL, OK, SEVERITY, UNKNOWN, WARNING, format_number, worst,
)

UNREACHABLE = 'unreachable'
ERROR = 'error'
HOST_STATUSES = (OK, WARNING, UNKNOWN, CRITICAL, UNREACHABLE, ERROR)
# A host that was unreachable, or whose checks could not run at all (bad probe
# definitions), counts as critical when the run is rolled up.
HOST_SEVERITY = dict(SEVERITY, **{UNREACHABLE: SEVERITY[CRITICAL], ERROR: SEVERITY[CRITICAL]})
REPORT_VERSION = 1
_CHECK_KEYS = ('name', 'kind', 'status', 'value', 'unit', 'warning', 'critical', 'message',
               'duration_ms', 'details')


def default_report_dir(playbook_dir, kind, environ=None):
    """Where a run's reports go when no directory is given: ``reports/<kind>`` beside the
    playbooks directory of a checkout; but for playbooks of an installed collection
    (``ansible-playbook runbook.ops.daily``), whose directory lies in an
    ``ansible_collections`` tree that a reinstall replaces (or that is read-only), the
    user's state directory: ``$XDG_STATE_HOME/runbook.ops/reports/<kind>``, by default
    ``~/.local/state/runbook.ops/reports/<kind>``."""
    environ = os.environ if environ is None else environ
    real = os.path.realpath(playbook_dir)
    if '/ansible_collections/' in real.replace(os.sep, '/') + '/':
        state = environ.get('XDG_STATE_HOME') or os.path.join(os.path.expanduser('~'), '.local', 'state')
        return os.path.join(state, 'runbook.ops', 'reports', kind)
    return os.path.normpath(os.path.join(real, os.pardir, 'reports', kind))


def with_lost_hosts(results, pings):
    """``results`` ({host: registered health_probe result}) with every host that did not
    answer when asked again (``pings``: {host: its registered ping result}) as unreachable.
    A host lost in the middle of its probes (powered off, container stopped, network gone)
    leaves a module failure rather than an unreachable result; the ping tells it from a
    call that failed on a host that still answers."""
    merged = dict(results)
    for host, ping in (pings or {}).items():
        if host in merged and isinstance(ping, dict) and ping.get('unreachable'):
            before = merged[host] if isinstance(merged[host], dict) else {}
            merged[host] = {'unreachable': True, 'msg': 'lost during the probes (%s); now: %s' % (
                str(before.get('msg') or 'no result').strip(),
                str(ping.get('msg') or 'no answer').split('.', 1)[0].strip())}
    return merged


def host_entry(host, result):
    """One host's part of the report from its registered health_probe result."""
    if not isinstance(result, dict) or not result:
        return {'host': host, 'status': UNKNOWN, 'reachable': None, 'checks': [],
                'message': 'no result: the checks did not run on this host'}
    if result.get('unreachable'):
        return {'host': host, 'status': UNREACHABLE, 'reachable': False, 'checks': [],
                'message': 'host unreachable: %s' % str(result.get('msg', '')).strip()}
    if 'checks' not in result:
        return {'host': host, 'status': ERROR, 'reachable': True, 'checks': [],
                'message': 'the checks could not run: %s' % str(result.get('msg', '')).strip()}
    checks = []
    for check in result['checks']:
        entry = dict((key, check.get(key)) for key in _CHECK_KEYS if key in check)
        if entry.get('status') not in SEVERITY:
            entry['status'] = UNKNOWN
        checks.append(entry)
    status = worst(c['status'] for c in checks)
    bad = [c for c in checks if c['status'] != OK]
    if not checks:
        # Reachable, and nothing was asked of it: say so rather than "all ok".
        message = 'no checks: no probes are defined for this host'
    else:
        message = '%d check%s, %s' % (len(checks), '' if len(checks) == 1 else 's',
                                      'all ok' if not bad else '%d not ok' % len(bad))
    return {'host': host, 'status': status, 'reachable': True, 'checks': checks,
            'message': message, 'duration_ms': result.get('duration_ms')}


def build_report(results, hosts, title='Daily health check', system=None, generated=None,
                 meta=None):
    """The run report: every host in ``hosts`` (unreachable ones included)."""
    entries = [host_entry(host, results.get(host)) for host in hosts]
    host_counts = dict((status, 0) for status in HOST_STATUSES)
    check_counts = dict((status, 0) for status in SEVERITY)
    for entry in entries:
        host_counts[entry['status']] += 1
        for check in entry['checks']:
            check_counts[check['status']] += 1
    status = worst((entry['status'] for entry in entries), HOST_SEVERITY)
    report = {
        'version': REPORT_VERSION,
        'title': title,
        'system': system,
        'generated': generated,
        'status': status,
        'hosts_by_status': host_counts,
        'checks_by_status': check_counts,
        'hosts': entries,
    }
    if meta:
        report['meta'] = meta
    return report


def host_statuses(report):
    return dict((entry['host'], entry['status']) for entry in report['hosts'])


def render_json(report):
    return json.dumps(report, indent=2, sort_keys=True, default=str) + '\n'


_ICONS = {OK: 'OK', WARNING: 'WARNING', UNKNOWN: 'UNKNOWN', CRITICAL: 'CRITICAL',
          UNREACHABLE: 'UNREACHABLE', ERROR: 'ERROR'}


def _cell(value):
    text = '' if value is None else str(value)
    return text.replace('|', '\\|').replace('\n', ' ')


def _value(check):
    value = check.get('value')
    if value is None:
        return ''
    text = format_number(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else str(value)
    unit = check.get('unit')
    return '%s %s' % (text, unit) if unit else text


def _limit(value):
    if value is None:
        return ''
    return format_number(value) if isinstance(value, (int, float)) else str(value)


def render_markdown(report):
    lines = ['# %s%s' % (report['title'], ': %s' % report['system'] if report.get('system') else ''),
             '']
    if report.get('generated'):
        lines.append('Generated %s.' % report['generated'])
    hosts = report['hosts_by_status']
    checks = report['checks_by_status']
    lines.append('Overall status: **%s**. Hosts: %s. Checks: %s.' % (
        _ICONS[report['status']],
        ', '.join('%d %s' % (n, s) for s, n in hosts.items() if n) or 'none',
        ', '.join('%d %s' % (n, s) for s, n in checks.items() if n) or 'none'))
    lines.append('')
    problems = [(entry['host'], check) for entry in report['hosts'] for check in entry['checks']
                if check['status'] != OK]
    down = [entry for entry in report['hosts'] if not entry['checks'] and entry['status'] != OK]
    if problems or down:
        lines += ['## Needs attention', '']
        for entry in down:
            lines.append('- **%s** %s: %s' % (_ICONS[entry['status']], entry['host'],
                                              entry['message']))
        ordered = sorted(problems, key=lambda item: -SEVERITY[item[1]['status']])  # stable
        for host, check in ordered:
            lines.append('- **%s** %s / %s: %s' % (_ICONS[check['status']], host, check['name'],
                                                   check.get('message') or ''))
        lines.append('')
    lines += ['## Hosts', '', '| host | status | summary |', '|---|---|---|']
    for entry in report['hosts']:
        lines.append('| %s | %s | %s |' % (_cell(entry['host']), _ICONS[entry['status']],
                                           _cell(entry['message'])))
    lines.append('')
    for entry in report['hosts']:
        lines += ['## %s: %s' % (entry['host'], _ICONS[entry['status']]), '']
        if not entry['checks']:
            lines += [_cell(entry['message']), '']
            continue
        lines += ['| check | kind | status | value | warning | critical | ms | message |',
                  '|---|---|---|---|---|---|---|---|']
        for check in entry['checks']:
            lines.append('| %s | %s | %s | %s | %s | %s | %s | %s |' % (
                _cell(check['name']), _cell(check.get('kind')), _ICONS[check['status']],
                _cell(_value(check)), _cell(_limit(check.get('warning'))),
                _cell(_limit(check.get('critical'))),
                _cell(_limit(check.get('duration_ms'))), _cell(check.get('message'))))
        lines.append('')
    return '\n'.join(lines)


def render_junit(report):
    """JUnit XML: a test suite per host, a test case per check.  Critical is a
    failure, unknown and unreachable are errors, a warning passes with its
    message in system-out (CI should not go red on a warning)."""
    suites = ET.Element('testsuites', name=report['title'])
    totals = {'tests': 0, 'failures': 0, 'errors': 0}
    for entry in report['hosts']:
        suite = ET.SubElement(suites, 'testsuite', name=entry['host'])
        counts = {'tests': 0, 'failures': 0, 'errors': 0}
        seconds = 0.0
        cases = entry['checks'] or [None]
        for check in cases:
            counts['tests'] += 1
            if check is None:
                case = ET.SubElement(suite, 'testcase', classname=entry['host'],
                                     name='reachable and checked', time='0')
                if entry['status'] != OK:
                    counts['errors'] += 1
                    ET.SubElement(case, 'error', type=entry['status'],
                                  message=entry['message']).text = entry['message']
                continue
            duration = (check.get('duration_ms') or 0) / 1000.0
            seconds += duration
            case = ET.SubElement(suite, 'testcase', classname=entry['host'], name=check['name'],
                                 time='%.3f' % duration)
            message = check.get('message') or ''
            if check['status'] == CRITICAL:
                counts['failures'] += 1
                ET.SubElement(case, 'failure', type=CRITICAL, message=message).text = message
            elif check['status'] == UNKNOWN:
                counts['errors'] += 1
                ET.SubElement(case, 'error', type=UNKNOWN, message=message).text = message
            elif check['status'] == WARNING:
                ET.SubElement(case, 'system-out').text = 'WARNING: %s' % message
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set('time', '%.3f' % seconds)
    for key, value in totals.items():
        suites.set(key, str(value))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding='unicode') + '\n'


RENDERERS = {
    'markdown': ('report.md', render_markdown),
    'json': ('report.json', render_json),
    'junit': ('junit.xml', render_junit),
}
