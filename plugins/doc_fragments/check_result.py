# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The one result shape of every runbook.ops module that judges health."""

    DOCUMENTATION = r"""
options: {}
notes:
  - Every check comes back in one shape, C(name), C(kind), C(status), C(value), C(unit),
    C(warning), C(critical), C(message) and C(duration_ms), and statuses roll up as
    C(ok) < C(warning) < C(unknown) < C(critical). Reports, JUnit files and AWX artifacts
    read only this shape, so checks from any module can be reported together.
"""
