# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Decisions of the backup, restore and drill runbooks (role quantops.platform.restore, quantops.platform.drill).

Each filter has a .yml documentation file beside this one.  They decide; the roles act:
which scratch roots are safe to remove under, which backup and recovery target a
pgBackRest restore uses and with which command, which services an in-place
restore stops, whether the drill's scratch cluster fits, whether two table
checksums agree, which dump is the newest verified one and which directories a
clean-up may remove.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import posixpath
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types

# One path component: no leading dot (so neither "." nor ".."), the characters a scratch root may use.
_PATH_RE = re.compile(r'^(/[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*)+$')
_TIME_RE = re.compile(r'^(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[ T](?P<h>[0-9]{2}):(?P<m>[0-9]{2})'
                      r'(?::(?P<s>[0-9]{2})(?P<frac>\.[0-9]+)?)?'
                      r'(?: ?(?P<tz>[+-][0-9]{2}(?::?[0-9]{2})?|Z|UTC))?$')
_NAME_RE = re.compile(r'^[A-Za-z0-9_]+$')
_REPO_RE = re.compile(r'^[1-9][0-9]{0,2}$')


def _text(value):
    return '' if value is None else str(value).strip()


def _normalised_absolute(path):
    return (isinstance(path, string_types) and bool(_PATH_RE.match(path))
            and posixpath.normpath(path) == path and path != '/')


def restore_scratch_root_ok(root, allowed_roots):
    """True when ``root`` is an absolute, normalised path equal to or under one of ``allowed_roots``.

    The clean-up removes the scratch clusters under that root, so a root that is not exactly such a
    path (``/``, ``..``, a relative path, a path beside the allowed ones) is refused; so is an allowed
    root that is not itself absolute and normalised.
    """
    if not is_sequence(allowed_roots) or isinstance(allowed_roots, string_types) or not allowed_roots:
        return False
    if not all(_normalised_absolute(p) for p in allowed_roots):
        return False
    if not _normalised_absolute(root):
        return False
    return any(root == p or root.startswith(p + '/') for p in allowed_roots)


def restore_target_epoch(text):
    """Epoch seconds of a recovery target time such as ``2026-11-23 12:30:00+00`` (no zone = UTC).

    Raises AnsibleFilterError for anything else, so a time is never guessed.
    """
    match = _TIME_RE.match(_text(text))
    if not match:
        raise AnsibleFilterError("restore_target_time must look like '2026-11-23 12:30:00+00', got %r" % (text,))
    try:
        year, month, day = (int(x) for x in match.group('date').split('-'))
        hour, minute, second = int(match.group('h')), int(match.group('m')), int(match.group('s') or 0)
        if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]
                and hour < 24 and minute < 60 and second < 60):
            raise ValueError('out of range')
    except ValueError:
        raise AnsibleFilterError('restore_target_time %r is not a real date and time' % (text,))
    epoch = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    tz = match.group('tz')
    if tz and tz not in ('Z', 'UTC'):
        digits = tz[1:].replace(':', '')
        offset = int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60
        epoch -= offset if tz[0] == '+' else -offset
    return epoch


def restore_pgbackrest_choice(stanza, backup_set='', target_time='', target_name='', now=None):
    """Choose what a pgBackRest restore recovers to, from a stanza of quantops.platform.pgbackrest_info.

    Returns ``{ok, message, recovery_type, label, source, target, earliest_epoch, earliest_iso}``:
    ``ok`` false with the reason in ``message`` when the stanza has no backup, the label is not one of
    its backups, the time has the wrong form, or the time lies before the chosen backup's end
    (``backup_set``, else the oldest backup) or after ``now``.  ``recovery_type`` is ``time``, ``name``,
    ``immediate`` (a label alone: that backup's consistent end) or ``default`` (end of the archive).
    """
    backup_set, target_time, target_name = _text(backup_set), _text(target_time), _text(target_name)
    stanza = stanza or {}
    result = {'ok': True, 'message': '', 'label': backup_set or (stanza.get('labels') or [''])[-1],
              'recovery_type': ('time' if target_time else 'name' if target_name
                                else 'immediate' if backup_set else 'default')}
    result['source'] = ('backup ' + backup_set) if backup_set else 'newest backup before the target'
    result['target'] = target_time or target_name or (
        '(end of the WAL archive %s)' % ((stanza.get('archive') or {}).get('max') or '?'))
    oldest = stanza.get('oldest_backup')
    if not oldest:
        status = stanza.get('status') or {}
        result.update(ok=False, message="Stanza '%s' has no usable backup (pgBackRest status %s: %s)."
                      % (stanza.get('name', '?'), status.get('code', '?'), status.get('message', '?')))
        return result
    if backup_set and backup_set not in (stanza.get('labels') or []):
        result.update(ok=False, message="restore_set '%s' is not a backup of stanza '%s'. Existing labels: %s."
                      % (backup_set, stanza.get('name', '?'), ', '.join(stanza.get('labels') or [])))
        return result
    chosen = oldest
    if backup_set:
        chosen = [b for b in stanza.get('backups') or [] if b.get('label') == backup_set][0]
    result['earliest_epoch'] = int(chosen.get('stop_time') or 0)
    result['earliest_iso'] = chosen.get('stop_time_iso') or ''
    if target_time:
        try:
            epoch = restore_target_epoch(target_time)
        except AnsibleFilterError as exc:
            result.update(ok=False, message=str(exc))
            return result
        if epoch < result['earliest_epoch'] or (now is not None and epoch > int(float(now))):
            result.update(ok=False, message=(
                "restore_target_time '%s' cannot be reached: the %s of stanza '%s' ends at %s (UTC), the newest WAL "
                "archived is %s, and the time must not be in the future. Pick a time between %s and now, or no time "
                "for the latest state." % (target_time, ('backup ' + backup_set) if backup_set else 'oldest backup',
                                           stanza.get('name', '?'), result['earliest_iso'],
                                           (stanza.get('archive') or {}).get('max') or '?', result['earliest_iso'])))
    return result


