# -*- coding: utf-8 -*-
"""http, tcp and tls_cert probes through ansible-playbook against real loopback servers.

Each module-scoped fixture makes one ansible-playbook run holding many probes; the
tests below it assert on the checks of that run.
"""

import pytest


# ---- http ---------------------------------------------------------------------------

@pytest.fixture(scope='module')
def http_run(run_probes, http_service, tls_service, ca_pem, closed_port):
    url, tls = http_service.url, tls_service.url
    probes = [
        {'name': 'health', 'kind': 'http', 'url': url + '/health',
         'warning': 10000, 'critical': 20000},
        {'name': 'status503', 'kind': 'http', 'url': url + '/status/503'},
        {'name': 'status503-expected', 'kind': 'http', 'url': url + '/status/503',
         'expected_status': [503]},
        {'name': 'status204', 'kind': 'http', 'url': url + '/status/204',
         'expected_status': [200, 204]},
        {'name': 'json-ok', 'kind': 'http', 'url': url + '/health',
         'assertions': ['status == "healthy"', 'components.db.status == "up"']},
        {'name': 'json-fail', 'kind': 'http', 'url': url + '/health',
         'assertions': ['status == "healthy"', 'components.db.status == "down"']},
        {'name': 'json-ops', 'kind': 'http', 'url': url + '/json?count=5&state=green',
         'assertions': ['count < 10', 'count >= 5', 'state =~ "^gr"', 'missing absent',
                        {'path': 'state', 'op': '==', 'value': 'green'}]},
        {'name': 'not-json', 'kind': 'http', 'url': url + '/status/200',
         'assertions': ['status exists']},
        {'name': 'slow-ok', 'kind': 'http', 'url': url + '/delay/150', 'samples': 5,
         'warning': 10000, 'critical': 20000},
        {'name': 'slow-warning', 'kind': 'http', 'url': url + '/delay/150', 'samples': 5,
         'warning': 100, 'critical': 10000},
        {'name': 'slow-critical', 'kind': 'http', 'url': url + '/delay/150', 'samples': 3,
         'latency_stat': 'max', 'warning': 50, 'critical': 100},
        {'name': 'refused', 'kind': 'http', 'url': 'http://127.0.0.1:%d/health' % closed_port},
        {'name': 'refused-warning', 'kind': 'http', 'on_unreachable': 'warning',
         'url': 'http://127.0.0.1:%d/health' % closed_port},
        {'name': 'too-slow', 'kind': 'http', 'url': url + '/delay/3000', 'timeout': 0.5},
        {'name': 'tls-default', 'kind': 'http', 'url': tls + '/health'},
        {'name': 'tls-ca', 'kind': 'http', 'url': tls + '/health', 'ca_path': str(ca_pem),
         'assertions': ['status == "healthy"']},
        {'name': 'tls-novalidate', 'kind': 'http', 'url': tls + '/health',
         'validate_certs': False},
        {'name': 'tls-ca-missing', 'kind': 'http', 'url': tls + '/health',
         'ca_path': '/nonexistent/ca.pem'},
    ]
    return run_probes(probes, fail_on_critical=False)


def test_http_run_is_unchanged_and_rolled_up(http_run):
    result = http_run.result
    assert http_run.rc == 0, http_run
    assert result['changed'] is False
    assert result.get('failed') is False
    assert result['status'] == 'critical'
    assert sum(result['counts'].values()) == len(result['checks']) == 18
    assert result['counts']['warning'] == 2  # slow-warning, refused-warning
    assert 'Traceback' not in http_run.stdout + http_run.stderr


def test_http_ok_with_latency_and_thresholds(http_run, http_service):
    check = http_run.check('health')
    assert check['status'] == 'ok'
    assert check['kind'] == 'http'
    assert check['unit'] == 'ms'
    assert check['value'] > 0
    assert (check['warning'], check['critical']) == (10000, 20000)
    assert http_service.url + '/health' in check['message']
    assert 'latency p95 over 1 sample' in check['message']
    assert 'warning > 10000 ms, critical > 20000 ms' in check['message']
    assert check['details']['status_codes'] == [200]
    assert check['duration_ms'] >= 0


def test_http_unexpected_status_is_critical(http_run):
    check = http_run.check('status503')
    assert check['status'] == 'critical'
    assert 'returned 503' in check['message']
    assert check['details']['status_codes'] == [503]


