# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe definitions and their runners for runbook.ops.health_probe.

``prepare_probes`` validates every probe before anything runs; ``run_probes``
runs them concurrently and turns each into one or more checks of the shape in
``checks.py``.  A probe never raises out of ``run_probes``: a target that does
not answer becomes its ``on_unreachable`` status, anything else ``unknown``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import ipaddress
import json
import os
import re
import shlex
import socket
import ssl
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from stat import S_ISREG

from ansible_collections.runbook.ops.plugins.module_utils.checks import (
    ABOVE, BELOW, CRITICAL, OK, UNKNOWN, WARNING, InvalidProbe, ProbeError, Unreachable,
    check_result, describe_thresholds, evaluate_assertion, format_duration,
    format_number, latency_stats, metric_check, parse_assertion, parse_duration,
    validate_thresholds, worst,
)

# kind -> metric -> (unit, direction, default warning, default critical, duration?)
# The first metric of a kind is its primary one: the probe's own ``warning`` and
# ``critical`` options apply to it; the others take ``thresholds.<metric>``.
METRICS = {
    'http': {'latency': ('ms', ABOVE, None, None, False)},
    'tcp': {'latency': ('ms', ABOVE, None, None, False)},
    'tls_cert': {'days_left': ('days', BELOW, 30, 7, False)},
    'postgres': {'latency': ('ms', ABOVE, None, None, False),
                 'connections': ('%', ABOVE, 80, 90, False),
                 'replication_lag': ('s', ABOVE, 60, 300, True)},
    'redis': {'latency': ('ms', ABOVE, None, None, False),
              'memory': ('%', ABOVE, 80, 90, False)},
    'disk': {'usage': ('%', ABOVE, 80, 90, False),
             'inodes': ('%', ABOVE, 80, 90, False),
             'free': ('GiB', BELOW, None, None, False)},
    'memory': {'usage': ('%', ABOVE, 85, 95, False)},
    'cpu': {'usage': ('%', ABOVE, 80, 95, False),
            'load': ('per core', ABOVE, None, None, False)},
    'systemd_unit': {},
    'process': {'count': (None, BELOW, None, 1, False)},
    'docker_container': {'restarts': ('restarts', ABOVE, None, None, False)},
    'file_freshness': {'age': ('s', ABOVE, None, None, True)},
    'command': {},
    # log: each of the probe's metrics carries its own thresholds (logscan.py)
    'log': {},
    # backup: age of the newest verified backup of a label, from its manifest (backup.py)
    'backup': {'age': ('s', ABOVE, None, None, True)},
}
KINDS = tuple(sorted(METRICS))

# Options every probe accepts, and those each kind needs or accepts besides.
COMMON_OPTIONS = ('name', 'kind', 'warning', 'critical', 'thresholds', 'timeout',
                  'on_unreachable')
KIND_OPTIONS = {
    'http': (('url',), ('method', 'expected_status', 'headers', 'body', 'samples',
                        'latency_stat', 'validate_certs', 'ca_path', 'assertions',
                        'follow_redirects')),
    'tcp': (('host', 'port'), ()),
    'tls_cert': ((), ('host', 'port', 'path', 'server_name', 'check_hostname')),
    'postgres': ((), ('host', 'port', 'user', 'password', 'passfile', 'database',
                      'sslmode')),
    'redis': ((), ('host', 'port', 'username', 'password', 'expected_role')),
    'disk': ((), ('paths',)),
    'memory': ((), ()),
    'cpu': ((), ('sample_seconds',)),
    'systemd_unit': (('unit',), ('expected_state',)),
    'process': ((), ('process_name', 'cmdline_pattern', 'pidfile')),
    'docker_container': (('container',), ('docker_host',)),
    'file_freshness': (('path',), ()),
    'command': (('command',), ('expected_rc', 'warning_rc', 'pattern')),
    'log': (('paths', 'metrics'), ('include_rotated', 'since', 'until', 'time_format',
                                   'time_pattern', 'timezone')),
    'backup': (('path',), ('label',)),
}
DEFAULT_PORTS = {'postgres': 5432, 'redis': 6379, 'tls_cert': 443}
LATENCY_STATS = ('avg', 'min', 'p50', 'p95', 'p99', 'max')
UNREACHABLE_STATUSES = (CRITICAL, WARNING, UNKNOWN)

PSEUDO_FILESYSTEMS = frozenset((
    'autofs', 'binfmt_misc', 'bpf', 'cgroup', 'cgroup2', 'configfs', 'debugfs', 'devpts',
    'devtmpfs', 'efivarfs', 'fusectl', 'hugetlbfs', 'mqueue', 'nsfs', 'proc', 'pstore',
    'ramfs', 'rpc_pipefs', 'securityfs', 'selinuxfs', 'squashfs', 'sysfs', 'tmpfs',
    'tracefs', 'fuse.gvfsd-fuse', 'fuse.lxcfs', 'nfsd',
))


def _present(probe, key):
    return probe.get(key) not in (None, '', [], {})


def _label(probe, index):
    name = probe.get('name')
    kind = probe.get('kind') or '?'
    if name:
        return "probe '%s' (%s)" % (name, kind)
    return 'probe #%d (%s)' % (index + 1, kind)


def default_name(probe):
    kind = probe['kind']
    if kind == 'http':
        return probe['url']
    if kind in ('tcp', 'postgres', 'redis') or (kind == 'tls_cert' and probe.get('host')):
        return '%s:%s:%s' % (kind, probe.get('host') or 'localhost',
                             probe.get('port') or DEFAULT_PORTS.get(kind))
    if kind in ('tls_cert', 'file_freshness'):
        return '%s:%s' % (kind, probe['path'])
    if kind == 'systemd_unit':
        return 'unit:%s' % probe['unit']
    if kind == 'process':
        return 'process:%s' % (probe.get('process_name') or probe.get('pidfile')
                               or probe.get('cmdline_pattern'))
    if kind == 'docker_container':
        return 'container:%s' % probe['container']
    if kind == 'log':
        return 'log:%s' % ','.join(probe['paths'])
    if kind == 'backup':
        return 'backup:%s' % (os.path.join(probe['path'], probe['label']) if probe.get('label')
                              else probe['path'])
    if kind == 'command':
        command = probe['command']
        return 'command:%s' % (command if isinstance(command, str)
                               else ' '.join(str(part) for part in command))
    return kind


