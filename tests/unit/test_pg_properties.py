# -*- coding: utf-8 -*-
"""Unit tests of the database-level properties (pgproperties.py): aclitem text, list
settings, the plan on a server that lacks roles, which record a restore applies, and
the SQL composed with psycopg2.sql - every name an Identifier, every value a Literal.
psycopg2's own rendering needs a connection, so the composed statements are walked
here (the integration tests run them on the real server)."""

import pytest
from psycopg2 import sql

from ansible_collections.runbook.ops.plugins.module_utils import pgproperties as props


def render(composable):
    """The statement with identifiers as <name> and literals as {value}: what is an
    Identifier and what a Literal stays visible."""
    if isinstance(composable, sql.Composed):
        return ''.join(render(part) for part in composable.seq)
    if isinstance(composable, sql.Identifier):
        return '.'.join('<%s>' % s for s in composable.strings)
    if isinstance(composable, sql.Literal):
        return '{%s}' % (composable.wrapped,)
    if isinstance(composable, sql.SQL):
        return composable.string
    raise AssertionError('unexpected %r' % (composable,))


def identifiers(composable):
    if isinstance(composable, sql.Composed):
        return [name for part in composable.seq for name in identifiers(part)]
    if isinstance(composable, sql.Identifier):
        return list(composable.strings)
    return []


def raw_sql(composable):
    if isinstance(composable, sql.Composed):
        return ''.join(raw_sql(part) for part in composable.seq)
    return composable.string if isinstance(composable, sql.SQL) and not isinstance(composable, sql.Identifier) \
        else ''


RECORD = {
    'owner': 'app', 'encoding': 'UTF8', 'collate': 'C.UTF-8', 'ctype': 'C.UTF-8', 'locale_provider': 'libc',
    'icu_locale': None, 'tablespace': 'pg_default', 'connection_limit': 7,
    'acl': ['=T/app', 'app=CTc/app', 'reader=c/app', '"odd ""name"""=c*T/app'],
    'comment': "shop's data", 'settings': [
        {'role': None, 'name': 'work_mem', 'value': '64MB'},
        {'role': 'reader', 'name': 'search_path', 'value': '"$user", reader, "Odd, schema"'},
    ],
}


# ---- aclitem text -------------------------------------------------------------

@pytest.mark.parametrize('text, expected', [
    ('=Tc/app', {'grantee': None, 'privileges': 'Tc', 'grantable': '', 'grantor': 'app'}),
    ('app=CTc/app', {'grantee': 'app', 'privileges': 'CTc', 'grantable': '', 'grantor': 'app'}),
    ('reader=c*/app', {'grantee': 'reader', 'privileges': 'c', 'grantable': 'c', 'grantor': 'app'}),
    ('"odd ""name"""=C*c/"a=b/c"',
     {'grantee': 'odd "name"', 'privileges': 'Cc', 'grantable': 'C', 'grantor': 'a=b/c'}),
    ('x=/app', {'grantee': 'x', 'privileges': '', 'grantable': '', 'grantor': 'app'}),
])
def test_parse_aclitem(text, expected):
    assert props.parse_aclitem(text) == expected


@pytest.mark.parametrize('text', ['app', 'app=r/app', 'app=c', '"app=c/app', 'app=c/app extra', 'app=c/'])
def test_parse_aclitem_refuses_what_is_not_a_database_aclitem(text):
    with pytest.raises(ValueError):
        props.parse_aclitem(text)


@pytest.mark.parametrize('text', ['=Tc/app', 'app=CTc/app', 'reader=c*/app', '"odd ""name"""=C*c/"x y"'])
def test_format_aclitem_round_trips(text):
    item = props.parse_aclitem(text)
    assert props.format_aclitem(item, item['grantor']) == text


# ---- settings -----------------------------------------------------------------

@pytest.mark.parametrize('value, expected', [
    ('"$user", public', ['$user', 'public']),
    ('reader,public', ['reader', 'public']),
    ('"Odd, schema", "with ""quote"""', ['Odd, schema', 'with "quote"']),
    ('  one  ', ['one']),
    ('', []),
    ('""', ['']),
])
def test_split_guc_list(value, expected):
    assert props.split_guc_list(value) == expected


