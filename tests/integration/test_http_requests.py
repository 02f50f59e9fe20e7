# -*- coding: utf-8 -*-
"""http probe requests beyond GET: redirects followed or not, a POST body and headers."""

import pytest


@pytest.fixture(scope='module')
def request_run(run_probes, http_service):
    url = http_service.url
    probes = [
        {'name': 'followed', 'kind': 'http', 'url': url + '/redirect?to=/health',
         'assertions': ['status == "healthy"']},
        {'name': 'not-followed', 'kind': 'http', 'url': url + '/redirect?to=/health',
         'follow_redirects': False, 'expected_status': [302]},
        {'name': 'not-followed-200', 'kind': 'http', 'url': url + '/redirect?to=/health',
         'follow_redirects': False},
        {'name': 'post', 'kind': 'http', 'url': url + '/echo', 'method': 'POST',
         'body': '{"ping": 1}', 'headers': {'X-Probe': 'daily', 'Content-Type': 'application/json'},
         'assertions': ['method == "POST"', 'body == "{\\"ping\\": 1}"', 'headers.x-probe == "daily"']},
    ]
    return run_probes(probes, fail_on_critical=False)


def test_redirect_is_followed_by_default(request_run):
    check = request_run.check('followed')
    assert check['status'] == 'ok', check
    assert check['details']['status_codes'] == [200]


def test_redirect_not_followed_returns_the_3xx(request_run):
    assert request_run.check('not-followed')['status'] == 'ok'
    assert request_run.check('not-followed')['details']['status_codes'] == [302]
    check = request_run.check('not-followed-200')
    assert check['status'] == 'critical'
    assert 'returned 302' in check['message']


def test_post_sends_body_and_headers(request_run):
    check = request_run.check('post')
    assert check['status'] == 'ok', check
    assert [a['passed'] for a in check['details']['assertions']] == [True, True, True]