def _number(value, what):
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidProbe('%s: %r is not a number' % (what, value))
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidProbe('%s: %r is not a number' % (what, value))


def _limits(probe, metric, spec, what):
    """(warning, critical) for one metric of a probe, validated."""
    unit, direction, default_warning, default_critical, is_duration = spec
    primary = metric == next(iter(METRICS[probe['kind']]))
    given = (probe.get('thresholds') or {}).get(metric)
    if given is not None and not isinstance(given, dict):
        raise InvalidProbe('%s: thresholds.%s must be a dict with warning and/or critical'
                           % (what, metric))
    given = dict(given or {})
    if primary:
        for key in ('warning', 'critical'):
            if probe.get(key) is not None:
                given[key] = probe[key]
    unknown = set(given) - set(('warning', 'critical'))
    if unknown:
        raise InvalidProbe('%s: thresholds.%s accepts warning and critical, not %s'
                           % (what, metric, ', '.join(sorted(unknown))))
    limits = []
    for key, default in (('warning', default_warning), ('critical', default_critical)):
        value = given.get(key, default)
        label = '%s %s threshold of %s' % (what, key, metric)
        value = parse_duration(value, label) if is_duration else _number(value, label)
        limits.append(value)
    validate_thresholds(limits[0], limits[1], direction, '%s, %s' % (what, metric))
    return tuple(limits)


def prepare_probe(probe, index):
    """Validate one probe and return a normalised copy; InvalidProbe on bad input."""
    if not isinstance(probe, dict):
        raise InvalidProbe('probe #%d is not a dict with a kind' % (index + 1))
    what = _label(probe, index)
    kind = probe.get('kind')
    if not kind:
        raise InvalidProbe('%s: kind is required; use one of %s' % (what, ', '.join(KINDS)))
    if kind not in METRICS:
        raise InvalidProbe('%s: unknown kind %r; use one of %s'
                           % (what, kind, ', '.join(KINDS)))
    required, optional = KIND_OPTIONS[kind]
    for key in required:
        if not _present(probe, key):
            raise InvalidProbe('%s: %s is required for kind %s' % (what, key, kind))
    allowed = set(COMMON_OPTIONS) | set(required) | set(optional)
    stray = sorted(k for k, v in probe.items() if k not in allowed and v is not None)
    if stray:
        raise InvalidProbe('%s: option %s does not apply to kind %s'
                           % (what, ', '.join(stray), kind))
    prepared = dict((k, v) for k, v in probe.items() if v is not None)
    timeout = _number(prepared.get('timeout', 5), '%s timeout' % what)
    if timeout <= 0:
        raise InvalidProbe('%s: timeout %r must be greater than 0' % (what, timeout))
    prepared['timeout'] = timeout
    on_unreachable = prepared.get('on_unreachable', CRITICAL)
    if on_unreachable not in UNREACHABLE_STATUSES:
        raise InvalidProbe('%s: on_unreachable must be one of %s'
                           % (what, ', '.join(UNREACHABLE_STATUSES)))
    prepared['on_unreachable'] = on_unreachable
    port = prepared.get('port')
    if port is not None:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InvalidProbe('%s: port %r is out of range; give 1-65535' % (what, port))
    thresholds = prepared.get('thresholds') or {}
    if not isinstance(thresholds, dict):
        raise InvalidProbe('%s: thresholds must be a dict of metric: {warning, critical}' % what)
    stray = sorted(set(thresholds) - set(METRICS[kind]))
    if stray:
        raise InvalidProbe('%s: kind %s has no metric %s; its metrics are %s'
                           % (what, kind, ', '.join(stray),
                              ', '.join(METRICS[kind]) or 'none'))
    if kind == 'log' and (prepared.get('warning') is not None
                          or prepared.get('critical') is not None):
        raise InvalidProbe('%s: a log probe has no thresholds of its own; give warning and critical '
                           'to each of its metrics' % what)
    if not METRICS[kind] and (prepared.get('warning') is not None
                              or prepared.get('critical') is not None):
        raise InvalidProbe('%s: kind %s has no numeric value to hold thresholds against'
                           % (what, kind))
    prepared['limits'] = dict((metric, _limits(prepared, metric, spec, what))
                              for metric, spec in METRICS[kind].items())
    VALIDATORS.get(kind, lambda p, w: None)(prepared, what)
    prepared['name'] = str(prepared.get('name') or default_name(prepared))
    return prepared


def prepare_probes(probes):
    """Validate all probes; InvalidProbe names the first bad one."""
    if not isinstance(probes, list):
        raise InvalidProbe('probes must be a list of probe definitions')
    prepared = [prepare_probe(probe, index) for index, probe in enumerate(probes)]
    seen = set()
    for probe in prepared:
        if probe['name'] in seen:
            raise InvalidProbe("probe name '%s' is used twice; give each probe a unique name"
                               % probe['name'])
        seen.add(probe['name'])
    return prepared


# ---- per-kind validation ----------------------------------------------------

def _validate_http(probe, what):
    if not re.match(r'^https?://', probe['url']):
        raise InvalidProbe('%s: url %r must start with http:// or https://' % (what, probe['url']))
    samples = probe.get('samples', 1)
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= 1000:
        raise InvalidProbe('%s: samples %r must be a whole number from 1 to 1000' % (what, samples))
    probe['samples'] = samples
    stat = probe.setdefault('latency_stat', 'p95')
    if stat not in LATENCY_STATS:
        raise InvalidProbe('%s: latency_stat %r must be one of %s'
                           % (what, stat, ', '.join(LATENCY_STATS)))
    codes = probe.setdefault('expected_status', [200])
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise InvalidProbe('%s: expected_status %r is not an HTTP status code' % (what, code))
    probe['assertions'] = [parse_assertion(a, what) for a in probe.get('assertions') or []]


