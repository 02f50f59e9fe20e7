#!/usr/bin/env python
"""The log benchmark: runbook.ops.log_scan and log_rotate_check against the shell anchors.

    .venv/bin/python bench/logs.py [--size-mb 1024] [--rounds 3] [--files 100000]
                                   [--skip-jq] [--skip-ansible] [--only scan|rotate|inventory]

Generates (once, reused while it exists) JSON-lines logs under tests/output/logs-bench/:
app-<N>m.jsonl of N MiB (default 1024) and app-<N/4>m.jsonl, lines as runbook 000 writes
them (timestamp, level, execution_time_ms, status, error_type, request_id), sorted in time
over 30 days, about 2 % ERROR; and a tree of --files small files for log_rotate_check.

Then runs, alternating and repeated (median of --rounds), each in a fresh process:

  count    log_scan logic (count of lines matching ERROR)  vs  grep -c ERROR      target <= 2
  stats    log_scan logic (stats of execution_time_ms)     vs  jq | awk (runbook 000's
           `jq -r 'select(.execution_time_ms) | .execution_time_ms' | awk ...`)    target <= 0.25
  window   log_scan logic, count over the last 24 h of the big file: wall time (target < 1 s)
           and bytes read, against the file's size
  memory   peak RSS (wait4) of the stats scan on the two file sizes: flat means equal
  rotate   (--only rotate, or its alias inventory, runs this part alone, in about a minute)
           report: log_rotate_check's per-file work over --files files as the module wires it
           (module_utils.logrotate: survey with max_size, max_age, coverage of *.log against a
           logrotate configuration, then the JSON of the result)  vs  find -printf of the same
           fields (size, mtime, mode, uid, gid, path)                             target <= 2
           glob: the same report with paths: [<tree>/d*/*.log] instead of the directory
           plan: the same plus compress_after 7d / delete_after 30d as check mode plans (the
           /proc scan and the plan; this tree was never cleaned, so most files are in the plan:
           exact counts and bytes, the first list_limit (default 100) files listed)   target <= 2
           memory: peak RSS (wait4) of report and plan at --files / 10 and --files files
           ansible: the module in a real ansible-playbook run (report options; planning in
           check mode, target <= 2; and planning with --check --diff, which lists every file)
           vs  the same play running `find -printf > /dev/null` through ansible.builtin.shell,
           and running ansible.builtin.ping (Ansible's fixed cost); skip with --skip-ansible

"log_scan logic" is plugins/module_utils/logscan.py run by a fresh python (interpreter
start and imports included, Ansible's per-task cost not: that is bench/daily_run.py's
subject). The files are read from the page cache after the first round, for the anchors
as for us. Summary also in bench/results/logs.json.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, 'tests', 'output', 'logs-bench')
RESULTS = os.path.join(ROOT, 'bench', 'results')
PYTHON = os.path.join(ROOT, '.venv', 'bin', 'python')
COLLECTIONS = os.path.join(ROOT, '.collections')

SCAN = r'''
import json, sys, time
sys.path.insert(0, %(collections)r)
from ansible_collections.runbook.ops.plugins.module_utils.logscan import run_scan
spec = json.loads(sys.argv[1])
checks, facts = run_scan(spec)
print(json.dumps({'checks': checks, 'bytes_read': facts['bytes_read']}))
'''

ROTATE = r'''
import json, sys, time
sys.path.insert(0, %(collections)r)
from ansible_collections.runbook.ops.plugins.module_utils import logrotate
spec = json.loads(sys.argv[1])
now = time.time()
targets = logrotate.block_targets(logrotate.read_config_set([spec['config']]))
limit = spec['list_limit']
found = logrotate.survey(spec['paths'], ['*'], now, max_size=spec['max_size'], max_age=spec['max_age'],
                         live_patterns=['*.log'], targets=targets, compress_after=spec.get('compress_after'),
                         delete_after=spec.get('delete_after'), sample=logrotate.list_bound(limit),
                         plan_limit=limit, keep_plan=False)
plan = found.plan.result()
result = {'files': {'count': found.count, 'bytes': found.bytes}, 'plan': plan, 'checks': [
    {'name': 'large_files', 'value': found.large.count,
     'details': {'files': [{'path': p, 'size': v} for p, v in found.large.items()]}},
    {'name': 'old_files', 'value': found.old.count,
     'details': {'files': [{'path': p, 'age': round(v, 1)} for p, v in found.old.items()]}},
    {'name': 'uncovered', 'value': found.uncovered.count,
     'details': {'files': [p for p, _none in found.uncovered.items()]}}]}
text = json.dumps(result)
print(json.dumps({'files': found.count, 'large': found.large.count, 'old': found.old.count,
                  'uncovered': found.uncovered.count, 'compress': plan['counts']['compress'],
                  'delete': plan['counts']['delete'], 'listed': len(plan['compress']) + len(plan['delete']),
                  'json_bytes': len(text)}))
'''
LIST_LIMIT = 100  # log_rotate_check's default list_limit
FIND = "find %s -type f -printf '%%s %%T@ %%m %%U %%G %%p\\n' > /dev/null"


def generate_jsonl(path, size_mb, seed=5):
    """A time-ordered JSON-lines log of about size_mb MiB ending now."""
    if os.path.exists(path) and os.path.getsize(path) >= size_mb * 1024 * 1024 * 0.99:
        return
    rng = random.Random(seed)
    target = size_mb * 1024 * 1024
    line_len = 190
    lines = target // line_len
    end = time.time()
    start = end - 30 * 86400
    step = (end - start) / lines
    tmp = path + '.tmp'
    written = 0
    levels = ['INFO'] * 48 + ['ERROR']
    types = ['TimeoutError', 'DatabaseError', 'ValidationError', 'KeyError']
    with open(tmp, 'w') as stream:
        batch = []
        moment = start
        index = 0
        while written < target:
            moment += step
            level = rng.choice(levels)
            stamp = time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(moment)) + '.%03dZ' % (index % 1000)
            latency = round(rng.lognormvariate(3.2, 0.5), 1)
            if level == 'ERROR':
                line = ('{"timestamp": "%s", "level": "ERROR", "message": "analysis failed", '
                        '"execution_time_ms": %s, "status": "error", "error_type": "%s", '
                        '"request_id": "r%08d"}\n' % (stamp, latency, rng.choice(types), index))
            else:
                line = ('{"timestamp": "%s", "level": "INFO", "message": "analysis done", '
                        '"function": "analyze_peg_data", "execution_time_ms": %s, '
                        '"status": "success", "request_id": "r%08d"}\n' % (stamp, latency, index))
            batch.append(line)
            index += 1
            if len(batch) >= 20000:
                chunk = ''.join(batch)
                stream.write(chunk)
                written += len(chunk)
                batch = []
        if batch:
            stream.write(''.join(batch))
    os.replace(tmp, path)


def generate_tree(root, count):
    marker = os.path.join(root, '.complete-%d' % count)
    if os.path.exists(marker):
        return
    shutil.rmtree(root, ignore_errors=True)
    now = time.time()
    per_dir = 1000
    for index in range(count):
        directory = os.path.join(root, 'd%03d' % (index // per_dir))
        if index % per_dir == 0:
            os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, 'app%05d.log' % index)
        with open(path, 'w') as stream:
            stream.write('x' * (index % 50))
        age = (index % 60) * 86400
        os.utime(path, (now - age, now - age))
    open(marker, 'w').close()


def timed(argv, shell=False):
    """(seconds, stdout, None) of one run of an anchor in a fresh process."""
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, shell=shell,
                               executable='/bin/bash' if shell else None)
    out, err = process.communicate()
    status = process.returncode
    elapsed = time.monotonic() - started
    if status != 0:
        raise SystemExit('failed (%s): %s\n%s' % (status, argv, err.decode()))
    return elapsed, out.decode(), None


def timed_rss(argv):
    """(seconds, stdout, peak RSS KiB) using wait4 for the child's own maximum RSS."""
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = process.stdout.read()
    err = process.stderr.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - started
    if process.returncode != 0:
        raise SystemExit('failed (%s): %s\n%s' % (process.returncode, argv, err.decode()))
    return elapsed, out.decode(), usage.ru_maxrss


