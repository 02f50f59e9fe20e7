#!/usr/bin/env python
"""The backup benchmark: runbook.ops.pg_backup and its restore test against plain
pg_dump / pg_restore, side by side on the same database.

    .venv/bin/python bench/backup.py [--scale 70] [--small-scale 10] [--rounds 1]

Starts a throwaway PostgreSQL cluster of its own (tools/embedded.py) under
bench/results/backup-state, fills database ``bench`` with ``pgbench -i -s SCALE``
(scale 70 is about 1 GB), and runs each case ROUNDS times, anchor and module side by
side (the order alternates from round to round, so neither always runs on a cache
the other warmed):

  custom       pg_dump -Fc -Z1 -f F + fsync          vs  pg_backup format=custom (gzip level 1, its default)
  directory    pg_dump -Fd -j2 -Z1 -f D + fsync      vs  pg_backup format=directory jobs=2
  plain+zstd   pg_dump -Fp | zstd -q -1 -c > F + fsync  vs  pg_backup format=plain compression=zstd
  restore      createdb + pg_restore -j2 -d          vs  pg_backup state=verified verify=restore_test restore_jobs=2

The anchors use the module's exact format, compressor, level and zstd thread setting
(the zstd program's default, in both), write to the same filesystem, and fsync what
they wrote (the module fsyncs every file before it renames the backup into place);
the anchor's time without the fsync is kept in the JSON (``anchor_nofsync_s``).
The shell anchor runs under ``set -o pipefail``.  The restore anchor leaves its
database behind (dropped outside the timing); the module's restore test includes
verifying the checksums, proving every row count and dropping the scratch database.

The module runs as the process Ansible would start (the module file with its
arguments in a JSON file), without ansible-playbook's fixed cost; its peak RSS is
its own VmHWM, sampled from /proc while it runs.  The custom dump is repeated on a
database of --small-scale to show that the module's memory does not grow with the
data (that row has no time target: a sub-second dump is dominated by the module's
fixed start-up cost).  Beside wall time, each run's CPU seconds are measured: the
client side from wait4 (the command and all its children) and the server side from
the cluster's postmaster (its own, its reaped children's and its live children's
utime+stime), so the extra work of the module can be told apart from the noise of
a shared machine.  Prints medians, the min-max spread of the per-round ratios, and
the ratios against the targets (dumps <= 1.05, restore test <= 1.10).
Exit status 0 whatever the ratios (a MISS is a finding), 1 when a run failed.
"""

import argparse
import json
import os
import resource
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


TICK = float(os.sysconf('SC_CLK_TCK'))
SERVER = {}