def _validate_tls(probe, what):
    has_host, has_path = _present(probe, 'host'), _present(probe, 'path')
    if has_host == has_path:
        raise InvalidProbe('%s: give either host (and port) for a served certificate '
                           'or path for a PEM file, not %s'
                           % (what, 'both' if has_host else 'neither'))
    if has_host:
        probe.setdefault('port', 443)


def _validate_process(probe, what):
    ways = [k for k in ('process_name', 'cmdline_pattern', 'pidfile') if _present(probe, k)]
    if len(ways) != 1:
        raise InvalidProbe('%s: give exactly one of process_name, cmdline_pattern or pidfile'
                           % what)
    if probe.get('cmdline_pattern'):
        try:
            re.compile(probe['cmdline_pattern'])
        except re.error as exc:
            raise InvalidProbe('%s: cmdline_pattern is not a regular expression: %s' % (what, exc))


def _validate_command(probe, what):
    command = probe['command']
    if isinstance(command, str):
        try:
            command = shlex.split(command)
        except ValueError as exc:
            raise InvalidProbe('%s: cannot split command: %s' % (what, exc))
    if not isinstance(command, list) or not command:
        raise InvalidProbe('%s: command must be a string or a non-empty list' % what)
    probe['argv'] = [str(part) for part in command]
    probe.setdefault('expected_rc', [0])
    probe.setdefault('warning_rc', [])
    if probe.get('pattern'):
        try:
            re.compile(probe['pattern'])
        except re.error as exc:
            raise InvalidProbe('%s: pattern is not a regular expression: %s' % (what, exc))


def _validate_cpu(probe, what):
    sample = _number(probe.get('sample_seconds', 0.5), '%s sample_seconds' % what)
    if not 0 < sample <= 60:
        raise InvalidProbe('%s: sample_seconds %r must be above 0 and at most 60' % (what, sample))
    probe['sample_seconds'] = sample


def _validate_systemd(probe, what):
    probe.setdefault('expected_state', 'active')


def _validate_redis(probe, what):
    role = probe.get('expected_role')
    if role not in (None, 'master', 'slave', 'replica'):
        raise InvalidProbe('%s: expected_role %r must be master or replica' % (what, role))
    if role == 'replica':
        probe['expected_role'] = 'slave'


def _validate_log(probe, what):
    from ansible_collections.runbook.ops.plugins.module_utils.logscan import prepare_scan
    try:
        probe['scan'] = prepare_scan(dict((key, probe.get(key)) for key in (
            'paths', 'metrics', 'include_rotated', 'since', 'until', 'time_format',
            'time_pattern', 'timezone')))
    except InvalidProbe as exc:
        raise InvalidProbe('%s: %s' % (what, exc))


def _validate_backup(probe, what):
    from ansible_collections.runbook.ops.plugins.module_utils.backup import BackupError, validate_label
    if not os.path.isabs(probe['path']):
        raise InvalidProbe('%s: path %s must be the absolute backup_root of the backups' % (what, probe['path']))
    if probe.get('label'):
        try:
            validate_label(probe['label'])
        except BackupError as exc:
            raise InvalidProbe('%s: %s' % (what, exc))


VALIDATORS = {
    'backup': _validate_backup,
    'log': _validate_log,
    'http': _validate_http,
    'tls_cert': _validate_tls,
    'process': _validate_process,
    'command': _validate_command,
    'cpu': _validate_cpu,
    'systemd_unit': _validate_systemd,
    'redis': _validate_redis,
}


# ---- runners -------------------------------------------------------------------

def _ms(seconds):
    return round(seconds * 1000.0, 3)


def _metric(probe, metric, value, what, name=None, details=None):
    unit, direction = METRICS[probe['kind']][metric][:2]
    warning, critical = probe['limits'][metric]
    return metric_check(name or probe['name'], probe['kind'], value, unit, warning, critical,
                        direction, what, details=details)


def _sub(probe, suffix):
    return '%s.%s' % (probe['name'], suffix)


def _http_opener(probe):
    """A urllib opener with the probe's TLS verification and redirect policy.

    The standard library rather than ansible.module_utils.urls: importing the
    latter costs more than a whole probe run (measured in bench/daily_run.py)."""
    import urllib.request

    handlers = []
    # Loading the CA store costs tens of milliseconds of CPU under the GIL, so only
    # https URLs pay for it (a redirect to https gets urllib's verifying default).
    if probe['url'].startswith('https://'):
        if probe.get('validate_certs', True):
            context = ssl.create_default_context(cafile=probe.get('ca_path'))
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    if not probe.get('follow_redirects', True):
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None  # the 3xx answer itself is the result
        handlers.append(NoRedirect())
    return urllib.request.build_opener(*handlers)


