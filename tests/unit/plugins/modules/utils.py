# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module unit test needs: module arguments and exit_json/fail_json caught as exceptions,
running a module's main() to its result, and a scripted psycopg connection.

The autouse fixture that installs AnsibleExitJson/AnsibleFailJson is in conftest.py beside this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import datetime
import functools
import json
import re

import psycopg
import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

__all__ = ['HOSTILE', 'T0', 'AnsibleExitJson', 'AnsibleFailJson', 'FakeConn', 'FakeCursor', 'FakeDB', 'assert_options_documented',
           'exit_json', 'fail_json', 'module_fail', 'module_ok', 'normalize_sql', 'patch_module_args',
           'ok_runner', 'fail_runner', 'run_module']

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19
    @contextlib.contextmanager
    def patch_module_args(args=None):
        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args or {}}))
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved


class AnsibleExitJson(Exception):
    """Raised instead of AnsibleModule.exit_json; .result is what the module returned."""

    def __init__(self, kwargs):
        super(AnsibleExitJson, self).__init__('exit_json')
        self.result = kwargs


class AnsibleFailJson(Exception):
    """Raised instead of AnsibleModule.fail_json; .result is what the module returned."""

    def __init__(self, kwargs):
        super(AnsibleFailJson, self).__init__(kwargs.get('msg'))
        self.result = kwargs


def exit_json(self, **kwargs):
    raise AnsibleExitJson(kwargs)


def fail_json(self, **kwargs):
    raise AnsibleFailJson(kwargs)


HOSTILE = '"; DROP TABLE x; --'
"""A name that would end a statement and drop a table if it were pasted into SQL instead of quoted."""


T0 = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.timezone.utc)
"""When the sessions of the scripted pg_stat_activity started (backend_start)."""


# --- running a module ---------------------------------------------------------------------

def run_module(main, args):
    """Run a module's main() with args; return the AnsibleExitJson or AnsibleFailJson it ended with."""
    with patch_module_args(args):
        with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as e:
            main()
    return e.value


def module_ok(main, args):
    """Run main() with args, assert it exited (exit_json) and return its result dict."""
    res = run_module(main, args)
    assert isinstance(res, AnsibleExitJson), res.result
    return res.result


def module_fail(main, args):
    """Run main() with args, assert it failed (fail_json) and return its result dict."""
    res = run_module(main, args)
    assert isinstance(res, AnsibleFailJson), res.result
    return res.result


def ok_runner(mod):
    """run_ok(args) of a module: its main() run with args, asserted to exit; returns the result dict."""
    return functools.partial(module_ok, mod.main)


def fail_runner(mod):
    """run_fail(args) of a module: its main() run with args, asserted to fail; returns the result dict."""
    return functools.partial(module_fail, mod.main)


def assert_options_documented(mod):
    """The module's own options (beyond the common PostgreSQL ones) are the documented ones,
    with the same defaults and types."""
    import yaml
    doc = yaml.safe_load(mod.DOCUMENTATION)
    spec = mod.argument_spec()
    own = set(spec) - set(mod.postgres_common_argument_spec())
    assert own == set(doc['options'])
    for name in own:
        assert doc['options'][name].get('default') == spec[name].get('default'), name
        assert doc['options'][name]['type'] == spec[name]['type'], name


# --- a scripted database ------------------------------------------------------------------

def normalize_sql(text):
    """One statement with runs of whitespace collapsed, for comparing whole statements."""
    return re.sub(r'\s+', ' ', text).strip()


class FakeCursor(object):
    """A psycopg cursor answering from db.rules, a list of (substring, result): the first rule whose
    substring is in the statement routes its canned result, and a statement no rule matches fails the test.

    The rules only route answers; what a module sends is checked whole: every statement is recorded
    in db.executed as (text exactly as psycopg composed it, params), and tests compare whole statements
    with db.statements() (whitespace-normalized).

    result is a list of row dicts (their keys are the columns), None for a statement without rows,
    an exception to raise, or a callable taking the query parameters and returning one of those.
    """

    def __init__(self, db):
        self.db = db
        self.connection = db.conn
        self.description = None
        self._rows = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, query, params=None):
        text = query if isinstance(query, str) else query.as_string(self.connection)
        self.db.executed.append((text, params))
        for match, result in self.db.rules:
            if match in text:
                break
        else:
            raise AssertionError('unexpected statement: %s' % text)
        if callable(result):
            result = result(params)
        if isinstance(result, Exception):
            raise result
        if result is None:
            self.description, self._rows = None, []
            return
        columns = list(result[0].keys()) if result else ['x']
        self.description = [(c,) for c in columns]
        self._rows = [tuple(row[c] for c in columns) for row in result]

    def fetchall(self):
        return list(self._rows)


class FakeConn(object):
    """A psycopg connection whose cursors are FakeCursors of db; close() marks it and db closed."""

    def __init__(self, db):
        self.db = db
        self.closed = False
        self.connection = None   # psycopg.sql renders a Composed against it without a server
        self.adapters = psycopg.adapters   # the global adapters a new connection would copy

    def cursor(self):
        return FakeCursor(self.db)

    def transaction(self):
        return contextlib.nullcontext()

    def close(self):
        self.closed = self.db.closed = True


class FakeDB(object):
    """The scripted database: rules (see FakeCursor), executed statements, closed, and its one connection.

    Every session starts with ``SET statement_timeout = '<value>'`` (pg_session); a rule for it is
    added in front so that each test states only what its module reads.
    """

    def __init__(self, rules=()):
        self.rules = [('SET statement_timeout = ', None), ('SET ROLE ', None)] + list(rules)
        self.executed = []
        self.closed = False
        self.conn = FakeConn(self)

    def statements(self):
        """Every statement sent, whitespace-normalized, in order."""
        return [normalize_sql(text) for text, params in self.executed]

    def install(self, monkeypatch, mod=None):
        """Make module_utils/postgres.py connect (used by pg_session) return this database's connection."""
        from ansible_collections.quantops.platform.plugins.module_utils import postgres
        monkeypatch.setattr(postgres, 'connect', lambda module, autocommit=True: self.conn)
        return self
