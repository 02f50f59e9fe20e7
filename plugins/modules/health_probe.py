#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: health_probe
short_description: Run a host's health probes concurrently in one call
version_added: "0.1.0"
description:
  - Runs a list of probes (HTTP, TCP, TLS certificate, PostgreSQL, Redis, disk, memory,
    CPU and load, systemd units, processes, Docker containers, file freshness, commands
    and log files) concurrently in one module call and judges each measured value against
    warning and critical thresholds.
  - Returns one result shape for every check (C(name), C(kind), C(status), C(value),
    C(unit), C(warning), C(critical), C(message), C(duration_ms)) and a rolled-up
    C(status) in the order C(ok) < C(warning) < C(unknown) < C(critical).
  - A probe that cannot reach its target gets the status in O(probes[].on_unreachable)
    (default C(critical)); a probe that cannot run at all (a library is missing, a file
    cannot be read) is C(unknown). A probe never crashes the module.
  - All probes are validated before any of them runs; bad input fails with a message
    that names the probe and the fix.
  - The module only reads; C(changed) is always false.
author:
  - runbook.ops contributors (@runbook)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runbook.ops.check_result
attributes:
  check_mode:
    support: full
    details: Probes only read, so they run in check mode too. A O(probes[].command)
      probe runs its command in check mode; give it only read-only commands.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  probes:
    description:
      - The probes to run. Each needs O(probes[].kind); other options apply to the kinds named
        in their description.
      - Thresholds in O(probes[].warning) and O(probes[].critical) apply to the kind's
        primary metric; other metrics take theirs from O(probes[].thresholds).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - A unique name for the probe, used in the report. Checks of secondary metrics
            are named C(<name>.<metric>); disk checks C(<name>[<path>]).
          - Defaults to a name built from the kind and target.
        type: str
      kind:
        description:
          - What to probe.
          - C(http) requests O(probes[].url) and measures latency (ms, primary metric).
          - C(tcp) connects to O(probes[].host) and O(probes[].port) (latency ms).
          - C(tls_cert) reads the certificate served at O(probes[].host) and
            O(probes[].port) or held in the PEM file O(probes[].path) (days_left, defaults
            warning 30, critical 7).
          - C(postgres) connects and runs C(SELECT 1) (latency ms); metrics
            C(connections) (percent of max_connections, defaults 80/90) and, on a replica,
            C(replication_lag) (seconds, defaults 60/300).
          - C(redis) sends PING (latency ms); metric C(memory) (used_memory as percent of
            maxmemory, defaults 80/90).
          - C(disk) checks every path in O(probes[].paths) or every real mount; C(usage)
            percent (defaults 80/90), C(inodes) percent (defaults 80/90), C(free) GiB (no
            default).
          - C(memory) checks memory usage percent (MemTotal less MemAvailable, defaults
            85/95).
          - C(cpu) samples CPU usage percent over O(probes[].sample_seconds) (defaults 80/95) and
            metric C(load), the 1-minute load average per core (no default).
          - C(systemd_unit) compares the unit's ActiveState with
            O(probes[].expected_state).
          - C(process) counts live processes by O(probes[].process_name),
            O(probes[].cmdline_pattern) or O(probes[].pidfile) (count; critical below 1 by
            default).
          - C(docker_container) checks state, health and restart count (C(restarts)) of
            O(probes[].container) through the Docker SDK.
          - C(file_freshness) measures the age of the newest file matching the glob
            O(probes[].path) (seconds; thresholds accept durations such as C(25h)).
          - C(command) runs O(probes[].command) without a shell and checks its exit code
            and output.
          - C(log) reads the log files O(probes[].paths) and computes O(probes[].metrics), the
            metrics of M(runbook.ops.log_scan) (error counts, error rates, latency statistics
            of JSON lines, a marker's age, access-log analyses), one check each named
            C(<name>.<metric>), with each metric's own thresholds; the scan stops with an
            C(unknown) check at O(probes[].timeout).
          - C(backup) reads the manifests of the backups under O(probes[].path) (a C(backup_root) of
            M(runbook.ops.pg_backup) or M(runbook.ops.files_backup)) and measures the age of the newest
            verified backup of O(probes[].label), or of every label (one check each, named
            C(<name>.<label>)), from the manifest's end time (C(age), seconds; thresholds accept
            durations such as C(1h)). No verified backup is critical; a newer backup that failed
            verification makes the check at least a warning.
          - Required. It is checked by the module rather than by Ansible so that the error
            names the probe.
        type: str
      warning:
        description:
          - Warning threshold of the kind's primary metric (see O(probes[].kind)).
          - For metrics where lower is worse (C(days_left), C(count), C(free)) the value
            breaches it when below; otherwise when above.
          - Durations (C(file_freshness), C(replication_lag), C(backup)) accept seconds or strings such
            as C(90s), C(15m), C(25h), C(7d).
        type: raw
      critical:
        description:
          - Critical threshold of the kind's primary metric, as O(probes[].warning).
        type: raw
      thresholds:
        description:
          - 'Thresholds of the kind''s other metrics, as a dict of C(metric: {warning: N, critical: N}),
            for example C({connections: {warning: 70, critical: 90}}).'
        type: dict
      timeout:
        description:
          - Seconds to wait for the target (per HTTP sample, per connection, per command).
        type: float
        default: 5
      on_unreachable:
        description:
          - Status of the probe when its target does not answer (connection refused, timed
            out, name not found, Docker engine down, command timed out).
        type: str
        choices: [critical, warning, unknown]
        default: critical
      url:
        description: (http) The URL to request; C(http://) or C(https://).
        type: str
      method:
        description: (http) The HTTP method. Defaults to C(GET).
        type: str
      expected_status:
        description: (http) Status codes that count as healthy. Defaults to C([200]).
        type: list
        elements: int
      headers:
        description: (http) Request headers.
        type: dict
      body:
        description: (http) Request body.
        type: str
      samples:
        description:
          - (http) How many requests to make in a row; latency statistics (avg, min, p50,
            p95, p99, max) are computed over them.
          - Defaults to C(1).
        type: int
      latency_stat:
        description: (http) The latency statistic held against the thresholds. Defaults to C(p95).
        type: str
        choices: [avg, min, p50, p95, p99, max]
      validate_certs:
        description: (http) Verify the server's TLS certificate and hostname. Defaults to C(true).
        type: bool
      ca_path:
        description: (http) A PEM bundle of CA certificates to verify the server against.
        type: path
      follow_redirects:
        description: (http) Follow redirects. Defaults to C(true).
        type: bool
      assertions:
        description:
          - (http) Assertions on a JSON body, each a string C(<path> <op> <json value>)
            such as C(status == "healthy"), C(components.db.latency_ms < 50),
            C(items[0].id exists), or a dict with C(path), C(op) and C(value).
          - Operators are C(==), C(!=), C(>), C(>=), C(<), C(<=), C(=~) (regular
            expression), C(exists) and C(absent). A failed assertion is critical.
        type: list
        elements: raw
      host:
        description:
          - (tcp, tls_cert, postgres, redis) Host name or address of the target.
          - For postgres, a directory starting with C(/) is a Unix socket directory.
        type: str
      port:
        description:
          - (tcp, tls_cert, postgres, redis) Port of the target, 1-65535. Defaults are 443
            (tls_cert), 5432 (postgres) and 6379 (redis).
        type: int
      path:
        description:
          - (tls_cert) A PEM file holding the certificate.
          - (file_freshness) A glob; C(**) matches directories recursively.
          - (backup) The backup root that holds one directory per label.
        type: str
      label:
        description: (backup) The label (backup series) to judge; defaults to every label under O(probes[].path).
        type: str
      server_name:
        description:
          - (tls_cert) The name sent as SNI and matched against the certificate; defaults to
            O(probes[].host).
        type: str
      check_hostname:
        description:
          - (tls_cert) Make the check critical when the certificate does not match the
            server name.
          - Defaults to C(true).
        type: bool
      user:
        description: (postgres) The login role.
        type: str
      password:
        description:
          - (postgres, redis) The password. Prefer O(probes[].passfile) or the C(PGPASSWORD)
            environment for PostgreSQL.
        type: str
      passfile:
        description: (postgres) A libpq password file.
        type: path
      database:
        description: (postgres) The database to connect to. Defaults to C(postgres).
        type: str
      sslmode:
        description: (postgres) libpq's sslmode.
        type: str
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      username:
        description: (redis) The ACL user name.
        type: str
      expected_role:
        description: (redis) Critical unless the server has this replication role.
        type: str
        choices: [master, replica, slave]
      paths:
        description:
          - (disk) Paths to check; defaults to every mounted real filesystem.
          - (log) Log files or globs; rotated siblings are read too unless
            O(probes[].include_rotated=false).
        type: list
        elements: path
      metrics:
        description:
          - (log) The metrics to compute, each a dict as the O(runbook.ops.log_scan#module:metrics)
            of M(runbook.ops.log_scan) (C(name), C(type), C(warning), C(critical), C(since), ...).
        type: list
        elements: dict
      include_rotated:
        description: (log) Read rotated siblings (C(x.log.1), C(x.log.2.gz)) too. Defaults to C(true).
        type: bool
      since:
        description:
          - (log) Start of the time window of metrics without their own, as in
            M(runbook.ops.log_scan) (C(12h), C(yesterday), an ISO 8601 time).
        type: str
      until:
        description: (log) End of the time window, as O(probes[].since).
        type: str
      time_format:
        description: (log) How timestamps are written; see M(runbook.ops.log_scan). Defaults to C(auto).
        type: str
      time_pattern:
        description: (log) A regular expression whose first group is the timestamp.
        type: str
      timezone:
        description: (log) The zone of timestamps written without one. Defaults to C(local).
        type: str
        choices: [local, utc]
      sample_seconds:
        description: (cpu) How long to sample CPU usage. Defaults to C(0.5).
        type: float
      unit:
        description: (systemd_unit) The unit name, for example C(nginx.service).
        type: str
      expected_state:
        description: (systemd_unit) The ActiveState that counts as healthy. Defaults to C(active).
        type: str
      process_name:
        description: (process) Count processes whose name (C(/proc/<pid>/comm)) equals this.
        type: str
      cmdline_pattern:
        description: (process) Count processes whose command line matches this regular
          expression.
        type: str
      pidfile:
        description: (process) Check that the process in this pidfile is alive.
        type: path
      container:
        description: (docker_container) Container name or ID.
        type: str
      docker_host:
        description:
          - (docker_container) The Docker engine's address, for example
            C(unix:///var/run/docker.sock); defaults to C(DOCKER_HOST) or the local socket.
        type: str
      command:
        description:
          - (command) The command, as a list of arguments or a string split like a shell
            would (no shell runs it).
        type: raw
      expected_rc:
        description: (command) Exit codes that count as healthy. Defaults to C([0]).
        type: list
        elements: int
      warning_rc:
        description: (command) Exit codes that count as a warning. Defaults to none.
        type: list
        elements: int
      pattern:
        description:
          - (command) A regular expression the output (stdout and stderr) must match.
        type: str
  concurrency:
    description: How many probes run at once.
    type: int
    default: 16
  fail_on_critical:
    description:
      - Fail the task when the rolled-up status is C(critical). The result still holds
        every check.
    type: bool
    default: true
notes:
  - C(postgres) probes need C(psycopg2) (C(psycopg2-binary)), C(redis) probes the C(redis)
    library and C(docker_container) probes the C(docker) SDK on the host that runs the
    module; without it the probe is C(unknown). C(tls_cert) uses C(cryptography) when
    present and the standard library otherwise.
seealso:
  - name: runbook.ops.daily_checks role
    description: Runs this module on every host of an inventory and writes Markdown, JSON
      and JUnit reports.
    link: https://github.com/runbook/ops/tree/main/roles/daily_checks
"""

EXAMPLES = r"""
- name: Check the API, its database and the host in one call
  runbook.ops.health_probe:
    probes:
      - name: api
        kind: http
        url: http://127.0.0.1:8000/health
        samples: 10
        warning: 1000        # p95 latency, ms
        critical: 2000
        assertions:
          - status == "healthy"
          - components.db.status == "up"
      - name: db
        kind: postgres
        host: /var/run/postgresql
        user: monitor
        passfile: /etc/runbook/pgpass
        thresholds:
          connections: {warning: 70, critical: 90}
      - name: cache
        kind: redis
        port: 6379
        thresholds:
          memory: {warning: 80, critical: 90}
      - name: certificate
        kind: tls_cert
        host: shop.example.com
        warning: 30
        critical: 7
      - {name: disk, kind: disk, paths: [/, /var/lib/postgresql], warning: 85, critical: 90}
      - {name: memory, kind: memory, warning: 85}
      - name: nightly backup
        kind: file_freshness
        path: /var/backups/postgres/**/*.dump
        warning: 25h
        critical: 49h
      - name: backup freshness (RPO 1 h, runbook 002)
        kind: backup
        path: /var/backups/postgres
        label: shop
        warning: 1h
        critical: 2h
  register: health

- name: Report but do not fail, and treat an unreachable Redis as unknown
  runbook.ops.health_probe:
    fail_on_critical: false
    probes:
      - {kind: redis, host: 10.0.0.5, on_unreachable: unknown}
      - {kind: systemd_unit, unit: nginx.service}
      - {kind: process, process_name: logcaster, critical: 1}
      - {kind: command, command: [/usr/local/bin/check_queue, --max, "100"], warning_rc: [1]}

- name: Log checks of runbooks 000 and 001 in the same single call
  runbook.ops.health_probe:
    probes:
      - name: app log
        kind: log
        paths: [/opt/3gpp-analysis/logs/app.log]
        metrics:
          - {name: errors_12h, type: count, pattern: ERROR|CRITICAL, since: 12h, warning: 10, critical: 50}
          - {name: latency_yesterday, type: stats, field: execution_time_ms, unit: ms,
             since: yesterday, until: today, warning: 50, critical: 100}
      - name: batch
        kind: log
        paths: [/var/log/batch/candidate_generation.log]
        metrics:
          - {name: success, type: marker, pattern: BATCH PROCESS COMPLETED SUCCESSFULLY, critical: 25h}
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
  sample: {ok: 9, warning: 1, unknown: 0, critical: 0}
checks:
  description:
    - One entry per measured check. A probe gives one check, or several for kinds with more
      than one metric or path.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The probe's name, with C(.<metric>) or C([path]) for secondary checks.
      type: str
      sample: db.connections
    kind:
      description: The probe kind.
      type: str
      sample: postgres
    status:
      description: C(ok), C(warning), C(critical) or C(unknown).
      type: str
      sample: ok
    value:
      description: The measured value, or null when nothing could be measured.
      type: raw
      sample: 12.5
    unit:
      description: The unit of RV(checks[].value).
      type: str
      sample: "%"
    warning:
      description: The warning threshold applied.
      type: raw
      sample: 80
    critical:
      description: The critical threshold applied.
      type: raw
      sample: 90
    message:
      description: What was measured, its value and the thresholds, or why it could not be.
      type: str
      sample: >-
        connections in use at /run/postgresql:5432/postgres (12 of max_connections 100)
        is 12 % (warning > 80 %, critical > 90 %)
    duration_ms:
      description: How long the probe took.
      type: float
      sample: 4.21
    details:
      description: Kind-specific facts (latency statistics, status codes, certificate names, ...).
      type: dict
      returned: when the probe has any
duration_ms:
  description: Wall time of the whole call.
  returned: always
  type: float
  sample: 212.4
"""

import time
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.runbook.ops.plugins.module_utils.checks import (
    CRITICAL, InvalidProbe, summarize,
)
from ansible_collections.runbook.ops.plugins.module_utils.probes import (
    prepare_probes, run_probes,
)

PROBE_OPTIONS = dict(
    name=dict(type='str'),
    kind=dict(type='str'),
    warning=dict(type='raw'),
    critical=dict(type='raw'),
    thresholds=dict(type='dict'),
    timeout=dict(type='float', default=5),
    on_unreachable=dict(type='str', default='critical', choices=['critical', 'warning', 'unknown']),
    url=dict(type='str'),
    method=dict(type='str'),
    expected_status=dict(type='list', elements='int'),
    headers=dict(type='dict'),
    body=dict(type='str'),
    samples=dict(type='int'),
    latency_stat=dict(type='str', choices=['avg', 'min', 'p50', 'p95', 'p99', 'max']),
    validate_certs=dict(type='bool'),
    ca_path=dict(type='path'),
    follow_redirects=dict(type='bool'),
    assertions=dict(type='list', elements='raw'),
    host=dict(type='str'),
    port=dict(type='int'),
    path=dict(type='str'),
    label=dict(type='str'),
    server_name=dict(type='str'),
    check_hostname=dict(type='bool'),
    user=dict(type='str'),
    password=dict(type='str', no_log=True),
    passfile=dict(type='path'),
    database=dict(type='str'),
    sslmode=dict(type='str', choices=['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']),
    username=dict(type='str'),
    expected_role=dict(type='str', choices=['master', 'replica', 'slave']),
    paths=dict(type='list', elements='path'),
    metrics=dict(type='list', elements='dict'),
    include_rotated=dict(type='bool'),
    since=dict(type='str'),
    until=dict(type='str'),
    time_format=dict(type='str'),
    time_pattern=dict(type='str'),
    timezone=dict(type='str', choices=['local', 'utc']),
    sample_seconds=dict(type='float'),
    unit=dict(type='str'),
    expected_state=dict(type='str'),
    process_name=dict(type='str'),
    cmdline_pattern=dict(type='str'),
    pidfile=dict(type='path'),
    container=dict(type='str'),
    docker_host=dict(type='str'),
    command=dict(type='raw'),
    expected_rc=dict(type='list', elements='int'),
    warning_rc=dict(type='list', elements='int'),
    pattern=dict(type='str'),
)

# Options that only some kinds use have no default here: prepare_probes() applies each
# kind's defaults (documented in the option descriptions), so that a probe is only told
# about options it was actually given.


def main():
    module = AnsibleModule(
        argument_spec=dict(
            probes=dict(type='list', elements='dict', required=True, options=PROBE_OPTIONS),
            concurrency=dict(type='int', default=16),
            fail_on_critical=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    started = time.monotonic()
    concurrency = module.params['concurrency']
    if concurrency < 1:
        module.fail_json(msg='concurrency %d must be at least 1' % concurrency)
    try:
        prepared = prepare_probes(module.params['probes'])
    except InvalidProbe as exc:
        module.fail_json(msg=str(exc))
    try:
        checks = run_probes(prepared, concurrency=concurrency,
                            context={'python': module._name})
    except Exception as exc:  # a bug of ours; never a bare traceback
        module.fail_json(msg='health_probe failed unexpectedly: %s' % exc,
                         exception=traceback.format_exc())
    summary = summarize(checks)
    result = dict(changed=False, status=summary['status'], counts=summary['counts'],
                  checks=checks, duration_ms=round((time.monotonic() - started) * 1000.0, 3))
    if summary['status'] == CRITICAL and module.params['fail_on_critical']:
        bad = [c for c in checks if c['status'] == CRITICAL]
        module.fail_json(msg='%d critical check%s: %s' % (
            len(bad), '' if len(bad) == 1 else 's',
            '; '.join('%s: %s' % (c['name'], c['message']) for c in bad)), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
