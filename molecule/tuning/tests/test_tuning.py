"""Verify runbook.ops.tuning on the real state of the Molecule host: the sysctl drop-in
and the live kernel values, the limits drop-in, PostgreSQL's configuration and pending
restart, and Redis's live and persisted maxmemory-policy."""

import glob
import json
import os


def sysctl(host, key):
    return ' '.join(host.file('/proc/sys/' + key.replace('.', '/')).content_string.split())


def test_sysctl_dropin_holds_the_profiles(host):
    dropin = host.file('/etc/sysctl.d/90-runbook-tuning.conf')
    assert dropin.is_file
    assert dropin.mode == 0o644
    assert dropin.user == 'root'
    lines = dict(line.split('=', 1) for line in dropin.content_string.splitlines()
                 if '=' in line and not line.startswith('#'))
    # '-key = value': systemd-sysctl and procps ignore a failure of a '-' key (missing: warn).
    lines = dict((k.strip().lstrip('-'), ' '.join(v.split())) for k, v in lines.items())
    assert lines['net.core.somaxconn'] == '65535'
    assert lines['net.ipv4.tcp_keepalive_time'] == '300'
    assert lines['vm.swappiness'] == '10'


def test_live_kernel_values_match(host):
    assert sysctl(host, 'net.core.somaxconn') == '65535'
    assert sysctl(host, 'net.ipv4.tcp_fin_timeout') == '15'
    assert sysctl(host, 'vm.swappiness') == '10'
    assert sysctl(host, 'vm.dirty_ratio') == '15'


def test_limits_dropin_for_the_service_user(host):
    files = host.run('ls /etc/security/limits.d/').stdout.split()
    ours = [name for name in files if 'runbook-tuning' in name]
    assert len(ours) == 1, files
    dropin = host.file('/etc/security/limits.d/' + ours[0])
    assert dropin.mode == 0o644
    entries = [line.split() for line in dropin.content_string.splitlines()
               if line.strip() and not line.startswith('#')]
    # type '-' (soft and hard), the default of an entry without a type
    assert ['logcaster', '-', 'nofile', '65535'] in entries, entries
    assert ['logcaster', '-', 'nproc', '32768'] in entries, entries


def psql(host, sql):
    result = host.run("runuser -u postgres -- psql -XAtq -F '|' -c %s" % json.dumps(sql))
    assert result.rc == 0, result.stderr
    return [line.split('|') for line in result.stdout.splitlines()]


def test_postgres_reloaded_and_restart_reported(host):
    rows = dict((r[0], r[1:]) for r in psql(
        host, "SELECT name, setting, unit, pending_restart FROM pg_settings "
              "WHERE name IN ('effective_cache_size', 'max_connections', 'shared_buffers')"))
    assert rows['effective_cache_size'][:2] == ['131072', '8kB']  # 1GB, reloaded live
    assert rows['max_connections'][2] == 't'               # waits for a restart, not restarted
    assert rows['shared_buffers'][2] == 't'
    auto = host.file('/var/lib/postgresql/15/main/postgresql.auto.conf').content_string
    assert "max_connections = '200'" in auto
    assert "shared_buffers = '256MB'" in auto
    # Not restarted by surprise: the postmaster is the one systemd started at boot.
    assert host.service('postgresql@15-main').is_running


def test_redis_policy_live_and_persisted(host):
    assert host.run('redis-cli CONFIG GET maxmemory-policy').stdout.split() == [
        'maxmemory-policy', 'allkeys-lru']
    assert 'maxmemory-policy allkeys-lru' in host.file('/etc/redis/redis.conf').content_string


def test_report_on_the_controller(host):
    reports = glob.glob(os.path.join(os.environ['MOLECULE_EPHEMERAL_DIRECTORY'], 'tuning-reports', '*.json'))
    assert len(reports) == 1, reports
    with open(reports[0]) as stream:
        report = json.load(stream)
    # The last converge was the idempotence run: nothing changed, nothing drifts.
    assert report['sysctl']['set'] == []
    assert report['sysctl']['drift'] == []
    assert sorted(report['postgres']['pending_restart']) == ['max_connections', 'shared_buffers']
