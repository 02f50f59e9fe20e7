#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: limits_dropin
short_description: Resource limits for service users in one drop-in under /etc/security/limits.d
version_added: "0.1.0"
description:
  - Writes every pam_limits entry of O(limits) into one file C(<dropin_dir>/<name>.conf) in one
    call (temporary file, fsync, rename), validating all of them first - known items, types and
    domains, whole numbers or C(unlimited), a soft limit not above its hard limit, and C(nofile)
    not above C(fs.nr_open) (pam_limits refuses the login otherwise).
  - Reports entries of C(limits.conf) and other drop-ins for the same domain and item with
    another value in RV(others).
  - New limits apply to new sessions (a service restarted by systemd takes its limits from its
    unit's C(LimitNOFILE=), not from pam_limits).
author:
  - runbook.ops contributors (@runbook)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
options:
  name:
    description: The drop-in's name, without C(.conf).
    type: str
    required: true
  limits:
    description:
      - The entries, each C({domain, item, value, type}); C(type) is C(soft), C(hard) or C(-)
        (both, the default). Required when O(state=present).
    type: list
    elements: dict
  state:
    description: C(present) writes the drop-in, C(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  dropin_dir:
    description: The directory of the drop-in.
    type: path
    default: /etc/security/limits.d
  limits_conf:
    description: The main limits file, read only to report other entries.
    type: path
    default: /etc/security/limits.conf
  nr_open_path:
    description: Where fs.nr_open is read from. Only tests change it.
    type: path
    default: /proc/sys/fs/nr_open
"""

EXAMPLES = r"""
- name: Limits of the LogCaster service user (runbook 003)
  runbook.ops.limits_dropin:
    name: logcaster
    limits:
      - {domain: logcaster, item: nofile, value: 65535}
      - {domain: logcaster, item: nproc, value: 32768}
"""

RETURN = r"""
path:
  description: The drop-in file.
  returned: always
  type: str
  sample: /etc/security/limits.d/logcaster.conf
others:
  description: Entries in other files for the same domain, type and item with another value.
  returned: always
  type: list
  elements: dict
  sample: [{file: /etc/security/limits.conf, line: 60, domain: logcaster, type: soft, item: nofile,
            value: "1024", wanted: "65535"}]
"""

import glob
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.runbook.ops.plugins.module_utils.fileio import write_atomically
from ansible_collections.runbook.ops.plugins.module_utils.limits import (
    NAME_RE, LimitsError, others, parse_items, render,
)


def read(path):
    try:
        with open(path) as stream:
            return stream.read()
    except (IOError, OSError, UnicodeDecodeError):
        return ''


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            limits=dict(type='list', elements='dict'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            dropin_dir=dict(type='path', default='/etc/security/limits.d'),
            limits_conf=dict(type='path', default='/etc/security/limits.conf'),
            nr_open_path=dict(type='path', default='/proc/sys/fs/nr_open'),
        ),
        required_if=[('state', 'present', ['limits'])],
        supports_check_mode=True,
    )
    params = module.params
    if not NAME_RE.match(params['name']):
        module.fail_json(msg='name %r: use letters, digits, _, - and . only' % params['name'])
    path = os.path.join(params['dropin_dir'], params['name'] + '.conf')
    existed = os.path.exists(path)
    old_text = read(path) if existed else ''
    result = dict(changed=False, path=path, others=[])
    if params['state'] == 'absent':
        result['changed'] = existed
        if existed and module._diff:
            result['diff'] = {'before_header': path, 'after_header': path, 'before': old_text, 'after': ''}
        if existed and not module.check_mode:
            os.unlink(path)
        module.exit_json(**result)

    nr_open = None
    try:
        nr_open = int(read(params['nr_open_path']).strip())
    except ValueError:
        pass
    try:
        entries = parse_items(params['limits'], nr_open)
    except LimitsError as exc:
        module.fail_json(msg='limits %s not written: %s' % (params['name'], exc), **result)
    if not os.path.isdir(params['dropin_dir']):
        module.fail_json(msg='the drop-in directory %s does not exist; create it (pam_limits reads '
                             'it) or set dropin_dir' % params['dropin_dir'], **result)
    new_text = render(entries, params['name'])
    texts = dict((p, read(p)) for p in glob.glob(os.path.join(params['dropin_dir'], '*.conf'))
                 if p != path)
    texts[params['limits_conf']] = read(params['limits_conf'])
    result['others'] = others(entries, texts)
    for other in result['others']:
        module.warn('%(file)s:%(line)d also sets %(domain)s %(type)s %(item)s = %(value)s '
                    '(this drop-in: %(wanted)s)' % other)
    result['changed'] = new_text != old_text
    if result['changed'] and module._diff:
        result['diff'] = {'before_header': path, 'after_header': path, 'before': old_text, 'after': new_text}
    if result['changed'] and not module.check_mode:
        try:
            write_atomically(path, new_text, move=module.atomic_move)
        except (IOError, OSError) as exc:
            module.fail_json(msg='writing %s failed, nothing changed: %s' % (path, exc), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
