"""Plain psycopg2 access to the test cluster (the ``postgres`` fixture's facts) for the
backup and restore tests: set up databases, read them back."""

import psycopg2


def connect(pg, database='postgres', **kwargs):
    """An autocommit connection to ``database`` as the fixture's superuser."""
    connection = psycopg2.connect(host=pg['host'], port=pg['port'], user=pg['user'], password=pg['password'],
                                  dbname=database, **kwargs)
    connection.autocommit = True
    return connection


def sql(pg, database, statement):
    """Run ``statement`` in ``database``; its rows, or None for a statement without any."""
    connection = connect(pg, database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchall() if cursor.description else None
    finally:
        connection.close()