def test_http_expected_status_codes(http_run):
    assert http_run.check('status503-expected')['status'] == 'ok'
    check = http_run.check('status204')
    assert check['status'] == 'ok'
    assert check['details']['status_codes'] == [204]


def test_http_json_assertions_pass(http_run):
    check = http_run.check('json-ok')
    assert check['status'] == 'ok'
    assertions = check['details']['assertions']
    assert [a['assertion'] for a in assertions] == ['status == "healthy"',
                                                    'components.db.status == "up"']
    assert all(a['passed'] for a in assertions)
    assert http_run.check('json-ops')['status'] == 'ok'
    assert all(a['passed'] for a in http_run.check('json-ops')['details']['assertions'])


def test_http_json_assertion_failure_is_critical_and_named(http_run):
    check = http_run.check('json-fail')
    assert check['status'] == 'critical'
    assert 'components.db.status == "down" failed (actual "up")' in check['message']
    assert 'status == "healthy"' not in check['message']  # only the failed one
    passed = dict((a['assertion'], a['passed']) for a in check['details']['assertions'])
    assert passed == {'status == "healthy"': True, 'components.db.status == "down"': False}


def test_http_assertion_on_a_body_that_is_json_of_another_shape(http_run):
    # /status/200 answers {"status": 200}: the assertion holds
    assert http_run.check('not-json')['status'] == 'ok'


def test_http_samples_p95_under_thresholds_is_ok(http_run):
    check = http_run.check('slow-ok')
    assert check['status'] == 'ok'
    stats = check['details']['latency_ms']
    assert stats['count'] == 5
    assert check['value'] == stats['p95']
    assert check['value'] >= 150  # the server sleeps 150 ms before answering
    assert check['details']['status_codes'] == [200] * 5


def test_http_samples_p95_over_warning(http_run):
    check = http_run.check('slow-warning')
    assert check['status'] == 'warning'
    assert check['value'] >= 150
    assert 'latency p95 over 5 samples' in check['message']
    assert 'warning > 100 ms, critical > 10000 ms' in check['message']


def test_http_latency_over_critical(http_run):
    check = http_run.check('slow-critical')
    assert check['status'] == 'critical'
    assert check['value'] == check['details']['latency_ms']['max'] >= 150
    assert 'latency max over 3 samples' in check['message']
    assert 'critical > 100 ms' in check['message']


def test_http_refused_is_unreachable(http_run, closed_port):
    check = http_run.check('refused')
    assert check['status'] == 'critical'
    assert check['value'] is None
    assert check['unit'] == 'ms'
    assert check['details'] == {'unreachable': True}
    assert 'http://127.0.0.1:%d/health did not answer' % closed_port in check['message']
    assert http_run.check('refused-warning')['status'] == 'warning'


def test_http_timeout_is_unreachable(http_run):
    check = http_run.check('too-slow')
    assert check['status'] == 'critical'
    assert check['details'] == {'unreachable': True}
    assert '/delay/3000 did not answer' in check['message']


def test_https_self_signed_fails_verification_by_default(http_run, tls_service):
    check = http_run.check('tls-default')
    assert check['status'] == 'critical'
    assert tls_service.url + '/health' in check['message']
    assert 'CERTIFICATE_VERIFY_FAILED' in check['message'] or \
        'certificate verify failed' in check['message'].lower()


def test_https_ca_path_makes_verification_pass(http_run):
    check = http_run.check('tls-ca')
    assert check['status'] == 'ok', check
    assert check['details']['status_codes'] == [200]
    assert check['details']['assertions'][0]['passed'] is True


def test_https_validate_certs_false(http_run):
    assert http_run.check('tls-novalidate')['status'] == 'ok'


def test_https_unreadable_ca_path_is_unknown(http_run):
    """A CA bundle that cannot be read is this host's problem, not the target's: the
    probe cannot run (unknown) rather than the server not answering (critical)."""
    check = http_run.check('tls-ca-missing')
    assert check['status'] == 'unknown'
    assert 'cannot read the CA bundle /nonexistent/ca.pem' in check['message']


# ---- concurrency -------------------------------------------------------------------