def restore_pgbackrest_argv(stanza, into='scratch', scratch_dir='', backup_set='', target_time='', target_name='',
                            repo=''):
    """The ``pgbackrest restore`` command line of a restore: list of arguments.

    Scratch restores write to ``scratch_dir`` with ``--archive-mode=off`` (a clone must never push WAL
    into production's repository); a target time or name promotes at the target; a label alone
    stops at that backup's consistent end (``--type=immediate``).
    """
    stanza, backup_set, target_time, target_name, repo = (_text(x) for x in (stanza, backup_set, target_time,
                                                                             target_name, repo))
    if not _NAME_RE.match(stanza):
        raise AnsibleFilterError('restore_pgbackrest_argv: the stanza must be letters, digits or _, got %r' % stanza)
    if target_time and target_name:
        raise AnsibleFilterError('restore_pgbackrest_argv: a target time and a target name cannot be combined')
    if repo and not _REPO_RE.match(repo):
        raise AnsibleFilterError('restore_pgbackrest_argv: repo must be a repository number, got %r' % repo)
    if into not in ('scratch', 'in_place'):
        raise AnsibleFilterError("restore_pgbackrest_argv: into must be scratch or in_place, got %r" % (into,))
    if into == 'scratch' and not _normalised_absolute(_text(scratch_dir)):
        raise AnsibleFilterError('restore_pgbackrest_argv: a scratch restore needs an absolute scratch_dir, got %r'
                                 % (scratch_dir,))
    argv = ['pgbackrest', '--stanza=' + stanza]
    if repo:
        argv.append('--repo=' + repo)
    if into == 'scratch':
        argv += ['--pg1-path=' + _text(scratch_dir), '--archive-mode=off']
    if backup_set:
        argv.append('--set=' + backup_set)
    if target_time:
        argv += ['--type=time', '--target=' + target_time, '--target-action=promote']
    elif target_name:
        argv += ['--type=name', '--target=' + target_name, '--target-action=promote']
    elif backup_set:
        argv += ['--type=immediate', '--target-action=promote']
    return argv + ['restore']


def restore_services_to_stop(services, present_units):
    """Units (without ``.service``) an in-place restore stops, in stop order (the reverse of the start order).

    ``services`` is platform_services_list (start order, items with ``unit``); ``present_units`` the
    units that exist on the host (the keys of ansible_facts.services).  Units that do not exist are
    left out: there is nothing to stop or start again.
    """
    if services is None:
        return []
    if not is_sequence(services) or isinstance(services, string_types):
        raise AnsibleFilterError('restore_services_to_stop expects platform_services_list, got %s'
                                 % type(services).__name__)
    present = set(re.sub(r'[.]service$', '', str(u)) for u in (present_units or []))
    units = []
    for item in services:
        if not isinstance(item, dict) or 'unit' not in item:
            raise AnsibleFilterError('restore_services_to_stop: every service needs a unit, got %r' % (item,))
        units.append(re.sub(r'[.]service$', '', str(item['unit'])))
    return [u for u in reversed(units) if u in present]


