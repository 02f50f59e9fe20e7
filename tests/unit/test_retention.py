# -*- coding: utf-8 -*-
"""Retention (keep_last, keep_days, GFS) as a pure function, table-driven over a year
of daily backups, plus periods and the hold rules that keep data from being lost."""

import datetime

import pytest

from ansible_collections.runbook.ops.plugins.module_utils.backup import (
    FAILED, INCOMPLETE, PASSED, UNVERIFIED, BackupError, backup_name, current_backup, parse_name,
    period_key, select_retention,
)

UTC = datetime.timezone.utc
START = datetime.datetime(2025, 1, 1, 2, 0, tzinfo=UTC)       # a Wednesday
NOW = datetime.datetime(2025, 12, 31, 12, 0, tzinfo=UTC)      # a Wednesday


def daily_year(status=PASSED):
    """One backup at 02:00 every day of 2025."""
    return [{'name': backup_name(START + datetime.timedelta(days=d)),
             'time': START + datetime.timedelta(days=d), 'status': status} for d in range(365)]


def kept_days(decision):
    return sorted(parse_name(name).strftime('%Y-%m-%d') for name in decision['keep'])


@pytest.mark.parametrize('policy, expected_kept, must_keep', [
    ({'keep_last': 3}, 3, ['2025-12-31', '2025-12-30', '2025-12-29']),
    ({'keep_days': 7}, 7, ['2025-12-25', '2025-12-31']),
    ({'keep_daily': 7}, 7, ['2025-12-25', '2025-12-31']),
    # newest of each of the last 4 ISO weeks (Sundays end the weeks) + the current week
    ({'keep_weekly': 4}, 4, ['2025-12-31', '2025-12-28', '2025-12-21', '2025-12-14']),
    ({'keep_monthly': 12}, 12, ['2025-12-31', '2025-11-30', '2025-01-31', '2025-06-30']),
    # GFS together: 7 daily (12-25..12-31) + weekly adds 12-21, 12-14 (12-28 is daily)
    # + monthly adds the last day of Jan..Nov (11 months; Dec is the newest = daily).
    ({'keep_daily': 7, 'keep_weekly': 4, 'keep_monthly': 12}, 7 + 2 + 11,
     ['2025-12-31', '2025-12-25', '2025-12-21', '2025-12-14', '2025-11-30', '2025-01-31']),
    ({'keep_last': 2, 'keep_days': 3}, 3, ['2025-12-29']),
    ({'keep_monthly': 24}, 12, ['2025-01-31']),
])
def test_gfs_over_a_year(policy, expected_kept, must_keep):
    backups = daily_year()
    decision = select_retention(backups, NOW, policy)
    days = kept_days(decision)
    assert len(days) == expected_kept, days
    for day in must_keep:
        assert day in days
    assert len(decision['delete']) == 365 - expected_kept
    assert set(decision['delete']).isdisjoint(decision['keep'])
    assert decision['delete'] == sorted(decision['delete'])      # oldest first


def test_no_rule_deletes_nothing():
    decision = select_retention(daily_year(), NOW, {})
    assert decision['delete'] == [] and decision['held'] == 'no retention rule set'


def test_newest_verified_is_kept_even_when_rules_would_drop_it():
    backups = daily_year()
    for backup in backups[-5:]:
        backup['status'] = UNVERIFIED
    decision = select_retention(backups, NOW, {'keep_last': 1})
    newest_verified = backups[-6]['name']
    assert newest_verified in decision['keep']
    assert 'newest verified backup' in decision['keep'][newest_verified]
    assert backups[-1]['name'] in decision['keep']


def test_nothing_deleted_while_newest_failed_verification():
    backups = daily_year()
    backups[-1]['status'] = FAILED
    decision = select_retention(backups, NOW, {'keep_last': 1})
    assert decision['delete'] == []
    assert 'failed verification' in decision['held']


def test_failed_backups_are_not_chosen_by_rules():
    backups = daily_year()
    backups[-2]['status'] = FAILED
    decision = select_retention(backups, NOW, {'keep_last': 2})
    assert backups[-2]['name'] in decision['delete']
    assert backups[-3]['name'] in decision['keep']


def test_incomplete_backups_are_never_deleted():
    backups = daily_year()
    backups[10]['status'] = INCOMPLETE
    decision = select_retention(backups, NOW, {'keep_last': 1})
    assert backups[10]['name'] not in decision['delete']
    assert len(decision['delete']) == 363


@pytest.mark.parametrize('bad', [{'keep_last': -1}, {'keep_days': 'x'}, {'keep_daily': True}])
def test_bad_policy(bad):
    with pytest.raises(BackupError, match='whole number'):
        select_retention([], NOW, bad)


@pytest.mark.parametrize('when, period, key', [
    (datetime.datetime(2025, 3, 1, 14, 59, tzinfo=UTC), 'hourly', '2025-03-01T14'),
    (datetime.datetime(2025, 3, 1, 23, 59, tzinfo=UTC), 'daily', '2025-03-01'),
    (datetime.datetime(2024, 12, 30, 0, 0, tzinfo=UTC), 'weekly', '2025-W01'),   # ISO year
    (datetime.datetime(2025, 3, 31, 23, 0, tzinfo=UTC), 'monthly', '2025-03'),
    (datetime.datetime(2025, 3, 2, 1, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=9))),
     'daily', '2025-03-01'),                                                     # UTC periods
])
def test_period_key(when, period, key):
    assert period_key(when, period) == key


def test_current_backup_needs_a_verified_one_in_the_period():
    backups = daily_year()
    now = backups[-1]['time'] + datetime.timedelta(hours=3)
    assert current_backup(backups, now, 'daily')['name'] == backups[-1]['name']
    backups[-1]['status'] = FAILED
    assert current_backup(backups, now, 'daily') is None
    backups[-1]['status'] = UNVERIFIED
    assert current_backup(backups, now, 'daily') is None
    assert current_backup(backups, now, 'daily', accept_unverified=True) is not None
    assert current_backup(backups, now, 'weekly')['name'] == backups[-2]['name']


def test_names_round_trip():
    when = datetime.datetime(2025, 3, 1, 14, 5, 9, tzinfo=UTC)
    assert backup_name(when) == '20250301T140509Z'
    assert parse_name('20250301T140509Z') == when
    assert parse_name('.partial-20250301T140509Z-12') is None
    assert parse_name('20251301T140509Z') is None
