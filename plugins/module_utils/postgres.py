# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How every runbook.ops PostgreSQL module logs in: the options of the
runbook.ops.postgres doc fragment and the psycopg2 keywords made from them.
Nothing here imports Ansible or psycopg2."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def postgres_argument_spec():
    """The options of the runbook.ops.postgres doc fragment."""
    return dict(
        login_host=dict(type='str', default=''),
        login_port=dict(type='int', default=5432),
        login_user=dict(type='str', default='postgres'),
        login_password=dict(type='str', no_log=True),
        login_db=dict(type='str', default='postgres'),
        passfile=dict(type='path'),
        login_unix_socket=dict(type='str', default=''),
        connect_timeout=dict(type='int', default=10),
    )


def connect_kwargs(params):
    """psycopg2.connect() keywords from the login options (no password when unset)."""
    kwargs = {'port': params['login_port'], 'user': params['login_user'],
              'dbname': params['login_db'], 'connect_timeout': params['connect_timeout']}
    host = params['login_host'] or params['login_unix_socket']
    if host:
        kwargs['host'] = host
    if params.get('login_password'):
        kwargs['password'] = params['login_password']
    if params.get('passfile'):
        kwargs['passfile'] = params['passfile']
    return kwargs


def describe_server(params):
    host = params['login_host'] or params['login_unix_socket'] or '(default socket)'
    return '%s:%s as %s' % (host, params['login_port'], params['login_user'])
