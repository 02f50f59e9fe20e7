"""Verify runbook.ops.log_maintenance on the real files of the Molecule host."""

import hashlib


def test_old_log_compressed_with_content_mode_owner_and_mtime(host):
    assert not host.file('/var/log/batch/old.log').exists
    compressed = host.file('/var/log/batch/old.log.gz')
    assert compressed.is_file
    assert compressed.mode == 0o640
    assert (compressed.user, compressed.group) == ('batch', 'batch')
    expected_mtime = int(host.file('/var/lib/molecule-expect/old.log.mtime').content_string)
    assert int(compressed.mtime.timestamp()) == expected_mtime
    content = host.run('gzip -dc /var/log/batch/old.log.gz')
    assert content.rc == 0
    expected = host.file('/var/lib/molecule-expect/old.log.sha256').content_string.strip()
    assert hashlib.sha256(content.stdout.encode()).hexdigest() == expected
    assert host.run('gzip -t /var/log/batch/old.log.gz').rc == 0


def test_compressed_log_older_than_30_days_deleted(host):
    assert not host.file('/var/log/batch/ancient.log.gz').exists


def test_a_log_held_open_is_never_compressed(host):
    assert host.service('molecule-log-holder').is_running
    held = host.file('/var/log/batch/held.log')
    assert held.is_file
    assert held.content_string == 'held\n'
    assert not host.file('/var/log/batch/held.log.gz').exists


def test_fresh_log_untouched(host):
    today = host.file('/var/log/batch/today.log')
    assert today.content_string == 'today\n'
    assert not host.file('/var/log/batch/today.log.gz').exists


def test_policy_written_and_accepted_by_logrotate(host):
    policy = host.file('/etc/logrotate.d/batch-logs')
    assert policy.is_file
    assert policy.mode == 0o644
    text = policy.content_string
    assert '/var/log/batch/*.log' in text
    for option in ('daily', 'rotate 30', 'compress', 'delaycompress', 'create 644 batch batch'):
        assert option in text
    debug = host.run('logrotate -d /etc/logrotate.conf')
    assert debug.rc == 0, debug.stderr
    assert 'error' not in debug.stderr.lower(), debug.stderr
    assert '/var/log/batch/*.log' in debug.stderr  # logrotate -d reports on stderr
