# -*- coding: utf-8 -*-
"""runbook.ops.log_scan and the health_probe ``log`` kind through a real
ansible-playbook, on generated logs with known answers: JSON lines, a rotated .gz,
a line without a timestamp, binary garbage, a truncated last line, an empty file, a
symlink loop, a dangling link, a directory, and a file really unreadable because the
module runs as an unprivileged user (become) while the file is root's 0600."""

import gzip
import json
import os
import pwd
import shutil
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.runbook.ops.plugins.module_utils.checks import percentile


def iso(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


REPO = Path(__file__).resolve().parents[2]
# under tests/output, not pytest's 0700 /tmp/pytest-of-root: an unprivileged user must be
# able to reach the files whose unreadability is tested
OUTPUT = Path(os.environ.get('RUNBOOK_OPS_IT_OUTPUT', str(REPO / 'tests' / 'output' / 'integration')))


@pytest.fixture(scope='module')
def logs():
    """app.log: 600 JSON lines, one a minute up to a minute ago, every 10th an ERROR
    with execution_time_ms = index % 100; a traceback line without a timestamp after
    index 595; binary garbage; a truncated last line.  app.log.1.gz: 600 more lines,
    10 to 20 hours ago."""
    root = OUTPUT / ('logs-%s' % os.environ.get('PYTEST_XDIST_WORKER', 'main'))
    shutil.rmtree(str(root), ignore_errors=True)
    root.mkdir(parents=True)
    for path in (OUTPUT.parent, OUTPUT, root):
        os.chmod(str(path), 0o755)
    now = time.time()
    lines = []
    for index in range(600):
        error = index % 10 == 0
        lines.append(json.dumps({'timestamp': iso(now - (600 - index) * 60),
                                 'level': 'ERROR' if error else 'INFO',
                                 'execution_time_ms': index % 100,
                                 'status': 'error' if error else 'success',
                                 'error_type': 'Timeout' if error else None}) + '\n')
        if index == 595:
            lines.append('Traceback (most recent call last): ERROR in handler\n')
    data = ''.join(lines).encode() + b'\x00\xff\xfe garbage \x01\n' + b'{"timestamp": "%s", "level": "ERR' % (
        iso(now - 1).encode())
    (root / 'app.log').write_bytes(data)
    rotated = ''.join(json.dumps({'timestamp': iso(now - 20 * 3600 + index * 60), 'level': 'ERROR',
                                  'execution_time_ms': 1}) + '\n' for index in range(600))
    with gzip.open(str(root / 'app.log.1.gz'), 'wb') as stream:
        stream.write(rotated.encode())
    os.utime(str(root / 'app.log.1.gz'), (now - 10 * 3600, now - 10 * 3600))
    (root / 'empty.log').write_bytes(b'')
    os.symlink(str(root / 'loop.log'), str(root / 'loop.log'))
    os.symlink(str(root / 'gone'), str(root / 'dangling.log'))
    (root / 'dir.log').mkdir()
    secret = root / 'secret.log'
    secret.write_text('%s ERROR secret\n' % iso(now))
    os.chmod(str(secret), 0o600)
    batch = root / 'batch.log'
    batch.write_text('%s INFO BATCH PROCESS COMPLETED SUCCESSFULLY\n%s INFO later\n' % (
        time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now - 2 * 3600)),
        time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now - 3600))))
    yield {'root': root, 'now': now}
    shutil.rmtree(str(root), ignore_errors=True)


def test_metrics_with_known_answers(run_module, logs):
    root, now = logs['root'], logs['now']
    # between index 480 and 481, whenever the test runs: indexes 481..599 are in
    since = iso(now - 120 * 60 + 30)
    run = run_module('runbook.ops.log_scan', {
        'paths': [str(root / 'app.log')],
        'since': since,
        'metrics': [
            {'name': 'errors', 'type': 'count', 'pattern': 'ERROR|CRITICAL', 'warning': 5, 'critical': 100},
            {'name': 'errors_all', 'type': 'count', 'pattern': 'ERROR', 'since': '100d'},
            {'name': 'latency', 'type': 'stats', 'field': 'execution_time_ms', 'unit': 'ms',
             'stat': 'p95', 'buckets': [25, 50]},
            {'name': 'rate', 'type': 'rate', 'field': 'status', 'match': 'error', 'warning': 2, 'critical': 50},
            {'name': 'types', 'type': 'values', 'field': 'error_type', 'where': {'level': 'ERROR'}},
        ]})
    assert run.rc == 0, run
    assert run.result['changed'] is False
    checks = run.checks
    # ERROR lines 490..590 (11) and the traceback without a timestamp, which belongs to
    # index 595's entry; the garbage and the truncated last line hold no ERROR
    assert checks['errors']['value'] == 12
    assert checks['errors']['status'] == 'warning'
    # all lines: 60 ERROR lines, the traceback, and 600 in the rotated .gz
    assert checks['errors_all']['value'] == 661
    values = [index % 100 for index in range(481, 600)]
    stats = checks['latency']['details']['stats']
    assert stats['count'] == 119
    assert stats['p95'] == round(percentile(values, 95), 3) == checks['latency']['value']
    assert stats['p50'] == round(percentile(values, 50), 3)
    assert stats['p99'] == round(percentile(values, 99), 3)
    assert stats['min'] == 0 and stats['max'] == 99
    assert [b['count'] for b in checks['latency']['details']['buckets']] == [
        sum(1 for v in values if v < 25), sum(1 for v in values if 25 <= v < 50),
        sum(1 for v in values if v >= 50)]
    assert checks['rate']['value'] == round(100.0 * 11 / 119, 3)
    assert checks['rate']['status'] == 'warning'
    assert checks['types']['details']['top'] == [{'value': 'Timeout', 'count': 11}]
    # errors_all's window reaches into the rotated file: read once, decompressed
    by_path = dict((f['path'], f) for f in run.result['files'])
    assert by_path[str(root / 'app.log.1.gz')]['compression'] == 'gz'
    assert by_path[str(root / 'app.log.1.gz')]['bytes_read'] > 0
    assert run.result['status'] == 'warning'
    # with only the 2 h window the rotated file, last written 10 h ago, is skipped unread
    run = run_module('runbook.ops.log_scan', {
        'paths': [str(root / 'app.log')], 'since': since,
        'metrics': [{'name': 'errors', 'type': 'count', 'pattern': 'ERROR|CRITICAL'}]})
    by_path = dict((f['path'], f) for f in run.result['files'])
    assert by_path[str(root / 'app.log.1.gz')]['bytes_read'] == 0
    assert by_path[str(root / 'app.log')]['start_offset'] > 0
    assert run.check('errors')['value'] == 12