def scan_argv(spec):
    return [PYTHON, '-c', SCAN % {'collections': COLLECTIONS}, json.dumps(spec)]


def median_pair(rounds, ours, anchor):
    """Alternate ours and the anchor; medians of each."""
    mine, theirs, outputs = [], [], []
    for _round in range(rounds):
        seconds, out, _rss = ours()
        mine.append(seconds)
        outputs.append(out)
        seconds, _out, _rss = anchor()
        theirs.append(seconds)
    return statistics.median(mine), statistics.median(theirs), outputs[-1]


def verdict(ratio, target, lower_is_better=True):
    good = ratio <= target if lower_is_better else ratio >= target
    return 'MET' if good else 'MISS'


def last_timestamp(path):
    with open(path, 'rb') as stream:
        stream.seek(max(0, os.path.getsize(path) - 4096))
        line = stream.read().rstrip(b'\n').rsplit(b'\n', 1)[-1]
    return json.loads(line)['timestamp']


def rotate_argv(tree, config, plan=False, paths=None):
    spec = {'paths': paths or [tree], 'config': config, 'max_size': 40, 'max_age': 30 * 86400,
            'list_limit': LIST_LIMIT}
    if plan:
        spec.update(compress_after=7 * 86400, delete_after=30 * 86400)
    return [PYTHON, '-c', ROTATE % {'collections': COLLECTIONS}, json.dumps(spec)]


