#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: log_scan
short_description: Count, rate and summarise log lines within a time window, as checks
version_added: "0.1.0"
description:
  - Reads log files (plain, or rotated and compressed with gzip, bzip2, xz or zstd) and
    computes metrics over the lines whose own timestamps fall in a time window; every
    metric comes back as a check in the one result shape of runbook.ops (C(name),
    C(kind=log), C(status), C(value), C(unit), C(warning), C(critical), C(message),
    C(duration_ms)), judged against its own warning and critical thresholds.
  - Metric types are C(count) (lines matching a pattern, as C(grep -c) counts them),
    C(rate) (error lines per request lines, or error values of a JSON field, in percent),
    C(stats) (count, avg, min, max, p50, p95, p99 and buckets of a numeric JSON field),
    C(values) (counts of a JSON field's values, top N), C(marker) (age of the newest
    line matching a pattern), and for nginx access logs (combined or common format)
    C(clients) (requests per client by status class), C(injections) (requests matching
    SQL-injection patterns) and C(logins) (clients over N login attempts).
  - A line without a timestamp belongs to the entry before it (a traceback to its error
    line). Logs are taken to be in time order; the first line of a window in a plain
    file is found by a binary search from the end, so a 24 h window at the end of a
    large file reads little more than that window.
  - It streams, block by block; a plain file is mapped and searched in place, never
    held in memory as a whole.
  - The same metrics run as the C(log) probe kind of M(runbook.ops.health_probe), so a
    host's daily log checks run in its single health_probe call.
  - Files that cannot be read (missing, a directory, a dangling link, a symlink loop,
    no permission) give one C(unknown) check named C(files); the metrics are computed
    over the files that can be read.
  - The module only reads; C(changed) is always false.
author:
  - runbook.ops contributors (@runbook)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runbook.ops.check_result
