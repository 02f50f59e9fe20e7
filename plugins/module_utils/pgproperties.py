# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database-level properties for runbook.ops.pg_backup and runbook.ops.pg_restore.

pg_dump without --create dumps the contents of a database, not the database itself:
its owner, encoding and locale, default tablespace, connection limit, GRANTs
(pg_database.datacl), comment and per-database settings (``ALTER DATABASE x SET``,
``ALTER ROLE r IN DATABASE x SET``, pg_db_role_setting).  pg_backup records them in the
manifest (``postgresql.database_properties``); pg_restore creates the new database with
the recorded owner, encoding and locale and, in the transaction that swaps it in,
replays the GRANTs, settings, connection limit and comment.

Everything that is not a query is a pure function: parsing aclitem text, planning
what can be applied on a server (roles that do not exist there are skipped with a
warning naming the fix) and composing the SQL with psycopg2.sql (names are always
sql.Identifier, values sql.Literal; nothing is string-formatted)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from psycopg2 import sql
except ImportError:  # pragma: no cover - reported by the modules
    sql = None

# pg_database.datacl privilege letters (aclitem text) and their GRANT keywords
DATABASE_PRIVILEGES = (('C', 'CREATE'), ('c', 'CONNECT'), ('T', 'TEMPORARY'))
PRIVILEGE_KEYWORD = dict(DATABASE_PRIVILEGES)
# settings whose value is a list of quoted elements (pg_dump's variable_is_guc_list_quote)
LIST_QUOTE_SETTINGS = ('local_preload_libraries', 'search_path', 'session_preload_libraries',
                       'shared_preload_libraries', 'temp_tablespaces', 'unix_socket_directories')
# the restore marker of runbook.ops.pg_restore is a setting of its own namespace;
# it is never recorded as a property of the backed-up database
OWN_PREFIX = 'runbook_ops.'
MARKER_SETTING = 'runbook_ops.restored_from'
OLD_MARKER_PREFIX = 'runbook.ops pg_restore:'      # comments written by earlier pg_restore versions
FIELDS = ('owner', 'encoding', 'collate', 'ctype', 'locale_provider', 'icu_locale', 'tablespace',
          'connection_limit', 'acl', 'comment', 'settings')
LOCALE_FIELDS = ('encoding', 'collate', 'ctype', 'locale_provider', 'icu_locale')
PROVIDERS = {'c': 'libc', 'i': 'icu', 'b': 'builtin'}


# ---- reading (queries) ----------------------------------------------------------

DATABASE_SQL = """
SELECT pg_catalog.to_jsonb(d), pg_catalog.pg_get_userbyid(d.datdba), pg_catalog.pg_encoding_to_char(d.encoding),
       t.spcname, d.datacl::text[], pg_catalog.shobj_description(d.oid, 'pg_database')
  FROM pg_catalog.pg_database d
  LEFT JOIN pg_catalog.pg_tablespace t ON t.oid = d.dattablespace
 WHERE d.datname = %s
"""

SETTINGS_SQL = """
SELECT r.rolname, s.setrole, s.setconfig
  FROM pg_catalog.pg_db_role_setting s
  JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
 WHERE d.datname = %s
 ORDER BY s.setrole <> 0, r.rolname
"""


def read_properties(cursor, database):
    """The record of ``database`` (None when it does not exist).  Columns that an older
    server lacks (locale provider before 15) are None; the restore marker is left out."""
    cursor.execute(DATABASE_SQL, (database,))
    row = cursor.fetchone()
    if row is None:
        return None
    columns, owner, encoding, tablespace, acl, comment = row
    provider = columns.get('datlocprovider')
    record = {
        'owner': owner, 'encoding': encoding, 'collate': columns.get('datcollate'),
        'ctype': columns.get('datctype'),
        'locale_provider': PROVIDERS.get(provider, provider) if provider else None,
        'icu_locale': columns.get('datlocale') or columns.get('daticulocale'),
        'tablespace': tablespace, 'connection_limit': columns.get('datconnlimit'),
        'acl': list(acl) if acl is not None else None,
        'comment': None if (comment or '').startswith(OLD_MARKER_PREFIX) else comment,
        'settings': [],
    }
    cursor.execute(SETTINGS_SQL, (database,))
    for rolname, setrole, config in cursor.fetchall():
        role = None if setrole == 0 else (rolname or 'oid:%s' % setrole)
        for entry in config or []:
            name, value = split_setting(entry)
            if not name.lower().startswith(OWN_PREFIX):
                record['settings'].append({'role': role, 'name': name, 'value': value})
    return record


