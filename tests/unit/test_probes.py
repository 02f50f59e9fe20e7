# -*- coding: utf-8 -*-
"""Unit tests of the pure parts of plugins/module_utils/probes.py: probe
validation, host name matching, /proc parsing and the measurements of disks,
memory, CPU and processes.  No Ansible runs here; /proc and the disks are real
where the test says so, sample files written by the test otherwise."""

import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from ansible_collections.runbook.ops.plugins.module_utils import probes
from ansible_collections.runbook.ops.plugins.module_utils.checks import InvalidProbe
from ansible_collections.runbook.ops.plugins.module_utils.probes import (
    cpu_usage, disk_usage, find_processes, hostname_matches, memory_usage, prepare_probe,
    prepare_probes, read_cpu_times, read_meminfo, real_mounts,
)


def names(dns=(), ip=(), cn=()):
    return {'dns': list(dns), 'ip': list(ip), 'cn': list(cn)}


# ---- hostname_matches -------------------------------------------------------------

@pytest.mark.parametrize('hostname, cert, expected', [
    ('db.example.com', names(dns=['db.example.com']), True),
    ('db.example.com', names(dns=['web.example.com', 'db.example.com']), True),
    ('db.example.com', names(dns=['web.example.com']), False),
    # case and a trailing dot do not matter
    ('DB.Example.COM', names(dns=['db.example.com']), True),
    ('db.example.com', names(dns=['DB.EXAMPLE.COM']), True),
    ('db.example.com.', names(dns=['db.example.com']), True),
    # a wildcard stands for exactly one, leftmost label
    ('db.example.com', names(dns=['*.example.com']), True),
    ('Db.Example.Com', names(dns=['*.EXAMPLE.com']), True),
    ('a.db.example.com', names(dns=['*.example.com']), False),
    ('example.com', names(dns=['*.example.com']), False),
    ('db.example.org', names(dns=['*.example.com']), False),
    ('db.example.com', names(dns=['db.*.com']), False),
    ('db.example.com', names(dns=['*']), False),
    # the CN counts only when there are no DNS SANs
    ('db.example.com', names(cn=['db.example.com']), True),
    ('db.example.com', names(cn=['*.example.com']), True),
    ('db.example.com', names(dns=['other.example.com'], cn=['db.example.com']), False),
    ('db.example.com', names(ip=['10.0.0.1'], cn=['db.example.com']), True),
    ('db.example.com', names(), False),
])
def test_hostname_matches_dns(hostname, cert, expected):
    assert hostname_matches(hostname, cert) is expected


@pytest.mark.parametrize('hostname, cert, expected', [
    ('127.0.0.1', names(ip=['127.0.0.1']), True),
    ('127.0.0.1', names(ip=['10.0.0.1', '127.0.0.1']), True),
    ('127.0.0.2', names(ip=['127.0.0.1']), False),
    ('::1', names(ip=['0:0:0:0:0:0:0:1']), True),
    ('2001:DB8::1', names(ip=['2001:db8::1']), True),
    # an address matches IP SANs only: not a DNS SAN, not the CN
    ('127.0.0.1', names(dns=['127.0.0.1']), False),
    ('127.0.0.1', names(cn=['127.0.0.1']), False),
    ('127.0.0.1', names(dns=['localhost'], ip=['not an address']), False),
    ('localhost', names(ip=['127.0.0.1']), False),
])
def test_hostname_matches_ip(hostname, cert, expected):
    assert hostname_matches(hostname, cert) is expected


# ---- real_mounts ---------------------------------------------------------------------

