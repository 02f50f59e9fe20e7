"""The schedules of controller/vars/runbook_ops.yml: every rrule passes AWX's own checks
and its next run times are the runbooks' hours (KST). No AWX runs here, so AWX's checks
are restated below from its schedule validation (awx/api/serializers.py and the rrule
tests of awx; the strictest of the versions we know: one DTSTART with a time zone,
INTERVAL in every rule, no numbered BYDAY, COUNT <= 999 and not with UNTIL, UNTIL in UTC,
no EXDATE/RDATE, no SECONDLY/BYYEARDAY/BYWEEKNO, one BYMONTHDAY and one BYMONTH), and
the rrule is parsed with dateutil the way AWX parses it."""

import datetime
import json
import os
import re

import pytest
import yaml

dateutil_rrule = pytest.importorskip('dateutil.rrule')
dateutil_parser = pytest.importorskip('dateutil.parser')
dateutil_tz = pytest.importorskip('dateutil.tz')
zoneinfo = pytest.importorskip('zoneinfo')
jinja2 = pytest.importorskip('jinja2')

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTROLLER = os.path.join(ROOT, 'controller')
KST = zoneinfo.ZoneInfo('Asia/Seoul')

with open(os.path.join(CONTROLLER, 'vars', 'runbook_ops.yml')) as stream:
    SETTINGS = yaml.safe_load(stream)
SCHEDULES = SETTINGS['runbook_ops_controller_schedules']
TEMPLATES = SETTINGS['runbook_ops_controller_templates']

# The runbooks' hours (KST): name -> (template, hour, which days).
EXPECTED = {
    'runbook.ops daily checks 09:00 KST': ('runbook.ops daily checks', 9, 'daily'),
    'runbook.ops daily checks 18:00 KST': ('runbook.ops daily checks', 18, 'daily'),
    'runbook.ops weekly maintenance Monday 10:00 KST': ('runbook.ops weekly maintenance', 10, 'monday'),
    'runbook.ops monthly review 1st 10:00 KST': ('runbook.ops monthly review', 10, 'first'),
    'runbook.ops backup 02:00 KST': ('runbook.ops backup', 2, 'daily'),
    'runbook.ops DR drill 1st 05:00 KST': ('runbook.ops DR drill', 5, 'first'),
}


def awx_rrule_errors(value):
    """The reasons AWX would refuse this rrule (empty: it accepts it)."""
    errors = []
    dtstarts = re.findall(r'DTSTART(;[^:]+)?:([0-9]+T[0-9]+Z?)', value)
    if not dtstarts:
        errors.append('Valid DTSTART required in rrule')
    elif len(dtstarts) > 1:
        errors.append('Multiple DTSTART is not supported')
    else:
        params, stamp = dtstarts[0]
        tzid = re.match(r';TZID=(.+)$', params or '')
        if not tzid and not stamp.endswith('Z'):
            errors.append('DTSTART cannot be a naive datetime')
        if tzid:
            try:
                zoneinfo.ZoneInfo(tzid.group(1))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                errors.append('A valid TZID must be provided')
    if 'exdate:' in value.lower() or 'rdate:' in value.lower():
        errors.append('EXDATE/RDATE not allowed in rrule')
    rules = re.findall(r'(?:EX)?RRULE:(\S*)', value)
    if not rules:
        errors.append('One or more rule required in rrule')
    for rule in rules:
        if 'interval' not in rule.lower():
            errors.append('INTERVAL required in rrule: %s' % rule)
        if 'secondly' in rule.lower():
            errors.append('SECONDLY is not supported: %s' % rule)
        if re.search(r'BYDAY=[^;]*[0-9]', rule):
            errors.append('BYDAY with numeric prefix not supported: %s' % rule)
        if 'COUNT' in rule and 'UNTIL' in rule:
            errors.append('RRULE may not contain both COUNT and UNTIL: %s' % rule)
        count = re.search(r'COUNT=([0-9]+)', rule)
        if count and int(count.group(1)) > 999:
            errors.append('COUNT > 999 is unsupported: %s' % rule)
        until = re.search(r'UNTIL=([^;]+)', rule)
        if until and not until.group(1).endswith('Z'):
            errors.append('RRULE UNTIL values must be specified in UTC: %s' % rule)
        for part in ('BYYEARDAY', 'BYWEEKNO'):
            if part in rule:
                errors.append('%s not supported: %s' % (part, rule))
        if re.search(r'BYMONTHDAY=[0-9-]+,', rule):
            errors.append('Multiple BYMONTHDAYs not supported: %s' % rule)
        if re.search(r'BYMONTH=[0-9]+,', rule):
            errors.append('Multiple BYMONTHs not supported: %s' % rule)
    if not errors:
        try:
            parse(value)
        except (ValueError, TypeError) as exc:
            errors.append('rrule parsing failed validation: %s' % exc)
    return errors


