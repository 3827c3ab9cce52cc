# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The attributes every quantops.platform module shares (as ansible.builtin.action_common_attributes
    # describes them): check mode, no diff, POSIX targets.  A module adds the details of its check mode
    # under attributes.check_mode.details; an information module uses quantops.platform.attributes.info_module.
    DOCUMENTATION = r'''
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
'''

    INFO_MODULE = r'''
attributes:
  check_mode:
    support: full
    details: Read-only; the module never changes anything.
'''
