# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Shared PostgreSQL code of the quantops.platform modules.

* ``postgres_common_argument_spec()``: the connection options, named as
  community.postgresql names them (so one ``module_defaults`` group serves
  both collections), plus ``session_role`` and ``statement_timeout``;
  documented by the ``quantops.platform.postgres`` doc fragment.
* ``pg_session(module)``: the start and end of every module's work - import
  psycopg 3 (a hard requirement, reported with missing_required_lib), connect,
  ``SET ROLE``, ``SET statement_timeout``, close in ``finally``.
* ``Query``: the one SQL builder, on ``psycopg.sql``: a constant template whose
  ``{name}`` pieces are identifiers (``psycopg.sql.Identifier``) or literals
  (``psycopg.sql.Literal``), never interpolated text.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import datetime
import decimal
import re
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native

try:
    import psycopg
    from psycopg import sql
except ImportError:
    psycopg = None
    sql = None
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()
else:
    PSYCOPG_IMPORT_ERROR = None

PSYCOPG_REQUIREMENT = 'psycopg >= 3.1 (python3-psycopg on Debian)'
PSYCOPG_MIN_VERSION = (3, 1)

# PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes (63 by default).
MAX_IDENTIFIER_BYTES = 63

APPLICATION_NAME = 'ansible-quantops.platform'

SSL_MODES = ['allow', 'disable', 'prefer', 'require', 'verify-ca', 'verify-full']

DEFAULT_CONNECT_TIMEOUT = 10

# statement_timeout as PostgreSQL reads it: milliseconds, or a number with a unit.
_TIMEOUT_RE = re.compile(r'^\s*\d+\s*(us|ms|s|min|h|d)?\s*$')


class IdentifierError(ValueError):
    """Raised for an identifier PostgreSQL would reject or silently truncate."""


def postgres_common_argument_spec():
    """Return the connection options shared by the quantops.platform PostgreSQL modules.

    Names, aliases and defaults are community.postgresql's (4.x) ``postgres_common_argument_spec``
    plus its per-module ``login_db`` and ``session_role``; ``statement_timeout`` is this
    collection's.  Documented by the ``quantops.platform.postgres`` doc fragment; keep both in step.
    """
    return dict(
        login_user=dict(type='str', default='postgres', aliases=['login']),
        login_password=dict(type='str', default='', no_log=True),
        login_host=dict(type='str', default='', aliases=['host']),
        login_port=dict(type='int', default=5432, aliases=['port']),
        login_unix_socket=dict(type='str', default='', aliases=['unix_socket']),
        login_db=dict(type='str', default='quant_platform', aliases=['db']),
        ssl_mode=dict(type='str', default='prefer', choices=SSL_MODES),
        ca_cert=dict(type='path', aliases=['ssl_rootcert']),
        ssl_cert=dict(type='path'),
        ssl_key=dict(type='path', no_log=False),
        connect_params=dict(type='dict', default={}),
        session_role=dict(type='str'),
        statement_timeout=dict(type='raw'),
    )


def start_module(argument_spec, validate, errors=(ValueError,), **kwargs):
    """The AnsibleModule (check mode supported) and what ``validate(module.params)`` returns.

    A bad option - ``validate`` raising one of ``errors`` - fails the module with its message
    before anything connects. ``kwargs`` go to AnsibleModule (mutually_exclusive, required_if).
    """
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **kwargs)
    try:
        return module, validate(module.params)
    except errors as e:
        module.fail_json(msg=to_native(e))
        raise  # fail_json exits; this only runs where a test stubs it


