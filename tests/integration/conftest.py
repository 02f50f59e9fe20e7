# -*- coding: utf-8 -*-
"""Fixtures for the integration tests of runbook.ops.health_probe.

Every test drives the module through a real ``ansible-playbook`` run against real
services started here on loopback: PostgreSQL and Redis (through tools/embedded.py),
an HTTP and an HTTPS server (the handler of tools/health_service.py, counting the
requests in flight), certificates made by trustme, a closed port and a file tree
with real mtimes.

The fixtures are session-scoped.  Under pytest-xdist each worker is its own session
and starts its own services in its own state directory, so workers never share one.
"""

import datetime
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / '.venv' / 'bin'
PYTHON = str(VENV_BIN / 'python')
ANSIBLE_PLAYBOOK = str(VENV_BIN / 'ansible-playbook')
ANSIBLE_CONFIG = str(REPO / 'ansible.cfg')
# tests/output is gitignored and, unlike pytest's tmp under /tmp/pytest-of-root (0700),
# traversable by the postgres user that runs the cluster when the tests run as root.
# RUNBOOK_OPS_IT_OUTPUT lets two test runs on one machine keep apart.
OUTPUT = Path(os.environ.get('RUNBOOK_OPS_IT_OUTPUT', str(REPO / 'tests' / 'output' / 'integration')))

sys.path.insert(0, str(REPO / 'tools'))
import embedded  # noqa: E402  pylint: disable=wrong-import-position
import health_service  # noqa: E402  pylint: disable=wrong-import-position

PG_PASSWORD = 'pg-Integration-s3cret-7e1f'


def pytest_xdist_make_scheduler(config, log):
    """Under `pytest -n N` hand out whole test modules: each module makes a few
    ansible-playbook runs in module-scoped fixtures shared by its tests, and the
    default scheduling would repeat those runs on every worker.  An explicit --dist
    is respected."""
    if config.getvalue('dist') != 'load':
        return None
    from xdist.scheduler import LoadScopeScheduling
    return LoadScopeScheduling(config, log)


def worker_id():
    return os.environ.get('PYTEST_XDIST_WORKER', 'main')


# ---- state directory -------------------------------------------------------------

def _stop_leftovers(state):
    """Stop what an earlier, interrupted session of this worker left running."""
    data = state / 'postgres' / 'data'
    if (data / 'postmaster.pid').exists():
        try:
            embedded.stop_postgres({'data': str(data), 'bindir': embedded.pg_bindir()})
        except (subprocess.CalledProcessError, SystemExit):
            pass
    pidfile = state / 'redis' / 'redis.pid'
    if pidfile.exists():
        try:
            embedded._kill(int(pidfile.read_text().strip()))  # pylint: disable=protected-access
        except (OSError, ValueError):
            pass


