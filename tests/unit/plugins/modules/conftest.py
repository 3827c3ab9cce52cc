# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module test here sees exit_json/fail_json as the exceptions of utils.py; the fixtures
``no_connect`` (options rejected before any connection) and ``install`` (a scripted FakeDB) patch
module_utils/postgres.py connect, which pg_session calls."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.module_utils import basic

from ansible_collections.quantops.platform.plugins.module_utils import postgres

from ansible_collections.quantops.platform.tests.unit.plugins.modules.utils import exit_json, fail_json


@pytest.fixture(autouse=True)
def patch_exits(monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)


@pytest.fixture
def no_connect(monkeypatch):
    """Fail the test if the module connects: for options that must be rejected before any connection."""
    def refuse(module, autocommit=True):
        raise AssertionError('the module connected although its options were invalid')
    monkeypatch.setattr(postgres, 'connect', refuse)


@pytest.fixture
def install(monkeypatch):
    """``install(db)``: the module's connection is db's (a utils.FakeDB); returns db."""
    return lambda db: db.install(monkeypatch)
