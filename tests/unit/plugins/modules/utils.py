# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module unit test needs: module arguments and exit_json/fail_json caught as exceptions.

The autouse fixture that installs AnsibleExitJson/AnsibleFailJson is in conftest.py beside this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

__all__ = ['AnsibleExitJson', 'AnsibleFailJson', 'exit_json', 'fail_json', 'patch_module_args']

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