def parse(value):
    """dateutil's rruleset of an AWX rrule, as AWX's Schedule.rrulestr makes it: forceset,
    the UTC zone names as tzinfos; dateutil itself resolves DTSTART's TZID (tz.gettz)."""
    utc = dict((name, dateutil_tz.tzutc()) for name in dateutil_parser.parserinfo().UTCZONE)
    return dateutil_rrule.rrulestr(value, forceset=True, tzinfos=utc)


def next_runs(value, count, after):
    runs = []
    for when in parse(value):
        if when > after:
            runs.append(when)
        if len(runs) == count:
            break
    return runs


@pytest.mark.parametrize('bad, reason', [
    ('DTSTART:20250101T090000 RRULE:FREQ=DAILY;INTERVAL=1', 'naive'),
    ('DTSTART;TZID=Asia/Seoul:20250101T090000 RRULE:FREQ=DAILY', 'INTERVAL required'),
    ('DTSTART;TZID=Asia/Seoul:20250101T090000 RRULE:FREQ=MONTHLY;INTERVAL=1;BYDAY=1SU', 'numeric prefix'),
    ('DTSTART;TZID=Asia/Seoul:20250101T090000 RRULE:FREQ=DAILY;INTERVAL=1;UNTIL=20260101T000000',
     'UNTIL values must be specified in UTC'),
    ('DTSTART;TZID=Asia/Seoul:20250101T090000 DTSTART;TZID=Asia/Seoul:20250102T090000 '
     'RRULE:FREQ=DAILY;INTERVAL=1', 'Multiple DTSTART'),
    ('DTSTART;TZID=Asia/Pyongyang-ish:20250101T090000 RRULE:FREQ=DAILY;INTERVAL=1', 'valid TZID'),
    ('DTSTART;TZID=Asia/Seoul:20250101T090000 RRULE:FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=1,2', 'BYMONTHDAYs'),
    ('DTSTART;TZID=Asia/Seoul:20250101T090000 RRULE:FREQ=DAILY;INTERVAL=1;COUNT=1000', 'COUNT > 999'),
    ('DTSTART;TZID=Asia/Seoul:20250101T090000', 'rule required'),
])
def test_the_checker_refuses_what_awx_refuses(bad, reason):
    assert any(reason in error for error in awx_rrule_errors(bad)), awx_rrule_errors(bad)


def test_the_checker_accepts_awx_examples():
    # From awx.awx's schedule module documentation and AWX's accepted forms.
    assert awx_rrule_errors('DTSTART:20191219T130551Z RRULE:FREQ=WEEKLY;INTERVAL=1;COUNT=1') == []
    assert awx_rrule_errors('DTSTART;TZID=America/New_York:20200101T000000 '
                            'RRULE:FREQ=DAILY;INTERVAL=1;UNTIL=20210101T050000Z') == []


@pytest.mark.parametrize('schedule', SCHEDULES, ids=[s['name'] for s in SCHEDULES])
def test_every_schedule_is_accepted_by_awx(schedule):
    assert awx_rrule_errors(schedule['rrule']) == []
    assert 'TZID=Asia/Seoul' in schedule['rrule']