def read_marker(cursor, database):
    """The restore marker setting of ``database`` (or None)."""
    cursor.execute("SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_database d "
                   "ON d.oid = s.setdatabase WHERE d.datname = %s AND s.setrole = 0", (database,))
    row = cursor.fetchone()
    for entry in (row[0] if row else None) or []:
        name, value = split_setting(entry)
        if name.lower() == MARKER_SETTING:
            return value
    return None


def existing_roles(cursor):
    cursor.execute('SELECT rolname FROM pg_catalog.pg_roles')
    return set(row[0] for row in cursor.fetchall())


# ---- pure parts -----------------------------------------------------------------

def split_setting(entry):
    """'name=value' of pg_db_role_setting.setconfig into (name, value)."""
    name, sep, value = entry.partition('=')
    return name, value if sep else ''


def _read_name(text, index):
    """A role name of aclitem text starting at ``index`` (double-quoted when it holds
    characters other than letters, digits and _; "" inside quotes is one quote).
    Returns (name, index after it)."""
    if text[index:index + 1] != '"':
        end = index
        while end < len(text) and text[end] not in '=/' and not text[end].isspace():
            end += 1
        return text[index:end], end
    name = []
    index += 1
    while index < len(text):
        char = text[index]
        if char == '"':
            if text[index + 1:index + 2] == '"':
                name.append('"')
                index += 2
                continue
            return ''.join(name), index + 1
        name.append(char)
        index += 1
    raise ValueError('unterminated quoted role name in aclitem %r' % text)


def parse_aclitem(text):
    """``grantee=privileges/grantor`` (grantee empty for PUBLIC) into a dict with grantee
    (None for PUBLIC), privileges (letters in order), grantable (letters followed by *)
    and grantor.  ValueError for text that is not an aclitem of a database."""
    grantee, index = _read_name(text, 0)
    if text[index:index + 1] != '=':
        raise ValueError('aclitem %r has no "="' % text)
    index += 1
    privileges, grantable = [], []
    while index < len(text) and text[index] != '/':
        letter = text[index]
        if letter not in PRIVILEGE_KEYWORD:
            raise ValueError('aclitem %r has privilege %r, not one of a database (C, c, T)' % (text, letter))
        privileges.append(letter)
        if text[index + 1:index + 2] == '*':
            grantable.append(letter)
            index += 1
        index += 1
    if text[index:index + 1] != '/':
        raise ValueError('aclitem %r has no grantor' % text)
    grantor, end = _read_name(text, index + 1)
    if end != len(text) or not grantor:
        raise ValueError('aclitem %r does not end after its grantor' % text)
    return {'grantee': grantee or None, 'privileges': ''.join(privileges), 'grantable': ''.join(grantable),
            'grantor': grantor}


def split_guc_list(value):
    """The elements of a list setting as pg_db_role_setting stores it (``"$user", public``),
    split the way PostgreSQL's SplitGUCList does: at commas outside double quotes, spaces
    around elements dropped, quotes removed ("" inside them is one quote)."""
    elements = []
    index, length = 0, len(value)
    while True:
        while index < length and value[index].isspace():
            index += 1
        if index >= length:
            break
        current = []
        if value[index] == '"':
            index += 1
            while index < length:
                if value[index] == '"':
                    if value[index + 1:index + 2] == '"':
                        current.append('"')
                        index += 2
                        continue
                    index += 1
                    break
                current.append(value[index])
                index += 1
        else:
            while index < length and value[index] != ',' and not value[index].isspace():
                current.append(value[index])
                index += 1
        elements.append(''.join(current))
        while index < length and value[index].isspace():
            index += 1
        if index < length and value[index] == ',':
            index += 1
    return elements


