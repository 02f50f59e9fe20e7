#!/usr/bin/env python
"""The daily-run benchmark: playbooks/daily.yml on 50 local hosts against anchors.

    .venv/bin/python bench/daily_run.py [--rounds 3] [--hosts 50] [--no-profile]

Starts a throwaway PostgreSQL and HTTP health service (tools/embedded.py) under
bench/results/state, writes an inventory of 50 hosts (h01..h50, local connection), each
with 10 probes that hit real local things, and then runs, alternating and repeated:

  daily   ansible-playbook -i <inventory> playbooks/daily.yml
  floor   the same inventory, one no-op module call per host (ansible.builtin.ping)
  shell   a plain bash script doing the same 10 checks for the 50 hosts in parallel

It prints the median wall time of each, the ratios daily/floor (target <= 1.3) and
daily/shell, the controller's peak memory during the daily run (summed RSS of the
ansible-playbook process tree, sampled from /proc, and the largest single process from
wait4/getrusage), a concurrency micro-benchmark of health_probe (10 HTTP probes of
/delay/200, concurrency 16 against 1) and, unless --no-profile, where the time of one
extra daily run goes, task by task (a timing callback written under bench/results).
The summary goes to bench/results/daily_run.json.

Exit status: 0 when every run worked, whatever the ratio (a MISS is a finding, not an
error); 1 when a run itself failed (daily.yml rc not 0 or 2, the floor or the shell
anchor failed, the micro-benchmark gave no result).
"""

import argparse
import datetime
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'bench', 'results')
STATE = os.path.join(RESULTS, 'state')
WORK = os.path.join(RESULTS, 'run')
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
PYTHON = os.path.join(VENV_BIN, 'python')
PLAYBOOK = os.path.join(VENV_BIN, 'ansible-playbook')
TARGET = 1.3
PAGE = os.sysconf('SC_PAGE_SIZE')


class BenchError(Exception):
    """A run of the benchmark failed: the figures would mean nothing."""


# --------------------------------------------------------------------------- set-up