def test_http_probes_run_concurrently(run_tasks, new_http_service):
    """Ten probes on an endpoint that sleeps 200 ms: the server records how many
    requests it was handling at once.  With the default concurrency they overlap;
    with concurrency 1 they never do."""
    parallel, serial = new_http_service(), new_http_service()
    run = run_tasks([
        {'probes': [{'name': 'slow-%d' % i, 'kind': 'http', 'url': parallel.url + '/delay/200'}
                    for i in range(10)]},
        {'concurrency': 1,
         'probes': [{'name': 'serial-%d' % i, 'kind': 'http', 'url': serial.url + '/delay/200'}
                    for i in range(3)]},
    ])
    concurrent, one_by_one = run.results
    assert concurrent['status'] == 'ok', run
    assert [c['name'] for c in concurrent['checks']] == ['slow-%d' % i for i in range(10)]
    assert all(c['value'] >= 200 for c in concurrent['checks'])
    assert parallel.server.requests == 10
    assert parallel.server.max_in_flight > 1, 'the probes ran one after another'
    assert one_by_one['status'] == 'ok', run
    assert serial.server.requests == 3
    assert serial.server.max_in_flight == 1


# ---- tcp ------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def tcp_run(run_probes, http_service, closed_port):
    port = http_service.port
    probes = [
        {'name': 'open', 'kind': 'tcp', 'host': '127.0.0.1', 'port': port,
         'warning': 10000, 'critical': 20000},
        # connecting takes more than 0 ms, so a 0 ms threshold is always breached
        {'name': 'open-warning', 'kind': 'tcp', 'host': '127.0.0.1', 'port': port,
         'warning': 0, 'critical': 10000},
        {'name': 'open-critical', 'kind': 'tcp', 'host': 'localhost', 'port': port,
         'warning': 0, 'critical': 0},
        {'name': 'closed', 'kind': 'tcp', 'host': '127.0.0.1', 'port': closed_port},
        {'name': 'closed-unknown', 'kind': 'tcp', 'host': '127.0.0.1', 'port': closed_port,
         'on_unreachable': 'unknown'},
        {'kind': 'tcp', 'host': '127.0.0.1', 'port': closed_port, 'on_unreachable': 'warning'},
    ]
    return run_probes(probes, fail_on_critical=False)


def test_tcp_open_port(tcp_run, http_service):
    check = tcp_run.check('open')
    assert check['status'] == 'ok'
    assert check['unit'] == 'ms' and check['value'] > 0
    assert 'connect' in check['message']
    assert '127.0.0.1:%d' % http_service.port in check['message']
    assert 'warning > 10000 ms, critical > 20000 ms' in check['message']


def test_tcp_latency_thresholds(tcp_run):
    assert tcp_run.check('open-warning')['status'] == 'warning'
    check = tcp_run.check('open-critical')
    assert check['status'] == 'critical'
    assert 'critical > 0 ms' in check['message']


def test_tcp_closed_port(tcp_run, closed_port):
    check = tcp_run.check('closed')
    assert check['status'] == 'critical'
    assert check['value'] is None
    assert '127.0.0.1:%d does not accept connections' % closed_port in check['message']
    assert 'refused' in check['message'].lower()
    assert tcp_run.check('closed-unknown')['status'] == 'unknown'
    # a probe without a name is named after its kind and target
    assert tcp_run.check('tcp:127.0.0.1:%d' % closed_port)['status'] == 'warning'
    assert tcp_run.result['counts'] == {'ok': 1, 'warning': 2, 'unknown': 1, 'critical': 2}


# ---- tls_cert --------------------------------------------------------------------------

@pytest.fixture(scope='module')
def tls_cert_run(run_probes, tls_service, http_service, pem_files, closed_port, work_dir):
    port = tls_service.port
    probes = [
        {'name': 'served-10d', 'kind': 'tls_cert', 'host': '127.0.0.1', 'port': port,
         'warning': 30, 'critical': 7},
        {'name': 'served-10d-critical', 'kind': 'tls_cert', 'host': '127.0.0.1', 'port': port,
         'critical': 15},
        {'name': 'served-10d-ok', 'kind': 'tls_cert', 'host': '127.0.0.1', 'port': port,
         'warning': 5, 'critical': 2},
        {'name': 'served-localhost', 'kind': 'tls_cert', 'host': '127.0.0.1', 'port': port,
         'server_name': 'localhost'},
        {'name': 'mismatch', 'kind': 'tls_cert', 'host': '127.0.0.1', 'port': port,
         'server_name': 'shop.example.com', 'warning': 5, 'critical': 2},
        {'name': 'mismatch-unchecked', 'kind': 'tls_cert', 'host': '127.0.0.1', 'port': port,
         'server_name': 'shop.example.com', 'check_hostname': False},
        {'name': 'pem-400d', 'kind': 'tls_cert', 'path': str(pem_files['days400'])},
        {'name': 'pem-10d', 'kind': 'tls_cert', 'path': str(pem_files['days10'])},
        {'name': 'pem-3d', 'kind': 'tls_cert', 'path': str(pem_files['days3'])},
        {'name': 'pem-expired', 'kind': 'tls_cert', 'path': str(pem_files['expired'])},
        {'name': 'pem-garbage', 'kind': 'tls_cert', 'path': str(pem_files['garbage'])},
        {'name': 'pem-missing', 'kind': 'tls_cert', 'path': str(work_dir / 'nope.pem')},
        {'name': 'closed', 'kind': 'tls_cert', 'host': '127.0.0.1', 'port': closed_port},
        {'name': 'closed-unknown', 'kind': 'tls_cert', 'host': '127.0.0.1', 'port': closed_port,
         'on_unreachable': 'unknown'},
        {'name': 'plain-http', 'kind': 'tls_cert', 'host': '127.0.0.1',
         'port': http_service.port},
    ]
    return run_probes(probes, fail_on_critical=False)


