#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: health_report
short_description: Write a run report of health_probe results over many hosts
version_added: "0.1.0"
description:
  - Builds one report from the registered M(runbook.ops.health_probe) results of every host
    of a play, unreachable hosts included, and writes it as Markdown, JSON and JUnit XML
    into a new directory C(<dest>/<UTC timestamp>/), then points C(<dest>/latest) at it.
  - Every file is written to a temporary name, flushed to disk and renamed, so a reader
    never sees half a report.
  - Meant to run once per play on the controller (C(run_once), C(delegate_to localhost)),
    as the C(runbook.ops.daily_checks) role does.
author:
  - runbook.ops contributors (@runbook)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runbook.ops.check_result
attributes:
  check_mode:
    support: full
    details: In check mode nothing is written; the paths that would be written are returned.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  results:
    description:
      - The registered health_probe result of each host, keyed by host name. A host whose
        result says C(unreachable) is reported as unreachable; a host missing here is
        reported as not checked.
    type: dict
    required: true
  hosts:
    description: Every host the run targeted, in report order.
    type: list
    elements: str
    required: true
  dest:
    description: The directory that holds the reports; created when missing.
    type: path
    required: true
  title:
    description: The report's title.
    type: str
    default: Daily health check
  system:
    description: The name of the system checked, shown in the title.
    type: str
  formats:
    description: Which files to write.
    type: list
    elements: str
    choices: [markdown, json, junit]
    default: [markdown, json, junit]
  latest:
    description: Point the symbolic link C(<dest>/latest) at the new report.
    type: bool
    default: true
  meta:
    description: Extra facts to record in the JSON report (playbook, inventory, user).
    type: dict
"""

EXAMPLES = r"""
- name: Write the report of this play's checks
  runbook.ops.health_report:
    results: "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)
                 | map(attribute='health', default={}))) }}"
    hosts: "{{ ansible_play_hosts_all }}"
    dest: /var/lib/runbook/reports/daily
    system: dropshipping
  run_once: true
  delegate_to: localhost
  register: report
"""

RETURN = r"""
dir:
  description: The directory the report was (or in check mode would be) written to.
  returned: always
  type: str
  sample: /var/lib/runbook/reports/daily/20261121T090000Z
files:
  description: The path of each written file, by format.
  returned: always
  type: dict
  sample: {markdown: /var/lib/runbook/reports/daily/20261121T090000Z/report.md}
status:
  description: The worst host status; an unreachable host counts as critical.
  returned: always
  type: str
  sample: warning
host_status:
  description:
    - Each host's rolled-up status (ok, warning, unknown, critical, unreachable, or error when
      its probes could not run at all).
  returned: always
  type: dict
  sample: {web1: ok, db1: warning, backup1: unreachable}
hosts_by_status:
  description: How many hosts ended in each status.
  returned: always
  type: dict
  sample: {ok: 1, warning: 1, unknown: 0, critical: 0, unreachable: 1, error: 0}
checks_by_status:
  description: How many checks ended in each status, over all hosts.
  returned: always
  type: dict
  sample: {ok: 25, warning: 1, unknown: 0, critical: 0}
summary:
  description: One line for a log or a notification.
  returned: always
  type: str
  sample: "Daily health check: warning; hosts 1 ok, 1 warning, 1 unreachable"
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.runbook.ops.plugins.module_utils.fileio import write_atomically
from ansible_collections.runbook.ops.plugins.module_utils.report import (
    RENDERERS, build_report, host_statuses,
)


def point_latest(dest, target):
    """Make dest/latest a symbolic link to target, replacing it atomically."""
    link = os.path.join(dest, 'latest')
    temporary = os.path.join(dest, '.latest.%d' % os.getpid())
    if os.path.lexists(temporary):
        os.unlink(temporary)
    os.symlink(os.path.basename(target), temporary)
    os.rename(temporary, link)


def new_report_dir(dest, now):
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))
    candidate, serial = os.path.join(dest, stamp), 1
    while os.path.exists(candidate):
        serial += 1
        candidate = os.path.join(dest, '%s-%d' % (stamp, serial))
    return candidate


def main():
    module = AnsibleModule(
        argument_spec=dict(
            results=dict(type='dict', required=True),
            hosts=dict(type='list', elements='str', required=True),
            dest=dict(type='path', required=True),
            title=dict(type='str', default='Daily health check'),
            system=dict(type='str'),
            formats=dict(type='list', elements='str', choices=list(RENDERERS),
                         default=list(RENDERERS)),
            latest=dict(type='bool', default=True),
            meta=dict(type='dict'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    dest = params['dest']
    if os.path.exists(dest) and not os.path.isdir(dest):
        module.fail_json(msg='report destination %s exists and is not a directory; give a '
                             'directory in dest' % dest)
    now = time.time()
    generated = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now))
    report = build_report(params['results'], params['hosts'], title=params['title'],
                          system=params['system'], generated=generated, meta=params['meta'])
    directory = new_report_dir(dest, now)
    files = dict((fmt, os.path.join(directory, RENDERERS[fmt][0])) for fmt in params['formats'])
    hosts = report['hosts_by_status']
    summary = '%s: %s; hosts %s' % (
        params['title'] + (' (%s)' % params['system'] if params['system'] else ''),
        report['status'], ', '.join('%d %s' % (n, s) for s, n in hosts.items() if n) or 'none')
    result = dict(changed=True, dir=directory, files=files, status=report['status'],
                  host_status=host_statuses(report), hosts_by_status=hosts,
                  checks_by_status=report['checks_by_status'], summary=summary)
    if module.check_mode:
        module.exit_json(**result)
    try:
        os.makedirs(directory, 0o755)
        for fmt, path in files.items():
            write_atomically(path, RENDERERS[fmt][1](report), move=module.atomic_move)
        if params['latest']:
            point_latest(dest, directory)
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot write the report into %s: %s; check that the directory '
                             'is writable or set dest elsewhere' % (directory, exc), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
