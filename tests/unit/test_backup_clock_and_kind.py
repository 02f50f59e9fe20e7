# -*- coding: utf-8 -*-
"""Backups named after "now" (a wrong clock, here or on the host that took them) and
label directories shared by two kinds of backup: real directories, real manifests."""

import datetime
import json
import os

import pytest

from ansible_collections.runbook.ops.plugins.module_utils import backup as b

NOW = datetime.datetime(2026, 11, 22, 2, 0, tzinfo=datetime.timezone.utc)


def make(directory, when, status='passed', kind='postgresql', finished=None):
    name = when.strftime(b.NAME_FORMAT)
    path = os.path.join(str(directory), name)
    os.makedirs(path)
    manifest = {'manifest_version': 1, 'kind': kind, 'files': [],
                'finished': (finished or when).strftime('%Y-%m-%dT%H:%M:%SZ'),
                'verification': {'status': status}}
    with open(os.path.join(path, b.MANIFEST), 'w') as stream:
        json.dump(manifest, stream)
    return name


def test_a_backup_from_the_future_is_never_newest_nor_fresh(tmp_path):
    today = make(tmp_path, NOW - datetime.timedelta(hours=1))
    make(tmp_path, NOW + datetime.timedelta(days=400))            # a clock a year ahead
    backups = b.list_backups(str(tmp_path), now=NOW)
    assert [x['future'] for x in backups] == [False, True]
    assert b.newest(backups, b.PASSED)['name'] == today
    age, name = b.freshness(backups, NOW)
    assert name == today and age == 3600.0
    assert b.find_backup(str(tmp_path.parent), tmp_path.name)['name'] == today


def test_retention_neither_counts_nor_deletes_a_backup_from_the_future(tmp_path):
    old = make(tmp_path, NOW - datetime.timedelta(days=3))
    today = make(tmp_path, NOW - datetime.timedelta(hours=1))
    future = make(tmp_path, NOW + datetime.timedelta(days=400))
    decision = b.select_retention(b.list_backups(str(tmp_path), now=NOW), NOW, {'keep_last': 1})
    # keep_last=1 keeps today's backup, not the one from the wrong clock
    assert 'keep_last=1' in decision['keep'][today]
    assert future in decision['keep'] and 'wrong clock' in decision['keep'][future][0]
    assert decision['delete'] == [old]


def test_a_failed_backup_from_the_future_does_not_hold_retention_forever(tmp_path):
    old = make(tmp_path, NOW - datetime.timedelta(days=3))
    make(tmp_path, NOW - datetime.timedelta(hours=1))
    make(tmp_path, NOW + datetime.timedelta(days=2), status='failed')
    decision = b.select_retention(b.list_backups(str(tmp_path), now=NOW), NOW, {'keep_last': 1})
    assert decision['held'] is None
    assert decision['delete'] == [old]


def test_a_backup_from_the_future_does_not_cover_the_period(tmp_path):
    make(tmp_path, NOW + datetime.timedelta(hours=3))               # same day, wrong clock
    backups = b.list_backups(str(tmp_path), now=NOW)
    assert b.current_backup(backups, NOW, 'daily') is None


def test_a_small_skew_within_the_tolerance_still_counts(tmp_path):
    soon = make(tmp_path, NOW + datetime.timedelta(minutes=2))
    backups = b.list_backups(str(tmp_path), now=NOW)
    assert b.newest(backups, b.PASSED)['name'] == soon
    assert b.current_backup(backups, NOW, 'daily')['name'] == soon


def test_a_label_holding_another_kind_is_refused(tmp_path):
    make(tmp_path, NOW - datetime.timedelta(hours=1), kind='postgresql')
    assert len(b.list_backups(str(tmp_path), kind='postgresql', now=NOW)) == 1
    with pytest.raises(b.BackupError) as info:
        b.list_backups(str(tmp_path), kind='files', now=NOW)
    message = str(info.value)
    assert str(tmp_path) in message and 'postgresql' in message and 'label of its own' in message
    # without a kind (the freshness probe, reports) it still lists them
    assert len(b.list_backups(str(tmp_path), now=NOW)) == 1