def start_services():
    out = subprocess.run([PYTHON, os.path.join(ROOT, 'tools', 'embedded.py'), 'start',
                          '--state', STATE, '--services', 'http,postgres'],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def stop_services():
    subprocess.run([PYTHON, os.path.join(ROOT, 'tools', 'embedded.py'), 'stop',
                    '--state', STATE], stdout=subprocess.DEVNULL, check=False)


def write_cert(path):
    """A PEM certificate valid for about a year, from trustme (or cryptography)."""
    import trustme
    ca = trustme.CA()
    leaf = ca.issue_cert('localhost', '127.0.0.1')
    leaf.cert_chain_pems[0].write_to_path(path)


def probes_for(services, fresh_file, cert_file):
    pg = services['postgres']
    http = services['http']
    return [
        {'name': 'api', 'kind': 'http', 'url': http['url'] + '/health', 'warning': 1000,
         'critical': 2000, 'assertions': ['status == "healthy"']},
        {'name': 'db port', 'kind': 'tcp', 'host': '127.0.0.1', 'port': pg['port']},
        {'name': 'db', 'kind': 'postgres', 'host': '127.0.0.1', 'port': pg['port'],
         'user': 'postgres', 'passfile': pg['passfile'],
         'thresholds': {'connections': {'warning': 80, 'critical': 90}}},
        {'name': 'disk', 'kind': 'disk', 'paths': ['/'], 'warning': 85, 'critical': 90},
        {'name': 'memory', 'kind': 'memory', 'warning': 85, 'critical': 95},
        # 50 hosts share 2 cores: the sampled CPU usage is the benchmark's own load, so
        # only thresholds nothing reaches keep the run "healthy" (rc 0, no failed hosts).
        {'name': 'cpu', 'kind': 'cpu', 'sample_seconds': 0.2, 'warning': 100.5,
         'critical': 101},
        {'name': 'backup', 'kind': 'file_freshness', 'path': fresh_file, 'warning': '25h',
         'critical': '49h'},
        {'name': 'postmaster', 'kind': 'process',
         'pidfile': os.path.join(pg['data'], 'postmaster.pid')},
        {'name': 'pg_isready', 'kind': 'command',
         'command': [os.path.join(pg['bindir'], 'pg_isready'),
                     f"--host={pg['socket_dir']}", f"--port={pg['port']}"],
         'pattern': 'accepting connections'},
        {'name': 'certificate', 'kind': 'tls_cert', 'path': cert_file, 'warning': 30,
         'critical': 7},
    ]


def write_inventory(path, hosts, probes):
    inventory = {'all': {
        'hosts': {h: {'ansible_connection': 'local', 'ansible_python_interpreter': PYTHON}
                  for h in hosts},
        'vars': {'daily_checks_probes': probes},
    }}
    with open(path, 'w') as stream:  # JSON is YAML: the yaml inventory plugin reads it
        json.dump(inventory, stream, indent=1)


FLOOR_PLAY = """---
- name: Floor, one no-op module call per host
  hosts: all
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""


def micro_play(url, dest):
    probes = [{'name': f'delay {i}', 'kind': 'http', 'url': url, 'warning': 1000,
               'critical': 2000} for i in range(10)]
    tasks = []
    for label, concurrency in (('parallel', 16), ('serial', 1)):
        tasks.append({'name': f'Ten /delay/200 probes, concurrency {concurrency}',
                      'runbook.ops.health_probe': {'probes': probes,
                                                   'concurrency': concurrency,
                                                   'fail_on_critical': False},
                      'register': label})
    tasks.append({'name': 'Save the results', 'ansible.builtin.copy': {
        'dest': dest, 'mode': '0644',
        'content': '{{ {"parallel": parallel, "serial": serial} | to_json }}'}})
    return json.dumps([{'name': 'health_probe concurrency', 'hosts': 'h01',
                        'gather_facts': False, 'tasks': tasks}], indent=1)


SHELL_TEMPLATE = r"""#!/usr/bin/env bash
# The hand-written anchor: the same 10 checks for every host, hosts in parallel.
set -u
URL=@URL@
PGPORT=@PGPORT@
export PGPASSFILE=@PASSFILE@
PIDFILE=@PIDFILE@
SOCKDIR=@SOCKDIR@
PG_ISREADY=@PG_ISREADY@
FRESH=@FRESH@
CERT=@CERT@

judge() {  # host name value warning critical [lower-is-worse]
  local s=ok
  if [ -z "$3" ]; then s=critical
  elif [ -n "${6:-}" ]; then
    if [ "$3" -lt "$5" ]; then s=critical; elif [ "$3" -lt "$4" ]; then s=warning; fi
  else
    if [ "$3" -gt "$5" ]; then s=critical; elif [ "$3" -gt "$4" ]; then s=warning; fi
  fi
  echo "$1 $2 $s $3"
}

check_host() {
  local h=$1 v t0 t1 a b
  # http: /health answers 200 with status healthy
  if curl -fsS --max-time 5 "$URL/health" | grep -q '"status": "healthy"'; then
    echo "$h api ok"; else echo "$h api critical"; fi
  # tcp: the PostgreSQL port accepts a connection
  if timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PGPORT" 2>/dev/null; then
    echo "$h db_port ok"; else echo "$h db_port critical"; fi
  # postgres: connect over TCP with the passfile, connections in use in percent
  v=$(psql -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -XAtq -c \
      "select count(*) * 100 / current_setting('max_connections')::int from pg_stat_activity" 2>/dev/null)
  judge "$h" db "$v" 80 90
  # disk: usage of / in percent
  v=$(df -P / | awk 'NR == 2 { sub("%", "", $5); print $5 }')
  judge "$h" disk "$v" 85 90
  # memory: MemTotal less MemAvailable in percent
  v=$(awk '/^MemTotal:/ { t = $2 } /^MemAvailable:/ { a = $2 } END { printf "%d", (t - a) * 100 / t }' /proc/meminfo)
  judge "$h" memory "$v" 85 95
  # cpu: usage over 0.2 s from /proc/stat
  read -r _ a < /proc/stat; sleep 0.2; read -r _ b < /proc/stat
  v=$(awk -v a="$a" -v b="$b" 'BEGIN { n = split(a, x, " "); split(b, y, " ");
      for (i = 1; i <= n; i++) { t += y[i] - x[i] } ; idle = (y[4] + y[5]) - (x[4] + x[5]);
      printf "%d", t ? (t - idle) * 100 / t : 0 }')
  judge "$h" cpu "$v" 100 101
  # file freshness: age of the file in seconds (25 h / 49 h)
  v=$(( $(date +%s) - $(stat -c %Y "$FRESH") ))
  judge "$h" backup "$v" 90000 176400
  # process: the postmaster in the pidfile is alive
  if kill -0 "$(head -n 1 "$PIDFILE")" 2>/dev/null; then
    echo "$h postmaster ok"; else echo "$h postmaster critical"; fi
  # command: pg_isready says accepting connections
  if "$PG_ISREADY" --host="$SOCKDIR" --port="$PGPORT" | grep -q 'accepting connections'; then
    echo "$h pg_isready ok"; else echo "$h pg_isready critical"; fi
  # tls_cert: days left of the certificate (30 / 7)
  t1=$(date -d "$(openssl x509 -enddate -noout -in "$CERT" | cut -d= -f2)" +%s)
  t0=$(date +%s)
  judge "$h" certificate "$(( (t1 - t0) / 86400 ))" 30 7 lower
}

for h in @HOSTS@; do
  check_host "$h" &
done
wait
"""


def write_shell(path, services, hosts, fresh_file, cert_file):
    pg = services['postgres']
    q = shlex_quote
    values = {
        'URL': q(services['http']['url']), 'PGPORT': str(pg['port']),
        'PASSFILE': q(pg['passfile']), 'PIDFILE': q(os.path.join(pg['data'], 'postmaster.pid')),
        'SOCKDIR': q(pg['socket_dir']), 'PG_ISREADY': q(os.path.join(pg['bindir'], 'pg_isready')),
        'FRESH': q(fresh_file), 'CERT': q(cert_file), 'HOSTS': ' '.join(hosts)}
    text = SHELL_TEMPLATE
    for key, value in values.items():
        text = text.replace(f'@{key}@', value)
    with open(path, 'w') as stream:
        stream.write(text)
    os.chmod(path, 0o755)


def shlex_quote(text):
    import shlex
    return shlex.quote(text)


# A stdout-independent timing callback for the profile run: the time of every task's
# start, of each host's start and result, and of the end of the run.
TIMER_CALLBACK = '''
import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_task_timer'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.events = {'playbook_start': None, 'tasks': [], 'end': None}

    def v2_playbook_on_start(self, playbook):
        self.events['playbook_start'] = time.time()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.events['tasks'].append({'name': task.get_name(), 'start': time.time(),
                                     'host_start': {}, 'host_done': {}})

    def v2_runner_on_start(self, host, task):
        if self.events['tasks']:
            self.events['tasks'][-1]['host_start'][host.get_name()] = time.time()

    def _done(self, result):
        if self.events['tasks']:
            self.events['tasks'][-1]['host_done'][result._host.get_name()] = time.time()

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = _done
    v2_runner_on_unreachable = _done

    def v2_playbook_on_stats(self, stats):
        self.events['end'] = time.time()
        with open(os.environ['BENCH_TIMER_OUT'], 'w') as stream:
            json.dump(self.events, stream)
'''


# --------------------------------------------------------------------------- measuring

def _tree_rss(root):
    """Summed RSS in bytes and the number of processes of root's process tree."""
    children = {}
    rss = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat', 'rb') as stream:
                fields = stream.read().rsplit(b')', 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)  # fields[1] is the ppid
        rss[pid] = int(fields[21]) * PAGE  # fields[21] is rss in pages
    total, count, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        if pid in rss:
            total += rss[pid]
            count += 1
        todo.extend(children.get(pid, ()))
    return total, count


class Sampler(threading.Thread):
    """Samples the summed RSS of a process tree every interval until stopped."""

    def __init__(self, pid, interval=0.05):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak, self.peak_procs, self.samples = 0, 0, 0
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            total, count = _tree_rss(self.pid)
            self.samples += 1
            if total > self.peak:
                self.peak, self.peak_procs = total, count
            self.stopped.wait(self.interval)


def run(argv, log, env=None, sample=False):
    """Run argv, output to log; return wall seconds, rc, the child's ru_maxrss and peak RSS."""
    with open(log, 'wb') as out:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        sampler = None
        if sample:
            sampler = Sampler(proc.pid)
            sampler.start()
        # wait4 gives this child's own rusage: ru_maxrss is the largest single process
        # of its tree (the child or any descendant it reaped).
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if sampler:
            sampler.stopped.set()
            sampler.join()
    # CPU of the whole tree that ran (user + system of the child and every descendant it
    # reaped): less sensitive than wall time to other load on a shared machine. Servers the
    # runs talk to (PostgreSQL backends, the HTTP service) are not in it.
    result = {'wall': wall, 'rc': proc.returncode, 'ru_maxrss_kib': usage.ru_maxrss,
              'cpu': usage.ru_utime + usage.ru_stime}
    if sampler:
        result.update(tree_rss_peak=sampler.peak, tree_procs_at_peak=sampler.peak_procs,
                      rss_samples=sampler.samples)
    return result


def ansible_env(**extra):
    env = dict(os.environ)
    env['ANSIBLE_CONFIG'] = os.path.join(ROOT, 'ansible.cfg')
    env['PATH'] = VENV_BIN + os.pathsep + env.get('PATH', '')
    env.pop('ANSIBLE_CALLBACKS_ENABLED', None)
    env.update(extra)
    return env


def tail(path, lines=15):
    try:
        with open(path, errors='replace') as stream:
            return ''.join(stream.readlines()[-lines:])
    except OSError:
        return ''


def profile_breakdown(events, launched):
    """Per task: wall from its start to the next task's start; where the rest went."""
    tasks = events['tasks']
    rows = []
    for index, task in enumerate(tasks):
        end = tasks[index + 1]['start'] if index + 1 < len(tasks) else events['end']
        done = sorted(task['host_done'].values())
        worker = [task['host_done'][h] - s for h, s in task['host_start'].items()
                  if h in task['host_done']]
        rows.append({'task': task['name'], 'wall_s': round(end - task['start'], 3),
                     'hosts': len(task['host_done']),
                     'first_result_s': round(done[0] - task['start'], 3) if done else None,
                     'per_host_median_s': round(statistics.median(worker), 3) if worker else None})
    return {
        'startup_s': round(events['playbook_start'] - launched, 3),
        'load_until_first_task_s': round(tasks[0]['start'] - events['playbook_start'], 3)
        if tasks else None,
        'tasks': rows,
    }


# --------------------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--hosts', type=int, default=50)
    parser.add_argument('--no-profile', action='store_true',
                        help='skip the extra daily run that times each task')
    args = parser.parse_args()

    if not os.path.isdir(os.path.join(ROOT, '.collections', 'ansible_collections', 'runbook')):
        raise SystemExit('.collections is missing: run `make venv` first')
    for tool in ('curl', 'psql', 'openssl', 'timeout'):
        if not shutil.which(tool):
            raise SystemExit(f'{tool} is needed by the shell anchor')

    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    hosts = [f'h{i:02d}' for i in range(1, args.hosts + 1)]
    bench_started = time.monotonic()
    try:
        summary = bench(args, hosts, start_services())
    except (BenchError, subprocess.CalledProcessError) as exc:
        print(f'FAILED: {exc}', file=sys.stderr)
        return 1
    finally:
        stop_services()
    summary['bench_wall_s'] = round(time.monotonic() - bench_started, 1)
    with open(os.path.join(RESULTS, 'daily_run.json'), 'w') as stream:
        json.dump(summary, stream, indent=2)
    where = os.path.relpath(os.path.join(RESULTS, 'daily_run.json'), ROOT)
    print(f"total bench wall {summary['bench_wall_s']:.1f} s; summary in {where}")
    return 0


def bench(args, hosts, services):
    fresh_file = os.path.join(WORK, 'backup.dump')
    with open(fresh_file, 'w') as stream:
        stream.write('bench\n')
    cert_file = os.path.join(WORK, 'cert.pem')
    write_cert(cert_file)
    inventory = os.path.join(WORK, 'hosts.yml')
    write_inventory(inventory, hosts, probes_for(services, fresh_file, cert_file))
    floor_play = os.path.join(WORK, 'floor.yml')
    with open(floor_play, 'w') as stream:
        stream.write(FLOOR_PLAY)
    shell_script = os.path.join(WORK, 'daily.sh')
    write_shell(shell_script, services, hosts, fresh_file, cert_file)
    report_dir = os.path.join(WORK, 'reports')

    env = ansible_env()
    commands = {
        'daily': [PLAYBOOK, '-i', inventory, os.path.join(ROOT, 'playbooks', 'daily.yml'),
                  '-e', f'daily_checks_report_dir={report_dir}'],
        'floor': [PLAYBOOK, '-i', inventory, floor_play],
        'shell': ['bash', shell_script],
    }
    print(f'daily-run benchmark: {len(hosts)} hosts x 10 probes, {args.rounds} rounds, '
          f"forks from {os.path.relpath(env['ANSIBLE_CONFIG'], ROOT)}")
    shown = ' '.join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c
                     for c in commands['daily'])
    print(f'  daily: {shown}')

    load_before = os.getloadavg()
    print(f'load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} '
          f'on {os.cpu_count()} CPUs (other load on the machine inflates every wall time)')
    runs = {k: [] for k in commands}
    for rnd in range(1, args.rounds + 1):
        # Alternate the order so that no variant always runs after the same neighbour.
        order = ['daily', 'floor', 'shell'] if rnd % 2 else ['shell', 'floor', 'daily']
        for name in order:
            log = os.path.join(WORK, f'{name}-{rnd}.log')
            result = run(commands[name], log, env=env, sample=(name == 'daily'))
            check_run(name, result, log, len(hosts))
            runs[name].append(result)
            print(f"  round {rnd} {name:<5} {result['wall']:7.2f} s wall  {result['cpu']:6.2f} s CPU  "
                  f"rc {result['rc']}")
    children_maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    load_after = os.getloadavg()

    med = {k: statistics.median(r['wall'] for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r['cpu'] for r in v) for k, v in runs.items()}
    ratio_floor = med['daily'] / med['floor']
    ratio_shell = med['daily'] / med['shell']
    verdict = 'PASS' if ratio_floor <= TARGET else 'MISS'
    peak_tree = max(r['tree_rss_peak'] for r in runs['daily'])
    peak_one = max(r['ru_maxrss_kib'] for r in runs['daily'])
    print()
    print(f"median wall (of {args.rounds}):  daily {med['daily']:.2f} s   "
          f"floor {med['floor']:.2f} s   shell {med['shell']:.3f} s")
    print(f'daily/floor = {ratio_floor:.2f}  (target <= {TARGET:.1f})  {verdict}')
    print(f"median CPU (user+sys of the tree): daily {cpu['daily']:.1f} s   "
          f"floor {cpu['floor']:.1f} s   shell {cpu['shell']:.1f} s   "
          f"daily/floor {cpu['daily'] / cpu['floor']:.2f}  ({os.cpu_count()} CPUs: wall >= CPU / "
          f"{os.cpu_count()})")
    print(f'daily/shell = {ratio_shell:.1f}')
    print(f'load average after the rounds: {load_after[0]:.2f} {load_after[1]:.2f} '
          f'{load_after[2]:.2f}')
    procs = max(r['tree_procs_at_peak'] for r in runs['daily'])
    print(f'controller memory during daily: peak summed RSS of the ansible-playbook tree '
          f'{peak_tree / 2.0 ** 20:.0f} MiB ({procs} processes at the peak, shared pages '
          f'counted in each); largest single process {peak_one / 1024.0:.0f} MiB '
          f'(wait4 ru_maxrss); RUSAGE_CHILDREN ru_maxrss of this bench '
          f'{children_maxrss / 1024.0:.0f} MiB')

    micro = micro_bench(services, inventory, env)
    print(f"health_probe, 10 http probes of /delay/200: concurrency 16 "
          f"{micro['parallel_ms']:.0f} ms, concurrency 1 {micro['serial_ms']:.0f} ms "
          f"(module duration_ms; {micro['serial_ms'] / micro['parallel_ms']:.1f}x)")

    summary = {
        'when': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
        'hosts': len(hosts), 'probes_per_host': 10, 'rounds': args.rounds,
        'commands': commands,
        'median_wall_s': {k: round(v, 3) for k, v in med.items()},
        'median_cpu_s': {k: round(v, 3) for k, v in cpu.items()},
        'ratio_daily_floor_cpu': round(cpu['daily'] / cpu['floor'], 3),
        'cpus': os.cpu_count(), 'loadavg_before': load_before, 'loadavg_after': load_after,
        'runs': {k: [{f: round(x, 3) if isinstance(x, float) else x for f, x in r.items()}
                     for r in v] for k, v in runs.items()},
        'ratio_daily_floor': round(ratio_floor, 3), 'target': TARGET, 'verdict': verdict,
        'ratio_daily_shell': round(ratio_shell, 2),
        'memory': {'daily_tree_rss_peak_mib': round(peak_tree / 2.0 ** 20, 1),
                   'daily_largest_process_mib': round(peak_one / 1024.0, 1),
                   'rusage_children_maxrss_mib': round(children_maxrss / 1024.0, 1)},
        'concurrency': micro,
    }
    if not args.no_profile:
        summary['profile'] = profile(commands['daily'], env)
    return summary


