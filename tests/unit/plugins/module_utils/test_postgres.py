# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options, pg_session, the Query builder and row helpers of module_utils/postgres.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import decimal

import psycopg
import pytest

from ansible_collections.quantops.platform.plugins.module_utils import postgres as pg

HOSTILE = 'x"; DROP TABLE y; --'


class FailJson(Exception):
    def __init__(self, kwargs):
        super(FailJson, self).__init__(kwargs.get('msg'))
        self.kwargs = kwargs


class FakeModule(object):
    def __init__(self, **params):
        base = dict((k, v.get('default')) for k, v in pg.postgres_common_argument_spec().items())
        base.update(params)
        self.params = base

    def fail_json(self, **kwargs):
        raise FailJson(kwargs)


# --- argument spec and connection parameters ---------------------------------------

def test_common_argument_spec_defaults():
    spec = pg.postgres_common_argument_spec()
    assert spec['login_user']['default'] == 'postgres'
    assert spec['login_password'] == {'type': 'str', 'default': '', 'no_log': True}
    assert spec['login_host']['default'] == ''
    assert spec['login_port']['type'] == 'int' and spec['login_port']['default'] == 5432
    assert spec['login_unix_socket']['default'] == ''
    assert spec['login_db']['default'] == 'quant_platform'
    assert spec['connect_params'] == {'type': 'dict', 'default': {}}
    assert spec['session_role'] == {'type': 'str'}
    assert spec['statement_timeout'] == {'type': 'raw'}
    assert spec['ssl_mode']['default'] == 'prefer'
    assert 'default' not in spec['ca_cert']


def test_common_spec_has_community_postgresql_names():
    """Every option and alias of community.postgresql's common spec (and its per-module login_db and
    session_role) exists here with the same aliases and choices, so module_defaults of one group
    (group/quantops.platform.postgresql) is valid for the modules of both collections."""
    community = pytest.importorskip('ansible_collections.community.postgresql.plugins.module_utils.postgres')
    theirs = community.postgres_common_argument_spec()
    theirs.update(login_db=dict(type='str', aliases=['db']), session_role=dict(type='str'))
    ours = pg.postgres_common_argument_spec()
    for name, option in theirs.items():
        assert name in ours, name
        assert ours[name].get('aliases', []) == option.get('aliases', []), name
        assert sorted(ours[name].get('choices') or []) == sorted(option.get('choices') or []), name
    assert set(ours) - set(theirs) == {'statement_timeout'}


def test_conn_params_unix_socket_and_no_empty_password():
    kw = pg.get_conn_params(FakeModule(login_unix_socket='/tmp/pgsock').params)
    assert kw['host'] == '/tmp/pgsock'
    assert kw['dbname'] == 'quant_platform'
    assert kw['user'] == 'postgres'
    assert kw['port'] == 5432
    assert kw['connect_timeout'] == 10
    assert kw['sslmode'] == 'prefer'
    assert kw['application_name'] == 'ansible-quantops.platform'
    assert 'password' not in kw
    assert 'sslrootcert' not in kw


def test_conn_params_tcp_with_password_and_ca():
    kw = pg.get_conn_params(FakeModule(login_host='db.lab', login_unix_socket='/tmp', login_password='s3cret',
                                       login_port=6432, ssl_mode='verify-full', ca_cert='/etc/ca.pem',
                                       connect_params={'connect_timeout': 0, 'options': '-c work_mem=8MB'}).params)
    assert kw['host'] == 'db.lab'           # a real host wins over the socket directory
    assert kw['password'] == 's3cret'
    assert kw['port'] == 6432
    assert kw['sslmode'] == 'verify-full'
    assert kw['sslrootcert'] == '/etc/ca.pem'
    assert kw['connect_timeout'] == 0         # connect_params overrides the default of 10 s
    assert kw['options'] == '-c work_mem=8MB'


def test_conn_params_default_socket_when_nothing_given():
    assert 'host' not in pg.get_conn_params(FakeModule().params)


def test_describe_connection_never_names_the_password():
    kw = pg.get_conn_params(FakeModule(login_host='10.0.0.5', login_password='s3cret', login_user='monitor').params)
    text = pg.describe_connection(kw)
    assert text == 'host=10.0.0.5 port=5432 dbname=quant_platform user=monitor'
    assert 's3cret' not in text


def test_connect_failure_names_target_and_scrubs_password(monkeypatch):
    def refuse(**kwargs):
        raise psycopg.OperationalError('connection failed: password "%s" rejected for user "monitor"'
                                       % kwargs['password'])
    monkeypatch.setattr(psycopg, 'connect', refuse)
    module = FakeModule(login_host='10.0.0.5', login_port=6543, login_user='monitor', login_password='s3cret')
    with pytest.raises(FailJson) as e:
        pg.connect(module)
    msg = e.value.kwargs['msg']
    assert 'host=10.0.0.5 port=6543 dbname=quant_platform user=monitor' in msg
    assert 's3cret' not in msg
    assert '********' in msg


