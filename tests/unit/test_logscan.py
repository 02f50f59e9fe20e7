# -*- coding: utf-8 -*-
"""Unit tests of plugins/module_utils/logscan.py and logrotate.py: timestamp parsing,
the binary search for a window's first line, line counting, percentiles from value
counts, metric validation, and scans of generated files with known answers."""

import gzip
import json
import os
import random
import time

import pytest

from ansible_collections.runbook.ops.plugins.module_utils import logrotate, logscan
from ansible_collections.runbook.ops.plugins.module_utils.checks import InvalidProbe, percentile

NOW = 1714564800.0  # 2024-05-01T12:00:00Z


def iso(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


# ---- timestamps ---------------------------------------------------------------------

@pytest.mark.parametrize('line, expected', [
    (b'2024-05-01T12:00:00Z ERROR x', NOW),
    (b'2024-05-01T12:00:00.250Z ERROR x', NOW + 0.25),
    (b'2024-05-01 21:00:00,5+09:00 ERROR', NOW + 0.5),
    (b'{"timestamp": "2024-05-01T11:00:00+00:00", "level": "INFO"}', NOW - 3600),
    (b'10.0.0.1 - - [01/May/2024:12:00:00 +0000] "GET / HTTP/1.1" 200 5', NOW),
    (b'10.0.0.1 - - [01/May/2024:21:00:00 +0900] "GET / HTTP/1.1" 200 5', NOW),
    (b'no timestamp here', None),
    (b'\xff\xfe\x00garbage 2024-13-45', None),
])
def test_time_parser_auto(line, expected):
    assert logscan.TimeParser('auto', utc=True, now=NOW)(line) == expected


def test_syslog_takes_the_year_before_when_the_date_is_ahead():
    parse = logscan.TimeParser('syslog', utc=True, now=NOW)
    assert parse(b'May  1 11:00:00 host app: x') == NOW - 3600
    # December is ahead of 1 May: it was last year's December
    assert parse(b'Dec 31 23:00:00 host app: x') == logscan.TimeParser('iso8601', utc=True)(
        b'2023-12-31T23:00:00Z')


def test_custom_strptime_format():
    parse = logscan.TimeParser('%d.%m.%Y %H:%M', r'^\[(.+?)\]', utc=True, now=NOW)
    assert parse(b'[01.05.2024 12:00] done') == NOW
    with pytest.raises(InvalidProbe, match='time_pattern'):
        logscan.TimeParser('%d.%m.%Y', None)


@pytest.mark.parametrize('value, expected', [
    ('12h', NOW - 43200), ('7d', NOW - 7 * 86400), (3600, NOW - 3600),
    ('today', NOW - 43200), ('yesterday', NOW - 43200 - 86400),
    ('2024-05-01T00:00:00Z', NOW - 43200), ('2024-05-01', NOW - 43200), ('now', NOW),
])
def test_window_bounds(value, expected):
    assert logscan.parse_time_bound(value, NOW, 'since', utc=True) == expected


def test_bad_window_bound_names_the_fix():
    with pytest.raises(InvalidProbe, match="'12 hours'.*duration"):
        logscan.parse_time_bound('12 hours', NOW, 'since')


# ---- window search ------------------------------------------------------------------

def _lines(count, start, step, untimed_every=0):
    out = []
    for index in range(count):
        out.append(('%s INFO line %d\n' % (iso(start + index * step), index)).encode())
        if untimed_every and index % untimed_every == 0:
            out.append(b'    continuation without a timestamp\n')
    return b''.join(out)


@pytest.mark.parametrize('untimed', [0, 3])
def test_find_line_at_agrees_with_a_linear_scan(untimed):
    data = _lines(20000, NOW - 20000 * 10, 10, untimed)
    parse = logscan.TimeParser('iso8601', utc=True)
    reader = logscan._Bytes(data=data)
    for target in (NOW - 300000, NOW - 123456, NOW - 10, NOW - 20000 * 10 - 5, NOW + 5):
        got = logscan.find_line_at(reader, 0, len(data), target, parse)
        expected = len(data)
        pos = 0
        for line in data.splitlines(True):
            stamp = parse(line)
            if stamp is not None and stamp >= target:
                expected = pos
                break
            pos += len(line)
        assert got == expected, target


# ---- counting -----------------------------------------------------------------------

@pytest.mark.parametrize('pattern', ['ERROR', 'ERROR|CRITICAL', 'ERR(OR)?', 'E'])
def test_line_counter_counts_lines_like_grep_c(pattern):
    import re
    rng = random.Random(7)
    words = ['ERROR', 'CRITICAL', 'INFO', 'ERRORERROR', 'E', 'debug', 'CRITICAL ERROR']
    lines = [' '.join(rng.choice(words) for _word in range(rng.randint(0, 4))) for _line in range(5000)]
    data = ('\n'.join(lines) + '\n').encode()
    expected = sum(1 for line in lines if re.search(pattern, line))
    counter = logscan.LineCounter(pattern)
    block = logscan.Block(data)
    counter.feed(block)
    assert counter.count == expected
    # the same in two halves split at a line boundary
    cut = data.index(b'\n', len(data) // 2) + 1
    halves = logscan.LineCounter(pattern)
    halves.feed(logscan.Block(data, 0, cut))
    halves.feed(logscan.Block(data, cut, len(data)))
    assert halves.count == expected


def test_literal_words():
    assert logscan.literal_words('ERROR|CRITICAL') == [b'ERROR', b'CRITICAL']
    assert logscan.literal_words('ERR.R') is None
    assert logscan.literal_words('a|') is None


# ---- percentiles --------------------------------------------------------------------

def test_counted_percentiles_equal_the_list_percentiles():
    rng = random.Random(3)
    values = [rng.choice([1, 2, 2.5, 7, 10, 100]) for _index in range(999)]
    counts = logscan.ValueCounts()
    for value in values:
        counts.add(value)
    stats = counts.stats()
    for pct in (50, 95, 99):
        assert stats['p%d' % pct] == round(percentile(values, pct), 3)
    assert stats['count'] == 999 and stats['min'] == min(values) and stats['max'] == max(values)
    assert stats['avg'] == round(sum(values) / 999.0, 3)


def test_many_distinct_values_turn_approximate_but_stay_close(monkeypatch):
    monkeypatch.setattr(logscan, 'MAX_DISTINCT', 100)
    rng = random.Random(4)
    values = [rng.uniform(1, 1000) for _index in range(5000)]
    counts = logscan.ValueCounts()
    for value in values:
        counts.add(value)
    stats = counts.stats()
    assert not counts.exact
    assert stats['count'] == 5000 and stats['max'] == max(values)
    assert abs(stats['p95'] - percentile(values, 95)) / percentile(values, 95) < 0.001


# ---- validation ---------------------------------------------------------------------

@pytest.mark.parametrize('metric, message', [
    ({'name': 'x', 'type': 'nope'}, 'type'),
    ({'name': 'x', 'type': 'count'}, 'pattern is required'),
    ({'name': 'x', 'type': 'count', 'pattern': '('}, 'not a regular expression'),
    ({'name': 'x', 'type': 'count', 'pattern': 'E', 'field': 'a'}, 'does not apply'),
    ({'name': 'x', 'type': 'rate', 'pattern': 'E'}, 'requests'),
    ({'name': 'x', 'type': 'rate', 'pattern': 'E', 'field': 's', 'match': 'e'}, 'not both'),
    ({'name': 'x', 'type': 'stats', 'field': 'a', 'stat': 'p42'}, 'stat'),
    ({'name': 'x', 'type': 'stats', 'field': 'a', 'buckets': [50, 25]}, 'increasing'),
    ({'name': 'x', 'type': 'count', 'pattern': 'E', 'warning': 10, 'critical': 5}, 'warning'),
    ({'name': 'x', 'type': 'marker', 'pattern': 'OK', 'critical': 'a day'}, 'duration'),
    ({'name': 'x', 'type': 'marker', 'pattern': 'OK', 'since': '1h'}, 'marker'),
])
def test_bad_metrics_are_named(metric, message):
    with pytest.raises(InvalidProbe, match=message):
        logscan.prepare_scan({'paths': ['/x'], 'metrics': [metric]}, now=NOW)


def test_duplicate_metric_names():
    with pytest.raises(InvalidProbe, match='used twice'):
        logscan.prepare_scan({'paths': ['/x'], 'metrics': [
            {'name': 'a', 'type': 'count', 'pattern': 'E'}, {'name': 'a', 'type': 'count', 'pattern': 'F'}]})


# ---- whole scans --------------------------------------------------------------------

def write_json_log(path, now, count=600, step=60, compress=False):
    """One line a minute ending a minute before now; every 10th an ERROR with
    error_type; execution_time_ms = index % 100."""
    lines = []
    for index in range(count):
        stamp = now - (count - index) * step
        error = index % 10 == 0
        lines.append(json.dumps({
            'timestamp': iso(stamp), 'level': 'ERROR' if error else 'INFO',
            'execution_time_ms': index % 100, 'status': 'error' if error else 'success',
            'error_type': ('Timeout' if index % 20 == 0 else 'DB') if error else None}) + '\n')
    data = ''.join(lines).encode()
    if compress:
        with gzip.open(path, 'wb') as stream:
            stream.write(data)
    else:
        with open(path, 'wb') as stream:
            stream.write(data)
    return lines


def test_scan_json_lines_with_a_window(tmp_path):
    path = tmp_path / 'app.log'
    write_json_log(str(path), NOW)
    # the last 120 minutes: indexes 480..599 (the line at exactly now-120min included)
    checks, facts = logscan.run_scan({'paths': [str(path)], 'since': '2h', 'timezone': 'utc', 'metrics': [
        {'name': 'errors', 'type': 'count', 'pattern': 'ERROR'},
        {'name': 'latency', 'type': 'stats', 'field': 'execution_time_ms', 'buckets': [25, 50]},
        {'name': 'rate', 'type': 'rate', 'field': 'status', 'match': 'error'},
        {'name': 'types', 'type': 'values', 'field': 'error_type', 'where': {'level': 'ERROR'}},
    ]}, now=NOW)
    by_name = dict((c['name'], c) for c in checks)
    window = list(range(480, 600))
    values = [i % 100 for i in window]
    assert by_name['errors']['value'] == 12
    stats = by_name['latency']['details']['stats']
    assert stats['count'] == 120
    assert stats['p95'] == round(percentile(values, 95), 3)
    assert stats['p99'] == round(percentile(values, 99), 3)
    assert stats['avg'] == round(sum(values) / 120.0, 3)
    assert [b['count'] for b in by_name['latency']['details']['buckets']] == [
        sum(1 for v in values if v < 25), sum(1 for v in values if 25 <= v < 50),
        sum(1 for v in values if v >= 50)]
    assert by_name['rate']['value'] == 10.0
    assert by_name['types']['details']['top'] == [{'value': 'Timeout', 'count': 6}, {'value': 'DB', 'count': 6}] \
        or by_name['types']['details']['top'] == [{'value': 'DB', 'count': 6}, {'value': 'Timeout', 'count': 6}]
    assert facts['files'][0]['start_offset'] > 0


def test_fast_and_slow_json_paths_agree(tmp_path):
    path = tmp_path / 'mixed.log'
    lines = write_json_log(str(path), NOW, count=300)
    with open(str(path), 'a') as stream:  # lines the regex cannot take
        stream.write('{"timestamp": "%s", "execution_time_ms": null}\n' % iso(NOW - 1))
        stream.write('{"timestamp": "%s", "execution_time_ms": "12"}\n' % iso(NOW - 1))
        stream.write('{"timestamp": "%s", "execution_time_ms": 1e3}\n' % iso(NOW - 1))
    del lines
    results = []
    for fast in (True, False):
        checks, _facts = logscan.run_scan({'paths': [str(path)], 'metrics': [
            {'name': 'lat', 'type': 'stats', 'field': 'execution_time_ms', 'fast': fast}]}, now=NOW)
        results.append(checks[0]['details']['stats'])
    assert results[0] == results[1]
    assert results[0]['count'] == 301 and results[0]['max'] == 1000


def test_rotated_gzip_files_are_read(tmp_path):
    write_json_log(str(tmp_path / 'app.log.1.gz'), NOW - 600 * 60, compress=True)
    write_json_log(str(tmp_path / 'app.log'), NOW)
    os.utime(str(tmp_path / 'app.log.1.gz'), (NOW - 36000, NOW - 36000))
    checks, facts = logscan.run_scan({'paths': [str(tmp_path / 'app.log')], 'metrics': [
        {'name': 'errors', 'type': 'count', 'pattern': 'ERROR'}]}, now=NOW)
    assert checks[0]['value'] == 120
    assert [f['compression'] for f in facts['files']] == ['gz', None]
    # a window after the rotated file's last write skips it without reading it
    checks, facts = logscan.run_scan({'paths': [str(tmp_path / 'app.log')], 'since': '1h', 'metrics': [
        {'name': 'errors', 'type': 'count', 'pattern': 'ERROR'}]}, now=NOW)
    assert facts['files'][0]['bytes_read'] == 0 and 'skipped' in facts['files'][0]


def test_marker_age_and_missing_marker(tmp_path):
    path = tmp_path / 'batch.log'
    path.write_text('%s INFO start\n%s INFO BATCH PROCESS COMPLETED SUCCESSFULLY\n'
                    '%s INFO start\n  no timestamp here\n' % (
                        time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(NOW - 30 * 3600)),
                        time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(NOW - 26 * 3600)),
                        time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(NOW - 3600))))
    checks, _facts = logscan.run_scan({'paths': [str(path)], 'metrics': [
        {'name': 'ok', 'type': 'marker', 'pattern': 'COMPLETED SUCCESSFULLY', 'critical': '25h'},
        {'name': 'never', 'type': 'marker', 'pattern': 'FAILED'}]}, now=NOW)
    assert checks[0]['value'] == 26 * 3600 and checks[0]['status'] == 'critical'
    assert checks[1]['status'] == 'critical' and 'no line matches' in checks[1]['message']


