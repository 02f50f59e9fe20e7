#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: sysctl_tune
short_description: Apply a whole kernel parameter profile in one call, persisted in one sysctl.d drop-in
version_added: "0.1.0"
description:
  - Takes a whole profile (kernel parameters and their values), validates every key and
    value against the running kernel before changing anything, persists the profile into one
    drop-in file C(<dropin_dir>/<priority>-<name>.conf) (temporary file, fsync, rename) and sets
    live only the keys whose live value differs.
  - When a live write fails (the kernel rejects a value, or reads back another one), the keys
    already set are restored and the drop-in is put back as it was.
  - Reads the whole sysctl.d precedence the way systemd-sysctl and C(sysctl --system) apply it
    (files sorted by name across O(search_dirs), a file in an earlier directory masking a
    same-named one in a later directory, O(sysctl_conf) last) and reports, or with
    O(on_conflict=fail) refuses, every file and line that would override a profile value at
    boot, and a same-named file that masks the drop-in.
  - Reports drift per key (the live value is not the persisted one). Values are compared
    normalised (booleans as 1/0, runs of whitespace as one space, so C(tcp_rmem) matches
    whatever spacing the kernel prints).
author:
  - runbook.ops contributors (@runbook)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is written; the plan, drift and overrides are returned.
  diff_mode:
    support: full
    details: The drop-in file before and after, and the live value of every key to change.
  platform:
    support: full
    platforms: posix
options:
  name:
    description:
      - The profile's name, part of the drop-in's file name (letters, digits, C(_), C(-) and C(.)).
    type: str
    required: true
  profile:
    description:
      - "The kernel parameters, as C(key: value) (dotted or slashed names, values as the kernel
        takes them; lists are joined by spaces) or C(key: {value: v, missing: fail|warn|skip})
        for a per-key policy for keys this kernel lacks."
      - Required when O(state=present). The drop-in holds exactly this profile.
    type: dict
  state:
    description:
      - C(present) writes the drop-in and sets live values; C(absent) removes the drop-in
        (live values stay as they are until the next boot).
    type: str
    choices: [present, absent]
    default: present
  priority:
    description:
      - The two-digit prefix of the drop-in's file name; files sort by name, the later wins.
    type: int
    default: 90
  missing:
    description:
      - What to do with a key this kernel lacks, unless the key gives its own C(missing).
      - C(fail) fails before changing anything; C(warn) persists it with a C(-) prefix (boot
        ignores a failure to set it) and warns; C(skip) leaves it out silently.
    type: str
    choices: [fail, warn, skip]
    default: fail
  apply_live:
    description:
      - Set live values too. With C(false) only the drop-in is written (for a read-only
        /proc/sys, or to apply at the next boot).
    type: bool
    default: true
  on_conflict:
    description:
      - What to do about a later file that would override a profile value at boot, or a
        same-named file that masks the drop-in. C(warn) warns and reports it in RV(overrides),
        C(fail) fails before changing anything, C(ignore) only reports it.
    type: str
    choices: [warn, fail, ignore]
    default: warn
  dropin_dir:
    description: The directory of the drop-in.
    type: path
    default: /etc/sysctl.d
  search_dirs:
    description:
      - The sysctl.d directories in precedence order (earlier masks later). For tests and
        unusual layouts.
    type: list
    elements: path
    default: [/etc/sysctl.d, /run/sysctl.d, /usr/local/lib/sysctl.d, /usr/lib/sysctl.d, /lib/sysctl.d]
  sysctl_conf:
    description: The file C(sysctl --system) applies after all sysctl.d files.
    type: path
    default: /etc/sysctl.conf
  proc_root:
    description: Where the live parameters are. Only tests change it.
    type: path
    default: /proc/sys
notes:
  - Unlike M(ansible.posix.sysctl) nothing is reloaded from a file, so a key another file
    sets that this kernel lacks never breaks the run.
seealso:
  - module: ansible.posix.sysctl
"""

EXAMPLES = r"""
- name: Network profile of runbook 003 (LogCaster)
  runbook.ops.sysctl_tune:
    name: logcaster-network
    profile:
      net.core.somaxconn: 65535
      net.ipv4.tcp_max_syn_backlog: 8192
      net.core.netdev_max_backlog: 16384
      net.ipv4.tcp_fin_timeout: 15
      net.ipv4.tcp_tw_reuse: 1
      net.netfilter.nf_conntrack_max: {value: 262144, missing: warn}
  register: tuned