@pytest.fixture(scope='session')
def state_dir():
    """tests/output/integration/<worker>: this worker's services live here."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for path in (OUTPUT.parent, OUTPUT):
        os.chmod(path, 0o755)
    state = OUTPUT / worker_id()
    if state.exists():
        _stop_leftovers(state)
        shutil.rmtree(state)
    state.mkdir()
    os.chmod(state, 0o755)
    yield state
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope='session')
def work_dir(tmp_path_factory):
    """Scratch space for playbooks and results (only root reads it)."""
    return tmp_path_factory.mktemp('runs')


# ---- PostgreSQL and Redis ----------------------------------------------------------

@pytest.fixture(scope='session')
def postgres(state_dir):
    """A real PostgreSQL cluster on 127.0.0.1 (scram-sha-256 over TCP, trust on its
    Unix socket), user postgres with password PG_PASSWORD."""
    facts = embedded.start_postgres(str(state_dir), password=PG_PASSWORD)
    yield facts
    embedded.stop_postgres(facts)


@pytest.fixture(scope='session')
def redis_server(state_dir):
    """A real redis-server on 127.0.0.1, no password, no maxmemory."""
    facts = embedded.start_redis(str(state_dir))
    yield facts
    try:
        embedded._kill(int(Path(facts['pidfile']).read_text().strip()))  # pylint: disable=protected-access
    except (OSError, ValueError):
        pass


@pytest.fixture
def redis_client(redis_server):
    import redis
    client = redis.Redis(host=redis_server['host'], port=redis_server['port'])
    yield client
    client.close()


# ---- HTTP and HTTPS -------------------------------------------------------------

class RecordingServer(ThreadingHTTPServer):
    """health_service's handler on a threading server that records the largest
    number of requests it was handling at the same time."""

    daemon_threads = True
    request_queue_size = 128  # 10 concurrent connects must not overflow the backlog

    def __init__(self, address, handler):
        super().__init__(address, handler)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0

    def reset(self):
        with self.lock:
            self.max_in_flight = 0
            self.requests = 0


class RecordingHandler(health_service.Handler):
    """A request is in flight from its arrival until its answer starts to go out: once
    the client has the answer it may send its next request while this thread is still
    returning, and that tail must not count as two requests handled at once."""

    def do_GET(self):  # noqa: N802 - http.server's name
        server = self.server
        with server.lock:
            server.in_flight += 1
            server.requests += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        self._counted = True
        try:
            super().do_GET()
        finally:
            self._answered()

    def _answered(self):
        if getattr(self, '_counted', False):
            self._counted = False
            with self.server.lock:
                self.server.in_flight -= 1

    def _send(self, code, document):
        self._answered()
        super()._send(code, document)


class Service:
    def __init__(self, server, scheme, thread):
        self.server = server
        self.thread = thread
        self.host, self.port = server.server_address[:2]
        self.url = '%s://%s:%d' % (scheme, self.host, self.port)


def _serve(server, scheme):
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.1},
                              daemon=True)
    thread.start()
    return Service(server, scheme, thread)


def start_http_service():
    """A new http://127.0.0.1:<port> service; stop it with stop_service()."""
    return _serve(RecordingServer(('127.0.0.1', 0), RecordingHandler), 'http')


def stop_service(service):
    service.server.shutdown()
    service.server.server_close()


@pytest.fixture(scope='session')
def http_service():
    """http://127.0.0.1:<port> with /health, /status/<code>, /delay/<ms>, /json?k=v."""
    service = start_http_service()
    yield service
    stop_service(service)


@pytest.fixture
def new_http_service():
    """new_http_service() starts an HTTP service of this test's own, so that its
    in-flight count is only this test's; all are stopped after the test."""
    started = []

    def _new():
        started.append(start_http_service())
        return started[-1]
    yield _new
    for service in started:
        stop_service(service)


@pytest.fixture(scope='session')
def ca():
    import trustme
    return trustme.CA()


@pytest.fixture(scope='session')
def ca_pem(ca, work_dir):
    """The test CA's certificate as a PEM bundle (for ca_path)."""
    path = work_dir / 'ca.pem'
    ca.cert_pem.write_to_path(str(path))
    return path


def _days_from_now(days):
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)