def run_http(probe, context):
    import urllib.request
    from urllib.error import HTTPError, URLError

    ca_path = probe.get('ca_path')
    if ca_path and not os.access(ca_path, os.R_OK):  # a local problem, not the target's
        raise ProbeError('cannot read the CA bundle %s (ca_path)' % ca_path)
    try:
        opener = _http_opener(probe)
    except (ssl.SSLError, IOError, OSError) as exc:
        raise ProbeError('cannot load the CA bundle %s (ca_path): %s' % (ca_path, exc))
    headers = dict(probe.get('headers') or {})
    headers.setdefault('User-Agent', 'runbook.ops-health_probe')
    body = probe.get('body')
    data = body.encode('utf-8') if body is not None else None
    latencies, codes, failures = [], [], []
    assertion_results = []
    for _sample in range(probe['samples']):
        started = time.monotonic()
        request = urllib.request.Request(probe['url'], data=data, headers=headers,
                                         method=probe.get('method', 'GET'))
        try:
            with opener.open(request, timeout=probe['timeout']) as response:
                code = response.getcode()
                answer = response.read()
        except HTTPError as exc:
            code = exc.code
            answer = exc.read() if hasattr(exc, 'read') else b''
        except URLError as exc:
            reason = getattr(exc, 'reason', exc)
            if isinstance(reason, ssl.SSLError):
                return [check_result(probe['name'], 'http', CRITICAL,
                                     'TLS handshake with %s failed: %s' % (probe['url'], reason),
                                     details={'error': str(reason)})]
            raise Unreachable('%s did not answer: %s' % (probe['url'], reason))
        except ssl.SSLError as exc:
            return [check_result(probe['name'], 'http', CRITICAL,
                                 'TLS handshake with %s failed: %s' % (probe['url'], exc))]
        except (socket.timeout, OSError) as exc:
            raise Unreachable('%s did not answer within %ss: %s'
                              % (probe['url'], format_number(probe['timeout']), exc))
        latencies.append(_ms(time.monotonic() - started))
        codes.append(code)
        if code not in probe['expected_status']:
            failures.append('returned %s' % code)
            continue
        if probe['assertions']:
            try:
                document = json.loads(answer.decode('utf-8', 'replace'))
            except ValueError:
                failures.append('body is not JSON')
                continue
            for assertion in probe['assertions']:
                passed, actual, text = evaluate_assertion(document, assertion)
                if not passed:
                    failures.append('%s failed (actual %s)' % (text, actual))
                assertion_results.append({'assertion': text, 'passed': passed, 'actual': actual})
    stats = latency_stats(latencies)
    stat = probe['latency_stat']
    details = {'status_codes': codes, 'latency_ms': stats, 'assertions': assertion_results}
    what = '%s latency %s over %d sample%s' % (
        probe['url'], stat, len(latencies), '' if len(latencies) == 1 else 's')
    check = _metric(probe, 'latency', stats[stat], what, details=details)
    if failures:
        unique = sorted(set(failures), key=failures.index)
        check['status'] = CRITICAL
        check['message'] = '%s: %s; %s' % (probe['url'], '; '.join(unique[:5]), check['message'])
    return [check]


def run_tcp(probe, context):
    started = time.monotonic()
    try:
        sock = socket.create_connection((probe['host'], probe['port']), timeout=probe['timeout'])
    except (socket.timeout, OSError) as exc:
        raise Unreachable('%s:%s does not accept connections: %s'
                          % (probe['host'], probe['port'], exc))
    latency = _ms(time.monotonic() - started)
    sock.close()
    return [_metric(probe, 'latency', latency,
                    'connect latency to %s:%s' % (probe['host'], probe['port']))]


def _load_certificate(data, der):
    """(not_after datetime UTC, names dict) from a DER or PEM certificate."""
    try:
        from cryptography import x509
        from cryptography.x509.oid import NameOID
    except ImportError:
        x509 = None
    if x509 is not None:
        cert = x509.load_der_x509_certificate(data) if der else x509.load_pem_x509_certificate(data)
        not_after = getattr(cert, 'not_valid_after_utc', None)
        if not_after is None:
            not_after = cert.not_valid_after.replace(tzinfo=timezone.utc)
        dns, ips = [], []
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            dns = san.get_values_for_type(x509.DNSName)
            ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        except x509.ExtensionNotFound:
            pass
        cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        return not_after, {'dns': dns, 'ip': ips, 'cn': cns}
    # Without cryptography: the standard library's decoder, which reads a file.
    pem = ssl.DER_cert_to_PEM_cert(data) if der else data.decode('ascii', 'replace')
    handle, path = tempfile.mkstemp(suffix='.pem')
    try:
        with os.fdopen(handle, 'w') as stream:
            stream.write(pem)
        decoded = ssl._ssl._test_decode_cert(path)  # pylint: disable=protected-access
    finally:
        os.unlink(path)
    not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(decoded['notAfter']), timezone.utc)
    dns = [v for k, v in decoded.get('subjectAltName', ()) if k == 'DNS']
    ips = [v for k, v in decoded.get('subjectAltName', ()) if k == 'IP Address']
    cns = [v for rdn in decoded.get('subject', ()) for k, v in rdn if k == 'commonName']
    return not_after, {'dns': dns, 'ip': ips, 'cn': cns}


def hostname_matches(hostname, names):
    """RFC 6125 matching: IP SANs for addresses, DNS SANs (one leftmost
    wildcard label) otherwise, the CN only when there are no DNS SANs."""
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        address = None
    if address is not None:
        return any(_same_ip(address, ip) for ip in names['ip'])
    hostname = hostname.rstrip('.').lower()
    candidates = names['dns'] or names['cn']
    for pattern in candidates:
        pattern = pattern.rstrip('.').lower()
        if pattern == hostname:
            return True
        if pattern.startswith('*.') and '.' in hostname:
            head, tail = hostname.split('.', 1)
            if head and tail == pattern[2:]:
                return True
    return False


def _same_ip(address, text):
    try:
        return ipaddress.ip_address(text.strip()) == address
    except ValueError:
        return False


def run_tls_cert(probe, context):
    if probe.get('path'):
        try:
            with open(probe['path'], 'rb') as stream:
                data = stream.read()
        except (IOError, OSError) as exc:
            raise ProbeError('cannot read certificate %s: %s' % (probe['path'], exc))
        match = re.search(b'-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----', data, re.S)
        if not match:
            raise ProbeError('%s holds no PEM certificate' % probe['path'])
        data, der, source = match.group(0), False, probe['path']
    else:
        host, port = probe['host'], probe['port']
        context_ = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context_.check_hostname = False
        context_.verify_mode = ssl.CERT_NONE
        server_name = probe.get('server_name') or host
        try:
            with socket.create_connection((host, port), timeout=probe['timeout']) as sock:
                with context_.wrap_socket(sock, server_hostname=server_name) as tls:
                    data = tls.getpeercert(binary_form=True)
        except ssl.SSLError as exc:
            raise ProbeError('TLS handshake with %s:%s failed: %s' % (host, port, exc))
        except (socket.timeout, OSError) as exc:
            raise Unreachable('%s:%s does not accept connections: %s' % (host, port, exc))
        if not data:
            raise ProbeError('%s:%s sent no certificate' % (host, port))
        der, source = True, '%s:%s' % (host, port)
    try:
        not_after, names = _load_certificate(data, der)
    except Exception as exc:  # pylint: disable=broad-except
        raise ProbeError('cannot parse the certificate of %s: %s' % (source, exc))
    days_left = round((not_after - datetime.now(timezone.utc)).total_seconds() / 86400.0, 2)
    details = {'not_after': not_after.strftime('%Y-%m-%dT%H:%M:%SZ'), 'names': names}
    check = _metric(probe, 'days_left', days_left,
                    'certificate of %s expires %s; days left' % (source, details['not_after']),
                    details=details)
    server_name = probe.get('server_name') or probe.get('host')
    if server_name and probe.get('check_hostname', True):
        details['hostname'] = server_name
        if not hostname_matches(server_name, names):
            check['status'] = CRITICAL
            check['message'] = ('certificate of %s does not match %s (names %s); %s'
                                % (source, server_name,
                                   ', '.join(names['dns'] + names['ip']) or ', '.join(names['cn']),
                                   check['message']))
    return [check]


