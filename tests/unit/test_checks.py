# -*- coding: utf-8 -*-
"""Unit tests of plugins/module_utils/checks.py: thresholds, severities,
percentiles, durations and JSON assertions.  No Ansible runs here."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.runbook.ops.plugins.module_utils import checks
from ansible_collections.runbook.ops.plugins.module_utils.checks import (
    ABOVE, BELOW, CRITICAL, OK, UNKNOWN, WARNING, InvalidProbe, evaluate,
    evaluate_assertion, format_duration, latency_stats, lookup_path, parse_assertion,
    parse_duration, percentile, summarize, validate_thresholds, worst,
)

WHAT = "probe 'api' (http)"


# ---- percentile ----------------------------------------------------------------
# Expected values are numpy.percentile's default (method='linear'), worked out by
# hand: rank = (n - 1) * pct / 100, then interpolate between the neighbours.

@pytest.mark.parametrize('pct, expected', [
    (0, 15.0),      # rank 0
    (25, 20.0),     # rank 1
    (40, 29.0),     # rank 1.6: 20 + 0.6 * (35 - 20)
    (50, 35.0),     # rank 2
    (95, 48.0),     # rank 3.8: 40 + 0.8 * (50 - 40)
    (99, 49.6),     # rank 3.96
    (100, 50.0),    # rank 4
])
def test_percentile_matches_numpy_linear(pct, expected):
    assert percentile([15, 20, 35, 40, 50], pct) == pytest.approx(expected)


@pytest.mark.parametrize('pct, expected', [(10, 1.3), (50, 2.5), (75, 3.25), (90, 3.7)])
def test_percentile_even_count(pct, expected):
    assert percentile([1, 2, 3, 4], pct) == pytest.approx(expected)


def test_percentile_sorts_its_input_and_leaves_it_alone():
    values = [40, 15, 50, 20, 35]
    assert percentile(values, 40) == pytest.approx(29.0)
    assert values == [40, 15, 50, 20, 35]


def test_percentile_of_floats():
    assert percentile([1.5, 2.5], 33) == pytest.approx(1.83)


@pytest.mark.parametrize('pct', [0, 1, 50, 99, 100])
def test_percentile_of_one_value_is_that_value(pct):
    assert percentile([7], pct) == 7.0
    assert isinstance(percentile([7], pct), float)


@pytest.mark.parametrize('pct', [0, 50, 100])
def test_percentile_of_nothing_is_none(pct):
    assert percentile([], pct) is None


@pytest.mark.parametrize('pct', [-0.1, 100.5, float('nan')])
def test_percentile_outside_0_100_is_refused(pct):
    with pytest.raises(ValueError, match='percentile must be within 0..100'):
        percentile([1, 2], pct)


finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(finite, min_size=1, max_size=40),
       st.floats(min_value=0, max_value=100), st.floats(min_value=0, max_value=100))
def test_percentile_is_monotonic_in_pct(values, a, b):
    low, high = sorted((a, b))
    assert percentile(values, low) <= percentile(values, high)


@settings(max_examples=300, deadline=None)
@given(st.lists(finite, min_size=1, max_size=40), st.floats(min_value=0, max_value=100))
def test_percentile_lies_within_min_and_max(values, pct):
    result = percentile(values, pct)
    assert min(values) <= result <= max(values)
    assert percentile(values, 0) == min(values)
    assert percentile(values, 100) == max(values)


# ---- latency_stats ---------------------------------------------------------------

def test_latency_stats():
    stats = latency_stats([15, 20, 35, 40, 50])
    assert stats == {'count': 5, 'avg': 32.0, 'min': 15, 'p50': 35.0, 'p95': 48.0,
                     'p99': 49.6, 'max': 50}


def test_latency_stats_rounds_to_three_places():
    stats = latency_stats([1.0001, 2.0004, 3.3333333])
    assert stats['avg'] == 2.111
    assert stats['max'] == 3.333
    assert stats['min'] == 1.0


def test_latency_stats_of_one_sample():
    assert latency_stats([12.5]) == {'count': 1, 'avg': 12.5, 'min': 12.5, 'p50': 12.5,
                                     'p95': 12.5, 'p99': 12.5, 'max': 12.5}


def test_latency_stats_of_nothing():
    assert latency_stats([]) == {'count': 0, 'avg': None, 'min': None, 'p50': None,
                                 'p95': None, 'p99': None, 'max': None}


# ---- evaluate ---------------------------------------------------------------------

@pytest.mark.parametrize('value, expected', [
    (0, OK), (79.9, OK), (80, OK), (80.01, WARNING), (90, WARNING), (90.5, CRITICAL),
    (1000, CRITICAL),
])
def test_evaluate_above(value, expected):
    assert evaluate(value, 80, 90, ABOVE) == expected


@pytest.mark.parametrize('value, expected', [
    (400, OK), (30, OK), (29.99, WARNING), (7, WARNING), (6.5, CRITICAL), (-3, CRITICAL),
])
def test_evaluate_below(value, expected):
    assert evaluate(value, 30, 7, BELOW) == expected


def test_evaluate_default_direction_is_above():
    assert evaluate(91, 80, 90) == CRITICAL


def test_evaluate_equal_thresholds_give_critical_past_them():
    assert evaluate(5, 5, 5, ABOVE) == OK
    assert evaluate(6, 5, 5, ABOVE) == CRITICAL


def test_evaluate_without_thresholds_is_ok():
    assert evaluate(10 ** 9, None, None, ABOVE) == OK
    assert evaluate(-1, None, None, BELOW) == OK


def test_evaluate_with_one_threshold():
    assert evaluate(95, None, 90, ABOVE) == CRITICAL
    assert evaluate(95, 90, None, ABOVE) == WARNING
    assert evaluate(0, None, 1, BELOW) == CRITICAL


@pytest.mark.parametrize('direction', [ABOVE, BELOW])
def test_evaluate_none_is_unknown(direction):
    assert evaluate(None, 80, 90, direction) == UNKNOWN
    assert evaluate(None, None, None, direction) == UNKNOWN


# ---- validate_thresholds -------------------------------------------------------------

def test_validate_thresholds_accepts_sane_values():
    validate_thresholds(80, 90, ABOVE, 'x')
    validate_thresholds(90, 90, ABOVE, 'x')
    validate_thresholds(30, 7, BELOW, 'x')
    validate_thresholds(0, 0.5, ABOVE, 'x')
    validate_thresholds(None, None, ABOVE, 'x')
    validate_thresholds(None, 5, BELOW, 'x')


def test_validate_thresholds_negative():
    with pytest.raises(InvalidProbe) as info:
        validate_thresholds(-1, 90, ABOVE, "probe 'm' (memory), usage")
    assert str(info.value) == ("probe 'm' (memory), usage: warning threshold -1 is negative; "
                               "give a value >= 0")
    with pytest.raises(InvalidProbe, match=r'critical threshold -0.5 is negative'):
        validate_thresholds(None, -0.5, ABOVE, 'x')


def test_validate_thresholds_nan():
    with pytest.raises(InvalidProbe) as info:
        validate_thresholds(float('nan'), None, ABOVE, "probe 'm' (memory), usage")
    assert str(info.value) == "probe 'm' (memory), usage: warning threshold is NaN, not a number"


def test_validate_thresholds_warning_above_critical_for_above():
    with pytest.raises(InvalidProbe) as info:
        validate_thresholds(95, 90, ABOVE, "probe 'm' (memory), usage")
    assert str(info.value) == (
        "probe 'm' (memory), usage: warning threshold 95 is above critical 90; higher values "
        "are worse here, so warning must be <= critical")


def test_validate_thresholds_warning_below_critical_for_below():
    with pytest.raises(InvalidProbe) as info:
        validate_thresholds(3, 10, BELOW, "probe 't' (tls_cert), days_left")
    assert str(info.value) == (
        "probe 't' (tls_cert), days_left: warning threshold 3 is below critical 10; lower "
        "values are worse here, so warning must be >= critical")


@pytest.mark.parametrize('bad', [True, False, '80', 'high', [80], {'v': 1}])
def test_validate_thresholds_not_numbers(bad):
    with pytest.raises(InvalidProbe) as info:
        validate_thresholds(bad, None, ABOVE, 'probe X')
    assert str(info.value) == 'probe X: warning threshold %r is not a number' % (bad,)
    with pytest.raises(InvalidProbe, match='probe X: critical threshold'):
        validate_thresholds(None, bad, ABOVE, 'probe X')


# ---- worst / summarize ------------------------------------------------------------------

def test_severity_order():
    assert worst([]) == OK
    assert worst([OK, OK]) == OK
    assert worst([OK, WARNING]) == WARNING
    assert worst([WARNING, UNKNOWN, OK]) == UNKNOWN
    assert worst([UNKNOWN, CRITICAL, WARNING]) == CRITICAL
    assert worst([CRITICAL, OK]) == CRITICAL
    assert worst(iter([WARNING, OK])) == WARNING


@pytest.mark.parametrize('statuses, expected', [
    ([OK, WARNING, UNKNOWN, CRITICAL], CRITICAL),
    ([CRITICAL, UNKNOWN, WARNING, OK], CRITICAL),
    ([UNKNOWN, WARNING, OK], UNKNOWN),
    ([OK, UNKNOWN, WARNING], UNKNOWN),
])
def test_worst_does_not_depend_on_order(statuses, expected):
    assert worst(statuses) == expected


def test_at_least():
    assert checks.at_least(CRITICAL, UNKNOWN)
    assert checks.at_least(UNKNOWN, WARNING)
    assert not checks.at_least(WARNING, UNKNOWN)
    assert checks.at_least(OK, OK)


def _check(name, status):
    return checks.check_result(name, 'memory', status, 'm')


def test_summarize_counts_and_rolls_up():
    summary = summarize([_check('a', OK), _check('b', WARNING), _check('c', UNKNOWN),
                         _check('d', OK)])
    assert summary == {'status': UNKNOWN,
                       'counts': {OK: 2, WARNING: 1, UNKNOWN: 1, CRITICAL: 0}}
    summary = summarize([_check('a', UNKNOWN), _check('b', CRITICAL)])
    assert summary['status'] == CRITICAL
    assert summarize([]) == {'status': OK,
                             'counts': {OK: 0, WARNING: 0, UNKNOWN: 0, CRITICAL: 0}}


def test_check_result_shape_and_bad_status():
    result = checks.check_result('n', 'disk', WARNING, 'msg', value=1, unit='%')
    assert set(result) == {'name', 'kind', 'status', 'value', 'unit', 'warning', 'critical',
                           'message', 'duration_ms'}
    assert 'details' in checks.check_result('n', 'disk', OK, 'm', details={'a': 1})
    with pytest.raises(ValueError, match="unknown status 'fine'"):
        checks.check_result('n', 'disk', 'fine', 'msg')


def test_metric_check_message_names_value_and_thresholds():
    check = checks.metric_check('mem', 'memory', 91.5, '%', 85, 95, ABOVE, 'memory usage')
    assert check['status'] == WARNING
    assert check['message'] == 'memory usage is 91.50 % (warning > 85 %, critical > 95 %)'
    check = checks.metric_check('c', 'tls_cert', 3.0, 'days', 30, 7, BELOW, 'days left')
    assert check['status'] == CRITICAL
    assert check['message'] == 'days left is 3 days (warning < 30 days, critical < 7 days)'
    check = checks.metric_check('t', 'tcp', 1.5, 'ms', None, None, ABOVE, 'connect took')
    assert (check['status'], check['message']) == (OK, 'connect took is 1.50 ms')


# ---- durations ---------------------------------------------------------------------------

@pytest.mark.parametrize('text, seconds', [
    (90, 90.0), (1.5, 1.5), ('90', 90.0), ('90s', 90.0), ('250ms', 0.25), ('15m', 900.0),
    ('25h', 90000.0), ('7d', 604800.0), ('2w', 1209600.0), ('1.5h', 5400.0), (' 3 m ', 180.0),
    (0, 0.0),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text, 'x') == seconds


def test_parse_duration_none_is_none():
    assert parse_duration(None, 'x') is None


@pytest.mark.parametrize('bad', ['soon', '7 days', '5y', '-5m', '1e3s', '', 'h'])
def test_parse_duration_bad_text(bad):
    with pytest.raises(InvalidProbe) as info:
        parse_duration(bad, "probe 'b' (file_freshness)")
    assert str(info.value) == (
        "probe 'b' (file_freshness): %r is not a duration; write seconds or a number with a "
        "unit such as '90s', '15m', '25h', '7d'" % (bad,))


def test_parse_duration_negative_number_and_bool():
    with pytest.raises(InvalidProbe) as info:
        parse_duration(-5, 'probe X')
    assert str(info.value) == 'probe X: duration -5 is negative'
    with pytest.raises(InvalidProbe) as info:
        parse_duration(True, 'probe X')
    assert str(info.value) == 'probe X: True is not a duration'


@pytest.mark.parametrize('seconds, text', [
    (0, '0s'), (12, '12s'), (12.4, '12s'), (59.6, '1m0s'), (245, '4m5s'), (3600, '1h0m'),
    (11520, '3h12m'), (86400, '1d0h'), (183600, '2d3h'), (None, 'unknown'),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize('text', ['45s', '15m', '25h', '7d'])
def test_format_duration_reads_back_as_the_same_seconds(text):
    seconds = parse_duration(text, 'x')
    shown = format_duration(seconds)           # '45s', '15m0s', '1d1h', '7d0h'
    total = sum(parse_duration(part, 'x') for part in
                re.findall(r'\d+[dhms]', shown))
    assert total == seconds


def test_format_number():
    assert checks.format_number(90.0) == '90'
    assert checks.format_number(91.456) == '91.46'
    assert checks.format_number(1234.56) == '1234.6'
    assert checks.format_number(7) == '7'


# ---- assertions ------------------------------------------------------------------------

@pytest.mark.parametrize('spec, expected', [
    ('status == "healthy"', {'path': 'status', 'op': '==', 'value': 'healthy'}),
    ('status=="healthy"', {'path': 'status', 'op': '==', 'value': 'healthy'}),
    ('components.db.status', {'path': 'components.db.status', 'op': 'exists', 'value': None}),
    ('items[0].id exists', {'path': 'items[0].id', 'op': 'exists', 'value': None}),
    ('legacy absent', {'path': 'legacy', 'op': 'absent', 'value': None}),
    ('version =~ "^2"', {'path': 'version', 'op': '=~', 'value': '^2'}),
    ('components.db.latency_ms < 50',
     {'path': 'components.db.latency_ms', 'op': '<', 'value': 50}),
    ('count >= 2.5', {'path': 'count', 'op': '>=', 'value': 2.5}),
    ('ready != false', {'path': 'ready', 'op': '!=', 'value': False}),
    ('error == null', {'path': 'error', 'op': '==', 'value': None}),
    ('tags == ["a", "b"]', {'path': 'tags', 'op': '==', 'value': ['a', 'b']}),
    ('  padded   <=   3  ', {'path': 'padded', 'op': '<=', 'value': 3}),
])
def test_parse_assertion_strings(spec, expected):
    assert parse_assertion(spec, WHAT) == expected


@pytest.mark.parametrize('spec, expected', [
    ({'path': 'status', 'value': 'up'}, {'path': 'status', 'op': '==', 'value': 'up'}),
    ({'path': 'status'}, {'path': 'status', 'op': 'exists', 'value': None}),
    ({'path': 'n', 'op': '>', 'value': 3}, {'path': 'n', 'op': '>', 'value': 3}),
    ({'path': 'gone', 'op': 'absent'}, {'path': 'gone', 'op': 'absent', 'value': None}),
    ({'path': 'error', 'op': '==', 'value': None}, {'path': 'error', 'op': '==', 'value': None}),
])
def test_parse_assertion_dicts(spec, expected):
    assert parse_assertion(spec, WHAT) == expected


@pytest.mark.parametrize('spec, message', [
    ('status healthy', "probe 'api' (http): assertion 'status healthy' has no operator; use "
                       "one of ==, !=, >, >=, <, <=, =~, exists, absent"),
    ('status = "ok"', "probe 'api' (http): assertion 'status = \"ok\"' has no operator; use "
                      "one of ==, !=, >, >=, <, <=, =~, exists, absent"),
    ('status ==', "probe 'api' (http): assertion 'status ==' has no value after =="),
    ('status == healthy', "probe 'api' (http): value healthy in assertion 'status == healthy' "
                          "is not JSON; quote strings, e.g. status == \"healthy\""),
    ('== 5', "probe 'api' (http): cannot read assertion '== 5'; write it as '<path> <op> "
             "<json value>', e.g. 'status == \"healthy\"'"),
    ('', "probe 'api' (http): cannot read assertion ''; write it as '<path> <op> "
         "<json value>', e.g. 'status == \"healthy\"'"),
    ('version =~ "("', "probe 'api' (http): assertion 'version =~ \"(\"' has a bad regular "
                       "expression: missing ), unterminated subpattern at position 0"),
    ('items exists 5', "probe 'api' (http): assertion 'items exists 5' has text after exists; "
                       "exists takes no value"),
    ('a..b == 1', "probe 'api' (http): assertion 'a..b == 1' has a bad field path 'a..b'; "
                  "write fields with dots and list indexes in brackets, e.g. items[0].id"),
    ('items[0 == 1', "probe 'api' (http): assertion 'items[0 == 1' has a bad field path "
                     "'items[0'; write fields with dots and list indexes in brackets, "
                     "e.g. items[0].id"),
    ({'path': 'a', 'op': '~='}, "probe 'api' (http): assertion {'path': 'a', 'op': '~='} has "
                                "no value for ~="),
    ({'path': 'a', 'op': 'like', 'value': 1},
     "probe 'api' (http): assertion {'path': 'a', 'op': 'like', 'value': 1} has unknown "
     "operator 'like'; use one of ==, !=, >, >=, <, <=, =~, exists, absent"),
    ({'value': 1}, "probe 'api' (http): assertion {'value': 1} has no field path"),
    ({'path': 5, 'value': 1}, "probe 'api' (http): assertion {'path': 5, 'value': 1} has no "
                              "field path"),
    ({'path': 'n', 'op': '>'}, "probe 'api' (http): assertion {'path': 'n', 'op': '>'} has no "
                               "value for >"),
    (42, "probe 'api' (http): assertion 42 must be a string or a dict with path, op, value"),
])
def test_parse_assertion_bad(spec, message):
    with pytest.raises(InvalidProbe) as info:
        parse_assertion(spec, WHAT)
    assert str(info.value) == message


DOCUMENT = {
    'status': 'healthy',
    'version': '2.4.1',
    'count': 7,
    'ratio': 0.5,
    'ready': True,
    'error': None,
    'components': {'db': {'status': 'up', 'latency_ms': 12.5},
                   'cache': {'status': 'down'}},
    'items': [{'id': 'a1', 'tags': ['x', 'y']}, {'id': 'b2'}],
    'numbers': {'0': 'zero'},
    'empty': [],
}


@pytest.mark.parametrize('path, expected', [
    ('status', 'healthy'),
    ('components.db.status', 'up'),
    ('components.db.latency_ms', 12.5),
    ('items[0].id', 'a1'),
    ('items[1].id', 'b2'),
    ('items[0].tags[1]', 'y'),
    ('error', None),
    ('numbers[0]', 'zero'),
    ('empty', []),
])
def test_lookup_path(path, expected):
    assert lookup_path(DOCUMENT, path) == expected


@pytest.mark.parametrize('path', ['missing', 'components.queue.status', 'items[2].id',
                                  'items[1].tags', 'status.sub', 'empty[0]', 'count[0]',
                                  'items.id'])
def test_lookup_path_missing(path):
    assert lookup_path(DOCUMENT, path) is checks._MISSING  # pylint: disable=protected-access


def test_split_path():
    assert checks.split_path('items[0].id') == ['items', 0, 'id']
    assert checks.split_path('a.b.c') == ['a', 'b', 'c']
    assert checks.split_path('m[1][2]') == ['m', 1, 2]
    for bad in ('a..b', 'a[0', 'a[x]', 'a]'):
        with pytest.raises(ValueError, match='bad path'):
            checks.split_path(bad)


@pytest.mark.parametrize('spec, passed, actual', [
    ('status == "healthy"', True, '"healthy"'),
    ('status == "degraded"', False, '"healthy"'),
    ('status != "degraded"', True, '"healthy"'),
    ('components.db.status == "up"', True, '"up"'),
    ('components.cache.status == "up"', False, '"down"'),
    ('components.db.latency_ms < 50', True, '12.5'),
    ('components.db.latency_ms > 50', False, '12.5'),
    ('count >= 7', True, '7'),
    ('count > 7', False, '7'),
    ('count <= 7.0', True, '7'),
    ('count == 7.0', True, '7'),
    ('ratio < 1', True, '0.5'),
    ('items[0].id exists', True, '"a1"'),
    ('items[5].id exists', False, 'missing'),
    ('legacy absent', True, 'missing'),
    ('status absent', False, '"healthy"'),
    ('version =~ "^2\\\\."', True, '"2.4.1"'),
    ('version =~ "^3"', False, '"2.4.1"'),
    ('count =~ "^7$"', True, '7'),
    ('ready == true', True, 'true'),
    ('error == null', True, 'null'),
    ('error exists', True, 'null'),
    ('items[0].tags == ["x", "y"]', True, '["x", "y"]'),
    ('missing == 1', False, 'missing'),
    ('missing != 1', False, 'missing'),
])
def test_evaluate_assertion(spec, passed, actual):
    result = evaluate_assertion(DOCUMENT, parse_assertion(spec, WHAT))
    assert result[:2] == (passed, actual)


def test_evaluate_assertion_text():
    assert evaluate_assertion(DOCUMENT, parse_assertion('status == "healthy"', WHAT))[2] == \
        'status == "healthy"'
    assert evaluate_assertion(DOCUMENT, parse_assertion('items[0].id exists', WHAT))[2] == \
        'items[0].id exists'


def test_evaluate_assertion_order_needs_numbers():
    assert evaluate_assertion(DOCUMENT, parse_assertion('status > 1', WHAT)) == \
        (False, '"healthy"', 'status > 1 (not numbers)')
    assert evaluate_assertion(DOCUMENT, parse_assertion('ready > 0', WHAT)) == \
        (False, 'true', 'ready > 0 (not numbers)')
    assert evaluate_assertion(DOCUMENT, parse_assertion('count < "9"', WHAT)) == \
        (False, '7', 'count < "9" (not numbers)')


@pytest.mark.parametrize('document, spec, passed', [
    # JSON true is not the number 1, nor false 0 (Python's == says they are)
    ({'count': True}, 'count == 1', False),
    ({'count': 1}, 'count == true', False),
    ({'count': 0}, 'count == false', False),
    ({'count': 0}, 'count != false', True),
    ({'flags': [1, 0]}, 'flags == [true, false]', False),
    ({'flags': {'a': 1}}, 'flags == {"a": true}', False),
    ({'flags': {'a': True}}, 'flags == {"a": true}', True),
    ({'n': 1}, 'n == 1.0', True),
])
def test_evaluate_assertion_equality_is_json_equality(document, spec, passed):
    assert evaluate_assertion(document, parse_assertion(spec, WHAT))[0] is passed


def test_evaluate_assertion_on_a_top_level_list():
    document = [{'id': 1}, {'id': 2}]
    assert evaluate_assertion(document, parse_assertion('[1].id == 2', WHAT))[0] is True
