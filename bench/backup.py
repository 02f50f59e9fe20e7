#!/usr/bin/env python
"""The backup benchmark: runbook.ops.pg_backup and its restore test against plain
pg_dump / pg_restore, side by side on the same database.

    .venv/bin/python bench/backup.py [--scale 70] [--small-scale 10] [--rounds 1]

Starts a throwaway PostgreSQL cluster of its own (tools/embedded.py) under
bench/results/backup-state, fills database ``bench`` with ``pgbench -i -s SCALE``
(scale 70 is about 1 GB), and runs, alternating anchor and module:

  custom       pg_dump -Fc -Z1 -f F            vs  pg_backup format=custom (gzip level 1, its default)
  directory    pg_dump -Fd -j2 -Z1 -f D        vs  pg_backup format=directory jobs=2
  plain+zstd   pg_dump -Fp | zstd -1 > F       vs  pg_backup format=plain compression=zstd
  restore      createdb + pg_restore -j2 -d    vs  pg_backup state=verified verify=restore_test restore_jobs=2

The module runs as the process Ansible would start (the module file with its
arguments in a JSON file), without ansible-playbook's fixed cost; its peak RSS is
its own VmHWM, sampled from /proc while it runs.  The custom dump is repeated on a
database of --small-scale to show that the module's memory does not grow with the
data.  Prints medians and ratios (targets: dumps <= 1.05, restore test <= 1.10).
Exit status 0 whatever the ratios (a MISS is a finding), 1 when a run failed.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'bench', 'results')
STATE = os.path.join(RESULTS, 'backup-state')
PYTHON = os.path.join(ROOT, '.venv', 'bin', 'python')
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import embedded  # noqa: E402  pylint: disable=wrong-import-position


class Peak(threading.Thread):
    """Samples /proc/<pid>/status VmHWM (the process's own peak RSS) until it exits."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.kib = 0

    def run(self):
        path = '/proc/%d/status' % self.pid
        while True:
            try:
                with open(path) as stream:
                    for line in stream:
                        if line.startswith('VmHWM:'):
                            self.kib = max(self.kib, int(line.split()[1]))
            except (OSError, ValueError):
                return
            time.sleep(0.02)


def timed(argv, env, shell=False, sample=False):
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env, shell=shell, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = None
    if sample:
        peak = Peak(process.pid)
        peak.start()
    out, err = process.communicate()
    wall = time.monotonic() - started
    if peak:
        peak.join()
    if process.returncode != 0:
        raise SystemExit('failed (%d): %s\n%s\n%s' % (process.returncode, argv, out.decode()[-2000:],
                                                      err.decode()[-2000:]))
    return wall, out, (peak.kib if peak else None)


def module_argv(module, args, work):
    path = os.path.join(work, 'args-%s.json' % module)
    with open(path, 'w') as stream:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, stream)
    source = os.path.join(ROOT, '.collections', 'ansible_collections', 'runbook', 'ops', 'plugins', 'modules',
                          module + '.py')
    return [PYTHON, source, path]


def module_env():
    env = dict(os.environ)
    env['PYTHONPATH'] = os.path.join(ROOT, '.collections')
    return env


def run_module(module, args, work):
    wall, out, peak = timed(module_argv(module, args, work), module_env(), sample=True)
    result = json.loads(out.decode())
    if result.get('failed'):
        raise SystemExit('%s failed: %s' % (module, result.get('msg')))
    return wall, result, peak