_PG_UNREACHABLE = re.compile(r'could not connect|connection refused|could not translate|'
                             r'timeout expired|no route to host|Is the server running',
                             re.IGNORECASE)


def run_postgres(probe, context):
    try:
        import psycopg2
    except ImportError:
        raise ProbeError('psycopg2 is not installed for %s on this host; install '
                         'psycopg2-binary' % context.get('python', 'the Python'))
    params = {
        'host': probe.get('host') or 'localhost',
        'port': probe.get('port', 5432),
        'dbname': probe.get('database', 'postgres'),
        'connect_timeout': max(1, int(round(probe['timeout']))),
        'application_name': 'runbook.ops-health_probe',
    }
    for key in ('user', 'password', 'passfile', 'sslmode'):
        if probe.get(key):
            params[key] = probe[key]
    where = '%s:%s/%s' % (params['host'], params['port'], params['dbname'])
    started = time.monotonic()
    try:
        connection = psycopg2.connect(**params)
    except psycopg2.OperationalError as exc:
        text = str(exc).strip().replace('\n', ' ')
        if _PG_UNREACHABLE.search(text):
            raise Unreachable('PostgreSQL at %s does not answer: %s' % (where, text))
        return [check_result(probe['name'], 'postgres', CRITICAL,
                             'PostgreSQL at %s refused the login: %s' % (where, text))]
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute('SET statement_timeout = %s', (int(probe['timeout'] * 1000),))
            cursor.execute('SELECT 1')
            cursor.fetchone()
            latency = _ms(time.monotonic() - started)
            cursor.execute("SELECT current_setting('max_connections')::int, "
                           "(SELECT count(*) FROM pg_stat_activity "
                           " WHERE backend_type = 'client backend'), "
                           "pg_is_in_recovery(), current_setting('server_version')")
            max_connections, in_use, in_recovery, version = cursor.fetchone()
            lag = None
            if in_recovery:
                cursor.execute('SELECT CASE WHEN pg_last_wal_receive_lsn() = '
                               'pg_last_wal_replay_lsn() THEN 0 ELSE '
                               'COALESCE(EXTRACT(EPOCH FROM now() - '
                               'pg_last_xact_replay_timestamp()), 0) END')
                lag = round(float(cursor.fetchone()[0]), 3)
    except psycopg2.Error as exc:
        return [check_result(probe['name'], 'postgres', CRITICAL,
                             'PostgreSQL at %s failed a query: %s' % (where, str(exc).strip()))]
    finally:
        connection.close()
    role = 'replica' if in_recovery else 'primary'
    checks = [_metric(probe, 'latency', latency,
                      'PostgreSQL %s (%s) at %s answered SELECT 1; latency'
                      % (version.split()[0], role, where), details={'role': role, 'version': version})]
    percent = round(100.0 * in_use / max_connections, 2) if max_connections else None
    checks.append(_metric(probe, 'connections', percent,
                          'connections in use at %s (%d of max_connections %d)'
                          % (where, in_use, max_connections), name=_sub(probe, 'connections'),
                          details={'in_use': in_use, 'max_connections': max_connections}))
    if in_recovery:
        checks.append(_metric(probe, 'replication_lag', lag, 'replication lag at %s' % where,
                              name=_sub(probe, 'replication_lag')))
    return checks


def run_redis(probe, context):
    try:
        import redis
    except ImportError:
        raise ProbeError('the redis Python library is not installed on this host; '
                         'install redis')
    host, port = probe.get('host') or 'localhost', probe.get('port', 6379)
    where = '%s:%s' % (host, port)
    client = redis.Redis(host=host, port=port, username=probe.get('username'),
                         password=probe.get('password'), socket_timeout=probe['timeout'],
                         socket_connect_timeout=probe['timeout'])
    started = time.monotonic()
    try:
        client.ping()
        latency = _ms(time.monotonic() - started)
        memory = client.info('memory')
        replication = client.info('replication')
    except redis.exceptions.AuthenticationError as exc:
        return [check_result(probe['name'], 'redis', CRITICAL,
                             'Redis at %s refused the login: %s' % (where, exc))]
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise Unreachable('Redis at %s does not answer: %s' % (where, exc))
    except redis.exceptions.RedisError as exc:
        return [check_result(probe['name'], 'redis', CRITICAL,
                             'Redis at %s failed: %s' % (where, exc))]
    finally:
        client.close()
    role = replication.get('role')
    check = _metric(probe, 'latency', latency, 'Redis (%s) at %s answered PING; latency' % (role, where),
                    details={'role': role})
    expected = probe.get('expected_role')
    if expected and role != expected:
        check['status'] = CRITICAL
        check['message'] = 'Redis at %s is %s, expected %s; %s' % (
            where, role, expected, check['message'])
    used, limit = memory.get('used_memory', 0), memory.get('maxmemory', 0)
    details = {'used_memory': used, 'maxmemory': limit,
               'maxmemory_policy': memory.get('maxmemory_policy')}
    if limit:
        memory_check = _metric(probe, 'memory', round(100.0 * used / limit, 2),
                               'Redis at %s used_memory vs maxmemory %s'
                               % (where, _bytes(limit)), name=_sub(probe, 'memory'),
                               details=details)
    else:
        warning, critical = probe['limits']['memory']
        memory_check = check_result(_sub(probe, 'memory'), 'redis', OK,
                                    'Redis at %s uses %s and has no maxmemory limit'
                                    % (where, _bytes(used)), unit='%', warning=warning,
                                    critical=critical, details=details)
    return [check, memory_check]