- name: Fail when another file would undo the TCP buffers at boot
  runbook.ops.sysctl_tune:
    name: tcp-buffers
    profile:
      net.core.rmem_max: 16777216
      net.core.wmem_max: 16777216
      net.ipv4.tcp_rmem: "4096 87380 16777216"
    on_conflict: fail
"""

RETURN = r"""
path:
  description: The drop-in file.
  returned: always
  type: str
  sample: /etc/sysctl.d/90-logcaster-network.conf
file_changed:
  description: Whether the drop-in was (or in check mode would be) written or removed.
  returned: always
  type: bool
set:
  description: The keys set live (in check mode, that would be set).
  returned: always
  type: list
  elements: str
  sample: [net.core.somaxconn]
skipped:
  description: Keys this kernel lacks that were left out of the drop-in (policy C(skip)).
  returned: always
  type: list
  elements: str
keys:
  description:
    - Per key, the wanted value, the live and persisted values before the run, the value and
      source it would have after a boot, and the action (C(set), C(none), C(missing)).
  returned: when state is present
  type: dict
  sample: {net.core.somaxconn: {wanted: "65535", live: "4096", persisted: null, action: set,
           boot: {value: "65535", file: /etc/sysctl.d/90-logcaster-network.conf, line: 2}}}
drift:
  description: Keys whose live value differed from the value persisted in the drop-in.
  returned: always
  type: list
  elements: dict
  sample: [{key: vm.swappiness, live: "60", persisted: "10"}]
overrides:
  description: Later assignments that would override a profile value at boot, with file and line.
  returned: always
  type: list
  elements: dict
  sample: [{key: vm.swappiness, file: /etc/sysctl.conf, line: 12, value: "60", wanted: "10"}]
masked_by:
  description: A same-named file in an earlier directory that hides the drop-in, if any.
  returned: always
  type: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.runbook.ops.plugins.module_utils.fileio import write_atomically
from ansible_collections.runbook.ops.plugins.module_utils.sysctl import (
    NAME_RE, SEARCH_DIRS, SysctlError, apply_live, config_files, find_overrides, masking,
    parse_conf, parse_profile, plan, proc_read_only, read_live, read_text, render_conf, writable,
)


def write_file(module, path, text):
    """Atomic write (raises OSError), then the SELinux context a file there should have."""
    write_atomically(path, text)
    module.set_context_if_different(path, module.selinux_default_context(path), False)


def restore_file(module, path, old_text, existed):
    try:
        if existed:
            write_file(module, path, old_text)
        elif os.path.exists(path):
            os.unlink(path)
        return None
    except (IOError, OSError) as exc:
        return 'restoring %s failed: %s' % (path, exc)


def dir_problem(directory):
    if not os.path.isdir(directory):
        return 'the drop-in directory %s does not exist; create it or set dropin_dir' % directory
    probe = None
    try:
        handle, probe = tempfile.mkstemp(prefix='.runbook-probe.', dir=directory)
        os.close(handle)
    except (IOError, OSError) as exc:
        return 'the drop-in directory %s is not writable (%s); fix its mount/permissions or set ' \
               'dropin_dir' % (directory, exc.strerror or exc)
    finally:
        if probe and os.path.exists(probe):
            os.unlink(probe)
    return None


