#!/usr/bin/env python
"""Throwaway services on loopback for `make demo` and the tests.

    embedded.py start  --state DIR [--services postgres,http,redis]
    embedded.py stop   --state DIR
    embedded.py status --state DIR

Each service runs under DIR (a PostgreSQL cluster made with initdb, a Redis
server, a small HTTP health service) on a free loopback port and is recorded in
DIR/services.json.  Starting again reuses what is still running; stopping
stops only what this file started.  PostgreSQL refuses to run as root, so as
root its cluster belongs to the ``postgres`` user.
"""

import argparse
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def pg_bindir():
    for candidate in sorted(glob.glob('/usr/lib/postgresql/*/bin'), reverse=True):
        if os.path.exists(os.path.join(candidate, 'initdb')):
            return candidate
    found = shutil.which('initdb')
    if found:
        return os.path.dirname(found)
    raise SystemExit('PostgreSQL is not installed: run `make deps` (apt-get install postgresql)')


def _as_postgres(argv, **kwargs):
    if os.geteuid() == 0:
        argv = ['runuser', '-u', 'postgres', '--'] + argv
    return subprocess.run(argv, check=True, **kwargs)


def _chown_postgres(path):
    if os.geteuid() == 0:
        entry = pwd.getpwnam('postgres')
        os.chown(path, entry.pw_uid, entry.pw_gid)


def wait_port(port, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit('nothing listens on 127.0.0.1:%d after %ss' % (port, timeout))


def start_postgres(state, password='demo-secret'):
    """Create (once) and start a cluster under state/postgres; return its facts."""
    bindir = pg_bindir()
    base = os.path.join(state, 'postgres')
    data = os.path.join(base, 'data')
    sockets = os.path.join(base, 'run')
    os.makedirs(sockets, exist_ok=True)
    os.chmod(base, 0o755)
    _chown_postgres(base)
    _chown_postgres(sockets)
    if not os.path.exists(os.path.join(data, 'PG_VERSION')):
        pwfile = os.path.join(base, 'pwfile')
        with open(pwfile, 'w') as stream:
            stream.write(password + '\n')
        _chown_postgres(pwfile)
        _as_postgres([os.path.join(bindir, 'initdb'), '-D', data, '-U', 'postgres',
                      '--auth-local=trust', '--auth-host=scram-sha-256',
                      '--pwfile', pwfile, '-E', 'UTF8', '--locale=C'],
                     stdout=subprocess.DEVNULL)
        os.unlink(pwfile)
    port = free_port()
    log = os.path.join(base, 'postgres.log')
    if not os.path.exists(log):
        open(log, 'a').close()
        _chown_postgres(log)
    _as_postgres([os.path.join(bindir, 'pg_ctl'), '-D', data, '-l', log, '-w', '-t', '60',
                  '-o', '-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off'
                  % (port, sockets), 'start'], stdout=subprocess.DEVNULL)
    # A libpq password file, so that clients need no password on their command line.
    passfile = os.path.join(base, 'pgpass')
    fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as stream:
        stream.write('127.0.0.1:%d:*:postgres:%s\n' % (port, password))
    return {'port': port, 'host': '127.0.0.1', 'socket_dir': sockets, 'data': data,
            'user': 'postgres', 'password': password, 'bindir': bindir, 'passfile': passfile}


def stop_postgres(facts):
    if os.path.exists(os.path.join(facts['data'], 'postmaster.pid')):
        _as_postgres([os.path.join(facts['bindir'], 'pg_ctl'), '-D', facts['data'], '-m',
                      'fast', '-w', 'stop'], stdout=subprocess.DEVNULL)


def start_redis(state):
    server = shutil.which('redis-server') or '/usr/bin/redis-server'
    if not os.path.exists(server):
        raise SystemExit('Redis is not installed: run `make deps` (apt-get install redis-server)')
    base = os.path.join(state, 'redis')
    os.makedirs(base, exist_ok=True)
    port = free_port()
    pidfile = os.path.join(base, 'redis.pid')
    subprocess.run([server, '--port', str(port), '--bind', '127.0.0.1', '--daemonize', 'yes',
                    '--pidfile', pidfile, '--dir', base, '--logfile',
                    os.path.join(base, 'redis.log'), '--save', '', '--appendonly', 'no'],
                   check=True)
    wait_port(port)
    return {'port': port, 'host': '127.0.0.1', 'pidfile': pidfile}


def start_http(state):
    base = os.path.join(state, 'http')
    os.makedirs(base, exist_ok=True)
    port = free_port()
    log = open(os.path.join(base, 'http.log'), 'ab')
    process = subprocess.Popen([sys.executable, os.path.join(HERE, 'health_service.py'),
                                '--port', str(port)], stdout=log, stderr=log,
                               start_new_session=True)
    wait_port(port)
    return {'port': port, 'host': '127.0.0.1', 'pid': process.pid,
            'url': 'http://127.0.0.1:%d' % port}


def _kill(pid):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _attempt in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def _alive(facts, name):
    try:
        if name == 'postgres':
            pid = int(open(os.path.join(facts['data'], 'postmaster.pid')).readline())
        elif name == 'redis':
            pid = int(open(facts['pidfile']).read().strip())
        else:
            pid = facts['pid']
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    try:
        socket.create_connection(('127.0.0.1', facts['port']), timeout=1).close()
    except OSError:
        return False
    return True


STARTERS = {'postgres': start_postgres, 'redis': start_redis, 'http': start_http}


def load(state):
    path = os.path.join(state, 'services.json')
    if os.path.exists(path):
        with open(path) as stream:
            return json.load(stream)
    return {}


def save(state, services):
    path = os.path.join(state, 'services.json')
    with open(path + '.tmp', 'w') as stream:
        json.dump(services, stream, indent=2, sort_keys=True)
    os.replace(path + '.tmp', path)


def start(state, names):
    os.makedirs(state, exist_ok=True)
    import sample_logs  # the demo's log checks read these (tools/sample_logs.py)
    sample_logs.write(state)
    services = load(state)
    for name in names:
        if name in services and _alive(services[name], name):
            continue
        services[name] = STARTERS[name](state)
        save(state, services)
    return services


def stop(state):
    services = load(state)
    for name, facts in services.items():
        if name == 'postgres':
            stop_postgres(facts)
        elif name == 'redis':
            try:
                _kill(int(open(facts['pidfile']).read().strip()))
            except (OSError, ValueError):
                pass
        else:
            _kill(facts['pid'])
    save(state, {})
    return services


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('action', choices=('start', 'stop', 'status'))
    parser.add_argument('--state', required=True)
    parser.add_argument('--services', default='postgres,http')
    args = parser.parse_args()
    state = os.path.abspath(args.state)
    if args.action == 'start':
        services = start(state, [n for n in args.services.split(',') if n])
    elif args.action == 'stop':
        services = stop(state)
    else:
        services = dict((n, dict(f, alive=_alive(f, n))) for n, f in load(state).items())
    json.dump(services, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