def get_conn_params(params):
    """Map module parameters to keyword arguments for ``psycopg.connect``.

    ``login_unix_socket`` is used when ``login_host`` is empty or ``localhost``, as
    community.postgresql does; with neither set libpq uses its compiled-in socket
    directory (/var/run/postgresql on Debian).  An empty password is left out so that
    libpq can fall back to peer authentication or ~/.pgpass.  ``connect_params`` is
    added last (any libpq parameter; ``connect_timeout`` defaults to 10 seconds).
    """
    kw = {
        'dbname': params.get('login_db') or 'quant_platform',
        'user': params.get('login_user') or 'postgres',
        'port': int(params.get('login_port') or 5432),
        'connect_timeout': DEFAULT_CONNECT_TIMEOUT,
        'sslmode': params.get('ssl_mode') or 'prefer',
        'application_name': APPLICATION_NAME,
    }
    host = params.get('login_host') or ''
    socket_dir = params.get('login_unix_socket') or ''
    if socket_dir and host in ('', 'localhost'):
        kw['host'] = socket_dir
    elif host:
        kw['host'] = host
    if params.get('login_password'):
        kw['password'] = params['login_password']
    if params.get('ca_cert'):
        kw['sslrootcert'] = params['ca_cert']
    if params.get('ssl_cert'):
        kw['sslcert'] = params['ssl_cert']
    if params.get('ssl_key'):
        kw['sslkey'] = params['ssl_key']
    kw.update(params.get('connect_params') or {})
    return kw


def describe_connection(conn_params):
    """Human-readable target of a connection, never including the password."""
    host = conn_params.get('host') or 'default unix socket'
    return 'host=%s port=%s dbname=%s user=%s' % (
        host, conn_params.get('port'), conn_params.get('dbname'), conn_params.get('user'))


def _scrub(text, secret):
    if secret:
        return text.replace(secret, '********')
    return text


def _version_tuple(version):
    parts = []
    for piece in str(version).split('.'):
        digits = ''
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def ensure_psycopg(module):
    """Fail the module the standard way when psycopg 3.1+ is not importable on the managed node."""
    if psycopg is None:
        module.fail_json(msg=missing_required_lib(PSYCOPG_REQUIREMENT), exception=PSYCOPG_IMPORT_ERROR)
    elif _version_tuple(getattr(psycopg, '__version__', '0')) < PSYCOPG_MIN_VERSION:
        module.fail_json(msg='psycopg >= %s is required on the managed node, found %s' % (
            '.'.join(str(x) for x in PSYCOPG_MIN_VERSION), psycopg.__version__))


def statement_timeout_setting(value, default):
    """The value for ``SET statement_timeout`` from the option (or the module's default).

    An integer means milliseconds (as in postgresql.conf); a string may carry a unit
    (``30s``, ``10min``, ``1h``); ``0`` means no limit.  Raises ValueError otherwise.
    """
    if value is None or value == '':
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError('statement_timeout must be milliseconds or a PostgreSQL duration such as 30s or 10min, '
                         'got %r' % (value,))
    text = str(value).strip()
    if not _TIMEOUT_RE.match(text):
        raise ValueError('statement_timeout must be milliseconds or a PostgreSQL duration such as 30s or 10min '
                         '(units us, ms, s, min, h, d), got %r' % (value,))
    return text.replace(' ', '')


def connect(module, autocommit=True):
    """Open a psycopg 3 connection from the module's connection options.

    On failure the module fails with a message naming host, port, database and
    user; the password never appears (it is scrubbed from the driver's text too).
    """
    ensure_psycopg(module)
    conn_params = get_conn_params(module.params)
    try:
        return psycopg.connect(autocommit=autocommit, **conn_params)
    except Exception as e:  # psycopg.Error and socket/ssl errors alike
        detail = _scrub(to_native(e), module.params.get('login_password'))
        module.fail_json(msg='Unable to connect to PostgreSQL (%s): %s' % (describe_connection(conn_params), detail))
    return None  # only reached when fail_json is mocked


