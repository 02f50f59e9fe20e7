# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Login options of every runbook.ops module that talks to PostgreSQL.

    The matching argument spec is
    ansible_collections.runbook.ops.plugins.module_utils.postgres.postgres_argument_spec().
    """

    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - The host name or IP address of the PostgreSQL server.
      - When empty, the module connects through the Unix socket in O(login_unix_socket)
        (or libpq's default socket directory).
    type: str
    default: ''
  login_port:
    description: The TCP port of the server (also the number in the Unix socket's name).
    type: int
    default: 5432
  login_user:
    description: The role to log in as.
    type: str
    default: postgres
  login_password:
    description:
      - The role's password. It reaches libpq in memory, never on a command line or in a log.
      - Prefer O(passfile) or a trusted Unix socket.
    type: str
  login_db:
    description: The database to connect to.
    type: str
    default: postgres
  passfile:
    description:
      - A libpq password file (the format of C(~/.pgpass), mode 0600) to read the password from.
    type: path
  login_unix_socket:
    description: The directory of the server's Unix socket, used when O(login_host) is empty.
    type: str
    default: ''
  connect_timeout:
    description: Seconds to wait for the connection.
    type: int
    default: 10
requirements:
  - psycopg2 (or psycopg2-binary) on the managed host
notes:
  - Passwords are never passed on a command line; O(login_password) is C(no_log).
"""