def test_unreadable_and_odd_paths_are_unknown_not_fatal(run_play, logs):
    root = logs['root']
    entry = pwd.getpwnam('nobody')
    wrapper = root / 'python-as-nobody'
    wrapper.write_text('#!/bin/sh\nexec setpriv --reuid=%d --regid=%d --clear-groups %s "$@"\n'
                       % (entry.pw_uid, entry.pw_gid, sys.executable))
    os.chmod(str(wrapper), 0o755)
    run = run_play([{
        'runbook.ops.log_scan': {
            'paths': [str(root / '*.log'), str(root / 'missing.log')],
            'include_rotated': False,
            'metrics': [{'name': 'errors', 'type': 'count', 'pattern': 'ERROR'}]},
        # the module's own Python runs as nobody (setpriv drops root before it starts), so a
        # root-only 0600 file is really unreadable to it; nobody's login shell is nologin, which
        # rules out become with su
        'vars': {'ansible_python_interpreter': str(wrapper), 'ansible_pipelining': True}}])
    assert run.rc == 0, run
    assert 'problems' in run.result, run.result.get('msg', run)
    problems = run.result['problems']
    assert problems[str(root / 'secret.log')] == 'permission denied'
    assert 'loop' in problems[str(root / 'loop.log')]
    assert 'dangling' in problems[str(root / 'dangling.log')]
    assert 'directory' in problems[str(root / 'dir.log')]
    assert 'does not exist' in problems[str(root / 'missing.log')]
    files = run.check('files')
    assert files['status'] == 'unknown' and files['value'] == 5
    # app.log (61 ERROR lines incl. the traceback), batch.log none, empty.log none
    assert run.check('errors')['value'] == 61


def test_marker_age(run_module, logs):
    root = logs['root']
    run = run_module('runbook.ops.log_scan', {
        'paths': [str(root / 'batch.log')],
        'metrics': [{'name': 'batch', 'type': 'marker', 'pattern': 'BATCH PROCESS COMPLETED SUCCESSFULLY',
                     'warning': '1h', 'critical': '25h'},
                    {'name': 'failed', 'type': 'marker', 'pattern': 'BATCH PROCESS FAILED'}],
        'fail_on_critical': True})
    assert run.result['failed'], run  # no FAILED marker at all is critical (the play ignores errors)
    batch = run.check('batch')
    assert batch['status'] == 'warning'
    assert 2 * 3600 <= batch['value'] < 2 * 3600 + 600
    assert batch['critical'] == 25 * 3600
    assert run.check('failed')['status'] == 'critical'


def test_bad_metric_fails_with_a_message(run_module, logs):
    run = run_module('runbook.ops.log_scan', {
        'paths': [str(logs['root'] / 'app.log')],
        'metrics': [{'name': 'lat', 'type': 'stats', 'field': 'execution_time_ms', 'buckets': [50, 25]}]})
    assert run.result['failed']
    assert "metric 'lat'" in run.result['msg'] and 'increasing' in run.result['msg']
    assert 'Traceback' not in run.stdout + run.stderr


def test_log_probe_kind_in_health_probe(run_probes, logs):
    root, now = logs['root'], logs['now']
    run = run_probes([
        {'name': 'app', 'kind': 'log', 'paths': [str(root / 'app.log')], 'since': iso(now - 120 * 60 + 30),
         'metrics': [{'name': 'errors', 'type': 'count', 'pattern': 'ERROR|CRITICAL', 'critical': 100},
                     {'name': 'latency', 'type': 'stats', 'field': 'execution_time_ms', 'unit': 'ms'}]},
        {'name': 'batch', 'kind': 'log', 'paths': [str(root / 'batch.log')],
         'metrics': [{'name': 'success', 'type': 'marker', 'pattern': 'COMPLETED SUCCESSFULLY',
                      'critical': '25h'}]},
        {'name': 'disk', 'kind': 'disk', 'paths': ['/']},
    ], fail_on_critical=False)
    assert run.rc == 0, run
    assert run.check('app.errors')['value'] == 12
    assert run.check('app.errors')['kind'] == 'log'
    latency = run.check('app.latency')
    assert latency['value'] == round(sum(i % 100 for i in range(481, 600)) / 119.0, 3)
    assert run.check('batch.success')['status'] == 'ok'
    bad = run_probes([{'name': 'x', 'kind': 'log', 'paths': ['/tmp'], 'warning': 3,
                       'metrics': [{'type': 'count', 'pattern': 'E'}]}])
    assert bad.result['failed'] and 'give warning and critical to each of its metrics' in bad.result['msg']