def test_tls_cert_10_days_is_warning(tls_cert_run, tls_service):
    check = tls_cert_run.check('served-10d')
    assert check['status'] == 'warning'
    assert check['unit'] == 'days'
    assert 9.9 < check['value'] <= 10
    assert (check['warning'], check['critical']) == (30, 7)
    assert 'certificate of 127.0.0.1:%d expires' % tls_service.port in check['message']
    assert 'days left is' in check['message']
    assert 'warning < 30 days, critical < 7 days' in check['message']
    assert check['details']['hostname'] == '127.0.0.1'
    assert '127.0.0.1' in check['details']['names']['ip']


def test_tls_cert_10_days_is_critical_below_15(tls_cert_run):
    check = tls_cert_run.check('served-10d-critical')
    assert check['status'] == 'critical'
    assert (check['warning'], check['critical']) == (30, 15)  # warning keeps its default
    assert 'critical < 15 days' in check['message']


def test_tls_cert_ok_and_sni_name(tls_cert_run):
    assert tls_cert_run.check('served-10d-ok')['status'] == 'ok'
    check = tls_cert_run.check('served-localhost')
    assert check['status'] == 'warning'  # name matches; 10 days against the default 30/7
    assert check['details']['hostname'] == 'localhost'


def test_tls_cert_hostname_mismatch_is_critical(tls_cert_run):
    check = tls_cert_run.check('mismatch')
    assert check['status'] == 'critical'
    assert 'does not match shop.example.com' in check['message']
    assert 'localhost' in check['message']  # the names the certificate has
    # without the hostname check only the expiry counts
    assert tls_cert_run.check('mismatch-unchecked')['status'] == 'warning'


def test_tls_cert_pem_files(tls_cert_run, pem_files):
    ok = tls_cert_run.check('pem-400d')
    assert ok['status'] == 'ok'
    assert 399 < ok['value'] <= 400
    assert str(pem_files['days400']) in ok['message']
    assert ok['details']['names']['dns'] == ['pem400.example.com']
    assert tls_cert_run.check('pem-10d')['status'] == 'warning'
    critical = tls_cert_run.check('pem-3d')
    assert critical['status'] == 'critical'
    assert 2.9 < critical['value'] <= 3
    assert 'critical < 7 days' in critical['message']
    expired = tls_cert_run.check('pem-expired')
    assert expired['status'] == 'critical'
    assert -2.1 < expired['value'] <= -1.9


def test_tls_cert_unreadable_pem_is_unknown(tls_cert_run, pem_files):
    garbage = tls_cert_run.check('pem-garbage')
    assert garbage['status'] == 'unknown'
    assert '%s holds no PEM certificate' % pem_files['garbage'] in garbage['message']
    missing = tls_cert_run.check('pem-missing')
    assert missing['status'] == 'unknown'
    assert 'cannot read certificate' in missing['message']


def test_tls_cert_closed_port_and_plain_http(tls_cert_run, closed_port, http_service):
    closed = tls_cert_run.check('closed')
    assert closed['status'] == 'critical'
    assert '127.0.0.1:%d does not accept connections' % closed_port in closed['message']
    assert tls_cert_run.check('closed-unknown')['status'] == 'unknown'
    plain = tls_cert_run.check('plain-http')
    assert plain['status'] == 'unknown'
    assert 'TLS handshake with 127.0.0.1:%d failed' % http_service.port in plain['message']
