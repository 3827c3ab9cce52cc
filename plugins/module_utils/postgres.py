# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Shared PostgreSQL connection code for the quantops.platform modules.

Modelled on community.postgresql's module_utils/postgres.py: one argument spec
for the connection options (documented by the ``quantops.platform.postgres``
doc fragment), one ``connect()`` and helpers that quote identifiers instead of
interpolating them.  psycopg (version 3) is imported lazily so that importing
this file never fails on a host without it; ``connect()`` reports the missing
library the standard Ansible way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import decimal
import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.text.converters import to_native

PSYCOPG_REQUIREMENT = 'psycopg (python3-psycopg on Debian)'
PSYCOPG_MIN_VERSION = (3, 1)

# PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes (63 by default).
MAX_IDENTIFIER_BYTES = 63

APPLICATION_NAME = 'ansible-quantops.platform'

SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']


class IdentifierError(ValueError):
    """Raised for an identifier PostgreSQL would reject or silently truncate."""


def postgres_common_argument_spec():
    """Return the connection options shared by the quantops.platform PostgreSQL modules.

    Documented by the ``quantops.platform.postgres`` doc fragment; keep both in step.
    """
    return dict(
        login_user=dict(type='str', default='postgres', aliases=['login']),
        login_password=dict(type='str', default='', no_log=True),
        login_host=dict(type='str', default='', aliases=['host']),
        login_port=dict(type='int', default=5432, aliases=['port']),
        login_unix_socket=dict(type='str', default='', aliases=['unix_socket']),
        login_db=dict(type='str', default='quant_platform', aliases=['db']),
        connect_timeout=dict(type='int', default=10),
        ssl_mode=dict(type='str', default='prefer', choices=SSL_MODES),
        ca_cert=dict(type='path', aliases=['ssl_rootcert']),
        ssl_cert=dict(type='path'),
        ssl_key=dict(type='path', no_log=False),
    )


def get_conn_params(params):
    """Map module parameters to keyword arguments for ``psycopg.connect``.

    Pure function (no psycopg needed).  ``login_unix_socket`` is used when
    ``login_host`` is empty or ``localhost``, as community.postgresql does;
    with neither set libpq uses its compiled-in socket directory
    (/var/run/postgresql on Debian).  An empty password is left out so that
    libpq can fall back to peer authentication or ~/.pgpass.
    """
    kw = {
        'dbname': params.get('login_db') or 'quant_platform',
        'user': params.get('login_user') or 'postgres',
        'port': int(params.get('login_port') or 5432),
        'connect_timeout': int(params.get('connect_timeout') if params.get('connect_timeout') is not None else 10),
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


def import_psycopg(module):
    """Import psycopg lazily; fail the module the standard way when it is absent or too old."""
    try:
        import psycopg  # pylint: disable=import-outside-toplevel
    except ImportError:
        module.fail_json(msg=missing_required_lib(PSYCOPG_REQUIREMENT), exception=traceback.format_exc())
        return None  # only reached when fail_json is mocked
    if _version_tuple(getattr(psycopg, '__version__', '0')) < PSYCOPG_MIN_VERSION:
        module.fail_json(msg='psycopg >= %s is required on the managed node, found %s' % (
            '.'.join(str(x) for x in PSYCOPG_MIN_VERSION), psycopg.__version__))
    return psycopg


def connect(module, autocommit=True):
    """Open a psycopg 3 connection from the module's connection options.

    On failure the module fails with a message naming host, port, database and
    user; the password never appears (it is scrubbed from the driver's text too).
    """
    psycopg = import_psycopg(module)
    conn_params = get_conn_params(module.params)
    try:
        return psycopg.connect(autocommit=autocommit, **conn_params)
    except Exception as e:  # psycopg.Error and socket/ssl errors alike
        detail = _scrub(to_native(e), module.params.get('login_password'))
        module.fail_json(msg='Unable to connect to PostgreSQL (%s): %s' % (describe_connection(conn_params), detail))
    return None  # only reached when fail_json is mocked


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


def _psycopg_sql():
    """Return psycopg.sql, or None when psycopg is not importable (unit tests patch this)."""
    try:
        from psycopg import sql  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None
    return sql


def pure_quote_ident(name):
    """Quote one identifier the way PQescapeIdentifier does: wrap in double quotes, double inner quotes."""
    return '"%s"' % validate_identifier(name).replace('"', '""')


def quote_ident(name, conn=None):
    """Return ``name`` quoted as a PostgreSQL identifier (a str).

    Uses psycopg.sql.Identifier when psycopg is available; older psycopg
    releases need a connection to render an Identifier, so without one (and
    without psycopg) the pure fallback is used.  Both give the same text.
    """
    validate_identifier(name)
    sql = _psycopg_sql()
    if sql is not None:
        try:
            return sql.Identifier(name).as_string(conn)
        except Exception:  # pylint: disable=broad-except
            pass
    return pure_quote_ident(name)


def sql_identifier(*parts):
    """Return a (possibly qualified) identifier safe to compose into SQL.

    With psycopg: a ``psycopg.sql.Identifier`` (``sql_identifier('public', 'ohlcv_data')``
    renders as ``"public"."ohlcv_data"``).  Without psycopg: the same text as a str.
    Every part is validated first.
    """
    if not parts:
        raise IdentifierError('at least one identifier part is required')
    for part in parts:
        validate_identifier(part)
    sql = _psycopg_sql()
    if sql is not None:
        return sql.Identifier(*parts)
    return '.'.join(pure_quote_ident(part) for part in parts)


class SqlNumber(object):
    """A numeric literal for compose_query (rendered by psycopg.sql.Literal).

    Composing numbers into the text instead of passing query parameters keeps
    psycopg from scanning the query for ``%`` placeholders, which it would
    also find inside a quoted identifier such as ``"a%b"``.
    """

    def __init__(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError('SqlNumber takes an int or a float, got %s' % type(value).__name__)
        self.value = value

    def __repr__(self):
        return 'SqlNumber(%r)' % (self.value,)


def compose_query(template, **pieces):
    """Compose a constant SQL template with quoted identifiers, never by interpolation.

    ``template`` uses ``{name}`` placeholders; each keyword is a str (one
    identifier), a tuple/list (a qualified name) or a SqlNumber.  Returns a
    psycopg ``Composed`` when psycopg is present, otherwise a str built with
    the pure quoting (used by unit tests without a database).
    """
    sql = _psycopg_sql()
    rendered = {}
    for key, value in pieces.items():
        if isinstance(value, SqlNumber):
            rendered[key] = sql.Literal(value.value) if sql is not None else repr(value.value)
            continue
        parts = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        rendered[key] = sql_identifier(*parts)
    if sql is not None:
        return sql.SQL(template).format(**rendered)
    return template.format(**rendered)


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

    ``params`` is passed only when given, so a query without placeholders is
    sent as is (a ``%`` inside a quoted identifier is then harmless).  With
    ``convert`` (default) values go through ``convert_value``.
    """
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