def absent(module, path):
    existed = os.path.exists(path)
    result = dict(changed=existed, path=path, file_changed=existed, set=[], skipped=[], drift=[],
                  overrides=[], masked_by=None)
    if existed and module._diff:
        result['diff'] = {'before_header': path, 'after_header': path,
                          'before': read_text(path), 'after': ''}
    if existed and not module.check_mode:
        try:
            os.unlink(path)
        except OSError as exc:
            module.fail_json(msg='removing %s failed: %s' % (path, exc), **result)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            profile=dict(type='dict'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            priority=dict(type='int', default=90),
            missing=dict(type='str', choices=['fail', 'warn', 'skip'], default='fail'),
            apply_live=dict(type='bool', default=True),
            on_conflict=dict(type='str', choices=['warn', 'fail', 'ignore'], default='warn'),
            dropin_dir=dict(type='path', default='/etc/sysctl.d'),
            search_dirs=dict(type='list', elements='path', default=list(SEARCH_DIRS)),
            sysctl_conf=dict(type='path', default='/etc/sysctl.conf'),
            proc_root=dict(type='path', default='/proc/sys'),
        ),
        required_if=[('state', 'present', ['profile'])],
        supports_check_mode=True,
    )
    params = module.params
    if not NAME_RE.match(params['name']):
        module.fail_json(msg='name %r: use letters, digits, _, - and . only' % params['name'])
    if not 0 <= params['priority'] <= 99:
        module.fail_json(msg='priority %d: give 0 to 99' % params['priority'])
    dropin_dir = params['dropin_dir'].rstrip('/') or '/'
    path = os.path.join(dropin_dir, '%02d-%s.conf' % (params['priority'], params['name']))
    if params['state'] == 'absent':
        absent(module, path)
    proc_root = params['proc_root']

    # 1. validate everything and plan, changing nothing
    try:
        entries = parse_profile(params['profile'], params['missing'])
    except SysctlError as exc:
        module.fail_json(msg='profile %s: %s' % (params['name'], exc))
    errors, live = [], {}
    for key, _value, _missing in entries:
        try:
            live[key] = read_live(key, proc_root)
        except SysctlError as exc:
            errors.append(str(exc))
    existed = os.path.exists(path)
    old_text = read_text(path) if existed else ''
    persisted = dict((key, value) for _n, key, value, _i in parse_conf(old_text))
    keep, to_set, skipped, warnings, plan_errors, drift = plan(
        [e for e in entries if e[0] in live], live, persisted)
    errors.extend(plan_errors)
    if not params['apply_live']:
        to_set = []
    if to_set and proc_read_only(proc_root):
        errors.append('%s is mounted read-only (a container?): live values cannot be set; '
                      'tune the host, or set apply_live: false to write only the drop-in'
                      % proc_root)
    elif to_set:
        errors.extend('%s cannot be written here (read-only in this namespace or container); '
                      'tune it on the host or remove it from the profile' % key
                      for key, _old, _new in to_set if not writable(key, proc_root))
    new_text = render_conf(keep, params['name'])
    file_changed = new_text != old_text
    if file_changed and not module.check_mode:
        problem = dir_problem(dropin_dir)
        if problem:
            errors.append(problem)

    files, masked = config_files(params['search_dirs'], params['sysctl_conf'], extra=path)
    texts = dict((info['path'], read_text(info['path'])) for info in files)
    texts[path] = new_text
    overrides, boot = find_overrides(keep, path, files, texts)
    masked_by = masking(path, masked)
    conflicts = ['%s:%d sets %s = %s after the drop-in (wanted %s)'
                 % (o['file'], o['line'], o['key'], o['value'], o['wanted']) for o in overrides]
    if masked_by:
        conflicts.insert(0, '%s masks the drop-in %s (same file name, earlier directory)'
                         % (masked_by, path))
    if conflicts and params['on_conflict'] == 'fail':
        errors.append('at boot other files would override the profile: %s; remove or change '
                      'those lines, or raise priority' % '; '.join(conflicts))
    elif conflicts and params['on_conflict'] == 'warn':
        warnings.extend('boot override: ' + c for c in conflicts)

    set_keys = [key for key, _old, _new in to_set]
    keys = {}
    for key, value, _missing in entries:
        keys[key] = {'wanted': value, 'live': live.get(key), 'persisted': persisted.get(key),
                     'boot': boot.get(key),
                     'action': 'set' if key in set_keys else
                               ('missing' if live.get(key) is None else 'none')}
    result = dict(changed=bool(file_changed or to_set), path=path, file_changed=file_changed,
                  set=set_keys, skipped=skipped, drift=drift, overrides=overrides,
                  masked_by=masked_by, keys=keys)
    if errors:
        module.fail_json(msg='profile %s not applied, nothing changed: %s'
                             % (params['name'], '; '.join(errors)), **result)
    for warning in warnings:
        module.warn(warning)
    if module._diff:
        result['diff'] = [
            {'before_header': path, 'after_header': path, 'before': old_text, 'after': new_text},
            {'before_header': '%s (live)' % proc_root, 'after_header': '%s (live)' % proc_root,
             'before': ''.join('%s = %s\n' % (k, o) for k, o, _n in to_set),
             'after': ''.join('%s = %s\n' % (k, n) for k, _o, n in to_set)},
        ]
    if module.check_mode or not result['changed']:
        module.exit_json(**result)

    # 2. act: the drop-in first (atomic), then live values; undo both on a failure
    if file_changed:
        try:
            write_file(module, path, new_text)
        except (IOError, OSError) as exc:
            module.fail_json(msg='writing %s failed, nothing changed: %s' % (path, exc), **result)
    try:
        apply_live(to_set, proc_root)
    except SysctlError as exc:
        message = 'profile %s not applied: %s' % (params['name'], exc)
        if file_changed:
            undo = restore_file(module, path, old_text, existed)
            message += '; ' + (undo or 'the drop-in is as it was')
        result.update(changed=False, set=[], file_changed=False)
        module.fail_json(msg=message, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