def test_access_log_metrics(tmp_path):
    path = tmp_path / 'access.log'
    stamp = time.strftime('%d/%b/%Y:%H:%M:%S +0000', time.gmtime(NOW - 60))
    lines = []
    for index in range(30):
        lines.append('10.0.0.1 - - [%s] "GET /api/items/%d HTTP/1.1" %d 12 "-" "curl"' % (
            stamp, index, 404 if index % 3 == 0 else 200))
    for _index in range(12):
        lines.append('10.0.0.2 - - [%s] "POST /api/v1/auth/login HTTP/1.1" 401 0 "-" "x"' % stamp)
    lines.append('10.0.0.3 - - [%s] "GET /search?q=1%%27%%20UNION%%20SELECT%%20password%%20FROM%%20users '
                 'HTTP/1.1" 500 0 "-" "x"' % stamp)
    lines.append('10.0.0.3 - - [%s] "GET /api/update HTTP/1.1" 200 0 "-" "x"' % stamp)
    path.write_text('\n'.join(lines) + '\n')
    checks, _facts = logscan.run_scan({'paths': [str(path)], 'since': '1h', 'metrics': [
        {'name': 'clients', 'type': 'clients'},
        {'name': 'sqli', 'type': 'injections'},
        {'name': 'logins', 'type': 'logins', 'path': '^/api/v1/auth/login', 'over': 10},
    ]}, now=NOW)
    by_name = dict((c['name'], c) for c in checks)
    assert by_name['clients']['value'] == 12  # 10.0.0.2: 12 x 401
    assert by_name['clients']['details']['by_class'] == {'1xx': 0, '2xx': 21, '3xx': 0, '4xx': 22, '5xx': 1}
    assert by_name['sqli']['value'] == 1  # /api/update is no injection
    assert by_name['logins']['value'] == 1
    assert by_name['logins']['details']['clients'] == [{'client': '10.0.0.2', 'attempts': 12}]


