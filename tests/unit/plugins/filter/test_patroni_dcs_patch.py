"""quantops.platform.patroni_dcs_patch: what PATCH /config sends."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.quantops.platform.plugins.filter.patroni_dcs_patch import patroni_dcs_patch


def test_equal_by_text_is_no_change():
    current = {'ttl': 30, 'postgresql': {'use_pg_rewind': True, 'parameters': {'max_connections': '100', 'ssl': 'on'}}}
    wanted = {'ttl': '30', 'postgresql': {'use_pg_rewind': 'on', 'parameters': {'max_connections': 100, 'ssl': True}}}
    assert not patroni_dcs_patch(current, wanted)


def test_only_differing_nested_keys():
    current = {'ttl': 30, 'synchronous_mode': False,
               'postgresql': {'parameters': {'work_mem': '4MB', 'max_connections': 100, 'other': 1}}}
    wanted = {'ttl': 30, 'synchronous_mode': True,
              'postgresql': {'parameters': {'work_mem': '8MB', 'max_connections': 100}}}
    assert patroni_dcs_patch(current, wanted) == {
        'synchronous_mode': True, 'postgresql': {'parameters': {'work_mem': '8MB'}}}


def test_missing_keys_are_sent():
    assert patroni_dcs_patch({}, {'postgresql': {'parameters': {'jit': 'off'}}}) == {
        'postgresql': {'parameters': {'jit': 'off'}}}


def test_not_a_dict_is_an_error():
    with pytest.raises(AnsibleFilterError):
        patroni_dcs_patch([], {})
