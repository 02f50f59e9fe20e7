#!/usr/bin/env python
"""Run Molecule scenarios and print how long each stage took.

    tests/lab/molecule_run.py                 # every scenario under molecule/
    tests/lab/molecule_run.py daily_checks    # some of them

Builds the local images first (tests/lab/lab.sh images: no registry is reachable
here), then runs ``molecule test -s <scenario>`` for each, one after the other.
Molecule's whole output goes to tests/output/molecule/<scenario>.log; the terminal
gets one line per stage with its time and result, and the log's tail when a
scenario fails.  Whatever happens, the scenario's containers are removed (Molecule
destroys them itself; a last ``molecule destroy`` catches a run that was killed).

Exit status: 0 when every scenario passed; 1 when one failed; 3 when no container
engine can run here (the reason is printed; nothing is faked).
"""

import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUTPUT = os.path.join(ROOT, 'tests', 'output', 'molecule')
ANSI = re.compile(r'\x1b\[[0-9;]*m')
# "[daily_checks > converge] Executing" without colour, "daily_checks ➜ converge: ..." with it.
STAGE = re.compile(r'\[?(?P<scenario>[\w.-]+) (?:>|\u279c) (?P<stage>[a-z_]+)\]?:? '
                   r'(?:(?P<start>Executing)$|Executed: (?P<result>.+))')


def molecule_env():
    env = dict(os.environ)
    env['PATH'] = os.path.join(ROOT, '.venv', 'bin') + os.pathsep + env.get('PATH', '')
    env.setdefault('ANSIBLE_FORCE_COLOR', '0')
    env['NO_COLOR'] = '1'
    env['PY_COLORS'] = '0'
    return env


def scenarios(project=ROOT):
    base = os.path.join(project, 'molecule')
    return sorted(name for name in os.listdir(base)
                  if os.path.isfile(os.path.join(base, name, 'molecule.yml')))


def run_scenario(name, env, project=ROOT, out=sys.stdout):
    """Run one scenario; returns (passed, [(stage, seconds, result)], log path)."""
    log_path = os.path.join(OUTPUT, name + '.log')
    stages, current, started = [], None, time.monotonic()
    argv = ['molecule', 'test', '-s', name, '--no-command-borders']
    out.write('molecule %s\n' % name)
    out.flush()
    with open(log_path, 'w') as log:
        process = subprocess.Popen(argv, cwd=project, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, universal_newlines=True)
        for line in process.stdout:
            log.write(line)
            match = STAGE.search(ANSI.sub('', line).rstrip())
            if not match or match.group('scenario') != name:
                continue
            if match.group('start'):
                current = (match.group('stage'), time.monotonic())
            elif current and current[0] == match.group('stage'):
                seconds = time.monotonic() - current[1]
                result = match.group('result').strip()
                stages.append((current[0], seconds, result))
                out.write('  %-12s %7.1f s  %s\n' % (current[0], seconds, result))
                out.flush()
                current = None
        rc = process.wait()
    total = time.monotonic() - started
    passed = rc == 0
    out.write('  %-12s %7.1f s  %s\n' % ('total', total, 'passed' if passed else 'FAILED (rc %d)' % rc))
    if not passed:
        subprocess.run(['molecule', 'destroy', '-s', name], cwd=project, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        with open(log_path) as log:
            tail = log.readlines()[-60:]
        out.write('--- last lines of %s ---\n%s\n' % (log_path, ''.join(tail)))
    out.flush()
    return passed, stages, log_path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('scenario', nargs='*', help='scenario names (default: all)')
    parser.add_argument('--project-dir', default=ROOT,
                        help='the directory holding molecule/ (default: this checkout)')
    args = parser.parse_args(argv)
    os.makedirs(OUTPUT, exist_ok=True)
    found = scenarios(args.project_dir)
    names = args.scenario or found
    unknown = sorted(set(names) - set(found))
    if unknown:
        parser.error('no scenario %s under %s/molecule (there are: %s)' % (
            ', '.join(unknown), args.project_dir, ', '.join(found)))
    images = subprocess.run(['bash', os.path.join(ROOT, 'tests', 'lab', 'lab.sh'), 'images'],
                            cwd=ROOT, check=False)
    if images.returncode == 3:
        print('SKIPPED molecule %s: no container engine can run on this machine (see above)'
              % ' '.join(names))
        return 3
    if images.returncode:
        print('molecule: the lab images could not be built (see above)')
        return 1
    env = molecule_env()
    failed = [name for name in names if not run_scenario(name, env, args.project_dir)[0]]
    if failed:
        print('molecule: FAILED %s' % ' '.join(failed))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