@pytest.fixture
def seen(monkeypatch):
    """The keyword arguments psycopg.connect is called with (it returns 'conn')."""
    kwargs_seen = {}

    def fake_connect(**kwargs):
        kwargs_seen.update(kwargs)
        return 'conn'
    monkeypatch.setattr(psycopg, 'connect', fake_connect)
    return kwargs_seen


def test_connect_passes_autocommit_and_parameters(seen):
    assert pg.connect(FakeModule(login_unix_socket='/tmp'), autocommit=True) == 'conn'
    assert seen['autocommit'] is True
    assert seen['host'] == '/tmp'
    assert seen['application_name'] == 'ansible-quantops.platform'


def test_tls_options_are_community_postgresql_names():
    spec = pg.postgres_common_argument_spec()
    assert spec['ca_cert'] == {'type': 'path', 'aliases': ['ssl_rootcert']}
    assert spec['ssl_cert'] == {'type': 'path'}
    assert spec['ssl_key']['type'] == 'path' and 'default' not in spec['ssl_key']


def test_ssl_rootcert_alias_reaches_ca_cert():
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    result = ArgumentSpecValidator(pg.postgres_common_argument_spec()).validate(
        {'ssl_rootcert': '/etc/pki/ca.crt', 'ssl_mode': 'verify-full'})
    assert result.error_messages == []
    kw = pg.get_conn_params(result.validated_parameters)
    assert kw['sslrootcert'] == '/etc/pki/ca.crt'
    assert kw['sslmode'] == 'verify-full'


def test_unknown_ssl_mode_is_refused():
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    result = ArgumentSpecValidator(pg.postgres_common_argument_spec()).validate({'ssl_mode': 'verify_full'})
    assert result.error_messages
    assert 'ssl_mode' in ' '.join(result.error_messages)


def test_connect_passes_tls_options_to_psycopg(seen):
    module = FakeModule(login_host='qp-default-db', login_password='s3cret', ssl_mode='verify-full',
                        ca_cert='/etc/pki/ca.crt', ssl_cert='/etc/pki/client.crt', ssl_key='/etc/pki/client.key')
    assert pg.connect(module) == 'conn'
    assert seen['host'] == 'qp-default-db'
    assert seen['sslmode'] == 'verify-full'
    assert seen['sslrootcert'] == '/etc/pki/ca.crt'
    assert seen['sslcert'] == '/etc/pki/client.crt'
    assert seen['sslkey'] == '/etc/pki/client.key'
    # libpq takes them: psycopg builds a conninfo string with every keyword.
    conninfo = psycopg.conninfo.make_conninfo(**dict((k, v) for k, v in seen.items() if k != 'autocommit'))
    parsed = psycopg.conninfo.conninfo_to_dict(conninfo)
    assert parsed['sslmode'] == 'verify-full' and parsed['sslcert'] == '/etc/pki/client.crt'
    assert parsed['sslkey'] == '/etc/pki/client.key' and parsed['sslrootcert'] == '/etc/pki/ca.crt'


def test_no_client_certificate_keywords_unless_given():
    kw = pg.get_conn_params(FakeModule(login_host='db.lab').params)
    assert 'sslcert' not in kw and 'sslkey' not in kw and 'sslrootcert' not in kw


def test_doc_fragment_matches_the_argument_spec():
    import yaml
    from ansible_collections.quantops.platform.plugins.doc_fragments.postgres import ModuleDocFragment
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)['options']
    spec = pg.postgres_common_argument_spec()
    assert sorted(documented) == sorted(spec)
    for name, option in spec.items():
        assert documented[name]['type'] == option['type'], name
        assert documented[name].get('aliases', []) == option.get('aliases', []), name
        assert documented[name].get('default') == option.get('default'), name
        assert documented[name].get('choices') == option.get('choices'), name


def test_missing_psycopg_fails_with_missing_required_lib(monkeypatch):
    monkeypatch.setattr(pg, 'psycopg', None)
    monkeypatch.setattr(pg, 'PSYCOPG_IMPORT_ERROR', 'ImportError: No module named psycopg')
    with pytest.raises(FailJson) as e:
        pg.connect(FakeModule())
    assert 'psycopg >= 3.1 (python3-psycopg on Debian)' in e.value.kwargs['msg']
    assert 'ImportError' in e.value.kwargs['exception']


