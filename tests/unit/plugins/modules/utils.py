# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module unit test needs: module arguments and exit_json/fail_json caught as exceptions,
running a module's main() to its result, and a scripted psycopg connection.

The autouse fixture that installs AnsibleExitJson/AnsibleFailJson is in conftest.py beside this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

__all__ = ['AnsibleExitJson', 'AnsibleFailJson', 'FakeConn', 'FakeCursor', 'FakeDB', 'assert_options_documented',
           'connect_refused', 'exit_json', 'fail_json', 'module_fail', 'module_ok', 'patch_module_args', 'run_module']

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


def connect_refused(mod, autouse=False):
    """A fixture ``no_connect`` that fails the test if mod.connect is called: for options that must be
    rejected before any connection.  Use as ``no_connect = connect_refused(mod)`` in the test file."""
    @pytest.fixture(name='no_connect', autouse=autouse)
    def fixture(monkeypatch):
        def refuse(module, autocommit=True):
            raise AssertionError('the module connected although its options were invalid')
        monkeypatch.setattr(mod, 'connect', refuse)
    return fixture


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

class FakeCursor(object):
    """A psycopg cursor answering from db.rules, a list of (substring, result): the first rule whose
    substring is in the query text wins, and a query no rule matches fails the test.

    result is a list of row dicts (their keys are the columns), None for a statement without rows,
    an exception to raise, or a callable taking the query parameters and returning one of those.
    Every query is recorded in db.executed as (text, params).
    """

    def __init__(self, db):
        self.db = db
        self.description = None
        self._rows = []

    def execute(self, query, params=None):
        text = query if isinstance(query, str) else query.as_string(None)
        self.db.executed.append((text, params))
        for key, result in self.db.rules:
            if key in text:
                break
        else:
            raise AssertionError('unexpected query: %s' % text)
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
        self.adapters = None

    def cursor(self):
        return FakeCursor(self.db)

    def close(self):
        self.closed = self.db.closed = True


class FakeDB(object):
    """The scripted database: rules (see FakeCursor), executed queries, closed, and its one connection."""

    def __init__(self, rules=()):
        self.rules = list(rules)
        self.executed = []
        self.closed = False
        self.conn = FakeConn(self)

    def install(self, monkeypatch, mod):
        """Make mod.connect return this database's connection; return self."""
        monkeypatch.setattr(mod, 'connect', lambda module, autocommit=True: self.conn)
        return self
