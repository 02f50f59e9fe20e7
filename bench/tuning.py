#!/usr/bin/env python
"""The tuning benchmark: one runbook.ops.sysctl_tune call with 20 keys against 20
ansible.posix.sysctl tasks setting the same keys, side by side.

    .venv/bin/python bench/tuning.py [--rounds 5]

Every run happens inside a fresh network namespace (``ip netns exec``), so the 20
net.* keys start from the kernel's defaults each time and the host's own settings are
never touched; the drop-in and ansible.posix.sysctl's sysctl_file are temporary files.
Runs alternate between the variants:

  tune    one runbook.ops.sysctl_tune task with the 20 keys
  posix   20 ansible.posix.sysctl tasks (sysctl_file in a temp dir, reload: true, the
          module's usual use: each task rewrites the file and runs sysctl -p on it)
  floor   the same play with one ansible.builtin.meta: noop, ansible-playbook's fixed cost

It prints the median wall time of each, the ratio tune/posix of whole runs and of the
task time (the run minus the floor), against the target 0.1, and checks that both
variants left the namespace with the wanted values.  Needs root (ip netns).
Summary: bench/results/tuning.json.  Exit 1 only when a run failed, not on a MISS.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'bench', 'results')
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
PYTHON = os.path.join(VENV_BIN, 'python')
PLAYBOOK = os.path.join(VENV_BIN, 'ansible-playbook')
TARGET = 0.1

# 20 keys every network namespace has and may set, each away from its default
PROFILE = {
    'net.core.somaxconn': '65535', 'net.ipv4.tcp_max_syn_backlog': '8192',
    'net.ipv4.tcp_fin_timeout': '15', 'net.ipv4.tcp_tw_reuse': '1',
    'net.ipv4.tcp_keepalive_time': '300', 'net.ipv4.tcp_keepalive_probes': '3',
    'net.ipv4.tcp_keepalive_intvl': '30', 'net.ipv4.tcp_rmem': '4096 87380 16777216',
    'net.ipv4.tcp_wmem': '4096 65536 16777216', 'net.ipv4.tcp_syn_retries': '3',
    'net.ipv4.tcp_synack_retries': '3', 'net.ipv4.tcp_retries2': '8',
    'net.ipv4.tcp_max_tw_buckets': '262144', 'net.ipv4.tcp_orphan_retries': '2',
    'net.ipv4.tcp_slow_start_after_idle': '0', 'net.ipv4.tcp_mtu_probing': '1',
    'net.ipv4.tcp_sack': '1', 'net.ipv4.tcp_timestamps': '1',
    'net.ipv4.ip_local_port_range': '10240 65000', 'net.ipv4.tcp_notsent_lowat': '131072',
}


class BenchError(Exception):
    """A run failed: the figures would mean nothing."""


def tasks_for(variant, work):
    if variant == 'tune':
        return [{'name': 'profile', 'runbook.ops.sysctl_tune': {
            'name': 'bench', 'profile': PROFILE, 'dropin_dir': work,
            'search_dirs': [work], 'sysctl_conf': os.path.join(work, 'none.conf')}}]
    if variant == 'posix':
        return [{'name': key, 'ansible.posix.sysctl': {
            'name': key, 'value': value, 'sysctl_file': os.path.join(work, 'sysctl.conf'),
            'reload': True}} for key, value in PROFILE.items()]
    return [{'name': 'noop', 'ansible.builtin.meta': 'noop'}]


def run(variant):
    """One ansible-playbook run of the variant in a fresh namespace; returns seconds."""
    work = tempfile.mkdtemp(prefix='bench-tuning-')
    namespace = 'rbbench-%s' % uuid.uuid4().hex[:8]
    subprocess.run(['ip', 'netns', 'add', namespace], check=True)
    try:
        playbook = os.path.join(work, 'play.yml')
        with open(playbook, 'w') as stream:
            json.dump([{'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
                        'vars': {'ansible_python_interpreter': PYTHON},
                        'tasks': tasks_for(variant, work)}], stream)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
                   ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_NOCOLOR='1')
        started = time.monotonic()
        process = subprocess.run(['ip', 'netns', 'exec', namespace, PLAYBOOK, '-i', 'localhost,',
                                  playbook], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        elapsed = time.monotonic() - started
        if process.returncode != 0:
            raise BenchError('%s failed:\n%s' % (variant, process.stdout[-3000:]))
        if variant != 'floor':
            for key, value in PROFILE.items():
                out = subprocess.run(['ip', 'netns', 'exec', namespace, 'cat',
                                      '/proc/sys/' + key.replace('.', '/')], check=True,
                                     stdout=subprocess.PIPE, universal_newlines=True).stdout
                if out.split() != value.split():
                    raise BenchError('%s left %s = %r, not %r' % (variant, key, out.strip(), value))
        return elapsed
    finally:
        subprocess.run(['ip', 'netns', 'del', namespace], check=False)
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--rounds', type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit('needs root for ip netns')
    times = {'tune': [], 'posix': [], 'floor': []}
    try:
        for round_number in range(args.rounds):
            for variant in ('tune', 'posix', 'floor'):
                times[variant].append(run(variant))
            print('round %d: tune %.2fs  posix %.2fs  floor %.2fs' % (
                round_number + 1, times['tune'][-1], times['posix'][-1], times['floor'][-1]))
    except BenchError as exc:
        print('FAILED: %s' % exc)
        return 1
    median = dict((k, statistics.median(v)) for k, v in times.items())
    wall_ratio = median['tune'] / median['posix']
    task_ratio = max(median['tune'] - median['floor'], 0.0) / (median['posix'] - median['floor'])
    print()
    print('medians of %d rounds: tune %.2fs, posix (20 tasks) %.2fs, floor %.2fs'
          % (args.rounds, median['tune'], median['posix'], median['floor']))
    print('task time, tune/posix: %.3f (target <= %.1f) %s'
          % (task_ratio, TARGET, 'OK' if task_ratio <= TARGET else 'MISS'))
    print('whole run, tune/posix: %.3f (includes ansible-playbook start-up, %.2fs)'
          % (wall_ratio, median['floor']))
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, 'tuning.json'), 'w') as stream:
        json.dump({'rounds': args.rounds, 'times': times, 'median': median,
                   'task_ratio': task_ratio, 'wall_ratio': wall_ratio, 'target': TARGET},
                  stream, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