def restore_drill_space(source_bytes, free_bytes, factor=1.2, reserve_bytes=536870912):
    """Verdict on the drill's free space: ``{fits, free_bytes, needed_bytes, source_bytes, free_mib, needed_mib, source_mib}``.

    Needed = production's databases and WAL (``source_bytes``) x ``factor`` + ``reserve_bytes``: a
    restored cluster is the size of production's files, replayed WAL and its own WAL come on top.
    """
    try:
        source, free = int(source_bytes), int(free_bytes)
        factor, reserve = float(factor), int(reserve_bytes)
    except (TypeError, ValueError):
        raise AnsibleFilterError('restore_drill_space expects numbers, got source %r, free %r, factor %r, reserve %r'
                                 % (source_bytes, free_bytes, factor, reserve_bytes))
    if source < 0 or free < 0 or factor < 1 or reserve < 0:
        raise AnsibleFilterError('restore_drill_space: sizes and reserve must be >= 0 and the factor >= 1, got '
                                 'source %r, free %r, factor %r, reserve %r' % (source, free, factor, reserve))
    needed = int(source * factor) + reserve
    mib = 1048576.0
    return {'fits': free >= needed, 'free_bytes': free, 'needed_bytes': needed, 'source_bytes': source,
            'free_mib': round(free / mib, 1), 'needed_mib': round(needed / mib, 1), 'source_mib': round(source / mib, 1)}


def _stats_rows(stats):
    """Flatten table stats {database: [{tbl, rows, md5}]} into comparable {database, tbl, rows, md5} rows."""
    if not isinstance(stats, dict):
        raise AnsibleFilterError('restore_table_stats_diff expects {database: [{tbl, rows, md5}]}, got %r' % (stats,))
    rows = []
    for database in sorted(stats):
        tables = stats[database] or []
        if not is_sequence(tables) or not all(isinstance(t, dict) for t in tables):
            raise AnsibleFilterError('restore_table_stats_diff: the tables of %s must be a list of {tbl, rows, md5}, got %r'
                                     % (database, tables))
        for table in tables:
            rows.append({'database': database, 'tbl': table.get('tbl'),
                         'rows': int(table.get('rows') or 0), 'md5': table.get('md5')})
    return rows


def _stats_key(row):
    return (row['database'], row['tbl'], row['rows'], row['md5'])


def restore_table_stats_diff(source, restored):
    """Compare two table stats of role restore's table_stats entry point: ``{match, source_only, restored_only}``.

    A table whose row count or checksum differs shows in both lists (its source and its restored figures).
    """
    src, dst = _stats_rows(source), _stats_rows(restored)
    src_keys, dst_keys = set(_stats_key(r) for r in src), set(_stats_key(r) for r in dst)
    source_only = [r for r in src if _stats_key(r) not in dst_keys]
    restored_only = [r for r in dst if _stats_key(r) not in src_keys]
    return {'match': not source_only and not restored_only, 'source_only': source_only, 'restored_only': restored_only}


def restore_newest_verified_dump(files, database):
    """Path of the newest ``<database>_<UTC>.dump[.age]`` of ``files`` (ansible.builtin.find results) that has a .sha256.

    A .sha256 is written by the backup job only after it verified the dump; '' when there is none.
    """
    pattern = re.compile(r'^%s_[0-9]{8}T[0-9]{6}Z[.]dump([.]age)?$' % re.escape(_text(database)))
    files = [f for f in files or [] if isinstance(f, dict) and f.get('path')]
    verified = set(f['path'][:-len('.sha256')] for f in files if f['path'].endswith('.sha256'))
    dumps = [f for f in files if pattern.match(posixpath.basename(f['path'])) and f['path'] in verified]
    if not dumps:
        return ''
    return sorted(dumps, key=lambda f: (float(f.get('mtime') or 0), f['path']))[-1]['path']


def restore_cleanup_paths(scratch_dirs, rollback_dirs, marker_exists=False, protected=''):
    """What the pgBackRest clean-up removes: every scratch cluster, and every rollback copy but the protected one.

    While an in-place restore is unfinished (``marker_exists``), the rollback copy the marker names
    (``protected``) is the only good copy and is kept; a marker that names nothing keeps every rollback copy.
    """
    paths = [_text(p) for p in scratch_dirs or []]
    protected = _text(protected)
    if not marker_exists:
        paths += [_text(p) for p in rollback_dirs or []]
    elif protected:
        paths += [_text(p) for p in rollback_dirs or [] if _text(p) != protected]
    return paths


class FilterModule(object):
    """quantops.platform backup and restore filters."""

    def filters(self):
        return {
            'restore_scratch_root_ok': restore_scratch_root_ok,
            'restore_target_epoch': restore_target_epoch,
            'restore_pgbackrest_choice': restore_pgbackrest_choice,
            'restore_pgbackrest_argv': restore_pgbackrest_argv,
            'restore_services_to_stop': restore_services_to_stop,
            'restore_drill_space': restore_drill_space,
            'restore_table_stats_diff': restore_table_stats_diff,
            'restore_newest_verified_dump': restore_newest_verified_dump,
            'restore_cleanup_paths': restore_cleanup_paths,
        }