@pytest.fixture(scope='session')
def tls_service(ca):
    """https://127.0.0.1:<port>, same endpoints, with a certificate for 127.0.0.1 and
    localhost from the (untrusted) test CA that expires in 10 days."""
    cert = ca.issue_cert('127.0.0.1', 'localhost', not_after=_days_from_now(10))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    server = RecordingServer(('127.0.0.1', 0), RecordingHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    service = _serve(server, 'https')
    yield service
    server.shutdown()
    server.server_close()


@pytest.fixture(scope='session')
def pem_files(ca, work_dir):
    """PEM certificate files: {'days400': path, 'days10': path, 'days3': path,
    'expired': path (2 days ago), 'garbage': path (no certificate in it)}."""
    paths = {}
    for days in (400, 10, 3):
        cert = ca.issue_cert('pem%d.example.com' % days, not_after=_days_from_now(days))
        path = work_dir / ('cert-%ddays.pem' % days)
        # the leaf first, then its key, as many services keep them
        path.write_bytes(cert.cert_chain_pems[0].bytes() + cert.private_key_pem.bytes())
        paths['days%d' % days] = path
    expired = ca.issue_cert('expired.example.com', not_before=_days_from_now(-30),
                            not_after=_days_from_now(-2))
    paths['expired'] = work_dir / 'cert-expired.pem'
    paths['expired'].write_bytes(expired.cert_chain_pems[0].bytes())
    garbage = work_dir / 'not-a-cert.pem'
    garbage.write_text('this is not a certificate\n')
    paths['garbage'] = garbage
    return paths


@pytest.fixture(scope='session')
def closed_port():
    """A loopback port nothing listens on: bound to get a free number, then closed."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    return port


# ---- files and processes --------------------------------------------------------

@pytest.fixture(scope='session')
def file_tree(work_dir):
    """backups/ with files whose mtimes are set with os.utime:
    fresh/a.dump 1 h old, stale/b.dump 26 h old, old/c.dump 50 h old,
    deep/x/y/z.dump 2 h old, and empty/ with no files."""
    root = work_dir / 'backups'
    now = time.time()
    ages = {'fresh/a.dump': 3600, 'stale/b.dump': 26 * 3600, 'old/c.dump': 50 * 3600,
            'deep/x/y/z.dump': 2 * 3600}
    for relative, age in ages.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('dump\n')
        os.utime(path, (now - age, now - age))
    (root / 'empty').mkdir()
    return root


@pytest.fixture
def sleeper():
    """A real `sleep` process with a command line unique to this test."""
    marker = '%d.%d' % (3000 + os.getpid() % 1000, int(time.time() * 1000) % 100000)
    process = subprocess.Popen(['sleep', marker])
    yield process, marker
    process.kill()
    process.wait()


@pytest.fixture
def busy_cpu():
    """Keep one core busy so that a CPU sample is certainly above 0 %."""
    process = subprocess.Popen([sys.executable, '-c', 'while True: pass'])
    yield process
    process.send_signal(signal.SIGKILL)
    process.wait()


# ---- running the module through ansible-playbook -------------------------------

class ProbeRun:
    """One ansible-playbook run: results[i] is the registered result of task i."""

    def __init__(self, results, stdout, stderr, rc, argv):
        self.results = results
        self.stdout = stdout
        self.stderr = stderr
        self.rc = rc
        self.argv = argv

    @property
    def result(self):
        return self.results[0]

    @property
    def checks(self):
        """The first task's checks by name."""
        return dict((c['name'], c) for c in self.result.get('checks', []))

    def check(self, name):
        checks = self.checks
        assert name in checks, 'no check named %r in %s\n%s' % (name, sorted(checks), self)
        return checks[name]

    def __str__(self):
        return 'rc=%s\n--- stdout ---\n%s\n--- stderr ---\n%s' % (self.rc, self.stdout,
                                                                  self.stderr)


def run_play(tasks, check=False, diff=False, verbosity=0, env=None, base_dir=None,
             extra_args=None):
    """Run these tasks (full task dicts: ``{'runbook.ops.x': {...}}`` plus keywords)
    in one localhost playbook; each task's registered result is written as one JSON
    list by ansible.builtin.copy (core 2.19 has no json stdout callback).  The tasks
    ignore errors, so failed results are captured too.  Returns a ProbeRun."""
    run_dir = Path(tempfile.mkdtemp(prefix='run-', dir=str(base_dir) if base_dir else None))
    result_path = run_dir / 'results.json'
    play_tasks = []
    for index, task in enumerate(tasks):
        task = dict(task)
        task.setdefault('name', 'task %d' % index)
        task['register'] = 'result_%d' % index
        task['ignore_errors'] = True
        play_tasks.append(task)
    play_tasks.append({
        'name': 'save the results',
        'ansible.builtin.copy': {
            'content': '{{ [%s] | to_json }}' % ', '.join('result_%d' % index
                                                          for index in range(len(tasks))),
            'dest': str(result_path),
            'mode': '0600',
        },
        'check_mode': False,
        'diff': False,
    })
    playbook = [{
        'name': 'runbook.ops integration',
        'hosts': 'localhost',
        'connection': 'local',
        'gather_facts': False,
        'vars': {'ansible_python_interpreter': PYTHON},
        'tasks': play_tasks,
    }]
    path = run_dir / 'playbook.yml'
    path.write_text(json.dumps(playbook, indent=2))  # JSON is YAML
    argv = [ANSIBLE_PLAYBOOK, '-i', 'localhost,', str(path)] + list(extra_args or [])
    if check:
        argv.append('--check')
    if diff:
        argv.append('--diff')
    if verbosity:
        argv.append('-' + 'v' * verbosity)
    environment = dict(os.environ, ANSIBLE_CONFIG=ANSIBLE_CONFIG, ANSIBLE_NOCOLOR='1',
                       ANSIBLE_FORCE_COLOR='0', ANSIBLE_RETRY_FILES_ENABLED='0',
                       ANSIBLE_LOCALHOST_WARNING='0')
    environment.update(env or {})
    process = subprocess.run(argv, cwd=str(run_dir), env=environment, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True, check=False)
    if not result_path.exists():
        raise AssertionError('the playbook wrote no results\n%s' % ProbeRun(
            [], process.stdout, process.stderr, process.returncode, argv))
    results = json.loads(result_path.read_text())
    return ProbeRun(results, process.stdout, process.stderr, process.returncode, argv)


def run_module(module, args, base_dir=None, **kwargs):
    """One task of ``module`` (e.g. 'runbook.ops.pg_backup') with ``args``; the
    keywords of run_play (check, diff, verbosity, env).  Returns a ProbeRun whose
    ``result`` is the module's registered result."""
    return run_play([{module: args}], base_dir=base_dir, **kwargs)


def run_tasks(tasks, check=False, verbosity=0, env=None, base_dir=None):
    """Several health_probe tasks (each a dict of module arguments) in one playbook."""
    return run_play([{'name': 'probe %d' % index, 'runbook.ops.health_probe': args}
                     for index, args in enumerate(tasks)],
                    check=check, verbosity=verbosity, env=env, base_dir=base_dir)


def run_probes(probes, check=False, verbosity=0, env=None, base_dir=None, **module_args):
    """Run runbook.ops.health_probe once with these probes and module arguments;
    returns a ProbeRun (parsed result, stdout, stderr, rc)."""
    module_args['probes'] = probes
    return run_tasks([module_args], check=check, verbosity=verbosity, env=env,
                     base_dir=base_dir)


@pytest.fixture(name='run_probes', scope='session')
def run_probes_fixture(work_dir):
    """run_probes(probes, check=False, verbosity=0, env=None, **module_args) -> ProbeRun."""
    def _run(probes, **kwargs):
        kwargs.setdefault('base_dir', work_dir)
        return run_probes(probes, **kwargs)
    return _run


@pytest.fixture(name='run_tasks', scope='session')
def run_tasks_fixture(work_dir):
    """run_tasks([module_args, ...], check=False, verbosity=0, env=None) -> ProbeRun
    with one result per task, all in one ansible-playbook run."""
    def _run(tasks, **kwargs):
        kwargs.setdefault('base_dir', work_dir)
        return run_tasks(tasks, **kwargs)
    return _run


@pytest.fixture(name='run_play', scope='session')
def run_play_fixture(work_dir):
    """run_play([task, ...], check=False, diff=False, verbosity=0, env=None) -> ProbeRun."""
    def _run(tasks, **kwargs):
        kwargs.setdefault('base_dir', work_dir)
        return run_play(tasks, **kwargs)
    return _run


@pytest.fixture(name='run_module', scope='session')
def run_module_fixture(work_dir):
    """run_module('runbook.ops.x', {args}, check=False, diff=False, ...) -> ProbeRun."""
    def _run(module, args, **kwargs):
        kwargs.setdefault('base_dir', work_dir)
        return run_module(module, args, **kwargs)
    return _run