def fill(facts, scale, database):
    env = dict(os.environ, PGPASSWORD=facts['password'])
    base = ['-h', facts['host'], '-p', str(facts['port']), '-U', facts['user']]
    subprocess.run([os.path.join(facts['bindir'], 'dropdb'), '--if-exists'] + base + [database], env=env, check=True)
    subprocess.run([os.path.join(facts['bindir'], 'createdb')] + base + [database], env=env, check=True)
    started = time.monotonic()
    subprocess.run([os.path.join(facts['bindir'], 'pgbench'), '-i', '-q', '-s', str(scale)] + base + [database],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print('pgbench -i -s %d into %s: %.0f s' % (scale, database, time.monotonic() - started), flush=True)


def pg_env(facts):
    return dict(os.environ, PGHOST=facts['host'], PGPORT=str(facts['port']), PGUSER=facts['user'],
                PGPASSWORD=facts['password'])


def case(name, anchor, module, rounds, results):
    anchors, modules, peaks = [], [], []
    for index in range(rounds):
        anchors.append(anchor(index))
        wall, result, peak = module(index)
        modules.append(wall)
        peaks.append(peak)
    a, m = statistics.median(anchors), statistics.median(modules)
    results[name] = {'anchor_s': round(a, 2), 'module_s': round(m, 2), 'ratio': round(m / a, 3),
                     'module_peak_rss_mib': round(max(peaks) / 1024.0, 1)}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--scale', type=int, default=70)
    parser.add_argument('--small-scale', type=int, default=10)
    parser.add_argument('--rounds', type=int, default=1)
    args = parser.parse_args()
    os.makedirs(STATE, exist_ok=True)
    os.chmod(RESULTS, 0o755)
    os.chmod(STATE, 0o755)
    facts = embedded.start(STATE, ['postgres'])['postgres']
    env = pg_env(facts)
    bindir = facts['bindir']
    work = tempfile.mkdtemp(prefix='backup-bench-', dir=RESULTS)
    login = {'login_host': facts['host'], 'login_port': facts['port'], 'login_user': facts['user'],
             'login_password': facts['password']}
    results = {}
    try:
        fill(facts, args.scale, 'bench')
        fill(facts, args.small_scale, 'bench_small')
        size = subprocess.run([os.path.join(bindir, 'psql'), '-XAtc', "SELECT pg_database_size('bench')", 'postgres'],
                              env=env, check=True, stdout=subprocess.PIPE).stdout.decode().strip()
        print('database bench: %.2f GB' % (int(size) / 1e9), flush=True)
        root = os.path.join(work, 'backups')

        def clean(path):
            shutil.rmtree(path, ignore_errors=True)

        def anchor_cmd(argv, shell=False):
            def run(index):
                target = os.path.join(work, 'anchor')
                clean(target)
                clean(target + '.d')
                wall = timed(argv(target), env, shell=shell)[0]
                clean(target)
                clean(target + '.d')
                return wall

            return run

        def module_cmd(label, database='bench', **options):
            def run(index):
                clean(os.path.join(root, label))
                opts = dict(login, database=database, backup_root=root, label=label)
                opts.update(options)
                return run_module('pg_backup', opts, work)

            return run

        pg_dump = os.path.join(bindir, 'pg_dump')
        case('custom gzip-1', anchor_cmd(lambda t: [pg_dump, '-Fc', '-Z1', '-f', t, 'bench']),
             module_cmd('custom', format='custom'), args.rounds, results)
        case('directory -j2', anchor_cmd(lambda t: [pg_dump, '-Fd', '-j2', '-Z1', '-f', t + '.d', 'bench']),
             module_cmd('directory', format='directory', jobs=2), args.rounds, results)
        case('plain zstd-1', anchor_cmd(lambda t: '%s -Fp bench | zstd -q -1 -c > %s' % (pg_dump, t), shell=True),
             module_cmd('plain', format='plain', compression='zstd'), args.rounds, results)
        case('custom gzip-1, small db (memory)', anchor_cmd(lambda t: [pg_dump, '-Fc', '-Z1', '-f', t, 'bench_small']),
             module_cmd('small', database='bench_small', format='custom'), args.rounds, results)

        # restore: the module's restore test of a custom backup vs createdb + pg_restore -j2
        module_cmd('restore', format='custom', verify='archive')(0)
        archive = [os.path.join(root, 'restore', n) for n in os.listdir(os.path.join(root, 'restore'))
                   if not n.startswith('.')][0]
        dump_file = os.path.join(archive, 'bench.dump')

        def restore_anchor(index):
            subprocess.run([os.path.join(bindir, 'dropdb'), '--if-exists', 'bench_anchor'], env=env, check=True)
            started = time.monotonic()
            subprocess.run([os.path.join(bindir, 'createdb'), '-T', 'template0', 'bench_anchor'], env=env, check=True)
            timed([os.path.join(bindir, 'pg_restore'), '-j2', '-d', 'bench_anchor', dump_file], env)
            wall = time.monotonic() - started
            subprocess.run([os.path.join(bindir, 'dropdb'), 'bench_anchor'], env=env, check=True)
            return wall

        def restore_module(index):
            opts = dict(login, database='bench', backup_root=root, label='restore', state='verified',
                        verify='restore_test', restore_jobs=2)
            return run_module('pg_backup', opts, work)

        result = case('restore test -j2', restore_anchor, restore_module, args.rounds, results)
        results['restore test -j2']['module_rto_s'] = result.get('rto_seconds')
    finally:
        shutil.rmtree(work, ignore_errors=True)
        embedded.stop(STATE)
    targets = {'restore test -j2': 1.10}
    print('\n%-34s %9s %9s %7s %7s %12s' % ('case', 'anchor s', 'module s', 'ratio', 'target', 'peak RSS MiB'))
    for name, row in results.items():
        target = targets.get(name, 1.05)
        verdict = 'ok' if row['ratio'] <= target else 'MISS'
        print('%-34s %9.2f %9.2f %7.3f %7.2f %12.1f  %s' % (
            name, row['anchor_s'], row['module_s'], row['ratio'], target, row['module_peak_rss_mib'], verdict))
    with open(os.path.join(RESULTS, 'backup.json'), 'w') as stream:
        json.dump({'scale': args.scale, 'small_scale': args.small_scale, 'rounds': args.rounds,
                   'results': results}, stream, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