def _bytes(count):
    value = float(count)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if value < 1024 or unit == 'TiB':
            return '%s %s' % (format_number(round(value, 1)), unit)
        value /= 1024.0


# the kernel writes space, tab, newline and backslash in mount points as \040 etc.
_MOUNT_ESCAPE = re.compile(r'\\([0-7]{3})')


def real_mounts(mounts_file='/proc/mounts'):
    """Mount points of real filesystems, one per device, in mount order."""
    mounts, devices = [], set()
    with open(mounts_file) as stream:
        for line in stream:
            fields = line.split()
            if len(fields) < 3 or fields[2] in PSEUDO_FILESYSTEMS:
                continue
            point = _MOUNT_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), fields[1])
            if fields[0] in devices and fields[0] != 'overlay':
                continue
            devices.add(fields[0])
            mounts.append(point)
    return mounts


def disk_usage(path):
    """usage %, inode usage % (None without inodes) and free GiB, as df counts them."""
    stat = os.statvfs(path)
    used = stat.f_blocks - stat.f_bfree
    usable = used + stat.f_bavail
    usage = round(100.0 * used / usable, 2) if usable else 0.0
    inodes = None
    if stat.f_files:
        inodes = round(100.0 * (stat.f_files - stat.f_ffree) / stat.f_files, 2)
    free = round(stat.f_bavail * stat.f_frsize / 1024.0 ** 3, 2)
    return usage, inodes, free


def run_disk(probe, context):
    paths = probe.get('paths') or real_mounts()
    checks = []
    for path in paths:
        name = '%s[%s]' % (probe['name'], path)
        try:
            usage, inodes, free = disk_usage(path)
        except OSError as exc:
            checks.append(check_result(name, 'disk', UNKNOWN, 'cannot stat %s: %s' % (path, exc)))
            continue
        checks.append(_metric(probe, 'usage', usage, 'disk usage of %s' % path, name=name,
                              details={'free_gib': free}))
        if inodes is not None:
            checks.append(_metric(probe, 'inodes', inodes, 'inode usage of %s' % path,
                                  name=name + '.inodes'))
        if probe['limits']['free'] != (None, None):
            checks.append(_metric(probe, 'free', free, 'free space on %s' % path,
                                  name=name + '.free'))
    return checks


def read_meminfo(path='/proc/meminfo'):
    values = {}
    with open(path) as stream:
        for line in stream:
            key, _sep, rest = line.partition(':')
            fields = rest.split()
            if fields:
                values[key] = int(fields[0]) * (1024 if fields[1:] == ['kB'] else 1)
    return values


def memory_usage(meminfo):
    total = meminfo['MemTotal']
    available = meminfo.get('MemAvailable')
    if available is None:  # kernels before 3.14
        available = meminfo.get('MemFree', 0) + meminfo.get('Buffers', 0) + meminfo.get('Cached', 0)
    return round(100.0 * (total - available) / total, 2)


def run_memory(probe, context):
    try:
        meminfo = read_meminfo()
    except (IOError, OSError, KeyError) as exc:
        raise ProbeError('cannot read /proc/meminfo: %s' % exc)
    usage = memory_usage(meminfo)
    details = dict((key.lower(), meminfo.get(key)) for key in
                   ('MemTotal', 'MemAvailable', 'SwapTotal', 'SwapFree'))
    return [_metric(probe, 'usage', usage, 'memory usage (of %s)' % _bytes(meminfo['MemTotal']),
                    details=details)]


def read_cpu_times(path='/proc/stat'):
    with open(path) as stream:
        fields = stream.readline().split()
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    # guest time is already counted in user and nice
    total = sum(values[:8])
    return idle, total


def cpu_usage(before, after):
    idle = after[0] - before[0]
    total = after[1] - before[1]
    if total <= 0:
        return 0.0
    return round(100.0 * (total - idle) / total, 2)


def run_cpu(probe, context):
    try:
        before = read_cpu_times()
        time.sleep(probe['sample_seconds'])
        after = read_cpu_times()
    except (IOError, OSError, ValueError, IndexError) as exc:
        raise ProbeError('cannot read /proc/stat: %s' % exc)
    usage = cpu_usage(before, after)
    cores = os.cpu_count() or 1
    load1, load5, load15 = os.getloadavg()
    return [
        _metric(probe, 'usage', usage, 'CPU usage over %ss' % format_number(probe['sample_seconds'])),
        _metric(probe, 'load', round(load1 / cores, 2),
                'load average %.2f over %d core%s; 1-minute load'
                % (load1, cores, '' if cores == 1 else 's'), name=_sub(probe, 'load'),
                details={'load1': load1, 'load5': load5, 'load15': load15, 'cores': cores}),
    ]


def _run(argv, timeout, what):
    env = dict(os.environ, LANG='C', LC_ALL='C')
    try:
        process = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 timeout=timeout, env=env, check=False)
    except (IOError, OSError) as exc:
        raise ProbeError('cannot run %s: %s' % (argv[0], exc))
    except subprocess.TimeoutExpired:
        raise Unreachable('%s did not finish within %ss' % (what, format_number(timeout)))
    return (process.returncode, process.stdout.decode('utf-8', 'replace'),
            process.stderr.decode('utf-8', 'replace'))