def test_split_setting_keeps_equal_signs_in_the_value():
    assert props.split_setting('application_name=a=b') == ('application_name', 'a=b')


# ---- plan -----------------------------------------------------------------------

def test_plan_on_a_server_with_every_role_replays_everything():
    plan = props.plan_properties(RECORD, {'app', 'reader', 'odd "name"', 'postgres'}, 'postgres')
    assert plan['owner'] == 'app' and plan['warnings'] == [] and plan['missing_roles'] == []
    assert [i['grantee'] for i in plan['acl']] == [None, 'app', 'reader', 'odd "name"']
    assert len(plan['settings']) == 2 and plan['connection_limit'] == 7 and plan['comment'] == "shop's data"
    assert plan['create'] == {'owner': 'app', 'encoding': 'UTF8', 'collate': 'C.UTF-8', 'ctype': 'C.UTF-8',
                              'locale_provider': 'libc', 'icu_locale': None, 'tablespace': 'pg_default'}


def test_plan_skips_missing_roles_and_names_them_with_the_fix():
    plan = props.plan_properties(RECORD, {'postgres', 'odd "name"'}, 'postgres')
    assert plan['missing_roles'] == ['app', 'reader']
    assert plan['owner'] == 'postgres'
    # the owner's item moves to the owner actually used, as ALTER DATABASE OWNER would move it
    assert [i['grantee'] for i in plan['acl']] == [None, 'postgres', 'odd "name"']
    assert plan['settings'] == [{'role': None, 'name': 'work_mem', 'value': '64MB'}]
    text = ' | '.join(plan['warnings'])
    assert 'role app, does not exist' in text and 'pg_dumpall --globals-only' in text
    assert 'TO reader was not restored: role reader does not exist' in text
    assert 'search_path' in text and 'ALTER ROLE reader IN DATABASE' in text


def test_plan_owner_the_login_may_not_give_the_database_to():
    plan = props.plan_properties(RECORD, {'app', 'reader', 'odd "name"', 'deployer'}, 'deployer',
                                 owners={'deployer'})
    assert plan['owner'] == 'deployer' and plan['missing_roles'] == []
    assert 'deployer may not give a database to role app' in plan['warnings'][0]


def test_drill_plan_keeps_locale_and_nothing_else():
    plan = props.plan_properties(RECORD, {'postgres'}, 'postgres', drill=True)
    assert plan['owner'] == 'postgres' and plan['create']['owner'] == 'postgres'
    assert plan['create']['collate'] == 'C.UTF-8' and plan['create']['tablespace'] is None
    assert plan['acl'] == [] and plan['settings'] == [] and plan['comment'] is None
    assert plan['missing_roles'] == ['app', 'odd "name"', 'reader']


def test_default_acl_is_left_alone():
    plan = props.plan_properties(dict(RECORD, acl=None, settings=[], comment=None, connection_limit=-1),
                                 {'app'}, 'postgres')
    assert plan['acl'] is None and props.property_statements('shop', plan) == []


# ---- which record -----------------------------------------------------------------

CURRENT = dict(RECORD, owner='staging', encoding='LATIN1', collate='C', ctype='C', acl=None, comment='staging')


def test_choose_record():
    assert props.choose_record('backup', RECORD, CURRENT, 'shop', 'b1') == ('backup', RECORD, [])
    source, record, warnings = props.choose_record('current', RECORD, CURRENT, 'shop', 'b1')
    assert source == 'current' and record['owner'] == 'staging' and record['comment'] == 'staging'
    assert (record['encoding'], record['collate']) == ('UTF8', 'C.UTF-8') and warnings == []
    assert props.choose_record('none', RECORD, CURRENT, 'shop', 'b1') == ('none', None, [])
    source, record, warnings = props.choose_record('current', RECORD, None, 'shop', 'b1')
    assert source == 'backup' and 'does not exist' in warnings[0]
    source, record, warnings = props.choose_record('backup', None, CURRENT, 'shop', 'b1')
    assert source == 'replaced' and record == CURRENT and 'no record' in warnings[0]
    source, record, warnings = props.choose_record('backup', None, None, 'shop', 'b1')
    assert source == 'unrecorded' and record is None
    assert 'owner, GRANTs' in warnings[0] and 'comment and connection limit' in warnings[0]


