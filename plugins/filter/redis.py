# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Decisions of the Redis runbooks (seed 004): the restore (role quantops.platform.restore,
entry points redis_*) and the incident (role quantops.platform.redis_incident).

Each filter has a .yml documentation file beside this one.  They decide; the roles act:
which backup a restore loads, whether it may run and where it keeps what it replaces,
the key count of every database, the incident's checks and its severity.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types

from ansible_collections.quantops.platform.plugins.filter.incident import incident_disk_status

_KEYSPACE_RE = re.compile(r'^(db[0-9]+):keys=([0-9]+)', re.M)
_INFO_RE = re.compile(r'^([a-z_0-9]+):([^\r\n]*)', re.M)
_BACKUP_NAME = r'redis_[0-9]{8}T[0-9]{6}Z\.rdb(\.age)?'
_STAMP_RE = re.compile(r'^[0-9]{8}T[0-9]{6}Z$')
MIB = 1048576.0


def _int(value):
    """Jinja's ``| int``: a whole number, 0 for anything else."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return 0


def _paths(value, name):
    if not is_sequence(value) or isinstance(value, string_types):
        raise AnsibleFilterError('%s must be a list of paths, got %r' % (name, value))
    return [str(p) for p in value]


def redis_keyspace(info):
    """``{'db0': 12, 'db3': 200}`` from the text of ``INFO keyspace`` (or ``INFO all``)."""
    return dict((db, int(keys)) for db, keys in _KEYSPACE_RE.findall(str(info or '')))


def redis_restore_backup(verified, directory, requested=''):
    """The backup a Redis restore loads: the path, or '' when there is no such verified backup.

    ``verified`` are the paths of the backups with a ``.sha256`` beside them (the backup job writes it
    only after it verified the snapshot).  Only ``<directory>/redis_<UTC>.rdb[.age]`` counts.  A
    ``requested`` file name is taken only if it is one of them (a bare name, no path); without one,
    the newest (the UTC stamp in the name sorts by time).
    """
    directory = str(directory or '').rstrip('/')
    if not directory.startswith('/'):
        raise AnsibleFilterError('the Redis backup directory must be an absolute path, got %r' % (directory,))
    pattern = re.compile('^' + re.escape(directory) + '/' + _BACKUP_NAME + '$')
    candidates = sorted(p for p in _paths(verified, 'verified') if pattern.match(p))
    requested = str(requested or '').strip()
    if requested:
        path = directory + '/' + requested
        return path if path in candidates else ''
    return candidates[-1] if candidates else ''


def redis_restore_settle(path, confirm, check_mode, data_dir, stamp):
    """What a Redis restore of ``path`` does: whether it may change anything, what it keeps and where.

    It runs when ``confirm`` is true; ``check_mode`` only shows the plan (allowed without confirm).
    The replaced dump.rdb and AOF directory go to ``<data_dir>/quantops-replaced-<stamp>``.
    """
    if not _STAMP_RE.match(str(stamp or '')):
        raise AnsibleFilterError('stamp must be a UTC time such as 20261207T023000Z, got %r' % (stamp,))
    data_dir = str(data_dir or '').rstrip('/')
    if not data_dir.startswith('/') or '/../' in data_dir + '/' or data_dir in ('', '/'):
        raise AnsibleFilterError('the Redis data directory must be an absolute path below /, got %r' % (data_dir,))
    path = str(path or '')
    confirmed = str(confirm).strip().lower() in ('true', 'yes', 'on', '1', 'y', 't')
    return {
        'confirmed': confirmed,
        'allowed': confirmed or bool(check_mode),
        'kept': '%s/quantops-replaced-%s' % (data_dir, stamp),
        'staged': data_dir + '/.quantops-restore.rdb',
        'encrypted': path.endswith('.age'),
        'manifest': re.sub(r'\.rdb(\.age)?$', '.json', path),
        'sha256_file': path + '.sha256',
    }


def _persistence_status(up, info, age_hours, save_warning_hours):
    if not up:
        return 'unknown'
    if (info.get('rdb_last_bgsave_status', '') != 'ok'
            or info.get('aof_last_write_status', '') not in ('ok', '')
            or info.get('aof_last_bgrewrite_status', '') not in ('ok', '')):
        return 'critical'
    if age_hours > save_warning_hours and _int(info.get('rdb_changes_since_last_save', '')) > 0:
        return 'warning'
    return 'ok'


def redis_incident_state(ping, info, df_lines, now, memory_warning_pct=90, disk_warning_pct=85,
                         disk_critical_pct=95, save_warning_hours=1):
    """The Redis incident's state ``{up, keys, checks}`` (checks in health_checklist's format).

    ``ping`` and ``info`` are the output of ``PING`` and ``INFO all``, ``df_lines`` the lines of
    ``df --output=pcent`` of Redis's directory, ``now`` the epoch seconds.  Memory warns above
    ``memory_warning_pct`` % of maxmemory (unknown without maxmemory); evictions or rejected connections
    warn; persistence is critical when the last RDB save or AOF write/rewrite failed, warning when
    unsaved changes are older than ``save_warning_hours``; the disk is incident_disk_status.
    """
    up = str(ping or '').strip() == 'PONG'
    text = str(info or '')
    kv = dict(_INFO_RE.findall(text))
    used, maximum = _int(kv.get('used_memory', '0')), _int(kv.get('maxmemory', '0'))
    evicted, rejected = kv.get('evicted_keys', ''), kv.get('rejected_connections', '')
    age_hours = round((float(now) - float(_int(kv.get('rdb_last_save_time', '0')))) / 3600, 2) if up else 0
    lines = [str(line) for line in df_lines or [] if str(line).strip()]
    disk = re.sub('[^0-9]', '', lines[-1]) if lines else ''
    if maximum == 0:
        memory = 'unknown'
    else:
        memory = 'warning' if used > float(memory_warning_pct) / 100 * maximum else 'ok'
    checks = [
        {'name': 'Redis ping', 'status': 'ok' if up else 'critical',
         'display': str(ping or '').strip() or 'no answer'},
        {'name': 'Redis memory', 'status': memory,
         'display': '%s MiB of maxmemory %s MiB, policy %s, %s keys evicted since start' % (
             round(used / MIB, 1), round(maximum / MIB, 1), kv.get('maxmemory_policy', ''), evicted)},
        {'name': 'Redis evictions and rejected connections',
         'status': 'warning' if _int(evicted) > 0 or _int(rejected) > 0 else 'ok',
         'display': '%s evicted keys, %s rejected connections' % (evicted, rejected)},
        {'name': 'Redis persistence', 'status': _persistence_status(up, kv, age_hours, float(save_warning_hours)),
         'display': 'last RDB save %s h ago (%s), %s changes since; AOF %s (write %s, rewrite %s)' % (
             age_hours, kv.get('rdb_last_bgsave_status', ''), kv.get('rdb_changes_since_last_save', ''),
             'on' if kv.get('aof_enabled', '') == '1' else 'off', kv.get('aof_last_write_status', ''),
             kv.get('aof_last_bgrewrite_status', ''))},
        {'name': 'Disk of /var/lib/redis',
         'status': incident_disk_status(disk or None, disk_warning_pct, disk_critical_pct),
         'display': '%s %% used' % (disk or 'unknown')},
    ]
    return {'up': up, 'keys': sum(redis_keyspace(text).values()), 'checks': checks}


def redis_incident_severity(checks):
    """P1 when a check is critical (Redis down or unable to save), P2 when one warns, else P3."""
    statuses = set(c.get('status') for c in checks or [])
    if 'critical' in statuses:
        return 'P1'
    if 'warning' in statuses:
        return 'P2'
    return 'P3'


class FilterModule(object):
    """quantops.platform Redis filters."""

    def filters(self):
        return {
            'redis_keyspace': redis_keyspace,
            'redis_restore_backup': redis_restore_backup,
            'redis_restore_settle': redis_restore_settle,
            'redis_incident_state': redis_incident_state,
            'redis_incident_severity': redis_incident_severity,
        }
