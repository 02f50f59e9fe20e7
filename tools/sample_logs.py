#!/usr/bin/env python
"""Small sample logs for `make demo`, written under the demo's state directory.

    sample_logs.py --state DIR

DIR/logs/app.log: runbook 000's JSON lines (level, execution_time_ms, status, error_type)
over the last 36 hours, a line every 5 minutes, a few ERROR lines; DIR/logs/batch/
candidate_generation.log: runbook 001's batch log whose last success marker is 3 hours
old; DIR/logrotate.d/, where the demo's logrotate policy goes.  Timestamps are relative
to now, so the files are rewritten on every `embedded.py start`.
"""

import argparse
import json
import os
import random
import time


def iso(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


def write(state, now=None):
    now = time.time() if now is None else now
    rng = random.Random(0)
    logs = os.path.join(state, 'logs')
    os.makedirs(os.path.join(logs, 'batch'), exist_ok=True)
    os.makedirs(os.path.join(state, 'logrotate.d'), exist_ok=True)
    lines = []
    for index in range(36 * 12):
        stamp = now - (36 * 12 - index) * 300
        error = index % 60 == 7
        lines.append(json.dumps({
            'timestamp': iso(stamp), 'level': 'ERROR' if error else 'INFO',
            'message': 'analysis failed' if error else 'analysis done',
            'function': 'analyze_peg_data', 'execution_time_ms': round(rng.lognormvariate(3.0, 0.4), 1),
            'status': 'error' if error else 'success',
            'error_type': 'TimeoutError' if error else None, 'request_id': 'r%05d' % index}) + '\n')
    _replace(os.path.join(logs, 'app.log'), ''.join(lines))
    batch = []
    for day in (2, 1, 0):
        start = now - day * 86400 - 5 * 3600
        batch.append('%s INFO Batch started\n' % time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(start)))
        batch.append('%s INFO Processed 1200 users with candidates\n'
                     % time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(start + 3600)))
        batch.append('%s INFO BATCH PROCESS COMPLETED SUCCESSFULLY\n'
                     % time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(start + 2 * 3600)))
    _replace(os.path.join(logs, 'batch', 'candidate_generation.log'), ''.join(batch))
    return logs


def _replace(path, text):
    with open(path + '.tmp', 'w') as stream:
        stream.write(text)
    os.replace(path + '.tmp', path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--state', required=True)
    args = parser.parse_args()
    print(write(os.path.abspath(args.state)))


if __name__ == '__main__':
    main()