def roles_named(record):
    """Every role a record names (owner, grantees, grantors, roles of settings)."""
    roles = set()
    if not record:
        return roles
    if record.get('owner'):
        roles.add(record['owner'])
    for text in record.get('acl') or []:
        item = parse_aclitem(text)
        for role in (item['grantee'], item['grantor']):
            if role:
                roles.add(role)
    for setting in record.get('settings') or []:
        if setting.get('role'):
            roles.add(setting['role'])
    return roles


def plan_properties(record, roles, login_user, drill=False, owners=None):
    """What a restore applies of ``record`` on a server with ``roles``, logged in as
    ``login_user``: {owner, create (CREATE DATABASE options), acl (aclitems to replay,
    None to keep the default), settings, connection_limit, comment, missing_roles,
    warnings}.  Roles that do not exist are skipped, each with a warning naming the fix;
    a missing owner, or one not in ``owners`` (the roles ``login_user`` may give a
    database to; all of ``roles`` when None), falls back to ``login_user``.  ``drill``:
    a scratch database that only ``login_user`` may use (no owner, grants or settings)."""
    record = record or {}
    warnings = []
    missing = sorted(r for r in roles_named(record) if r not in roles)
    owner = record.get('owner')
    if drill or not owner:
        effective = login_user
    elif owner in roles and (owners is None or owner in owners):
        effective = owner
    elif owner in roles:
        effective = login_user
        warnings.append('%s may not give a database to role %s (it is neither a superuser nor a member of %s): the '
                        'database is owned by %s; run ALTER DATABASE ... OWNER TO %s as a superuser'
                        % (login_user, owner, owner, login_user, owner))
    else:
        effective = login_user
        warnings.append('the owner of the backed-up database, role %s, does not exist on this server: the database '
                        'is owned by %s; create the role (pg_dumpall --globals-only from the source server) and run '
                        'ALTER DATABASE ... OWNER TO %s' % (owner, login_user, owner))
    create = dict((key, record.get(key)) for key in LOCALE_FIELDS + ('tablespace',))
    create['owner'] = effective
    plan = {'owner': effective, 'create': create, 'acl': None, 'settings': [], 'connection_limit': None,
            'comment': None, 'missing_roles': missing, 'warnings': warnings}
    if drill:
        plan['create']['tablespace'] = None
        plan['acl'] = []               # REVOKE ALL FROM PUBLIC: only the login user (and superusers)
        return plan
    acl = record.get('acl')
    if acl is not None:
        replay = []
        for text in acl:
            item = parse_aclitem(text)
            grantee = item['grantee']
            if grantee == owner:
                grantee = effective    # ALTER DATABASE OWNER moves the owner's item the same way
            if grantee is not None and grantee != effective and grantee not in roles:
                warnings.append('GRANT %s ON DATABASE ... TO %s was not restored: role %s does not exist on this '
                                'server; create it (pg_dumpall --globals-only) and run pg_restore again with '
                                'force=true, or grant it by hand'
                                % (privilege_words(item['privileges']), grantee, grantee))
                continue
            replay.append(dict(item, grantee=grantee))
        plan['acl'] = replay
    for setting in record.get('settings') or []:
        role = setting.get('role')
        if role and role not in roles:
            warnings.append('setting %s=%s of role %s in the database was not restored: role %s does not exist on '
                            'this server; create it and run ALTER ROLE %s IN DATABASE ... SET %s = ...'
                            % (setting['name'], setting['value'], role, role, role, setting['name']))
            continue
        plan['settings'].append(setting)
    limit = record.get('connection_limit')
    plan['connection_limit'] = limit if limit is not None and limit != -1 else None
    plan['comment'] = record.get('comment')
    return plan


def privilege_words(letters):
    return ', '.join(PRIVILEGE_KEYWORD[letter] for letter in letters) or 'nothing'


def _grantee(name):
    return sql.SQL('PUBLIC') if name is None else sql.Identifier(name)


def _setting_name(name):
    return sql.SQL('.').join(sql.Identifier(part) for part in name.split('.'))