def _stat_cpu(pid, children=False):
    """utime+stime (and with ``children`` cutime+cstime) of a process, seconds."""
    with open('/proc/%d/stat' % pid) as stream:
        fields = stream.read().rsplit(')', 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def server_cpu():
    """CPU seconds the cluster has used so far: the postmaster, the children it reaped,
    and its live children (backends, parallel workers, checkpointer, ...)."""
    postmaster = SERVER.get('pid')
    if not postmaster:
        return 0.0
    for attempt in range(20):
        # a backend reaped between reading the postmaster and scanning its children would
        # be counted nowhere: read again until no child was reaped meanwhile
        reaped = _stat_cpu(postmaster, children=True)
        live = 0.0
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            try:
                with open('/proc/%s/stat' % entry) as stream:
                    fields = stream.read().rsplit(')', 1)[1].split()
                if int(fields[1]) == postmaster:
                    live += (int(fields[11]) + int(fields[12])) / TICK
            except (OSError, ValueError, IndexError):
                continue
        if _stat_cpu(postmaster, children=True) == reaped:
            break
        time.sleep(0.01 * attempt)
    return reaped + live


def fsync_tree(path):
    """fsync a file, or every file and directory under a directory, and the parent."""
    paths = [path]
    if os.path.isdir(path):
        paths = [os.path.join(d, f) for d, dirs, files in os.walk(path) for f in files + dirs] + [path]
    for name in paths + [os.path.dirname(path)]:
        fd = os.open(name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def timed(argv, env, shell=False, sample=False):
    """Run argv; (wall s, stdout, peak RSS KiB or None, CPU s of the command and its children
    plus the cluster's)."""
    server_before = server_cpu()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env, shell=shell, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               executable='/bin/bash' if shell else None)
    peak = None
    if sample:
        peak = Peak(process.pid)
        peak.start()
    out, err = process.communicate()
    wall = time.monotonic() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)     # the command and all it waited for
    cpu = (children.ru_utime - children_before.ru_utime + children.ru_stime - children_before.ru_stime
           + server_cpu() - server_before)
    if peak:
        peak.join()
    if process.returncode != 0:
        raise SystemExit('failed (%d): %s\n%s\n%s' % (process.returncode, argv, out.decode()[-2000:],
                                                      err.decode()[-2000:]))
    return wall, out, (peak.kib if peak else None), cpu


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
    wall, out, peak, cpu = timed(module_argv(module, args, work), module_env(), sample=True)
    result = json.loads(out.decode())
    if result.get('failed'):
        raise SystemExit('%s failed: %s' % (module, result.get('msg')))
    return {'wall': wall, 'result': result, 'peak': peak, 'cpu': cpu}


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
    """Run anchor and module side by side ``rounds`` times, alternating which goes first."""
    anchors, modules = [], []
    for index in range(rounds):
        if index % 2 == 0:
            anchors.append(anchor(index))
            modules.append(module(index))
        else:
            modules.append(module(index))
            anchors.append(anchor(index))
        print('  %s round %d: anchor %.2f s (cpu %.2f)  module %.2f s (cpu %.2f)' % (
            name, index + 1, anchors[-1]['wall'], anchors[-1]['cpu'], modules[-1]['wall'], modules[-1]['cpu']),
            flush=True)
    a = statistics.median(r['wall'] for r in anchors)
    m = statistics.median(r['wall'] for r in modules)
    ratios = [mod['wall'] / anc['wall'] for anc, mod in zip(anchors, modules, strict=True)]
    a_cpu = statistics.median(r['cpu'] for r in anchors)
    m_cpu = statistics.median(r['cpu'] for r in modules)
    results[name] = {'anchor_s': round(a, 2), 'module_s': round(m, 2), 'ratio': round(m / a, 3),
                     'round_ratios': [round(r, 3) for r in ratios],
                     'anchor_walls_s': [round(r['wall'], 2) for r in anchors],
                     'module_walls_s': [round(r['wall'], 2) for r in modules],
                     'anchor_cpu_s': round(a_cpu, 2), 'module_cpu_s': round(m_cpu, 2),
                     'cpu_ratio': round(m_cpu / a_cpu, 3) if a_cpu else None,
                     'module_peak_rss_mib': round(max(r['peak'] for r in modules) / 1024.0, 1)}
    nofsync = [r['nofsync'] for r in anchors if r.get('nofsync')]
    if nofsync:
        results[name]['anchor_nofsync_s'] = round(statistics.median(nofsync), 2)
    return modules[-1]['result']