def test_odd_files(tmp_path):
    good = tmp_path / 'good.log'
    good.write_bytes(b'2024-05-01T11:00:00Z ERROR one\n\xff\xfe\x00\x01 ERROR binary\n'
                     b'2024-05-01T11:30:00Z ERROR trun')  # a truncated last line
    (tmp_path / 'empty.log').write_bytes(b'')
    (tmp_path / 'dir.log').mkdir()
    os.symlink(str(tmp_path / 'nowhere'), str(tmp_path / 'dangling.log'))
    os.symlink(str(tmp_path / 'loop.log'), str(tmp_path / 'loop.log'))
    checks, facts = logscan.run_scan({'paths': [str(tmp_path / '*.log')], 'include_rotated': False,
                                      'metrics': [{'name': 'e', 'type': 'count', 'pattern': 'ERROR'}]},
                                     now=NOW)
    assert checks[0]['value'] == 3
    files = checks[1]
    assert files['name'] == 'files' and files['status'] == 'unknown' and files['value'] == 3
    reasons = facts['problems']
    assert 'directory' in reasons[str(tmp_path / 'dir.log')]
    assert 'dangling' in reasons[str(tmp_path / 'dangling.log')]
    assert 'loop' in reasons[str(tmp_path / 'loop.log')]


# ---- logrotate helpers --------------------------------------------------------------