def check_run(name, result, log, nhosts):
    if name == 'daily' and result['rc'] not in (0, 2):
        raise BenchError(f"daily.yml exited {result['rc']} (log {log}):\n{tail(log)}")
    if name == 'daily' and result['rc'] == 2:
        print(f'  note: daily.yml rc 2 (some host failed its verdict); see {log}')
    if name != 'daily' and result['rc'] != 0:
        raise BenchError(f"{name} exited {result['rc']} (log {log}):\n{tail(log)}")
    if name == 'shell':
        with open(log) as stream:
            lines = stream.read().split('\n')
        checks = [line for line in lines if line.strip()]
        if len(checks) != nhosts * 10:
            raise BenchError(f'the shell anchor gave {len(checks)} results, not {nhosts * 10}')
        bad = [line for line in checks if ' ok' not in line]
        if bad:
            print(f'  note: the shell anchor judged {len(bad)} checks not ok, e.g. {bad[0]}')


def micro_bench(services, inventory, env):
    out = os.path.join(WORK, 'concurrency.json')
    play = os.path.join(WORK, 'concurrency.yml')
    with open(play, 'w') as stream:
        stream.write(micro_play(services['http']['url'] + '/delay/200', out))
    log = os.path.join(WORK, 'concurrency.log')
    result = run([PLAYBOOK, '-i', inventory, play], log, env=env)
    if result['rc'] != 0 or not os.path.exists(out):
        raise BenchError(f"the concurrency play failed (rc {result['rc']}, log {log}):\n"
                         f'{tail(log)}')
    with open(out) as stream:
        data = json.load(stream)
    micro = {}
    for label in ('parallel', 'serial'):
        statuses = sorted({c['status'] for c in data[label]['checks']})
        if statuses != ['ok']:
            raise BenchError(f'the {label} /delay/200 probes were not all ok: {statuses}')
        micro[f'{label}_ms'] = data[label]['duration_ms']
    micro['play_wall_s'] = round(result['wall'], 3)
    return micro