def _setting_value(name, value):
    if name.lower() in LIST_QUOTE_SETTINGS:
        elements = split_guc_list(value)
        if elements:
            return sql.SQL(', ').join(sql.Literal(e) for e in elements)
    return sql.Literal(value)


def create_statement(name, create, template='template0'):
    """CREATE DATABASE ``name`` with the owner, encoding, locale and tablespace of ``create``
    (the keys of plan_properties' ``create``; None leaves the server's default)."""
    parts = [sql.SQL('CREATE DATABASE {} TEMPLATE {}').format(sql.Identifier(name), sql.Identifier(template))]
    if create.get('owner'):
        parts.append(sql.SQL('OWNER {}').format(sql.Identifier(create['owner'])))
    for key, keyword in (('encoding', 'ENCODING'), ('collate', 'LC_COLLATE'), ('ctype', 'LC_CTYPE')):
        if create.get(key):
            parts.append(sql.SQL(keyword + ' {}').format(sql.Literal(create[key])))
    provider = create.get('locale_provider')
    if provider and provider != 'libc':
        parts.append(sql.SQL('LOCALE_PROVIDER {}').format(sql.Identifier(provider)))
        if create.get('icu_locale'):
            keyword = 'ICU_LOCALE' if provider == 'icu' else 'BUILTIN_LOCALE'
            parts.append(sql.SQL(keyword + ' {}').format(sql.Literal(create['icu_locale'])))
    if create.get('tablespace') and create['tablespace'] != 'pg_default':
        parts.append(sql.SQL('TABLESPACE {}').format(sql.Identifier(create['tablespace'])))
    return sql.SQL(' ').join(parts)


def acl_statements(database, owner, acl):
    """Statements that make the ACL of ``database`` (owned by ``owner``) exactly ``acl``
    (parsed items in their order; [] revokes everything from everyone but superusers):
    revoke all from PUBLIC and the owner, then grant each item in order (PostgreSQL
    appends each new grantee, so the order is the recorded one)."""
    target = sql.Identifier(database)
    statements = [sql.SQL('REVOKE ALL ON DATABASE {} FROM PUBLIC').format(target),
                  sql.SQL('REVOKE ALL ON DATABASE {} FROM {}').format(target, sql.Identifier(owner))]
    for item in acl:
        plain = [p for p in item['privileges'] if p not in item['grantable']]
        for letters, option in ((plain, ''), (item['grantable'], ' WITH GRANT OPTION')):
            if letters:
                statements.append(sql.SQL('GRANT {} ON DATABASE {} TO {}' + option).format(
                    sql.SQL(', ').join(sql.SQL(PRIVILEGE_KEYWORD[p]) for p in letters), target,
                    _grantee(item['grantee'])))
    return statements


def property_statements(database, plan):
    """The statements that give ``database`` the GRANTs, settings, connection limit and
    comment of ``plan`` (its owner, encoding and locale are set when it is created)."""
    target = sql.Identifier(database)
    statements = []
    if plan.get('acl') is not None:
        statements += acl_statements(database, plan['owner'], plan['acl'])
    for setting in plan.get('settings') or []:
        name, value = _setting_name(setting['name']), _setting_value(setting['name'], setting['value'])
        if setting.get('role'):
            statements.append(sql.SQL('ALTER ROLE {} IN DATABASE {} SET {} TO {}').format(
                sql.Identifier(setting['role']), target, name, value))
        else:
            statements.append(sql.SQL('ALTER DATABASE {} SET {} TO {}').format(target, name, value))
    if plan.get('connection_limit') is not None:
        statements.append(sql.SQL('ALTER DATABASE {} CONNECTION LIMIT {}').format(
            target, sql.Literal(int(plan['connection_limit']))))
    if plan.get('comment') is not None:
        statements.append(sql.SQL('COMMENT ON DATABASE {} IS {}').format(target, sql.Literal(plan['comment'])))
    return statements


def marker_statement(database, marker):
    return sql.SQL('ALTER DATABASE {} SET {} TO {}').format(
        sql.Identifier(database), _setting_name(MARKER_SETTING), sql.Literal(marker))