def test_too_old_psycopg_is_rejected(monkeypatch):
    monkeypatch.setattr(psycopg, '__version__', '3.0.18')
    with pytest.raises(FailJson) as e:
        pg.ensure_psycopg(FakeModule())
    assert 'psycopg >= 3.1' in e.value.kwargs['msg']


# --- statement_timeout and pg_session ------------------------------------------------------------

@pytest.mark.parametrize('value, setting', [
    (None, '10min'), ('', '10min'), (0, '0'), (1500, '1500'), ('30s', '30s'), (' 5 min ', '5min'), ('2h', '2h'),
])
def test_statement_timeout_setting(value, setting):
    assert pg.statement_timeout_setting(value, '10min') == setting


@pytest.mark.parametrize('value', ['-1', '30 seconds', '1.5s', "0'; DROP TABLE y; --", True, 2.5, ['30s']])
def test_statement_timeout_setting_refuses(value):
    with pytest.raises(ValueError) as e:
        pg.statement_timeout_setting(value, 0)
    assert 'statement_timeout' in str(e.value)


class SessionConn(object):
    """A connection recording what pg_session sends and whether it was closed."""

    def __init__(self, fail_on=None):
        self.sent = []
        self.closed = False
        self.fail_on = fail_on
        self.connection = None

    def cursor(self):
        conn = self

        class Cursor(object):
            connection = None

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def execute(self, query):
                text = query.as_string(None)
                conn.sent.append(text)
                if conn.fail_on and conn.fail_on in text:
                    raise psycopg.errors.InvalidParameterValue('role "%s" does not exist' % conn.fail_on)
        return Cursor()

    def close(self):
        self.closed = True


def test_pg_session_sets_role_and_timeout_and_closes(monkeypatch):
    conn = SessionConn()
    monkeypatch.setattr(pg, 'connect', lambda module, autocommit=True: conn)
    module = FakeModule(session_role='quant "ops"', statement_timeout='45s')
    with pg.pg_session(module, '10min') as got:
        assert got is conn and not conn.closed
    assert conn.sent == ['SET ROLE "quant ""ops"""', "SET statement_timeout = '45s'"]
    assert conn.closed


def test_pg_session_uses_the_module_default_and_closes_on_error(monkeypatch):
    conn = SessionConn()
    monkeypatch.setattr(pg, 'connect', lambda module, autocommit=True: conn)
    with pytest.raises(RuntimeError):
        with pg.pg_session(FakeModule(), 0):
            raise RuntimeError('module body failed')
    assert conn.sent == ["SET statement_timeout = '0'"]
    assert conn.closed


def test_pg_session_bad_timeout_fails_before_connecting(monkeypatch):
    def refuse(module, autocommit=True):
        raise AssertionError('connected although statement_timeout was invalid')
    monkeypatch.setattr(pg, 'connect', refuse)
    with pytest.raises(FailJson) as e:
        with pg.pg_session(FakeModule(statement_timeout='soon'), 0):
            pass
    assert "statement_timeout must be milliseconds" in e.value.kwargs['msg']


def test_pg_session_unknown_role_fails_naming_it(monkeypatch):
    conn = SessionConn(fail_on='nobody')
    monkeypatch.setattr(pg, 'connect', lambda module, autocommit=True: conn)
    with pytest.raises(FailJson) as e:
        with pg.pg_session(FakeModule(session_role='nobody'), 0):
            pass
    assert e.value.kwargs['msg'] == 'Could not set session_role nobody: role "nobody" does not exist'
    assert conn.closed


# --- identifiers ---------------------------------------------------------------------------------

@pytest.mark.parametrize('name, fragment', [
    ('', 'must not be empty'),
    ('a' * 64, 'limited to 63 bytes'),
    (u'\u00e9' * 32, 'is 64 bytes long'),       # 32 characters, 64 bytes in UTF-8
    ('a\x00b', 'NUL'),
    (None, 'must be a string'),
    (42, 'must be a string'),
])
def test_invalid_identifiers_are_rejected(name, fragment):
    with pytest.raises(pg.IdentifierError) as e:
        pg.validate_identifier(name, 'freshness_table')
    assert fragment in str(e.value)
    assert 'freshness_table' in str(e.value)


def test_identifier_limits_accept_63_bytes():
    assert pg.validate_identifier('a' * 63) == 'a' * 63
    assert pg.validate_identifier(u'\u00e9' * 31 + 'a') == u'\u00e9' * 31 + 'a'   # 63 bytes


@pytest.mark.parametrize('name, quoted', [
    ('ohlcv_data', '"ohlcv_data"'),
    ('Mixed Case', '"Mixed Case"'),
    (HOSTILE, '"x""; DROP TABLE y; --"'),
    ('a%b', '"a%b"'),
])
def test_identifiers_are_quoted_by_psycopg(name, quoted):
    assert pg.Query('SELECT {c}', {'c': name}).as_string(None) == 'SELECT ' + quoted