@contextlib.contextmanager
def pg_session(module, default_timeout, autocommit=True):
    """Connect with the module's options and yield the connection, closed on the way out.

    The session switches to O(session_role) when given and sets ``statement_timeout`` to
    the option's value or ``default_timeout`` (checked before connecting).  A failure of
    either fails the module naming the setting and the server's message.
    """
    try:
        timeout = statement_timeout_setting(module.params.get('statement_timeout'), default_timeout)
    except ValueError as e:
        module.fail_json(msg=to_native(e))
    ensure_psycopg(module)
    conn = connect(module, autocommit=autocommit)
    try:
        with conn.cursor() as cur:
            role = module.params.get('session_role')
            what = 'statement_timeout'
            try:
                if role:
                    what = 'session_role %s' % role
                    cur.execute(Query('SET ROLE {role}', {'role': validate_identifier(role, 'session_role')})
                                .compose(conn))
                    what = 'statement_timeout'
                cur.execute(Query('SET statement_timeout = {t}', literals={'t': timeout}).compose(conn))
            except (psycopg.Error, IdentifierError) as e:
                module.fail_json(msg='Could not set %s: %s' % (what, to_native(e).strip()))
        yield conn
    finally:
        conn.close()


def validate_identifier(name, what='identifier'):
    """Return ``name`` if PostgreSQL accepts it unchanged, else raise IdentifierError.

    Rejects non-strings, empty names, NUL characters and names longer than
    63 bytes in UTF-8 (PostgreSQL would silently truncate those, so a check
    could read a different relation than the one asked for).
    """
    if not isinstance(name, str):
        raise IdentifierError('%s must be a string, got %s' % (what, type(name).__name__))
    if name == '':
        raise IdentifierError('%s must not be empty' % what)
    if '\x00' in name:
        raise IdentifierError('%s must not contain a NUL character' % what)
    size = len(name.encode('utf-8'))
    if size > MAX_IDENTIFIER_BYTES:
        raise IdentifierError('%s %r is %d bytes long; PostgreSQL identifiers are limited to %d bytes'
                              % (what, name, size, MAX_IDENTIFIER_BYTES))
    return name


def sql_identifier(*parts):
    """A (possibly qualified) ``psycopg.sql.Identifier``, every part validated first.

    ``sql_identifier('public', 'ohlcv_data')`` renders as ``"public"."ohlcv_data"``.
    """
    if not parts:
        raise IdentifierError('at least one identifier part is required')
    for part in parts:
        validate_identifier(part)
    return sql.Identifier(*parts)


class IdentList(list):
    """Identifier piece of a Query: the names joined by ', ' (a column list)."""


class TypedArray(list):
    """Literal piece of a Query: an array literal with an explicit cast (``TypedArray(days, 'date')``)."""

    def __init__(self, values, element_type):
        super(TypedArray, self).__init__(values)
        self.element_type = element_type


class ValueArray(list):
    """Literal piece of a Query: an array literal typed by psycopg from the Python values.

    Used for key values read back from a table itself, so the array's element type matches
    the key column's (text for text/varchar, an integer type for integers) and
    ``column = element`` has an operator without a cast.  An array of strings only (or
    NULLs) gets ``::text[]``, as psycopg leaves such a literal untyped.
    """


class QuotedName(object):
    """Literal piece of a Query: the quoted text of a name, e.g. for ``{reg}::regclass``.

    ``QuotedName(('public', 'ohlcv'))`` is the string literal ``'"public"."ohlcv"'``;
    ``QuotedName([('open',), ('close', 'DESC')])`` is ``'"open", "close" DESC'`` (a list
    of names with an optional ASC/DESC each, as TimescaleDB's compression settings take).
    The quoting is psycopg's Identifier rendered with the connection.
    """

    def __init__(self, name=None, names=None):
        self.name = name
        self.names = names

    def text(self, conn):
        if self.name is not None:
            return sql_identifier(*self.name).as_string(conn)
        items = []
        for entry in self.names:
            rendered = sql_identifier(entry[0]).as_string(conn)
            if len(entry) > 1 and entry[1]:
                rendered += ' ' + entry[1]
            items.append(rendered)
        return ', '.join(items)