def write_config(tree):
    """A logrotate configuration covering the first tenth of the tree's directories."""
    path = tree + '.logrotate.conf'
    with open(path, 'w') as stream:
        stream.write('%s/d00*/*.log {\n    missingok\n}\n' % tree)
    return path


def ansible_play(tasks, path):
    play = [{'name': 'bench', 'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
             'vars': {'ansible_python_interpreter': PYTHON}, 'tasks': tasks}]
    with open(path, 'w') as stream:
        json.dump(play, stream, indent=1)  # JSON is YAML
    env = 'ANSIBLE_CONFIG=%s ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_NOCOLOR=1' % os.path.join(ROOT, 'ansible.cfg')
    return '%s %s -i localhost, %s > /dev/null' % (env, os.path.join(ROOT, '.venv', 'bin', 'ansible-playbook'), path)


def rotate_bench(args):
    """log_rotate_check's file work against find -printf; see the module docstring."""
    summary = {}
    small_files = max(1, args.files // 10)
    trees = {}
    for count in (small_files, args.files):
        tree = os.path.join(DATA, 'tree' if count == args.files else 'tree-%d' % count)
        started = time.monotonic()
        generate_tree(tree, count)
        trees[count] = (tree, write_config(tree))
        print('tree: %d files under %s, ready in %.1fs' % (count, tree, time.monotonic() - started))
    tree, config = trees[args.files]
    find = FIND % tree
    for label, plan, paths in (('report', False, None), ('glob', False, [os.path.join(tree, 'd*', '*.log')]),
                               ('plan', True, None)):
        argv = rotate_argv(tree, config, plan, paths)
        ours, anchor, out = median_pair(args.rounds, lambda argv=argv: timed_rss(argv),
                                        lambda: timed(find, shell=True))
        counts = json.loads(out)
        ratio = ours / anchor
        summary[label] = {'log_rotate_check_s': round(ours, 3), 'find_s': round(anchor, 3), 'ratio': round(ratio, 3),
                          'target': 2, 'counts': counts}
        print('rotate  %-6s %d files %.2fs  find -printf %.2fs  ratio %.2f (target <= 2: %s)  %s'
              % (label, counts['files'], ours, anchor, ratio, verdict(ratio, 2),
                 ', '.join('%s %s' % item for item in sorted(counts.items()) if item[0] != 'files')))
    memory = {}
    for label, plan in (('report', False), ('plan', True)):
        for count, (path, conf) in sorted(trees.items()):
            memory['%s_%d' % (label, count)] = timed_rss(rotate_argv(path, conf, plan))[2]
        print('memory  peak RSS of %-6s %s' % (label, ', '.join(
            '%d files %.1f MiB' % (count, memory['%s_%d' % (label, count)] / 1024.0) for count in sorted(trees))))
    summary['memory_peak_rss_kib'] = memory
    if not args.skip_ansible:
        plays = os.path.join(DATA, 'plays')
        os.makedirs(plays, exist_ok=True)
        module = ansible_play([{'runbook.ops.log_rotate_check': {
            'paths': [tree], 'max_size': '40', 'max_age': '30d', 'logrotate_config': [config],
            'logrotate_debug': False}}], os.path.join(plays, 'module.yml'))
        plan = ansible_play([{'runbook.ops.log_rotate_check': {
            'paths': [tree], 'max_size': '40', 'max_age': '30d', 'logrotate_config': [config],
            'logrotate_debug': False, 'compress_after': '7d', 'delete_after': '30d'}}],
            os.path.join(plays, 'plan.yml')) + ' --check'
        diff = plan.replace(' --check', ' --check --diff')
        shell = ansible_play([{'ansible.builtin.shell': find, 'changed_when': False}], os.path.join(plays, 'find.yml'))
        ping = ansible_play([{'ansible.builtin.ping': {}}], os.path.join(plays, 'ping.yml'))
        times = {'module': [], 'plan': [], 'diff': [], 'find': [], 'ping': []}
        for _round in range(args.rounds):
            for name, command in (('module', module), ('plan', plan), ('diff', diff), ('find', shell),
                                  ('ping', ping)):
                times[name].append(timed(command, shell=True)[0])
        medians = dict((name, statistics.median(values)) for name, values in times.items())
        ratio = medians['module'] / medians['find']
        summary['ansible'] = {'module_s': round(medians['module'], 3), 'shell_find_s': round(medians['find'], 3),
                              'ping_s': round(medians['ping'], 3), 'ratio': round(ratio, 3), 'target': 2,
                              'plan_check_mode_s': round(medians['plan'], 3),
                              'plan_ratio': round(medians['plan'] / medians['find'], 3), 'plan_target': 2,
                              'plan_diff_s': round(medians['diff'], 3),
                              'plan_diff_ratio': round(medians['diff'] / medians['find'], 3)}
        print('ansible playbook with log_rotate_check %.2fs  with shell find -printf %.2fs  ratio %.2f (target <= 2: '
              '%s); with ping %.2fs (the fixed cost)'
              % (medians['module'], medians['find'], ratio, verdict(ratio, 2), medians['ping']))
        planned = summary['plan']['counts']['compress'] + summary['plan']['counts']['delete']
        ratio = medians['plan'] / medians['find']
        print('ansible playbook with log_rotate_check --check planning (compress 7d, delete 30d) %.2fs  ratio %.2f '
              'to shell find (target <= 2: %s; %d files planned, %d listed)'
              % (medians['plan'], ratio, verdict(ratio, 2), planned, summary['plan']['counts']['listed']))
        print('ansible playbook with log_rotate_check --check --diff %.2fs  ratio %.2f to shell find (the diff lists '
              'all %d files)' % (medians['diff'], medians['diff'] / medians['find'], planned))
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--size-mb', type=int, default=1024)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--files', type=int, default=100000)
    parser.add_argument('--skip-jq', action='store_true', help='jq takes about a minute a round')
    parser.add_argument('--skip-ansible', action='store_true', help='no ansible-playbook runs in rotate')
    parser.add_argument('--only', choices=('scan', 'rotate', 'inventory'), help='inventory: the same as rotate')
    args = parser.parse_args()
    os.makedirs(DATA, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)
    summary = {}
    big = os.path.join(DATA, 'app-%dm.jsonl' % args.size_mb)
    small = os.path.join(DATA, 'app-%dm.jsonl' % (args.size_mb // 4))
    if args.only is None or args.only == 'scan':
        started = time.monotonic()
        generate_jsonl(big, args.size_mb)
        generate_jsonl(small, args.size_mb // 4)
        print('data: %s (%.0f MiB), %s (%.0f MiB), ready in %.1fs'
              % (big, os.path.getsize(big) / 2 ** 20, small, os.path.getsize(small) / 2 ** 20,
                 time.monotonic() - started))
        subprocess.run(['cat', big], stdout=subprocess.DEVNULL, check=True)  # warm the cache

        count_spec = {'paths': [big], 'include_rotated': False,
                      'metrics': [{'name': 'errors', 'type': 'count', 'pattern': 'ERROR'}]}
        ours, grep, out = median_pair(args.rounds, lambda: timed_rss(scan_argv(count_spec)),
                                      lambda: timed(['grep', '-c', 'ERROR', big]))
        grep_count = int(subprocess.run(['grep', '-c', 'ERROR', big], capture_output=True,
                                        check=True).stdout)
        our_count = json.loads(out)['checks'][0]['value']
        ratio = ours / grep
        summary['count'] = {'log_scan_s': round(ours, 3), 'grep_s': round(grep, 3),
                            'ratio': round(ratio, 3), 'target': 2, 'same_count': our_count == grep_count}
        print('count   log_scan %.2fs  grep -c %.2fs  ratio %.2f (target <= 2: %s)  counts %d / %d'
              % (ours, grep, ratio, verdict(ratio, 2), our_count, grep_count))

        stats_spec = {'paths': [big], 'include_rotated': False,
                      'metrics': [{'name': 'latency', 'type': 'stats', 'field': 'execution_time_ms',
                                   'buckets': [25, 50]}]}
        jq_cmd = ("jq -r 'select(.execution_time_ms) | .execution_time_ms' %s | awk '{s+=$1; c++; "
                  "if(c==1||$1<mn)mn=$1; if($1>mx)mx=$1} END {printf \"%%d %%.3f %%s %%s\\n\", c, s/c, mn, mx}'"
                  % big)
        if args.skip_jq:
            seconds, out, _rss = timed_rss(scan_argv(stats_spec))
            print('stats   log_scan %.2fs (jq skipped)' % seconds)
            summary['stats'] = {'log_scan_s': round(seconds, 3)}
        else:
            ours, jq, out = median_pair(max(1, min(args.rounds, 2)),
                                        lambda: timed_rss(scan_argv(stats_spec)),
                                        lambda: timed(jq_cmd, shell=True))
            jq_out = subprocess.run(jq_cmd, shell=True, capture_output=True, text=True,
                                    check=True).stdout.split()
            stats = json.loads(out)['checks'][0]['details']['stats']
            ratio = ours / jq
            summary['stats'] = {'log_scan_s': round(ours, 3), 'jq_s': round(jq, 3),
                                'ratio': round(ratio, 3), 'target': 0.25, 'stats': stats,
                                'jq': jq_out}
            print('stats   log_scan %.2fs  jq|awk %.2fs  ratio %.3f (target <= 0.25: %s)'
                  % (ours, jq, ratio, verdict(ratio, 0.25)))
            print('        ours: count %s avg %s min %s max %s p95 %s; jq|awk: count %s avg %s min %s max %s'
                  % (stats['count'], stats['avg'], stats['min'], stats['max'], stats['p95'],
                     *jq_out))

        end = last_timestamp(big)
        end_epoch = time.mktime(time.strptime(end[:19], '%Y-%m-%dT%H:%M:%S')) - time.timezone
        since = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(end_epoch - 86400))
        window_spec = {'paths': [big], 'include_rotated': False, 'since': since,
                       'metrics': [{'name': 'errors_24h', 'type': 'count', 'pattern': 'ERROR'}]}
        times, read = [], None
        for _round in range(args.rounds):
            seconds, out, _rss = timed_rss(scan_argv(window_spec))
            times.append(seconds)
            read = json.loads(out)['bytes_read']
        size = os.path.getsize(big)
        window = statistics.median(times)
        summary['window'] = {'seconds': round(window, 3), 'bytes_read': read, 'file_bytes': size,
                             'target_s': 1}
        print('window  last 24 h of %.0f MiB: %.3fs (target < 1 s: %s), read %.1f MiB (%.2f %% of the '
              'file; 24 h of 30 days is %.2f %%)' % (size / 2 ** 20, window, verdict(window, 1),
                                                     read / 2 ** 20, 100.0 * read / size, 100 / 30.0))

        rss = {}
        for path in (small, big):
            _seconds, _out, peak = timed_rss(scan_argv(dict(stats_spec, paths=[path])))
            rss[os.path.basename(path)] = peak
        summary['memory_peak_rss_kib'] = rss
        print('memory  peak RSS of the stats scan: %s' % ', '.join(
            '%s %.1f MiB' % (name, kib / 1024.0) for name, kib in rss.items()))

    if args.only != 'scan':
        summary['rotate'] = rotate_bench(args)

    path = os.path.join(RESULTS, 'logs.json')
    if args.only and os.path.exists(path):  # a partial run keeps the other part's figures
        with open(path) as stream:
            summary = dict(json.load(stream), **summary)
    with open(path, 'w') as stream:
        json.dump(summary, stream, indent=2, sort_keys=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