def test_parse_size():
    assert logrotate.parse_size('100M', 'x') == 100 * 1024 ** 2
    assert logrotate.parse_size('1.5G', 'x') == int(1.5 * 1024 ** 3)
    with pytest.raises(InvalidProbe, match='not a size'):
        logrotate.parse_size('lots', 'max_size')


def test_parse_config_blocks_and_includes(tmp_path):
    included = tmp_path / 'd'
    included.mkdir()
    (included / 'app').write_text('/var/log/app/*.log /var/log/app/x.log {\n  daily\n  postrotate\n'
                                  '    /bin/kill -HUP 1 { }\n  endscript\n}\n')
    (included / 'old.dpkg-old').write_text('/var/log/old.log {\n}\n')
    main = tmp_path / 'logrotate.conf'
    main.write_text('weekly\ninclude %s\n"/var/log/with space.log"\n{\n  rotate 4\n}\n' % included)
    blocks = logrotate.read_config_set([str(main)])
    assert [b['patterns'] for b in blocks] == [['/var/log/app/*.log', '/var/log/app/x.log'],
                                               ['/var/log/with space.log']]


def test_plan_maintenance(tmp_path):
    files = []
    for name, age in (('a.log', 8), ('b.log', 1), ('c.log.gz', 31), ('d.log.gz', 8), ('e.log', 40)):
        path = tmp_path / name
        path.write_text('x')
        os.utime(str(path), (NOW - age * 86400, NOW - age * 86400))
    (tmp_path / 'f.log').write_text('x')
    os.utime(str(tmp_path / 'f.log'), (NOW - 9 * 86400, NOW - 9 * 86400))
    (tmp_path / 'f.log.gz').write_text('x')
    files = logrotate.inventory_files([str(tmp_path)])
    plan = logrotate.plan_maintenance(files, NOW, 7 * 86400, 30 * 86400, 'gzip')
    assert [os.path.basename(e['path']) for e in plan['compress']] == ['a.log']
    assert sorted(os.path.basename(e['path']) for e in plan['delete']) == ['c.log.gz', 'e.log']
    assert [os.path.basename(e['path']) for e in plan['skipped']] == ['f.log']


def test_figures_beside_the_judged_value():
    stats = {'stats': {'count': 3, 'min': 6, 'max': 53.7, 'p95': 39.045, 'avg': 22.0},
             'buckets': [{'bucket': '<25', 'count': 2, 'percent': 66.667},
                         {'bucket': '>=25', 'count': 1, 'percent': 33.333}]}
    assert logscan._figures('stats', stats, 'ms') == (
        'count 3, min 6, max 53.7, p95 39.05 ms; <25 2 (66.7 %), >=25 1 (33.3 %)')
    assert logscan._figures('stats', {'stats': stats['stats']}, None) == 'count 3, min 6, max 53.7, p95 39.05'
    top = [{'value': 'E%d' % index, 'count': 10 - index} for index in range(7)]
    assert logscan._figures('values', {'top': top, 'distinct': 9}, 'lines') == (
        'top: E0 10, E1 9, E2 8, E3 7, E4 6 (9 distinct)')
    assert logscan._figures('values', {'top': top[:1], 'distinct': 1}, 'lines') == 'top: E0 10'
    assert logscan._figures('count', {}, 'lines') == ''