def _literal(value, conn):
    if isinstance(value, QuotedName):
        return sql.Literal(value.text(conn))
    if isinstance(value, TypedArray):
        return sql.SQL('{}::' + value.element_type + '[]').format(sql.Literal(list(value)))
    if isinstance(value, ValueArray):
        if all(v is None or isinstance(v, str) for v in value):
            return sql.SQL('{}::text[]').format(sql.Literal(list(value)))
        return sql.Literal(list(value))
    return sql.Literal(value)


class Query(object):
    """The one SQL builder: a constant template with ``{name}`` identifier and literal pieces.

    ``idents`` maps a name to a str (one identifier), a tuple (a qualified name) or an
    IdentList (a column list); ``literals`` maps a name to a value for
    ``psycopg.sql.Literal`` (str, int, float, bool, None, date - psycopg adds the cast) or a TypedArray,
    ValueArray or QuotedName.  Nothing is interpolated into the text: a ``%`` or quote
    inside a name stays inside its quotes, and no query parameters are needed.
    """

    def __init__(self, template, idents=None, literals=None):
        self.template = template
        self.idents = dict(idents or {})
        self.literals = dict(literals or {})

    def compose(self, conn=None):
        """The ``psycopg.sql.Composed`` to execute (``conn`` renders QuotedName pieces)."""
        rendered = {}
        for key, value in self.idents.items():
            if isinstance(value, IdentList):
                rendered[key] = sql.SQL(', ').join(sql_identifier(v) for v in value)
            else:
                rendered[key] = sql_identifier(*(value if isinstance(value, tuple) else (value,)))
        for key, value in self.literals.items():
            rendered[key] = _literal(value, conn)
        return sql.SQL(self.template).format(**rendered)

    def as_string(self, conn):
        """The SQL text exactly as sent (the ``queries`` return value)."""
        return self.compose(conn).as_string(conn)


class QueryRunner(object):
    """Runs SQL on the module's connection and keeps the text of what counts (the ``queries`` return value).

    ``rows(query, record)`` runs a Query (or a constant str) and returns its rows as dicts; with
    ``record`` its text is appended to ``queries`` exactly as sent, cut at ``text_limit`` characters
    when that is set.
    """

    text_limit = None

    def __init__(self, module, conn):
        self.module = module
        self.conn = conn
        self.queries = []

    def text(self, query):
        return query.as_string(self.conn) if isinstance(query, Query) else query

    def record(self, query):
        text = self.text(query)
        if self.text_limit and len(text) > self.text_limit:
            text = text[:self.text_limit] + ' ...'
        self.queries.append(text)

    def rows(self, query, record=False, convert=True):
        if record:
            self.record(query)
        with self.conn.cursor() as cur:
            return fetch_all_dicts(cur, query, convert=convert)


def convert_value(value):
    """Convert a value fetched from PostgreSQL to something JSON-serialisable."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return to_native(bytes(value), errors='surrogate_or_replace')
    return value


def fetch_all_dicts(cur, query, params=None, convert=True):
    """Execute ``query`` and return every row as a dict keyed by column name.

    ``query`` is a str or a Query (composed with the cursor's connection).
    ``params`` is passed only when given, so a query without placeholders is
    sent as is (a ``%`` inside a quoted identifier is then harmless).  With
    ``convert`` (default) values go through ``convert_value``.
    """
    if isinstance(query, Query):
        query = query.compose(cur.connection)
    if params is None:
        cur.execute(query)
    else:
        cur.execute(query, params)
    if cur.description is None:
        return []
    names = [column[0] for column in cur.description]
    rows = []
    for row in cur.fetchall():
        if isinstance(row, dict):
            values = [row[name] for name in names]
        else:
            values = list(row)
        if convert:
            values = [convert_value(v) for v in values]
        rows.append(dict(zip(names, values)))
    return rows


def fetch_one_dict(cur, query, params=None, convert=True):
    """Like fetch_all_dicts but return the first row (or None)."""
    rows = fetch_all_dicts(cur, query, params, convert=convert)
    return rows[0] if rows else None