def test_sql_identifier_is_a_psycopg_identifier():
    ident = pg.sql_identifier('public', HOSTILE)
    assert isinstance(ident, psycopg.sql.Identifier)
    assert ident.as_string(None) == '"public"."x""; DROP TABLE y; --"'
    with pytest.raises(pg.IdentifierError):
        pg.sql_identifier('public', '')
    with pytest.raises(pg.IdentifierError):
        pg.sql_identifier()


def test_query_composes_identifiers_and_literals():
    query = pg.Query('SELECT max({col}), {cols} FROM {table} WHERE {col} > {limit} AND {col} < {day} '
                     'AND r = ANY({regions}) AND k = ANY({keys}) AND n = ANY({ids}) AND {reg}::regclass IS NOT NULL '
                     'AND s = {order}',
                     {'col': 'date', 'table': ('public', HOSTILE), 'cols': pg.IdentList(['open', 'a%b'])},
                     {'limit': 1000, 'day': datetime.date(2024, 6, 28), 'regions': pg.TypedArray(["US", "K'R"], 'text'),
                      'keys': pg.ValueArray(['SPX', None]), 'ids': pg.ValueArray([1, 2]),
                      'reg': pg.QuotedName(('public', HOSTILE)),
                      'order': pg.QuotedName(names=[('ticker',), ('date', 'DESC')])})
    assert isinstance(query.compose(None), psycopg.sql.Composed)
    assert query.as_string(None) == (
        'SELECT max("date"), "open", "a%b" FROM "public"."x""; DROP TABLE y; --" WHERE "date" > 1000 '
        "AND \"date\" < '2024-06-28'::date AND r = ANY('{US,K''R}'::text[]) AND k = ANY('{SPX,NULL}'::text[]) "
        "AND n = ANY('{1,2}'::int2[]) AND '\"public\".\"x\"\"; DROP TABLE y; --\"'::regclass IS NOT NULL "
        "AND s = '\"ticker\", \"date\" DESC'")


def test_query_validates_identifiers():
    with pytest.raises(pg.IdentifierError):
        pg.Query('SELECT {c}', {'c': ''}).compose(None)
    with pytest.raises(pg.IdentifierError):
        pg.Query('SELECT {c}', literals={'c': pg.QuotedName(('public', 'a' * 64))}).as_string(None)


# --- fetch helpers ---------------------------------------------------------------------------------

class RecordingCursor(object):
    def __init__(self, columns, rows):
        self.description = [(c,) for c in columns] if columns is not None else None
        self.rows = rows
        self.calls = []

    def execute(self, *args):
        self.calls.append(args)

    def fetchall(self):
        return self.rows


def test_fetch_all_dicts_converts_values_and_omits_absent_params():
    ts = datetime.datetime(2024, 6, 28, 12, 0, tzinfo=datetime.timezone.utc)
    cur = RecordingCursor(['n', 'ratio', 'at', 'day', 'span'],
                          [(1, decimal.Decimal('0.5'), ts, datetime.date(2024, 6, 28), datetime.timedelta(minutes=2))])
    rows = pg.fetch_all_dicts(cur, 'SELECT 1')
    assert rows == [{'n': 1, 'ratio': 0.5, 'at': '2024-06-28T12:00:00+00:00', 'day': '2024-06-28', 'span': 120.0}]
    assert cur.calls == [('SELECT 1',)]     # no params argument at all


def test_fetch_all_dicts_with_params_raw_values_and_dict_rows():
    day = datetime.date(2024, 6, 28)
    cur = RecordingCursor(['day'], [{'day': day}])
    assert pg.fetch_all_dicts(cur, 'SELECT %s', ('x',), convert=False) == [{'day': day}]
    assert cur.calls == [('SELECT %s', ('x',))]


def test_fetch_helpers_without_result_set():
    assert pg.fetch_all_dicts(RecordingCursor(None, []), 'SET x = 1') == []
    assert pg.fetch_one_dict(RecordingCursor(['a'], []), 'SELECT 1 WHERE false') is None


def test_fetch_all_dicts_composes_a_query_with_the_cursor_connection():
    cur = RecordingCursor(['n'], [(1,)])
    cur.connection = None
    assert pg.fetch_all_dicts(cur, pg.Query('SELECT count(*) AS n FROM {t}', {'t': ('public', 'a%b')})) == [{'n': 1}]
    assert cur.calls[0][0].as_string(None) == 'SELECT count(*) AS n FROM "public"."a%b"'