def run_systemd_unit(probe, context):
    systemctl = context.get('systemctl') or 'systemctl'
    unit = probe['unit']
    rc, out, err = _run([systemctl, 'show', '--no-pager',
                         '--property=LoadState,ActiveState,SubState', '--', unit],
                        probe['timeout'], 'systemctl show %s' % unit)
    if rc != 0:
        raise ProbeError('systemctl cannot show %s: %s' % (unit, (err or out).strip()))
    state = dict(line.split('=', 1) for line in out.splitlines() if '=' in line)
    details = dict((k.lower(), v) for k, v in state.items())
    active, sub = state.get('ActiveState'), state.get('SubState')
    expected = probe['expected_state']
    if state.get('LoadState') == 'not-found':
        status, message = CRITICAL, 'unit %s is not installed' % unit
    elif active == expected:
        status, message = OK, 'unit %s is %s (%s)' % (unit, active, sub)
    elif active in ('activating', 'reloading', 'deactivating'):
        status, message = WARNING, 'unit %s is %s (%s), expected %s' % (unit, active, sub, expected)
    else:
        status, message = CRITICAL, 'unit %s is %s (%s), expected %s' % (
            unit, active, sub, expected)
    return [check_result(probe['name'], 'systemd_unit', status, message, value=active,
                         details=details)]


def _proc_entries(proc='/proc'):
    for entry in os.listdir(proc):
        if entry.isdigit():
            yield entry


def _read(path, binary=False):
    with open(path, 'rb' if binary else 'r') as stream:
        return stream.read()


def _alive(pid, proc='/proc'):
    try:
        stat = _read(os.path.join(proc, str(pid), 'stat'))
    except (IOError, OSError):
        return False
    # the state follows the parenthesised command name
    return stat.rsplit(')', 1)[-1].split()[0] not in ('Z', 'X')


def find_processes(process_name=None, cmdline_pattern=None, proc='/proc'):
    """PIDs of live processes whose comm equals process_name or whose
    command line matches cmdline_pattern."""
    pattern = re.compile(cmdline_pattern) if cmdline_pattern else None
    own = os.getpid()
    found = []
    for entry in _proc_entries(proc):
        pid = int(entry)
        if pid == own:
            continue
        try:
            if process_name is not None:
                matched = _read(os.path.join(proc, entry, 'comm')).strip() == process_name[:15]
            else:
                cmdline = _read(os.path.join(proc, entry, 'cmdline'), binary=True)
                cmdline = cmdline.replace(b'\0', b' ').decode('utf-8', 'replace').strip()
                matched = bool(cmdline) and pattern.search(cmdline) is not None
        except (IOError, OSError):
            continue
        if matched and _alive(pid, proc):
            found.append(pid)
    return sorted(found)


def run_process(probe, context):
    if probe.get('pidfile'):
        pidfile = probe['pidfile']
        try:
            # the pid is the first line (PostgreSQL's postmaster.pid has more lines)
            text = (_read(pidfile).strip().splitlines() or [''])[0].strip()
        except (IOError, OSError) as exc:
            return [check_result(probe['name'], 'process', CRITICAL,
                                 'pidfile %s cannot be read: %s' % (pidfile, exc.strerror or exc),
                                 value=0)]
        if not text.isdigit():
            return [check_result(probe['name'], 'process', CRITICAL,
                                 'pidfile %s holds %r, not a process id' % (pidfile, text[:40]),
                                 value=0)]
        pids = [int(text)] if _alive(int(text)) else []
        what = 'number of live processes from pidfile %s (pid %s)' % (pidfile, text)
    else:
        pids = find_processes(probe.get('process_name'), probe.get('cmdline_pattern'))
        what = 'number of live processes named %s' % probe['process_name'] \
            if probe.get('process_name') \
            else 'number of live processes matching /%s/' % probe['cmdline_pattern']
    return [_metric(probe, 'count', len(pids), what, details={'pids': pids[:50]})]


def run_docker_container(probe, context):
    try:
        import docker
        from docker.errors import DockerException, NotFound
    except ImportError:
        raise ProbeError('the docker Python SDK is not installed on this host; install docker')
    name = probe['container']
    try:
        if probe.get('docker_host'):
            client = docker.DockerClient(base_url=probe['docker_host'], timeout=probe['timeout'])
        else:
            client = docker.from_env(timeout=probe['timeout'])
    except DockerException as exc:
        raise Unreachable('the Docker engine does not answer: %s' % exc)
    try:
        try:
            container = client.containers.get(name)
        except NotFound:
            return [check_result(probe['name'], 'docker_container', CRITICAL,
                                 'container %s does not exist' % name)]
        except DockerException as exc:
            raise Unreachable('the Docker engine does not answer: %s' % exc)
        except Exception as exc:  # requests' connection errors
            raise Unreachable('the Docker engine does not answer: %s' % exc)
        state = container.attrs.get('State', {})
        running = state.get('Status')
        health = (state.get('Health') or {}).get('Status')
        restarts = container.attrs.get('RestartCount', 0)
    finally:
        client.close()
    check = _metric(probe, 'restarts', restarts, 'container %s is %s%s; restart count'
                    % (name, running, ', %s' % health if health else ''),
                    details={'state': running, 'health': health})
    if running != 'running' or health == 'unhealthy':
        check['status'] = CRITICAL
    elif health == 'starting':
        check['status'] = worst([check['status'], WARNING])
    return [check]


def run_file_freshness(probe, context):
    pattern = probe['path']
    newest, newest_mtime = None, None
    for path in glob.iglob(pattern, recursive=True):
        try:
            info = os.stat(path)
        except OSError:
            continue
        if not S_ISREG(info.st_mode):  # '**' also matches directories, whose mtime
            continue                   # changes when retention deletes a file
        mtime = info.st_mtime
        if newest_mtime is None or mtime > newest_mtime:
            newest, newest_mtime = path, mtime
    warning, critical = probe['limits']['age']
    if newest is None:
        return [check_result(probe['name'], 'file_freshness', CRITICAL,
                             'no file matches %s' % pattern, unit='s', warning=warning,
                             critical=critical)]
    age = round(max(0.0, time.time() - newest_mtime), 1)
    what = 'newest file %s is %s old; age' % (newest, format_duration(age))
    check = _metric(probe, 'age', age, what, details={'path': newest, 'mtime': newest_mtime})
    limits = describe_thresholds(
        format_duration(warning) if warning is not None else None,
        format_duration(critical) if critical is not None else None, ABOVE)
    check['message'] = 'newest file %s is %s old%s' % (
        newest, format_duration(age), ' (%s)' % limits if limits else '')
    return [check]


