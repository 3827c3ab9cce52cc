# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared helpers for the pgBackRest modules: read ``pgbackrest info --output=json``.

The JSON layout is pgBackRest's (``doc/xml/reference.xml``, command ``info``,
and src/command/info/info.c): a list of stanzas, each with ``name``,
``status{code,message}``, ``archive[{id,min,max}]`` and ``backup[]`` whose
items carry ``label``, ``type``, ``timestamp{start,stop}`` (epoch seconds),
``info{size,delta,repository{size,delta}}`` (bytes), ``archive{start,stop}``
(WAL segment names), ``lsn{start,stop}``, ``prior``, ``reference`` and
``error``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

# pgBackRest's stanza status codes (src/command/info/info.c, INFO_STANZA_STATUS_*).
STATUS_CODES = {
    0: 'ok',
    1: 'missing stanza path',
    2: 'no valid backups',
    3: 'missing stanza data',
    4: 'different across repos',
    5: 'database mismatch across repos',
    6: 'requested backup not found',
    99: 'other',
}


def iso_utc(epoch):
    """Epoch seconds -> ISO 8601 UTC string (``2026-11-23T12:19:08+00:00``), None for None."""
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc).isoformat()


def info_command(binary='pgbackrest', stanza=None, config=None, repo=None, backup_set=None):
    """argv of the read-only ``pgbackrest info`` command the module runs."""
    argv = [binary]
    if config:
        argv.append('--config=%s' % config)
    if stanza:
        argv.append('--stanza=%s' % stanza)
    if repo:
        argv.append('--repo=%d' % int(repo))
    if backup_set:
        argv.append('--set=%s' % backup_set)
    argv += ['--output=json', 'info']
    return argv


def _backup(item):
    info = item.get('info') or {}
    repo = info.get('repository') or {}
    ts = item.get('timestamp') or {}
    wal = item.get('archive') or {}
    lsn = item.get('lsn') or {}
    database = item.get('database') or {}
    return {
        'label': item.get('label'),
        'type': item.get('type'),
        'start_time': ts.get('start'),
        'stop_time': ts.get('stop'),
        'start_time_iso': iso_utc(ts.get('start')),
        'stop_time_iso': iso_utc(ts.get('stop')),
        'duration_seconds': (ts['stop'] - ts['start']) if ts.get('start') is not None and ts.get('stop') is not None else None,
        'size': info.get('size'),
        'delta': info.get('delta'),
        'repo_size': repo.get('size'),
        'repo_delta': repo.get('delta'),
        'wal_start': wal.get('start'),
        'wal_stop': wal.get('stop'),
        'lsn_start': lsn.get('start'),
        'lsn_stop': lsn.get('stop'),
        'prior': item.get('prior'),
        'reference': item.get('reference') or [],
        'error': bool(item.get('error', False)),
        'repo_key': database.get('repo-key'),
        'pgbackrest_version': (item.get('backrest') or {}).get('version'),
    }


def parse_stanza(stanza, now):
    """Flatten one stanza of the info JSON; ``now`` is epoch seconds for the age."""
    status = stanza.get('status') or {}
    backups = [_backup(b) for b in stanza.get('backup') or []]
    backups.sort(key=lambda b: (b['stop_time'] or 0, b['label'] or ''))
    archives = stanza.get('archive') or []
    mins = [a.get('min') for a in archives if a.get('min')]
    maxs = [a.get('max') for a in archives if a.get('max')]
    good = [b for b in backups if not b['error']]
    last = good[-1] if good else None
    oldest = good[0] if good else None
    last_by_type = {}
    for b in good:
        last_by_type[b['type']] = b
    code = status.get('code')
    return {
        'name': stanza.get('name'),
        'status': {
            'code': code,
            'message': status.get('message', STATUS_CODES.get(code)),
            'ok': code == 0,
            'backup_lock_held': bool(((status.get('lock') or {}).get('backup') or {}).get('held', False)),
        },
        'cipher': stanza.get('cipher'),
        'archive': {
            'min': min(mins) if mins else None,
            'max': max(maxs) if maxs else None,
            'ids': [a.get('id') for a in archives],
        },
        'backups': backups,
        'backup_count': len(backups),
        'last_backup': last,
        'last_full_backup': last_by_type.get('full'),
        'oldest_backup': oldest,
        'last_backup_age_seconds': (int(now) - last['stop_time']) if last and last['stop_time'] is not None else None,
        'labels': [b['label'] for b in backups],
        'repos': [
            {'key': r.get('key'), 'cipher': r.get('cipher'),
             'status_code': (r.get('status') or {}).get('code'),
             'status_message': (r.get('status') or {}).get('message')}
            for r in stanza.get('repo') or []
        ],
    }


def parse_info(data, now):
    """Parse the decoded ``pgbackrest info --output=json`` list; raise ValueError if it is not one."""
    if not isinstance(data, list):
        raise ValueError('pgbackrest info JSON is not a list of stanzas')
    return [parse_stanza(s, now) for s in data]