SMALL = 'custom gzip-1, small db (memory)'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--scale', type=int, default=70)
    parser.add_argument('--small-scale', type=int, default=10)
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()
    os.makedirs(STATE, exist_ok=True)
    os.chmod(RESULTS, 0o755)
    os.chmod(STATE, 0o755)
    facts = embedded.start(STATE, ['postgres'])['postgres']
    with open(os.path.join(facts['data'], 'postmaster.pid')) as stream:
        SERVER['pid'] = int(stream.readline())
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

        def anchor_cmd(argv, shell=False, directory=False):
            def run(index):
                target = os.path.join(work, 'anchor')
                output = target + '.d' if directory else target
                clean(output)
                started = time.monotonic()
                wall, out, peak, cpu = timed(argv(target), env, shell=shell)
                fsync_tree(output)
                total = time.monotonic() - started
                clean(output)
                return {'wall': total, 'nofsync': wall, 'cpu': cpu, 'peak': peak}

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
        case('directory -j2', anchor_cmd(lambda t: [pg_dump, '-Fd', '-j2', '-Z1', '-f', t + '.d', 'bench'],
                                         directory=True),
             module_cmd('directory', format='directory', jobs=2), args.rounds, results)
        case('plain zstd-1', anchor_cmd(lambda t: 'set -o pipefail; %s -Fp bench | zstd -q -1 -c > %s' % (pg_dump, t),
                                        shell=True),
             module_cmd('plain', format='plain', compression='zstd'), args.rounds, results)
        case(SMALL, anchor_cmd(lambda t: [pg_dump, '-Fc', '-Z1', '-f', t, 'bench_small']),
             module_cmd('small', database='bench_small', format='custom'), args.rounds, results)

        # restore: the module's restore test of a custom backup vs createdb + pg_restore -j2
        module_cmd('restore', format='custom', verify='archive')(0)  # the backup both restore
        archive = [os.path.join(root, 'restore', n) for n in os.listdir(os.path.join(root, 'restore'))
                   if not n.startswith('.')][0]
        dump_file = os.path.join(archive, 'bench.dump')

        def restore_anchor(index):
            subprocess.run([os.path.join(bindir, 'dropdb'), '--if-exists', 'bench_anchor'], env=env, check=True)
            cmd = 'set -o pipefail; %s -T template0 bench_anchor && %s -j2 -d bench_anchor %s' % (
                os.path.join(bindir, 'createdb'), os.path.join(bindir, 'pg_restore'), dump_file)
            wall, out, peak, cpu = timed(cmd, env, shell=True)
            subprocess.run([os.path.join(bindir, 'dropdb'), 'bench_anchor'], env=env, check=True)
            return {'wall': wall, 'cpu': cpu, 'peak': peak}

        def restore_module(index):
            opts = dict(login, database='bench', backup_root=root, label='restore', state='verified',
                        verify='restore_test', restore_jobs=2)
            return run_module('pg_backup', opts, work)

        result = case('restore test -j2', restore_anchor, restore_module, args.rounds, results)
        results['restore test -j2']['module_rto_s'] = result.get('rto_seconds')
    finally:
        shutil.rmtree(work, ignore_errors=True)
        embedded.stop(STATE)
    targets = {'restore test -j2': 1.10, SMALL: None}
    print('\n%-34s %8s %8s %6s %11s %6s %8s %8s %6s %7s  %s' % (
        'case', 'anchor s', 'module s', 'ratio', 'round range', 'target', 'a cpu s', 'm cpu s', 'cpu r',
        'RSS MiB', 'verdict'))
    for name, row in results.items():
        target = targets.get(name, 1.05)
        if target is None:
            verdict, shown = 'n/a (memory row)', '-'
        else:
            verdict, shown = ('ok' if row['ratio'] <= target else 'MISS'), '%.2f' % target
        print('%-34s %8.2f %8.2f %6.3f %5.2f-%5.2f %6s %8.2f %8.2f %6.2f %7.1f  %s' % (
            name, row['anchor_s'], row['module_s'], row['ratio'], min(row['round_ratios']),
            max(row['round_ratios']), shown, row['anchor_cpu_s'], row['module_cpu_s'], row['cpu_ratio'] or 0,
            row['module_peak_rss_mib'], verdict))
    print('module peak RSS, custom dump: %.1f MiB at scale %d, %.1f MiB at scale %d' % (
        results['custom gzip-1']['module_peak_rss_mib'], args.scale, results[SMALL]['module_peak_rss_mib'],
        args.small_scale))
    with open(os.path.join(RESULTS, 'backup.json'), 'w') as stream:
        json.dump({'scale': args.scale, 'small_scale': args.small_scale, 'rounds': args.rounds,
                   'results': results}, stream, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