def test_schedules_are_the_runbooks_hours():
    assert set(s['name'] for s in SCHEDULES) == set(EXPECTED)
    # After an instant that is not on any boundary, in a year with a leap day.
    after = datetime.datetime(2028, 2, 27, 12, 34, tzinfo=KST)
    for schedule in SCHEDULES:
        template, hour, days = EXPECTED[schedule['name']]
        assert schedule['template'] == template
        runs = [when.astimezone(KST) for when in next_runs(schedule['rrule'], 14, after)]
        assert len(runs) == 14
        assert all((r.hour, r.minute, r.second) == (hour, 0, 0) for r in runs), (schedule['name'], runs)
        dates = [r.date() for r in runs]
        if days == 'daily':
            assert dates[0] == datetime.date(2028, 2, 28 if hour < 12 else 27)
            # 2028-02-29 included
            assert all((b - a).days == 1 for a, b in zip(dates, dates[1:], strict=False)), dates
        elif days == 'monday':
            assert all(d.weekday() == 0 for d in dates)
            assert all((b - a).days == 7 for a, b in zip(dates, dates[1:], strict=False))
            assert dates[0] == datetime.date(2028, 2, 28)
        else:
            assert all(d.day == 1 for d in dates)
            assert dates[0] == datetime.date(2028, 3, 1) and dates[-1] == datetime.date(2029, 4, 1)


def test_daily_checks_run_at_midnight_and_nine_utc():
    # What the AWX UI shows in UTC: KST is UTC+9 all year (no daylight saving time).
    after = datetime.datetime(2028, 6, 1, tzinfo=datetime.timezone.utc)
    hours = sorted(next_runs(s['rrule'], 1, after)[0].astimezone(datetime.timezone.utc).hour
                   for s in SCHEDULES if s['template'] == 'runbook.ops daily checks')
    assert hours == [0, 9]


def test_every_schedule_names_a_template():
    names = set(t['name'] for t in TEMPLATES)
    for schedule in SCHEDULES:
        assert schedule['template'] in names


def render_survey(template):
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(CONTROLLER, 'templates')),
                                     extensions=['jinja2.ext.do'])
    environment.filters['to_json'] = json.dumps
    text = environment.get_template('survey.json.j2').render(
        item=template, runbook_ops_controller_report_root=SETTINGS['runbook_ops_controller_report_root'])
    return json.loads(text)


@pytest.mark.parametrize('template', TEMPLATES, ids=[t['name'] for t in TEMPLATES])
def test_surveys_are_awx_survey_specs(template):
    survey = render_survey(template)
    assert survey['name'] == template['name'] and survey['description']
    variables = [q['variable'] for q in survey['spec']]
    assert len(variables) == len(set(variables))
    assert variables[0] == template['hosts_var']
    for question in survey['spec']:
        assert set(question) >= {'question_name', 'variable', 'type', 'required', 'default'}
        assert question['type'] in ('text', 'textarea', 'password', 'integer', 'float',
                                    'multiplechoice', 'multiselect')
        assert re.match(r'^[a-zA-Z_][a-zA-Z0-9_]*$', question['variable'])
        if question['type'] == 'multiplechoice':
            assert question['default'] in question['choices']
        if question['type'] == 'text':
            assert question['min'] <= len(question['default']) <= question['max']
    daily = render_survey(TEMPLATES[0])
    assert [q['variable'] for q in daily['spec']] == ['daily_hosts', 'daily_checks_fail_on',
                                                      'daily_checks_report_dir']
    assert daily['spec'][1]['choices'] == ['warning', 'unknown', 'critical', 'never']


def consumed_variables(playbook):
    """The variable names a playbook reads: its own text and the options of the roles it plays."""
    with open(os.path.join(ROOT, playbook)) as stream:
        text = stream.read()
    names = set(re.findall(r'[A-Za-z_][A-Za-z0-9_]*', text))
    for play in yaml.safe_load(text):
        for role in play.get('roles', []):
            name = (role['role'] if isinstance(role, dict) else role).split('.')[-1]
            with open(os.path.join(ROOT, 'roles', name, 'meta', 'argument_specs.yml')) as stream:
                names.update(yaml.safe_load(stream)['argument_specs']['main']['options'])
    return names


@pytest.mark.parametrize('template', TEMPLATES, ids=[t['name'] for t in TEMPLATES])
def test_every_survey_variable_is_read_by_the_playbook(template):
    # A survey question whose variable the playbook ignores looks like a setting and does nothing.
    assert os.path.exists(os.path.join(ROOT, template['playbook'])), template['playbook']
    consumed = consumed_variables(template['playbook'])
    for question in render_survey(template)['spec']:
        assert question['variable'] in consumed, (template['playbook'], question['variable'])