def run_command(probe, context):
    argv = probe['argv']
    rc, out, err = _run(argv, probe['timeout'], 'command %s' % argv[0])
    output = out + err
    text = ' '.join(argv)
    details = {'rc': rc, 'output': output[-2000:]}
    if rc in probe['expected_rc']:
        status, message = OK, '%s exited %d' % (text, rc)
    elif rc in probe['warning_rc']:
        status, message = WARNING, '%s exited %d (warning exit codes %s)' % (
            text, rc, probe['warning_rc'])
    else:
        status, message = CRITICAL, '%s exited %d (expected %s)' % (text, rc, probe['expected_rc'])
    if probe.get('pattern') and status == OK and not re.search(probe['pattern'], output, re.M):
        status = CRITICAL
        message = '%s: output does not match /%s/' % (message, probe['pattern'])
    last = output.strip().splitlines()[-1:] if output.strip() else []
    if last and status != OK:
        message += ': %s' % last[0][:200]
    return [check_result(probe['name'], 'command', status, message, value=rc, details=details)]


def run_log(probe, context):
    """The probe's log metrics (runbook.ops.log_scan's logic), one check each, named
    <probe>.<metric>; the scan stops at the probe's timeout."""
    from ansible_collections.runbook.ops.plugins.module_utils.logscan import scan
    checks, _facts = scan(probe['scan'], deadline=time.monotonic() + probe['timeout'])
    for check in checks:
        check['name'] = _sub(probe, check['name'])
    return checks


def backup_label_check(probe, name, directory, now):
    """One check: the age of the newest verified backup in one label directory
    (from its manifest's end time), against the probe's age thresholds."""
    from ansible_collections.runbook.ops.plugins.module_utils.backup import FAILED, freshness, list_backups
    backups = list_backups(directory)
    warning, critical = probe['limits']['age']
    age, newest_name = freshness(backups, now)
    label = os.path.basename(directory)
    counts = {}
    for backup in backups:
        counts[backup['status']] = counts.get(backup['status'], 0) + 1
    details = {'label': label, 'directory': directory, 'newest_verified': newest_name,
               'newest': backups[-1]['name'] if backups else None, 'backups_by_status': counts}
    if age is None:
        return check_result(name, 'backup', CRITICAL,
                            'no verified backup of %s in %s (%d backup%s found)'
                            % (label, directory, len(backups), '' if len(backups) == 1 else 's'),
                            unit='s', warning=warning, critical=critical, details=details)
    check = _metric(probe, 'age', age, 'backup age', name=name, details=details)
    limits = describe_thresholds(
        format_duration(warning) if warning is not None else None,
        format_duration(critical) if critical is not None else None, ABOVE)
    check['message'] = 'newest verified backup %s/%s is %s old%s' % (
        label, newest_name, format_duration(age), ' (%s)' % limits if limits else '')
    failed_after = [b['name'] for b in backups if b['name'] > newest_name and b['status'] == FAILED]
    if failed_after:
        check['status'] = worst([check['status'], WARNING])
        check['message'] += '; %d newer backup%s failed verification (%s)' % (
            len(failed_after), '' if len(failed_after) == 1 else 's', failed_after[-1])
    return check


def run_backup(probe, context):
    """Backup freshness from the manifests of <path>/<label>/*/manifest.json: one check
    for the label, or one per label directory (<name>.<label>) when no label is given."""
    now = datetime.now(timezone.utc)
    root = probe['path']
    if probe.get('label'):
        return [backup_label_check(probe, probe['name'], os.path.join(root, probe['label']), now)]
    try:
        labels = sorted(n for n in os.listdir(root)
                        if not n.startswith('.') and os.path.isdir(os.path.join(root, n)))
    except OSError as exc:
        raise ProbeError('cannot list the backup root %s: %s' % (root, exc))
    if not labels:
        warning, critical = probe['limits']['age']
        return [check_result(probe['name'], 'backup', CRITICAL, 'no backup label under %s' % root,
                             unit='s', warning=warning, critical=critical)]
    return [backup_label_check(probe, _sub(probe, label), os.path.join(root, label), now)
            for label in labels]


RUNNERS = {
    'backup': run_backup,
    'log': run_log,
    'http': run_http, 'tcp': run_tcp, 'tls_cert': run_tls_cert, 'postgres': run_postgres,
    'redis': run_redis, 'disk': run_disk, 'memory': run_memory, 'cpu': run_cpu,
    'systemd_unit': run_systemd_unit, 'process': run_process,
    'docker_container': run_docker_container, 'file_freshness': run_file_freshness,
    'command': run_command,
}


def run_probe(probe, context=None):
    """Run one prepared probe; never raises.  Returns a list of checks."""
    context = context or {}
    started = time.monotonic()
    limits = probe['limits']
    primary = next(iter(METRICS[probe['kind']]), None)
    unit = METRICS[probe['kind']][primary][0] if primary else None
    warning, critical = limits[primary] if primary else (None, None)
    try:
        checks = RUNNERS[probe['kind']](probe, context)
    except Unreachable as exc:
        checks = [check_result(probe['name'], probe['kind'], probe['on_unreachable'],
                               str(exc), unit=unit, warning=warning, critical=critical,
                               details={'unreachable': True})]
    except ProbeError as exc:
        checks = [check_result(probe['name'], probe['kind'], UNKNOWN, str(exc), unit=unit,
                               warning=warning, critical=critical)]
    except Exception as exc:  # pylint: disable=broad-except
        checks = [check_result(probe['name'], probe['kind'], UNKNOWN,
                               'probe failed unexpectedly: %s: %s' % (type(exc).__name__, exc),
                               unit=unit, warning=warning, critical=critical)]
    elapsed = _ms(time.monotonic() - started)
    for check in checks:
        if check.get('duration_ms') is None:
            check['duration_ms'] = elapsed
    return checks


def run_probes(probes, concurrency=16, context=None):
    """Run prepared probes concurrently; checks come back in probe order."""
    if not probes:
        return []
    workers = max(1, min(concurrency, len(probes)))
    if workers == 1:
        results = [run_probe(probe, context) for probe in probes]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda probe: run_probe(probe, context), probes))
    return [check for checks in results for check in checks]