def line(label, seconds, extra=''):
    print(f'  {label[:58]:<58} {seconds:7.2f} s{extra}')


def profile(daily_cmd, env):
    """One more daily run with a timing callback: where each task's time goes."""
    plugin_dir = os.path.join(WORK, 'callback_plugins')
    os.makedirs(plugin_dir, exist_ok=True)
    with open(os.path.join(plugin_dir, 'bench_task_timer.py'), 'w') as stream:
        stream.write(TIMER_CALLBACK)
    out = os.path.join(WORK, 'profile-events.json')
    penv = dict(env, ANSIBLE_CALLBACK_PLUGINS=plugin_dir,
                ANSIBLE_CALLBACKS_ENABLED='bench_task_timer', BENCH_TIMER_OUT=out)
    log = os.path.join(WORK, 'profile.log')
    launched = time.time()
    result = run(daily_cmd, log, env=penv)
    ended = time.time()
    if result['rc'] not in (0, 2) or not os.path.exists(out):
        raise BenchError(f"the profiled daily run failed (rc {result['rc']}, log {log}):\n"
                         f'{tail(log)}')
    with open(out) as stream:
        events = json.load(stream)
    breakdown = profile_breakdown(events, launched)
    breakdown['exit_after_stats_s'] = round(ended - events['end'], 3)
    breakdown['wall_s'] = round(result['wall'], 3)
    print()
    print('where one daily run\'s {:.2f} s go (profiled run, timing callback):'.format(result['wall']))
    line('interpreter start, imports, CLI', breakdown['startup_s'])
    line('playbook, inventory and role load until the first task',
         breakdown['load_until_first_task_s'])
    for row in breakdown['tasks']:
        extra = ''
        if row['per_host_median_s'] is not None:
            extra = (f"  ({row['hosts']} hosts, first result after {row['first_result_s']:.2f} s, "
                     f"median per host {row['per_host_median_s']:.2f} s)")
        line(row['task'], row['wall_s'], extra)
    line('after the recap until exit', breakdown['exit_after_stats_s'])
    return breakdown


if __name__ == '__main__':
    sys.exit(main())