MOUNTS = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
/dev/sda1 / ext4 rw,relatime,errors=remount-ro 0 0
tmpfs /run tmpfs rw,nosuid,nodev,size=1628552k,mode=755 0 0
devpts /dev/pts devpts rw,nosuid,noexec,relatime,gid=5,mode=620 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
/dev/sda2 /srv/my\\040data xfs rw,relatime 0 0
/dev/sda1 /var/lib/docker/bind ext4 rw,relatime 0 0
overlay /var/lib/docker/overlay2/aaa/merged overlay rw,relatime 0 0
overlay /var/lib/docker/overlay2/bbb/merged overlay rw,relatime 0 0
/dev/sdb1 /mnt/tab\\011and\\134back ext4 rw 0 0
squashfs /snap/core/1 squashfs ro 0 0
/dev/loop0 /snap/core/2 squashfs ro 0 0
fusectl /sys/fs/fuse/connections fusectl rw 0 0
nfs.example.com:/export /mnt/nfs nfs4 rw,vers=4.2 0 0
truncated line
"""


def test_real_mounts_of_a_sample(tmp_path):
    path = tmp_path / 'mounts'
    path.write_text(MOUNTS)
    assert real_mounts(str(path)) == [
        '/',
        '/srv/my data',
        '/var/lib/docker/overlay2/aaa/merged',
        '/var/lib/docker/overlay2/bbb/merged',
        '/mnt/tab\tand\\back',
        '/mnt/nfs',
    ]


def test_real_mounts_of_this_machine():
    mounts = real_mounts()
    assert mounts, 'no real filesystem in /proc/mounts'
    assert '/proc' not in mounts and '/sys' not in mounts
    assert len(mounts) == len(set(mounts)) or 'overlay' in open('/proc/mounts').read()


# ---- disk_usage -------------------------------------------------------------------------

def test_disk_usage_of_a_real_path(tmp_path):
    usage, inodes, free = disk_usage(str(tmp_path))
    total, used, free_bytes = shutil.disk_usage(str(tmp_path))
    # df's "Use%": used / (used + available to non-root)
    assert 0 <= usage <= 100
    assert usage == pytest.approx(100.0 * used / (used + free_bytes), abs=0.5)
    assert free == pytest.approx(free_bytes / 1024.0 ** 3, abs=0.05)
    stat = os.statvfs(str(tmp_path))
    if stat.f_files:
        assert 0 <= inodes <= 100
    else:
        assert inodes is None


def test_disk_usage_of_a_missing_path(tmp_path):
    with pytest.raises(OSError):
        disk_usage(str(tmp_path / 'missing'))


# ---- memory --------------------------------------------------------------------------

GIB_KB = 1024 * 1024


def test_memory_usage_with_memavailable():
    meminfo = {'MemTotal': 16 * GIB_KB * 1024, 'MemFree': 1 * GIB_KB * 1024,
               'MemAvailable': 4 * GIB_KB * 1024, 'Cached': 2 * GIB_KB * 1024}
    assert memory_usage(meminfo) == 75.0


def test_memory_usage_before_memavailable():
    # kernels before 3.14: free + buffers + cached
    meminfo = {'MemTotal': 1000, 'MemFree': 100, 'Buffers': 50, 'Cached': 150}
    assert memory_usage(meminfo) == 70.0


def test_memory_usage_rounds():
    assert memory_usage({'MemTotal': 3, 'MemAvailable': 2}) == 33.33
    assert memory_usage({'MemTotal': 100, 'MemAvailable': 100}) == 0.0
    assert memory_usage({'MemTotal': 100, 'MemAvailable': 0}) == 100.0


def test_read_meminfo_of_a_sample(tmp_path):
    path = tmp_path / 'meminfo'
    path.write_text('MemTotal:       16318088 kB\n'
                    'MemFree:         1044120 kB\n'
                    'MemAvailable:    8159044 kB\n'
                    'HugePages_Total:       0\n'
                    'Hugepagesize:       2048 kB\n')
    meminfo = read_meminfo(str(path))
    assert meminfo == {'MemTotal': 16318088 * 1024, 'MemFree': 1044120 * 1024,
                       'MemAvailable': 8159044 * 1024, 'HugePages_Total': 0,
                       'Hugepagesize': 2048 * 1024}
    assert memory_usage(meminfo) == 50.0


def test_read_meminfo_of_this_machine():
    meminfo = read_meminfo()
    assert meminfo['MemTotal'] > 0
    assert 0 <= memory_usage(meminfo) <= 100


# ---- CPU ---------------------------------------------------------------------------------

def test_read_cpu_times_of_a_sample(tmp_path):
    path = tmp_path / 'stat'
    path.write_text('cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175628 0\n'
                    'cpu0 1393280 32966 572056 13343292 6130 0 17875 0 0 0\n'
                    'intr 1462898 0 0\n')
    idle, total = read_cpu_times(str(path))
    assert idle == 46828483 + 16683                       # idle + iowait
    # user..steal; guest and guest_nice are already in user and nice
    assert total == (10132153 + 290696 + 3084719 + 46828483 + 16683 + 0 + 25195 + 0)


def test_read_cpu_times_of_an_old_kernel(tmp_path):
    path = tmp_path / 'stat'
    path.write_text('cpu 100 0 50 850\n')
    assert read_cpu_times(str(path)) == (850, 1000)


def test_read_cpu_times_of_this_machine():
    idle, total = read_cpu_times()
    assert 0 <= idle <= total


@pytest.mark.parametrize('before, after, expected', [
    ((800, 1000), (1100, 2000), 70.0),
    ((800, 1000), (1800, 2000), 0.0),
    ((800, 1000), (800, 2000), 100.0),
    ((0, 0), (1, 3), 66.67),
    ((800, 1000), (800, 1000), 0.0),   # no time passed: no division by zero
    ((800, 1000), (700, 900), 0.0),    # counters went backwards
])
def test_cpu_usage(before, after, expected):
    assert cpu_usage(before, after) == expected


# ---- processes -----------------------------------------------------------------------

def wait_for_exec(pid, argv):
    """Popen can return while the child is still inside exec, when its cmdline
    reads empty for a moment; wait (bounded) until /proc shows the new program."""
    expected = b'\0'.join(part.encode() for part in argv) + b'\0'
    for _attempt in range(500):
        with open('/proc/%d/cmdline' % pid, 'rb') as stream:
            if stream.read() == expected:
                return
        time.sleep(0.01)
    raise AssertionError('process %d never showed the command line %r' % (pid, argv))


@pytest.fixture
def sleeper():
    """A real `sleep` with a command line unique to this test."""
    seconds = '%d.%s' % (1000 + os.getpid() % 1000, uuid.uuid4().int % 10 ** 6)
    process = subprocess.Popen(['sleep', seconds])
    wait_for_exec(process.pid, ['sleep', seconds])
    yield process, seconds
    process.kill()
    process.wait()


def test_find_processes_by_name(sleeper):
    process, _seconds = sleeper
    assert process.pid in find_processes(process_name='sleep')


def test_find_processes_by_cmdline(sleeper):
    process, seconds = sleeper
    pattern = r'^sleep %s$' % seconds.replace('.', r'\.')
    assert find_processes(cmdline_pattern=pattern) == [process.pid]


def test_find_processes_skips_itself():
    assert os.getpid() not in find_processes(cmdline_pattern='.')


def test_find_processes_misses_ended_and_zombie_processes(sleeper):
    process, seconds = sleeper
    pattern = r'^sleep %s$' % seconds.replace('.', r'\.')
    process.kill()
    # not yet waited for: a zombie still in /proc, but not alive
    for _attempt in range(200):
        with open('/proc/%d/stat' % process.pid) as stream:
            if stream.read().rsplit(')', 1)[-1].split()[0] == 'Z':
                break
        time.sleep(0.01)
    assert process.pid not in find_processes(process_name='sleep')
    assert find_processes(cmdline_pattern=pattern) == []
    process.wait()
    assert find_processes(cmdline_pattern=pattern) == []


def test_find_processes_compares_the_first_15_characters_of_long_names(tmp_path):
    program = tmp_path / 'runbook-ops-long-process-name'
    shutil.copy('/bin/sleep', str(program))
    process = subprocess.Popen([str(program), '30'])
    try:
        wait_for_exec(process.pid, [str(program), '30'])
        assert process.pid in find_processes(process_name='runbook-ops-long-process-name')
        assert process.pid in find_processes(process_name='runbook-ops-lon')
        assert process.pid not in find_processes(process_name='runbook-ops-lo')
    finally:
        process.kill()
        process.wait()


def test_find_processes_in_a_sample_proc(tmp_path):
    def entry(pid, comm, cmdline, state):
        folder = tmp_path / str(pid)
        folder.mkdir()
        (folder / 'comm').write_text(comm + '\n')
        (folder / 'cmdline').write_bytes(b'\0'.join(part.encode() for part in cmdline) + b'\0')
        (folder / 'stat').write_text('%d (%s) %s 1 1 1 0 -1\n' % (pid, comm, state))
    entry(101, 'postgres', ['postgres', '-D', '/data'], 'S')
    entry(102, 'post) gres', ['post) gres'], 'R')      # a ')' in the name
    entry(103, 'postgres', ['postgres: checkpointer'], 'Z')
    entry(104, 'postgres', ['postgres: walwriter'], 'X')
    entry(105, 'redis-server', ['redis-server', '*:6379'], 'S')
    (tmp_path / 'self').mkdir()
    (tmp_path / '106').mkdir()                          # vanished meanwhile
    assert find_processes(process_name='postgres', proc=str(tmp_path)) == [101]
    assert find_processes(process_name='post) gres', proc=str(tmp_path)) == [102]
    assert find_processes(cmdline_pattern='^postgres', proc=str(tmp_path)) == [101]
    assert find_processes(cmdline_pattern=r':6379$', proc=str(tmp_path)) == [105]


# ---- prepare_probes ---------------------------------------------------------------------

def invalid(probe_list):
    with pytest.raises(InvalidProbe) as info:
        prepare_probes(probe_list)
    return str(info.value)


# The message lists every kind, sorted; the foundation's kinds must stay among them.
KINDS = ', '.join(sorted(probes.KIND_OPTIONS))
assert set(KINDS.split(', ')) >= {'command', 'cpu', 'disk', 'docker_container', 'file_freshness', 'http',
                                  'memory', 'postgres', 'process', 'redis', 'systemd_unit', 'tcp', 'tls_cert'}


@pytest.mark.parametrize('probe_list, message', [
    ([{'name': 'x', 'kind': 'nope'}],
     "probe 'x' (nope): unknown kind 'nope'; use one of " + KINDS),
    ([{'name': 'x'}], "probe 'x' (?): kind is required; use one of " + KINDS),
    ([{'kind': 'memory'}, {'kind': 'tcp', 'host': 'db'}],
     'probe #2 (tcp): port is required for kind tcp'),
    ([{'name': 'web', 'kind': 'http'}], "probe 'web' (http): url is required for kind http"),
    ([{'name': 'web', 'kind': 'http', 'url': ''}],
     "probe 'web' (http): url is required for kind http"),
    ([{'name': 'c', 'kind': 'docker_container'}],
     "probe 'c' (docker_container): container is required for kind docker_container"),
    ([{'name': 'db', 'kind': 'tcp', 'host': 'db', 'port': 70000}],
     "probe 'db' (tcp): port 70000 is out of range; give 1-65535"),
    ([{'name': 'db', 'kind': 'tcp', 'host': 'db', 'port': 0}],
     "probe 'db' (tcp): port 0 is out of range; give 1-65535"),
    ([{'name': 'db', 'kind': 'postgres', 'port': '5432'}],
     "probe 'db' (postgres): port '5432' is out of range; give 1-65535"),
    ([{'name': 'db', 'kind': 'tcp', 'host': 'db', 'port': True}],
     "probe 'db' (tcp): port True is out of range; give 1-65535"),
    ([{'name': 'a', 'kind': 'memory'}, {'name': 'a', 'kind': 'cpu'}],
     "probe name 'a' is used twice; give each probe a unique name"),
    ([{'kind': 'memory'}, {'kind': 'memory'}],
     "probe name 'memory' is used twice; give each probe a unique name"),
    ([{'name': 'm', 'kind': 'memory', 'url': 'http://x/'}],
     "probe 'm' (memory): option url does not apply to kind memory"),
    ([{'name': 't', 'kind': 'tcp', 'host': 'h', 'port': 1, 'paths': ['/'], 'unit': 'x'}],
     "probe 't' (tcp): option paths, unit does not apply to kind tcp"),
    ([{'name': 'm', 'kind': 'memory', 'thresholds': {'latency': {'warning': 1}}}],
     "probe 'm' (memory): kind memory has no metric latency; its metrics are usage"),
    ([{'name': 'u', 'kind': 'systemd_unit', 'unit': 'x', 'thresholds': {'usage': {}}}],
     "probe 'u' (systemd_unit): kind systemd_unit has no metric usage; its metrics are none"),
    ([{'name': 'c', 'kind': 'command', 'command': 'true', 'critical': 1}],
     "probe 'c' (command): kind command has no numeric value to hold thresholds against"),
    ([{'name': 'm', 'kind': 'memory', 'warning': 95, 'critical': 90}],
     "probe 'm' (memory), usage: warning threshold 95 is above critical 90; higher values are "
     "worse here, so warning must be <= critical"),
    # the default critical of 95 % applies when only warning is given
    ([{'name': 'm', 'kind': 'memory', 'warning': 96}],
     "probe 'm' (memory), usage: warning threshold 96 is above critical 95; higher values are "
     "worse here, so warning must be <= critical"),
    ([{'name': 't', 'kind': 'tls_cert', 'path': '/c.pem', 'warning': 3, 'critical': 10}],
     "probe 't' (tls_cert), days_left: warning threshold 3 is below critical 10; lower values "
     "are worse here, so warning must be >= critical"),
    ([{'name': 'm', 'kind': 'memory', 'warning': -1}],
     "probe 'm' (memory), usage: warning threshold -1 is negative; give a value >= 0"),
    ([{'name': 'm', 'kind': 'memory', 'warning': 'high'}],
     "probe 'm' (memory) warning threshold of usage: 'high' is not a number"),
    ([{'name': 'm', 'kind': 'memory', 'critical': True}],
     "probe 'm' (memory) critical threshold of usage: True is not a number"),
    ([{'name': 'm', 'kind': 'memory', 'thresholds': {'usage': {'warn': 1}}}],
     "probe 'm' (memory): thresholds.usage accepts warning and critical, not warn"),
    ([{'name': 'm', 'kind': 'memory', 'thresholds': {'usage': 5}}],
     "probe 'm' (memory): thresholds.usage must be a dict with warning and/or critical"),
    ([{'name': 'm', 'kind': 'memory', 'thresholds': [1]}],
     "probe 'm' (memory): thresholds must be a dict of metric: {warning, critical}"),
    ([{'name': 'b', 'kind': 'file_freshness', 'path': '/b', 'warning': 'soon'}],
     "probe 'b' (file_freshness) warning threshold of age: 'soon' is not a duration; write "
     "seconds or a number with a unit such as '90s', '15m', '25h', '7d'"),
    ([{'name': 'b', 'kind': 'file_freshness', 'path': '/b', 'warning': '2d', 'critical': '1d'}],
     "probe 'b' (file_freshness), age: warning threshold 172800.0 is above critical 86400.0; "
     "higher values are worse here, so warning must be <= critical"),
    ([{'name': 'm', 'kind': 'memory', 'on_unreachable': 'ok'}],
     "probe 'm' (memory): on_unreachable must be one of critical, warning, unknown"),
    ([{'name': 'm', 'kind': 'memory', 'timeout': 0}],
     "probe 'm' (memory): timeout 0 must be greater than 0"),
    ([{'name': 'm', 'kind': 'memory', 'timeout': 'soon'}],
     "probe 'm' (memory) timeout: 'soon' is not a number"),
    ([{'name': 'h', 'kind': 'http', 'url': 'ftp://x/'}],
     "probe 'h' (http): url 'ftp://x/' must start with http:// or https://"),
    ([{'name': 'h', 'kind': 'http', 'url': 'http://x/', 'samples': 0}],
     "probe 'h' (http): samples 0 must be a whole number from 1 to 1000"),
    ([{'name': 'h', 'kind': 'http', 'url': 'http://x/', 'latency_stat': 'p90'}],
     "probe 'h' (http): latency_stat 'p90' must be one of avg, min, p50, p95, p99, max"),
    ([{'name': 'h', 'kind': 'http', 'url': 'http://x/', 'expected_status': [200, 700]}],
     "probe 'h' (http): expected_status 700 is not an HTTP status code"),
    ([{'name': 'h', 'kind': 'http', 'url': 'http://x/', 'assertions': ['status healthy']}],
     "probe 'h' (http): assertion 'status healthy' has no operator; use one of ==, !=, >, >=, "
     "<, <=, =~, exists, absent"),
    ([{'name': 't', 'kind': 'tls_cert'}],
     "probe 't' (tls_cert): give either host (and port) for a served certificate or path for "
     "a PEM file, not neither"),
    ([{'name': 't', 'kind': 'tls_cert', 'host': 'h', 'path': '/c.pem'}],
     "probe 't' (tls_cert): give either host (and port) for a served certificate or path for "
     "a PEM file, not both"),
    ([{'name': 'p', 'kind': 'process'}],
     "probe 'p' (process): give exactly one of process_name, cmdline_pattern or pidfile"),
    ([{'name': 'p', 'kind': 'process', 'process_name': 'a', 'pidfile': '/p'}],
     "probe 'p' (process): give exactly one of process_name, cmdline_pattern or pidfile"),
    ([{'name': 'p', 'kind': 'process', 'cmdline_pattern': '('}],
     "probe 'p' (process): cmdline_pattern is not a regular expression: missing ), "
     "unterminated subpattern at position 0"),
    ([{'name': 'c', 'kind': 'command', 'command': 'echo "open'}],
     "probe 'c' (command): cannot split command: No closing quotation"),
    ([{'name': 'c', 'kind': 'command', 'command': ' '}],
     "probe 'c' (command): command must be a string or a non-empty list"),
    ([{'name': 'c', 'kind': 'cpu', 'sample_seconds': 0}],
     "probe 'c' (cpu): sample_seconds 0 must be above 0 and at most 60"),
    ([{'name': 'r', 'kind': 'redis', 'expected_role': 'primary'}],
     "probe 'r' (redis): expected_role 'primary' must be master or replica"),
    ('memory', 'probes must be a list of probe definitions'),
    ([{'kind': 'memory'}, 'cpu'], 'probe #2 is not a dict with a kind'),
])
def test_prepare_probes_rejects(probe_list, message):
    assert invalid(probe_list) == message


def test_prepare_probes_ignores_options_set_to_none():
    # the module's argument spec passes every suboption, unset ones as None
    probe = prepare_probes([{'name': 'm', 'kind': 'memory', 'url': None, 'port': None,
                             'warning': None}])[0]
    assert 'url' not in probe and 'port' not in probe
    assert probe['limits'] == {'usage': (85, 95)}


@pytest.mark.parametrize('probe, limits', [
    ({'kind': 'tls_cert', 'host': 'example.org'}, {'days_left': (30, 7)}),
    ({'kind': 'tls_cert', 'path': '/c.pem', 'warning': 60}, {'days_left': (60, 7)}),
    ({'kind': 'memory'}, {'usage': (85, 95)}),
    ({'kind': 'disk'}, {'usage': (80, 90), 'inodes': (80, 90), 'free': (None, None)}),
    ({'kind': 'disk', 'warning': 70, 'thresholds': {'inodes': {'critical': 95},
                                                    'free': {'critical': 1}}},
     {'usage': (70, 90), 'inodes': (80, 95), 'free': (None, 1)}),
    ({'kind': 'cpu'}, {'usage': (80, 95), 'load': (None, None)}),
    ({'kind': 'postgres'}, {'latency': (None, None), 'connections': (80, 90),
                            'replication_lag': (60, 300)}),
    ({'kind': 'postgres',
      'thresholds': {'replication_lag': {'warning': '30s', 'critical': '5m'}}},
     {'latency': (None, None), 'connections': (80, 90), 'replication_lag': (30.0, 300.0)}),
    ({'kind': 'redis'}, {'latency': (None, None), 'memory': (80, 90)}),
    ({'kind': 'process', 'process_name': 'nginx'}, {'count': (None, 1)}),
    ({'kind': 'docker_container', 'container': 'web', 'thresholds': {'restarts': {'warning': 1}}},
     {'restarts': (1, None)}),
    ({'kind': 'file_freshness', 'path': '/b/*.dump', 'warning': '25h', 'critical': '2d'},
     {'age': (90000.0, 172800.0)}),
    ({'kind': 'http', 'url': 'http://x/', 'warning': 200, 'critical': 500.5},
     {'latency': (200, 500.5)}),
    ({'kind': 'http', 'url': 'http://x/', 'warning': '200'}, {'latency': (200.0, None)}),
    ({'kind': 'command', 'command': 'true'}, {}),
])
def test_prepare_probes_limits_and_defaults(probe, limits):
    assert prepare_probes([probe])[0]['limits'] == limits


def test_primary_thresholds_override_thresholds_of_the_primary_metric():
    probe = prepare_probes([{'kind': 'memory', 'warning': 50,
                             'thresholds': {'usage': {'warning': 60, 'critical': 70}}}])[0]
    assert probe['limits'] == {'usage': (50, 70)}


@pytest.mark.parametrize('probe, name', [
    ({'kind': 'http', 'url': 'http://x/health'}, 'http://x/health'),
    ({'kind': 'tcp', 'host': 'db', 'port': 5432}, 'tcp:db:5432'),
    ({'kind': 'postgres'}, 'postgres:localhost:5432'),
    ({'kind': 'redis', 'host': 'cache', 'port': 6380}, 'redis:cache:6380'),
    ({'kind': 'tls_cert', 'host': 'example.org'}, 'tls_cert:example.org:443'),
    ({'kind': 'tls_cert', 'path': '/etc/ssl/c.pem'}, 'tls_cert:/etc/ssl/c.pem'),
    ({'kind': 'file_freshness', 'path': '/b/*.dump'}, 'file_freshness:/b/*.dump'),
    ({'kind': 'systemd_unit', 'unit': 'nginx.service'}, 'unit:nginx.service'),
    ({'kind': 'process', 'pidfile': '/run/x.pid'}, 'process:/run/x.pid'),
    ({'kind': 'docker_container', 'container': 'web'}, 'container:web'),
    ({'kind': 'command', 'command': ['check', '--all']}, 'command:check --all'),
    ({'kind': 'memory'}, 'memory'),
    ({'kind': 'memory', 'name': 42}, '42'),
])
def test_default_names(probe, name):
    assert prepare_probes([probe])[0]['name'] == name


def test_prepare_probe_normalises():
    http = prepare_probe({'name': 'api', 'kind': 'http', 'url': 'https://x/',
                          'assertions': ['status == "ok"', {'path': 'n', 'op': '<', 'value': 5}]},
                         0)
    assert http['samples'] == 1
    assert http['latency_stat'] == 'p95'
    assert http['expected_status'] == [200]
    assert http['timeout'] == 5
    assert http['on_unreachable'] == 'critical'
    assert http['assertions'] == [{'path': 'status', 'op': '==', 'value': 'ok'},
                                  {'path': 'n', 'op': '<', 'value': 5}]
    command = prepare_probe({'kind': 'command', 'command': 'check --flag "a b"'}, 0)
    assert command['argv'] == ['check', '--flag', 'a b']
    assert command['expected_rc'] == [0] and command['warning_rc'] == []
    assert prepare_probe({'kind': 'command', 'command': ['echo', 1]}, 0)['argv'] == ['echo', '1']
    assert prepare_probe({'kind': 'cpu'}, 0)['sample_seconds'] == 0.5
    assert prepare_probe({'kind': 'systemd_unit', 'unit': 'x'}, 0)['expected_state'] == 'active'
    assert prepare_probe({'kind': 'redis', 'expected_role': 'replica'}, 0)['expected_role'] == \
        'slave'
    assert prepare_probe({'kind': 'tls_cert', 'host': 'h'}, 0)['port'] == 443
    assert prepare_probe({'kind': 'memory', 'timeout': '2.5',
                          'on_unreachable': 'warning'}, 0)['timeout'] == 2.5


def test_prepare_probes_does_not_change_its_input():
    given = [{'kind': 'http', 'url': 'http://x/', 'assertions': ['a exists']}]
    prepare_probes(given)
    assert given == [{'kind': 'http', 'url': 'http://x/', 'assertions': ['a exists']}]


def test_every_kind_has_options_metrics_and_a_runner():
    assert set(probes.KIND_OPTIONS) == set(probes.METRICS) == set(probes.RUNNERS)


def test_interpreter_is_the_venv():
    # these tests import the collection from .collections; a stray copy elsewhere on
    # sys.path would test other code
    assert os.path.realpath(probes.__file__).startswith(
        os.path.realpath(os.path.join(os.path.dirname(__file__), '..', '..', 'plugins')))
    assert sys.version_info >= (3, 8)