def test_compare_lists_each_difference():
    changed = props.compare(CURRENT, RECORD)
    assert sorted(changed) == ['acl', 'collate', 'comment', 'ctype', 'encoding', 'owner']
    assert changed['owner'] == {'before': 'staging', 'after': 'app'}
    reordered = dict(RECORD, settings=list(reversed(RECORD['settings'])))
    assert props.compare(RECORD, reordered) == {}


# ---- SQL composition ----------------------------------------------------------------

def test_create_statement_quotes_every_name():
    create = dict(RECORD, owner='Robert"); DROP TABLE x; --', tablespace='fast disk')
    statement = props.create_statement('shop_restore_1', create)
    assert render(statement) == ('CREATE DATABASE <shop_restore_1> TEMPLATE <template0> OWNER '
                                 '<Robert"); DROP TABLE x; --> ENCODING {UTF8} LC_COLLATE {C.UTF-8} '
                                 'LC_CTYPE {C.UTF-8} TABLESPACE <fast disk>')
    assert 'DROP' not in raw_sql(statement)


def test_create_statement_icu_and_defaults():
    statement = props.create_statement('n', {'locale_provider': 'icu', 'icu_locale': 'de-DE', 'encoding': 'UTF8'})
    assert render(statement) == ('CREATE DATABASE <n> TEMPLATE <template0> ENCODING {UTF8} LOCALE_PROVIDER <icu> '
                                 'ICU_LOCALE {de-DE}')
    assert render(props.create_statement('n', {})) == 'CREATE DATABASE <n> TEMPLATE <template0>'


def test_property_statements_replay_the_record_in_order():
    plan = props.plan_properties(RECORD, {'app', 'reader', 'odd "name"'}, 'postgres')
    rendered = [render(s) for s in props.property_statements('shop', plan)]
    assert rendered == [
        'REVOKE ALL ON DATABASE <shop> FROM PUBLIC',
        'REVOKE ALL ON DATABASE <shop> FROM <app>',
        'GRANT TEMPORARY ON DATABASE <shop> TO PUBLIC',
        'GRANT CREATE, TEMPORARY, CONNECT ON DATABASE <shop> TO <app>',
        'GRANT CONNECT ON DATABASE <shop> TO <reader>',
        'GRANT TEMPORARY ON DATABASE <shop> TO <odd "name">',
        'GRANT CONNECT ON DATABASE <shop> TO <odd "name"> WITH GRANT OPTION',
        'ALTER DATABASE <shop> SET <work_mem> TO {64MB}',
        'ALTER ROLE <reader> IN DATABASE <shop> SET <search_path> TO {$user}, {reader}, {Odd, schema}',
        'ALTER DATABASE <shop> CONNECTION LIMIT {7}',
        "COMMENT ON DATABASE <shop> IS {shop's data}",
    ]


def test_names_never_reach_the_sql_text():
    hostile = 'x"; DROP DATABASE prod; --'
    record = dict(RECORD, owner=hostile, acl=['"%s"=c/"%s"' % ((hostile.replace('"', '""'),) * 2)],
                  settings=[{'role': hostile, 'name': 'work_mem', 'value': "1MB'; DROP"}], comment=hostile)
    plan = props.plan_properties(record, {hostile}, 'postgres')
    for statement in props.property_statements(hostile, plan) + [props.marker_statement(hostile, hostile)]:
        assert 'DROP' not in raw_sql(statement)
        assert hostile in identifiers(statement)


def test_marker_is_a_setting_of_its_own_namespace():
    assert render(props.marker_statement('shop', 'runbook.ops pg_restore: shop/b1 abc')) == \
        'ALTER DATABASE <shop> SET <runbook_ops>.<restored_from> TO {runbook.ops pg_restore: shop/b1 abc}'


def test_effective_record_is_what_the_statements_make():
    plan = props.plan_properties(RECORD, {'reader', 'odd "name"'}, 'postgres')
    after = props.effective_record(plan, RECORD)
    assert after['owner'] == 'postgres'
    assert after['acl'] == ['=T/postgres', 'postgres=CTc/postgres', 'reader=c/postgres',
                            '"odd ""name"""=c*T/postgres']
    assert after['connection_limit'] == 7 and after['encoding'] == 'UTF8'
    assert 'owner: postgres' in props.describe(after) and props.describe(None) == ''