def effective_record(plan, record):
    """The properties the restored database will have (to compare with the replaced one)."""
    record = record or {}
    acl = plan.get('acl')
    after = dict((key, record.get(key)) for key in LOCALE_FIELDS + ('tablespace',))
    after.update(owner=plan['owner'], connection_limit=plan.get('connection_limit')
                 if plan.get('connection_limit') is not None else -1, comment=plan.get('comment'),
                 acl=None if acl is None else [format_aclitem(i, plan['owner']) for i in acl],
                 settings=list(plan.get('settings') or []))
    return after


def _quote_role(name):
    if name and all(c.isalnum() or c == '_' for c in name):
        return name
    return '"%s"' % (name or '').replace('"', '""')


def format_aclitem(item, grantor):
    """aclitem text of a parsed item as the restore grants it (by ``grantor``, the owner)."""
    letters = ''.join(p + ('*' if p in item['grantable'] else '') for p in item['privileges'])
    grantee = '' if item['grantee'] is None else _quote_role(item['grantee'])
    return '%s=%s/%s' % (grantee, letters, _quote_role(grantor))


def compare(before, after, fields=FIELDS):
    """{field: {before, after}} for every field in which two records differ (settings
    compared as sets of (role, name, value))."""
    changed = {}
    for field in fields:
        old, new = (before or {}).get(field), (after or {}).get(field)
        if field == 'settings':
            same = sorted((s.get('role') or '', s['name'], s['value']) for s in old or []) == \
                sorted((s.get('role') or '', s['name'], s['value']) for s in new or [])
        else:
            same = old == new
        if not same:
            changed[field] = {'before': old, 'after': new}
    return changed


def describe(record):
    """Lines for diff mode: one per property."""
    if record is None:
        return ''
    lines = []
    for field in FIELDS:
        value = record.get(field)
        if field == 'settings':
            value = ', '.join('%s%s=%s' % ('%s: ' % s['role'] if s.get('role') else '', s['name'], s['value'])
                              for s in value or []) or '(none)'
        elif field == 'acl':
            value = '(default)' if value is None else ('{%s}' % ','.join(value))
        lines.append('  %s: %s\n' % (field, value))
    return ''.join(lines)


PROPERTY_SOURCES = ('backup', 'current', 'none')
NOT_RESTORED = ('the owner, GRANTs (CONNECT, CREATE, TEMPORARY), settings (ALTER DATABASE ... SET, ALTER ROLE ... '
                'IN DATABASE ... SET), comment and connection limit')


def choose_record(mode, recorded, current, database, backup):
    """Which record a whole-database restore applies: (source, record, warnings).

    ``backup`` (the default): the backup's record, the state that was backed up and is
    proven; a backup without one (older pg_backup) keeps the properties of the database
    it replaces, else gets the server's defaults (with a warning naming what was not
    restored).  ``current``: the properties of the database being replaced (for a backup
    restored onto another system with its own roles and grants), with the backup's
    encoding and locale (the data's); the backup's when there is no such database.
    ``none``: the server's defaults, owned by the login user (earlier behaviour)."""
    if mode == 'none':
        return 'none', None, []
    if mode == 'current' and current is not None:
        record = dict(current)
        if recorded is not None:
            record.update((key, recorded.get(key)) for key in LOCALE_FIELDS)
        return 'current', record, []
    if recorded is not None:
        warnings = []
        if mode == 'current':
            warnings.append('database %s does not exist: the properties recorded in backup %s are applied'
                            % (database, backup))
        return 'backup', recorded, warnings
    if current is not None:
        return 'replaced', dict(current), [
            'backup %s has no record of the database-level properties (taken by an older pg_backup): the restored '
            '%s keeps those of the database it replaces (%s)' % (backup, database, NOT_RESTORED)]
    return 'unrecorded', None, [
        'backup %s has no record of the database-level properties (taken by an older pg_backup) and there was no '
        'database %s to take them from: %s were not restored; the database is owned by the login user with the '
        'server\'s default encoding and locale; set them by hand or restore a newer backup' % (
            backup, database, NOT_RESTORED)]