attributes:
  check_mode:
    support: full
    details: It only reads, so it runs in check mode too.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  paths:
    description:
      - Log files or globs, for example C(/var/log/batch/*.log).
    type: list
    elements: str
    required: true
  include_rotated:
    description:
      - Also read the rotated siblings of every file found (C(x.log.1), C(x.log.2.gz),
        C(x.log-20240501.gz)). Rotated files last written before the window are skipped
        without being opened.
    type: bool
    default: true
  since:
    description:
      - Start of the time window of every metric that does not give its own
        O(metrics[].since). A duration before now (C(12h), C(24h), C(7d)), C(today) or
        C(yesterday) (local midnight, or UTC midnight with O(timezone=utc)), or an ISO 8601
        time. Without it the window is open.
    type: str
  until:
    description:
      - End of the time window (exclusive), written as O(since); for example
        O(since=yesterday) with O(until=today) is yesterday.
    type: str
  time_format:
    description:
      - How timestamps are written. C(auto) tries common/combined log format
        (C([10/Oct/2024:13:55:36 +0900])), ISO 8601 anywhere in the line (JSON lines'
        C("timestamp") too) and syslog (C(Oct 11 22:14:15) at the line start).
      - C(epoch) reads seconds since the epoch at the line start.
      - A strptime format (with C(%)) needs O(time_pattern).
    type: str
    default: auto
  time_pattern:
    description:
      - A regular expression whose first group is the timestamp, for logs whose timestamp
        is neither at a standard place nor in a standard shape.
    type: str
  timezone:
    description:
      - The zone of timestamps written without one (syslog, most application logs).
    type: str
    choices: [local, utc]
    default: local
  fail_on_critical:
    description:
      - Fail the task when a metric is C(critical). The result still holds every check.
    type: bool
    default: false
  metrics:
    description:
      - What to compute. All metrics are computed in one pass over the files.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - A unique name, the check's name. Defaults to C(<type>_<index>).
        type: str
      type:
        description:
          - C(count) counts the lines matching O(metrics[].pattern) (unit lines).
          - C(rate) is 100 times the lines matching O(metrics[].pattern) divided by the lines
            matching O(metrics[].requests); or, with O(metrics[].field), the share of JSON lines
            having that field whose value is one of O(metrics[].match) (unit %).
          - C(stats) computes count, sum, avg, min, max, p50, p95 and p99 of the numeric JSON
            field O(metrics[].field) and judges O(metrics[].stat) (percentiles by linear
            interpolation; exact up to 200000 distinct values, then within 0.05 %).
          - C(values) counts the lines having O(metrics[].field) by its value and returns the
            top O(metrics[].top) in C(details) (value is the number of such lines).
          - C(marker) is the age in seconds of the newest line matching O(metrics[].pattern),
            searched from the end of the newest file back, whatever the window; thresholds
            accept durations such as C(25h). No matching line at all is critical.
          - C(clients) counts access-log requests per client and status class; the value
            is the most requests of one client in O(metrics[].classes).
          - C(injections) counts requests whose URL-decoded target matches
            O(metrics[].pattern) (default, common SQL-injection shapes).
          - C(logins) counts the clients with more than O(metrics[].over) requests of
            O(metrics[].method) to a target matching O(metrics[].path).
        type: str
        required: true
        choices: [count, rate, stats, values, marker, clients, injections, logins]
      warning:
        description:
          - Warning threshold; the value breaches it when above. Durations for C(marker).
        type: raw
      critical:
        description: Critical threshold, as O(metrics[].warning).
        type: raw
      since:
        description: This metric's own window start, as the module's O(since).
        type: str
      until:
        description: This metric's own window end, as the module's O(until).
        type: str
      pattern:
        description:
          - (count, marker, rate) A regular expression, searched in each line's bytes.
            Alternations of plain words such as C(ERROR|CRITICAL) take a faster path.
          - (injections) Replaces the default injection patterns.
        type: str
      ignore_case:
        description: (count, marker, rate, injections) Match O(metrics[].pattern) ignoring case.
        type: bool
        default: false
      requests:
        description: (rate) The regular expression of the lines that count as requests.
        type: str
      field:
        description:
          - (rate, stats, values) A field of JSON-lines objects, for example
            C(execution_time_ms); dots reach into nested objects (C(http.status)).
        type: str
      match:
        description: (rate) The value or values of O(metrics[].field) that count as errors.
        type: raw
      where:
        description:
          - (rate, stats, values) Only lines whose fields have these values, for example
            a mapping of C(level) to C(ERROR); a list of values matches any of them.
        type: dict
      fast:
        description:
          - (rate, stats, values) Read the field with a regular expression over whole blocks
            and parse JSON only for lines it cannot read. It reads the key at any depth of
            the object; set C(false) when a key of that name also occurs nested in your lines.
        type: bool
        default: true
      stat:
        description: (stats) The statistic judged against the thresholds.
        type: str
        choices: [count, sum, avg, min, max, p50, p95, p99]
        default: avg
      buckets:
        description:
          - (stats) Bucket bounds, for example C([25, 50]) for C(<25), C(25-50) and C(>=50).
        type: list
        elements: float
      unit:
        description: (stats) The unit of the field, shown with the value (for example C(ms)).
        type: str
      top:
        description: (values, clients, injections, logins) How many entries C(details) lists.
        type: int
        default: 10
      classes:
        description: (clients) The status classes that count against a client.
        type: list
        elements: str
        default: [4xx, 5xx]
      path:
        description: (logins) A regular expression of the login target.
        type: str
        default: /login\b
      method:
        description: (logins) The HTTP method of a login attempt.
        type: str
        default: POST
      over:
        description: (logins) A client with more attempts than this is counted.
        type: int
        default: 10
notes:
  - Timestamps parsed with C(auto) are tried in the order common log format, ISO 8601,
    syslog. A syslog timestamp has no year; it is taken in the current year unless that
    puts it more than a day ahead of now.
  - Lines of a file that are not in time order may be counted in a neighbouring window.
seealso:
  - module: runbook.ops.health_probe
    description: Its C(log) probe kind runs the same metrics among a host's daily checks.
  - module: runbook.ops.log_rotate_check
"""

EXAMPLES = r"""
- name: Morning check of runbook 000 - errors overnight and yesterday's latency
  runbook.ops.log_scan:
    paths: [/opt/3gpp-analysis/logs/app.log]
    metrics:
      - {name: errors_12h, type: count, pattern: ERROR|CRITICAL, since: 12h, warning: 10, critical: 50}
      - name: latency_yesterday
        type: stats
        field: execution_time_ms
        unit: ms
        since: yesterday
        until: today
        buckets: [25, 50]
        warning: 50          # avg ms (000: > 50 ms warning, > 100 ms critical)
        critical: 100
      - {name: error_rate_24h, type: rate, field: status, match: error, since: 24h, warning: 2, critical: 5}
      - {name: error_types_7d, type: values, field: error_type, where: {level: ERROR}, since: 7d, top: 5}
  register: app_log

- name: The batch of runbook 001 must have succeeded within 25 hours
  runbook.ops.log_scan:
    paths: [/var/log/batch/candidate_generation.log]
    metrics:
      - {name: batch_success, type: marker, pattern: BATCH PROCESS COMPLETED SUCCESSFULLY, critical: 25h}
      - {name: batch_errors, type: count, pattern: ERROR|CRITICAL, since: 24h, critical: 10}

- name: Suspicious clients in nginx's access log (runbook 002)
  runbook.ops.log_scan:
    paths: [/var/log/nginx/access.log]
    since: 24h
    metrics:
      - {name: client_errors, type: clients, classes: [4xx, 5xx], warning: 100}
      - {name: sql_injection, type: injections, warning: 0}
      - {name: login_bursts, type: logins, path: ^/api/v1/auth/login, over: 10, warning: 0}
"""

RETURN = r"""
status:
  description: The worst status of all checks (ok < warning < unknown < critical).
  returned: always
  type: str
  sample: warning
counts:
  description: How many checks ended in each status.
  returned: always
  type: dict
  sample: {ok: 3, warning: 1, unknown: 0, critical: 0}
checks:
  description:
    - One check per metric, and a check named C(files) when some log paths cannot be
      read. C(details) holds the metric's figures (statistics and buckets, top values,
      clients, the marker line, errors and requests of a rate, the window as epoch
      seconds in C(since) and C(until)).
  returned: always
  type: list
  elements: dict
  sample:
    - name: errors_12h
      kind: log
      status: ok
      value: 3
      unit: lines
      warning: 10
      critical: 50
      message: lines matching /ERROR|CRITICAL/ since 12h ago is 3 lines (warning > 10 lines, critical > 50 lines)
      duration_ms: 12.5
      details: {since: 1714521600.0}
files:
  description: Every file considered, oldest first, with the bytes read from it and where reading started.
  returned: always
  type: list
  elements: dict
  sample: [{path: /var/log/app.log, size: 1048576, compression: null, bytes_read: 65536, start_offset: 983040}]
problems:
  description: Paths that could not be read, with the reason.
  returned: always
  type: dict
  sample: {/var/log/app/missing.log: does not exist (or is a dangling symlink)}
bytes_read:
  description: Bytes read over all files (decompressed bytes for compressed files), the window search included.
  returned: always
  type: int
  sample: 65536
duration_ms:
  description: Wall time of the scan.
  returned: always
  type: float
  sample: 12.5
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.runbook.ops.plugins.module_utils.checks import (
    CRITICAL, InvalidProbe, summarize,
)
from ansible_collections.runbook.ops.plugins.module_utils.logscan import run_scan

METRIC_OPTIONS = dict(
    name=dict(type='str'),
    type=dict(type='str', required=True,
              choices=['count', 'rate', 'stats', 'values', 'marker', 'clients', 'injections', 'logins']),
    warning=dict(type='raw'),
    critical=dict(type='raw'),
    since=dict(type='str'),
    until=dict(type='str'),
    pattern=dict(type='str'),
    ignore_case=dict(type='bool', default=False),
    requests=dict(type='str'),
    field=dict(type='str'),
    match=dict(type='raw'),
    where=dict(type='dict'),
    fast=dict(type='bool', default=True),
    stat=dict(type='str', default='avg', choices=['count', 'sum', 'avg', 'min', 'max', 'p50', 'p95', 'p99']),
    buckets=dict(type='list', elements='float'),
    unit=dict(type='str'),
    top=dict(type='int', default=10),
    classes=dict(type='list', elements='str', default=['4xx', '5xx']),
    path=dict(type='str', default=r'/login\b'),
    method=dict(type='str', default='POST'),
    over=dict(type='int', default=10),
)

# Ansible fills the defaults of every suboption; a metric only keeps the ones its type takes.
TYPE_KEYS = {
    'count': ('pattern', 'ignore_case'),
    'rate': ('pattern', 'requests', 'ignore_case', 'field', 'match', 'where', 'fast'),
    'stats': ('field', 'stat', 'buckets', 'where', 'unit', 'fast'),
    'values': ('field', 'top', 'where', 'fast'),
    'marker': ('pattern', 'ignore_case'),
    'clients': ('classes', 'top'),
    'injections': ('pattern', 'ignore_case', 'top'),
    'logins': ('path', 'method', 'over', 'top'),
}
DEFAULTED = ('ignore_case', 'fast', 'stat', 'top', 'classes', 'path', 'method', 'over')


def metric_from_params(metric):
    """The metric as the user wrote it: suboption defaults of other types dropped, and an
    option given that the type does not take kept, so that validation names it."""
    keys = TYPE_KEYS[metric['type']]
    result = {}
    for key, value in metric.items():
        if value is None:
            continue
        if key in DEFAULTED and key not in keys:
            continue
        result[key] = value
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type='list', elements='str', required=True),
            include_rotated=dict(type='bool', default=True),
            since=dict(type='str'),
            until=dict(type='str'),
            time_format=dict(type='str', default='auto'),
            time_pattern=dict(type='str'),
            timezone=dict(type='str', default='local', choices=['local', 'utc']),
            fail_on_critical=dict(type='bool', default=False),
            metrics=dict(type='list', elements='dict', required=True, options=METRIC_OPTIONS),
        ),
        supports_check_mode=True,
    )
    params = module.params
    spec = dict((key, params[key]) for key in ('paths', 'include_rotated', 'since', 'until',
                                               'time_format', 'time_pattern', 'timezone'))
    spec['metrics'] = [metric_from_params(metric) for metric in params['metrics']]
    try:
        checks, facts = run_scan(spec)
    except InvalidProbe as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # a bug of ours; never a bare traceback
        module.fail_json(msg='log_scan failed unexpectedly: %s: %s' % (type(exc).__name__, exc),
                         exception=traceback.format_exc())
    summary = summarize(checks)
    result = dict(changed=False, status=summary['status'], counts=summary['counts'], checks=checks,
                  files=facts['files'], problems=facts['problems'], bytes_read=facts['bytes_read'],
                  duration_ms=facts['duration_ms'])
    if summary['status'] == CRITICAL and params['fail_on_critical']:
        bad = [c for c in checks if c['status'] == CRITICAL]
        module.fail_json(msg='%d critical check%s: %s' % (
            len(bad), '' if len(bad) == 1 else 's',
            '; '.join('%s: %s' % (c['name'], c['message']) for c in bad)), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
