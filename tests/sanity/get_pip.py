# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for the get-pip.py that ansible-test downloads to bootstrap pip.

ansible-test creates its virtual environments without pip and then runs a get-pip.py
fetched from ci-files.testing.ansible.com, which this network cannot reach. run.sh puts
this file where ansible-test caches that script. It does the same job with what is at
hand: ensurepip installs the pip wheel bundled with the interpreter, and that pip then
installs the exact packages ansible-test asked for (``pip==24.2``) from PyPI.

It is run as ``python get_pip_X_Y.py [pip options] [packages]``, like get-pip.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import subprocess
import sys

# get-pip.py options that `pip install` does not know.
GET_PIP_ONLY = ('--no-setuptools', '--no-wheel')


def main():
    # In a child process: ensurepip.bootstrap() points PIP_CONFIG_FILE at /dev/null in its
    # own environment, which would hide the system pip.conf (certificates, mirrors).
    rc = subprocess.call([sys.executable, '-m', 'ensurepip', '--upgrade'])
    if rc:
        sys.exit(rc)
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    command = [sys.executable, '-m', 'pip', 'install', '--upgrade'] + args
    sys.exit(subprocess.call(command))


if __name__ == '__main__':
    main()
