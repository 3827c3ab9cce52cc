#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pgbackrest_info
short_description: Read pgBackRest's backup catalogue (pgbackrest info --output=json)
version_added: 0.1.0
description:
  - Runs C(pgbackrest info --output=json) on the target and returns, per stanza, its status, the WAL
    archive range, every backup (label, type, start/stop time, size, repository size, WAL and LSN range)
    and the age of the newest good backup.
  - Read-only; never reports a change, so it runs the same in check mode.
  - Run it where pgBackRest is configured for the stanza (repository host, or a database host whose
    C(repo1-host) points at it) and as the user that can read C(/etc/pgbackrest.conf) (C(postgres)).
  - The field layout is pgBackRest's (command C(info), C(--output=json)); tested against pgBackRest 2.55.1.
options:
  stanza:
    description:
      - Stanza to read. All stanzas of the configuration when omitted.
    type: str
  config:
    description:
      - pgBackRest configuration file (C(--config)). pgBackRest's default when omitted.
    type: path
  repo:
    description:
      - Repository number (C(--repo)) to read; all repositories when omitted.
    type: int
  set:
    description:
      - Backup label (C(--set)); needs O(stanza). An unknown label gives status code 6 ("requested backup not found").
    type: str
  binary:
    description:
      - The pgbackrest executable.
    type: path
    default: pgbackrest
  fail_on_status:
    description:
      - Fail when a stanza's status code is not 0 (C(ok)). By default the status is only reported.
    type: bool
    default: false
extends_documentation_fragment:
  - quantops.platform.attributes
  - quantops.platform.attributes.info_module
requirements:
  - pgBackRest 2.x on the target (Debian package C(pgbackrest)).
notes:
  - Times are epoch seconds as pgBackRest reports them, with an ISO 8601 UTC copy.
  - Sizes are bytes. C(size) is the database size the backup covers, C(delta) the part copied by this
    backup; C(repo_size)/C(repo_delta) are the same after compression (and encryption) in the repository.
  - "Stanza status codes (pgBackRest src/command/info/info.c): 0 ok, 1 missing stanza path, 2 no valid
    backups, 3 missing stanza data, 4 different across repos, 5 database mismatch across repos,
    6 requested backup not found, 99 other."
author:
  - quantops.platform maintainers (@quantops)
'''

EXAMPLES = r'''
- name: Read the catalogue of stanza main
  quantops.platform.pgbackrest_info:
    stanza: main
  become: true
  become_user: postgres
  register: backrest

- name: Refuse a restore to a time before the oldest backup
  ansible.builtin.assert:
    that: restore_epoch | int >= backrest.stanzas[0].oldest_backup.stop_time
    fail_msg: "No backup is old enough to reach {{ restore_target_time }}"

- name: Labels of the backups
  ansible.builtin.debug:
    msg: "{{ backrest.stanzas[0].labels }}"
'''

RETURN = r'''
command:
  description: The argv that was run.
  returned: always
  type: list
  elements: str
  sample: [pgbackrest, --stanza=main, --output=json, info]
stanzas:
  description: One entry per stanza.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Stanza name.
      type: str
    status:
      description: C(code), C(message), C(ok) (code 0) and C(backup_lock_held) (a backup is running).
      type: dict
    cipher:
      description: Repository cipher (C(none) or C(aes-256-cbc)).
      type: str
    archive:
      description: C(min) and C(max) WAL segment in the archive (all archive ids), and the C(ids).
      type: dict
    backups:
      description:
        - Backups, oldest first. Each has C(label), C(type) (full/diff/incr), C(start_time), C(stop_time)
          (epoch seconds), C(start_time_iso), C(stop_time_iso), C(duration_seconds), C(size), C(delta),
          C(repo_size), C(repo_delta) (bytes), C(wal_start), C(wal_stop), C(lsn_start), C(lsn_stop),
          C(prior), C(reference), C(error), C(repo_key), C(pgbackrest_version).
      type: list
      elements: dict
    backup_count:
      description: Number of backups.
      type: int
    labels:
      description: Labels of the backups, oldest first.
      type: list
      elements: str
    last_backup:
      description: Newest backup without error (same keys as an item of C(backups)), null when none.
      type: dict
    last_full_backup:
      description: Newest full backup without error, null when none.
      type: dict
    oldest_backup:
      description: Oldest backup without error; the earliest point a restore can reach is its C(stop_time).
      type: dict
    last_backup_age_seconds:
      description: Seconds from the newest good backup's stop time to now; null when there is none.
      type: int
    repos:
      description: Per repository C(key), C(cipher), C(status_code), C(status_message).
      type: list
      elements: dict
'''

import json
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.quantops.platform.plugins.module_utils.pgbackrest import (
    info_command,
    parse_info,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            stanza=dict(type='str'),
            config=dict(type='path'),
            repo=dict(type='int'),
            set=dict(type='str'),
            binary=dict(type='path', default='pgbackrest'),
            fail_on_status=dict(type='bool', default=False),
        ),
        required_by={'set': 'stanza'},
        supports_check_mode=True,
    )
    p = module.params
    if p['repo'] is not None and not 1 <= p['repo'] <= 256:
        module.fail_json(msg='repo must be between 1 and 256 (pgBackRest repository numbers), got %d' % p['repo'])

    argv = info_command(p['binary'], p['stanza'], p['config'], p['repo'], p['set'])
    rc, out, err = module.run_command(argv, environ_update={'LC_ALL': 'C'})
    if rc != 0:
        module.fail_json(msg='pgbackrest info failed (exit status %d): %s' % (rc, (err or out).strip()),
                         command=argv, rc=rc, stderr=err)
    try:
        stanzas = parse_info(json.loads(out), time.time())
    except ValueError as e:
        module.fail_json(msg='pgbackrest info did not return the expected JSON: %s' % e, command=argv, stdout=out)

    result = dict(changed=False, command=argv, stanzas=stanzas)
    bad = [s for s in stanzas if not s['status']['ok']]
    if p['fail_on_status'] and bad:
        module.fail_json(msg='stanza status not ok: %s' % ', '.join(
            '%s (%s: %s)' % (s['name'], s['status']['code'], s['status']['message']) for s in bad), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
