# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugins/module_utils/pgtune.py against values worked out by hand.

Every expected value below is computed in the comments from the upstream
formulas, not from the code under test:

* timescaledb-tune (timescale/timescaledb-tune): pkg/pgtune/memory.go,
  parallel.go, wal.go, misc.go; units by internal/parse/parse.go
  BytesToPGFormat (largest unit; a fractional value steps down one unit and is
  truncated).  Go's math.Round rounds halves away from zero.
* PGTune (le0pard/pgtune): src/features/configuration/configurationSlice.js,
  everything in kB; units by configurationView/index.jsx formatValue (GB if
  divisible by 1048576 kB, MB if divisible by 1024 kB, else kB).

1 GiB = 1073741824 B = 1048576 kB; 1 MiB = 1048576 B = 1024 kB.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.quantops.platform.plugins.module_utils.pgtune import (
    TuningError,
    bytes_to_pg_format,
    compute_tuning,
    format_memory,
    parse_memory,
)

KIB = 1024
MIB = 1024 ** 2
GIB = 1024 ** 3


def tsdb(memory_gib, cpus, **kwargs):
    kwargs.setdefault('method', 'timescaledb')
    return compute_tuning(int(memory_gib * GIB), cpus, **kwargs)


def pgtune(memory_gib, cpus, profile, **kwargs):
    kwargs.setdefault('timescaledb', False)
    return compute_tuning(int(memory_gib * GIB), cpus, profile=profile, method='pgtune', **kwargs)


# ===========================================================================
# Formatting helpers
# ===========================================================================

@pytest.mark.parametrize('num_bytes, expected', [
    (512 * MIB, '512MB'),            # exactly 512 MiB
    (3 * GIB // 2, '1536MB'),        # 1.5 GB: fraction .5 > .001 -> 1.5 * 1024 MB
    (16 * GIB, '16GB'),
    (2047 * MIB, '2047MB'),          # 1.999 GB: fraction .999 -> 2047 MB
    (8052736, '7864kB'),             # 7.6796875 MB -> 7864.0 kB
    (11184810, '10922kB'),           # 10.66666603 MB -> 10922.666 kB, truncated
    (64 * KIB, '64kB'),
    (1536, '2kB'),                   # 1.5 kB: kB values are rounded, half away from zero
    (1000, '1kB'),                   # below 1 kB: always 1kB
    (GIB + 1024, '1GB'),             # fraction 0.00000095 <= 0.001: kept in GB, truncated
    (2 * 1024 ** 4, '2TB'),
])
def test_bytes_to_pg_format_matches_parse_go(num_bytes, expected):
    assert bytes_to_pg_format(num_bytes) == expected


@pytest.mark.parametrize('kb, expected', [
    (1048576, '1GB'),
    (1572864, '1536MB'),             # 1.5 GB is not a whole GB, is 1536 whole MB
    (16384, '16MB'),
    (4854, '4854kB'),
    (32, '32kB'),
])
def test_format_memory_matches_pgtune_format_value(kb, expected):
    assert format_memory(kb) == expected


@pytest.mark.parametrize('value, expected', [
    ('4GB', 4 * GIB),
    ('64MB', 64 * MIB),
    ('8kB', 8 * KIB),
    ('128', 128),                    # no unit: bytes, as parse.PGFormatToBytes
    ('1TB', 1024 ** 4),
    ('16B', 16),
    ("'16MB'", 16 * MIB),            # quoted, as in postgresql.conf
    (' 64 MB ', 64 * MIB),
    (128, 128),
])
def test_parse_memory(value, expected):
    assert parse_memory(value) == expected


def test_parse_memory_default_unit_reads_bare_numbers_like_postgresql():
    # shared_buffers = 131072 means 131072 blocks of 8 kB = 1 GiB.
    assert parse_memory('131072', default_unit='8kB') == GIB
    # work_mem = 4096 means 4096 kB.
    assert parse_memory('4096', default_unit='kB') == 4 * MIB
    # A unit in the value wins over the default.
    assert parse_memory('2MB', default_unit='kB') == 2 * MIB


@pytest.mark.parametrize('value', ['4gb', '1.5GB', '-1', '', 'GB', '4 GiB', None, True, 1.5, -3])
def test_parse_memory_rejects(value):
    with pytest.raises(TuningError, match='memory value'):
        parse_memory(value)


def test_parse_memory_rejects_unknown_default_unit():
    with pytest.raises(TuningError, match='default_unit'):
        parse_memory('1', default_unit='KB')


# ===========================================================================
# timescaledb-tune
# ===========================================================================

def test_timescaledb_lab_2gib_2cpus():
    """The lab: 2 GiB cgroup limit, 2 vCPUs, ssd, PostgreSQL 17, TimescaleDB."""
    assert tsdb(2, 2, disk_type='ssd', pg_version=17, timescaledb=True) == {
        # memory.go: RAM/4 = 536870912 B = 512 MiB exactly
        'shared_buffers': '512MB',
        # 3*RAM/4 = 1610612736 B = 1.5 GiB -> one unit down: 1536 MB
        'effective_cache_size': '1536MB',
        # RAM_GB * 128 MB = 2 * 128 MB = 256 MB (< 2047 MB cap)
        'maintenance_work_mem': '256MB',
        # getMaxConns(2 GiB) = 25 (<= 2 GB); 2 * (400 MB / 25) / round(2/2 = 1) = 32 MB
        'work_mem': '32MB',
        # parallel.go, cpus > 1: MaxBackgroundWorkersDefault = 16
        'timescaledb.max_background_workers': '16',
        # 3 + 16 + 2
        'max_worker_processes': '21',
        # round(2/2) = 1
        'max_parallel_workers_per_gather': '1',
        'max_parallel_workers': '2',
        # wal.go: RAM is not < 2 GB -> 16 MB
        'wal_buffers': '16MB',
        # no WAL disk size: max 1 GB, min 1 GB / 2
        'min_wal_size': '512MB',
        'max_wal_size': '1GB',
        # misc.go constants
        'default_statistics_target': '100',
        'random_page_cost': '1.1',
        'checkpoint_completion_target': '0.9',
        'max_connections': '25',
        # RAM < 8 GB -> 128
        'max_locks_per_transaction': '128',
        'autovacuum_max_workers': '10',
        'autovacuum_naptime': '10',
        # PG >= 13 -> 256
        'effective_io_concurrency': '256',
        'jit': 'off',                           # PG >= 12
        'default_toast_compression': 'lz4',     # PG >= 14
    }


def test_timescaledb_8gib_8cpus():
    conf = tsdb(8, 8)
    assert conf['shared_buffers'] == '2GB'              # 8 GiB / 4
    assert conf['effective_cache_size'] == '6GB'        # 8 GiB * 3 / 4
    assert conf['maintenance_work_mem'] == '1GB'        # 8 * 128 MB = 1024 MB = 1 GB
    assert conf['max_connections'] == '100'             # getMaxConns: > 6 GB -> 100
    # 8 * (400 MB / 100) / round(8/2 = 4) = 8 * 4 MB / 4 = 8 MB
    assert conf['work_mem'] == '8MB'
    assert conf['max_worker_processes'] == '27'         # 3 + 16 + 8
    assert conf['max_parallel_workers_per_gather'] == '4'
    assert conf['max_parallel_workers'] == '8'
    assert conf['wal_buffers'] == '16MB'
    assert conf['max_locks_per_transaction'] == '256'   # 8 GB <= RAM < 16 GB


def test_timescaledb_64gib_32cpus():
    conf = tsdb(64, 32)
    assert conf['shared_buffers'] == '16GB'
    assert conf['effective_cache_size'] == '48GB'
    # 64 * 128 MB = 8192 MB > 2047 MB -> capped at 2047 MB
    assert conf['maintenance_work_mem'] == '2047MB'
    # 64 * (400 MB / 100) / round(32/2 = 16) = 256 MB / 16 = 16 MB
    assert conf['work_mem'] == '16MB'
    assert conf['max_worker_processes'] == '51'         # 3 + 16 + 32
    assert conf['max_parallel_workers_per_gather'] == '16'
    assert conf['max_parallel_workers'] == '32'
    assert conf['max_locks_per_transaction'] == '1024'  # RAM >= 32 GB


@pytest.mark.parametrize('memory_gib, cpus, expected', [
    # conns: 25 for 2 GiB, 100 for 8 and 64 GiB -> 400 MB/25 = 16 MB, 400 MB/100 = 4 MB per GB
    # 2 GiB: 2 * 16 MB = 32 MB, divided by round(cpus/2) = 1, 4, 16
    (2, 2, '32MB'), (2, 8, '8MB'), (2, 32, '2MB'),
    # 8 GiB: 8 * 4 MB = 32 MB
    (8, 2, '32MB'), (8, 8, '8MB'), (8, 32, '2MB'),
    # 64 GiB: 64 * 4 MB = 256 MB
    (64, 2, '256MB'), (64, 8, '64MB'), (64, 32, '16MB'),
    # Go rounding: round(1/2) = 1 (not 0), round(5/2) = 3 (Python's round() gives 2)
    (8, 1, '32MB'),
    # 32 MB / 3 = 11184810.67 B -> 11184810 B = 10.666666 MB -> 10922.666 kB -> 10922kB
    (8, 5, '10922kB'),
    # round(3/2) = 2: 32 MB / 2
    (8, 3, '16MB'),
    # floor: 1 GiB, conns 25: 16 MB / round(1000/2 = 500) = 33554 B < 64 kB -> 64kB
    (1, 1000, '64kB'),
])
def test_timescaledb_work_mem(memory_gib, cpus, expected):
    assert tsdb(memory_gib, cpus)['work_mem'] == expected


def test_timescaledb_work_mem_follows_max_connections():
    # 8 * (400 MB / 200) / 4 = 4 MB
    conf = tsdb(8, 8, max_connections=200)
    assert conf['work_mem'] == '4MB'
    assert conf['max_connections'] == '200'


@pytest.mark.parametrize('memory_gib, expected', [
    (2, '25'), (2.5, '50'), (4, '50'), (5, '75'), (6, '75'), (7, '100'), (64, '100'),
])
def test_timescaledb_default_max_connections_by_memory(memory_gib, expected):
    assert tsdb(memory_gib, 2)['max_connections'] == expected


@pytest.mark.parametrize('memory_gib, expected', [
    (7, '128'), (8, '256'), (15, '256'), (16, '512'), (24, '512'), (32, '1024'), (80, '1024'),
])
def test_timescaledb_max_locks_per_transaction(memory_gib, expected):
    assert tsdb(memory_gib, 2)['max_locks_per_transaction'] == expected


@pytest.mark.parametrize('memory_gib, expected', [
    # RAM < 2 GB: RAM_GB * 7864 kB
    (1, '7864kB'),                   # 8052736 B = 7.6796875 MB -> 7864 kB
    (1.5, '11796kB'),                # 12079104 B = 11.5195 MB -> 11796.0 kB
    (0.5, '3932kB'),                 # 4026368 B = 3.8398 MB -> 3932.0 kB
    (2, '16MB'),
    (64, '16MB'),
])
def test_timescaledb_wal_buffers(memory_gib, expected):
    assert tsdb(memory_gib, 2)['wal_buffers'] == expected


@pytest.mark.parametrize('wal_disk_bytes, min_wal, max_wal', [
    (None, '512MB', '1GB'),
    (0, '512MB', '1GB'),
    # 10 GiB * 60 / 100 = 6442450944 B = 6144 MB, already a multiple of 16 MB
    (10 * GIB, '3GB', '6GB'),
    # 1 GiB * 60 / 100 = 644245094 B = 614.4 MB -> up to 39 * 16 MB = 624 MB
    (GIB, '312MB', '624MB'),
])
def test_timescaledb_wal_sizes(wal_disk_bytes, min_wal, max_wal):
    conf = tsdb(8, 8, wal_disk_bytes=wal_disk_bytes)
    assert (conf['min_wal_size'], conf['max_wal_size']) == (min_wal, max_wal)


@pytest.mark.parametrize('pg_version, eio, toast', [
    (12, '200', None),               # effectiveIODefaultOldVersions up to 12, no lz4 TOAST before 14
    (13, '256', None),
    (14, '256', 'lz4'),
    (18, '256', 'lz4'),
])
def test_timescaledb_version_dependent_settings(pg_version, eio, toast):
    conf = tsdb(8, 8, pg_version=pg_version)
    assert conf['effective_io_concurrency'] == eio
    assert conf.get('default_toast_compression') == toast
    assert conf['jit'] == 'off'


def test_timescaledb_one_cpu_skips_every_parallel_setting():
    # parallel.go IsAvailable(): cpus > 1.  Nothing from the group, TimescaleDB or not.
    conf = tsdb(8, 1, timescaledb=True)
    for name in ('timescaledb.max_background_workers', 'max_worker_processes',
                 'max_parallel_workers_per_gather', 'max_parallel_workers'):
        assert name not in conf
    assert conf['work_mem'] == '32MB'  # 8 * 4 MB / round(0.5) = 1


def test_timescaledb_without_timescaledb():
    conf = tsdb(8, 8, timescaledb=False)
    assert not [name for name in conf if name.startswith('timescaledb.')]
    assert conf['max_worker_processes'] == '11'         # 3 + 8, no background workers
    assert conf['max_parallel_workers'] == '8'


def test_timescaledb_more_background_workers():
    conf = tsdb(8, 8, timescaledb_max_background_workers=32)
    assert conf['timescaledb.max_background_workers'] == '32'
    assert conf['max_worker_processes'] == '43'         # 3 + 32 + 8


def test_timescaledb_ignores_disk_type_and_profile():
    # timescaledb-tune has neither: random_page_cost 1.1 and effective_io_concurrency 256 always.
    ssd = tsdb(8, 8, disk_type='ssd', profile='mixed')
    assert tsdb(8, 8, disk_type='hdd', profile='mixed') == ssd
    assert tsdb(8, 8, disk_type='ssd', profile='oltp') == ssd
    assert tsdb(8, 8, disk_type='nvme', profile='dw') == ssd
    assert ssd['random_page_cost'] == '1.1'


def test_timescaledb_16gib_seed_002_example():
    # Seed 002's 16 GB example against timescaledb-tune: most figures agree...
    conf = tsdb(16, 4)
    assert conf['shared_buffers'] == '4GB'
    assert conf['effective_cache_size'] == '12GB'
    assert conf['wal_buffers'] == '16MB'
    assert conf['checkpoint_completion_target'] == '0.9'
    assert conf['random_page_cost'] == '1.1'
    # ...but not maintenance_work_mem: 16 * 128 MB = 2048 MB > 2047 MB cap.  The
    # seed's 1GB is PGTune's RAM/16 (see test_pgtune_16gib_seed_002_example).
    assert conf['maintenance_work_mem'] == '2047MB'
    # The seed's timescaledb.max_background_workers 8 is timescaledb-tune's old
    # default; today's is 16 and lower values are refused.
    assert conf['timescaledb.max_background_workers'] == '16'


def test_every_memory_value_is_valid_postgresql_syntax():
    for conf in (tsdb(2, 2), tsdb(1.5, 3), tsdb(64, 32), pgtune(2, 2, 'desktop'),
                 pgtune(64, 32, 'dw'), pgtune(16, 4, 'mixed')):
        for name in ('shared_buffers', 'effective_cache_size', 'maintenance_work_mem',
                     'work_mem', 'wal_buffers', 'min_wal_size', 'max_wal_size'):
            assert parse_memory(conf[name]) > 0


# ===========================================================================
# PGTune
# ===========================================================================

def test_pgtune_2gib_2cpus_mixed_ssd():
    # total = 2097152 kB
    assert pgtune(2, 2, 'mixed', disk_type='ssd', pg_version=17) == {
        'max_connections': '100',                    # mixed default
        'shared_buffers': '512MB',                   # floor(2097152/4) = 524288 kB
        'effective_cache_size': '1536MB',            # floor(2097152*3/4) = 1572864 kB
        'maintenance_work_mem': '128MB',             # floor(2097152/16) = 131072 kB
        'checkpoint_completion_target': '0.9',
        # floor(3 * 524288 / 100) = 15728 kB; 14336 < 15728 < 16384 -> rounded to 16 MB
        'wal_buffers': '16MB',
        'default_statistics_target': '100',
        'random_page_cost': '1.1',
        'effective_io_concurrency': '200',
        # cpus < 4: max_worker_processes default 8.
        # (2097152 - 524288) / ((100 + 8) * 3) = 1572864 / 324 = 4854.52; /2 (mixed) = 2427
        # -> below the 4 MB floor -> 4096 kB
        'work_mem': '4MB',
        'huge_pages': 'off',                         # 524288 kB < 2 GB
        'jit': 'off',                                # mixed, PG >= 12
        'wal_compression': 'lz4',                    # PG >= 15
        'min_wal_size': '1GB',
        'max_wal_size': '4GB',
    }


def test_pgtune_2gib_2cpus_mixed_with_timescaledb():
    conf = pgtune(2, 2, 'mixed', timescaledb=True)
    # PGTune sets no parallel settings below 4 CPUs; timescaledb-tune's rule adds 3 + 16 + 2.
    assert conf['timescaledb.max_background_workers'] == '16'
    assert conf['max_worker_processes'] == '21'
    assert 'max_parallel_workers' not in conf
    assert conf['work_mem'] == '4MB'                 # PGTune's value, unchanged


def test_pgtune_8gib_8cpus_oltp_ssd():
    conf = pgtune(8, 8, 'oltp', disk_type='ssd')
    # total = 8388608 kB
    assert conf['max_connections'] == '300'          # oltp default
    assert conf['shared_buffers'] == '2GB'           # 2097152 kB
    assert conf['effective_cache_size'] == '6GB'     # 6291456 kB
    assert conf['maintenance_work_mem'] == '512MB'   # 8388608 / 16 = 524288 kB
    assert conf['wal_buffers'] == '16MB'             # 3 % = 62914 kB, capped at 16384 kB
    # (8388608 - 2097152) / ((300 + 8) * 3) = 6291456 / 924 = 6808.93 -> 6808 (oltp: no division)
    assert conf['work_mem'] == '6808kB'
    assert conf['huge_pages'] == 'try'               # shared_buffers 2097152 kB >= 2 GB
    assert conf['jit'] == 'off'
    assert (conf['min_wal_size'], conf['max_wal_size']) == ('2GB', '8GB')
    assert conf['max_worker_processes'] == '8'
    assert conf['max_parallel_workers_per_gather'] == '4'      # ceil(8/2)
    assert conf['max_parallel_workers'] == '8'
    assert conf['max_parallel_maintenance_workers'] == '4'     # min(ceil(8/2), 4)
    assert conf['random_page_cost'] == '1.1'
    assert conf['effective_io_concurrency'] == '200'
    assert 'autovacuum_max_workers' not in conf      # fewer than 16 CPUs
    assert 'autovacuum_work_mem' not in conf         # maintenance_work_mem < 2 GB


def test_pgtune_8gib_8cpus_oltp_hdd_changes_only_disk_settings():
    ssd = pgtune(8, 8, 'oltp', disk_type='ssd')
    hdd = pgtune(8, 8, 'oltp', disk_type='hdd')
    assert hdd['random_page_cost'] == '4'
    assert hdd['effective_io_concurrency'] == '2'
    assert dict(hdd, random_page_cost='1.1', effective_io_concurrency='200') == ssd


@pytest.mark.parametrize('disk_type, rpc, eio', [
    ('ssd', '1.1', '200'), ('hdd', '4', '2'), ('san', '1.1', '300'), ('nvme', '1.1', '1000'),
])
def test_pgtune_disk_types(disk_type, rpc, eio):
    conf = pgtune(8, 8, 'web', disk_type=disk_type)
    assert (conf['random_page_cost'], conf['effective_io_concurrency']) == (rpc, eio)


def test_pgtune_64gib_32cpus_dw_ssd():
    conf = pgtune(64, 32, 'dw', disk_type='ssd')
    # total = 67108864 kB
    assert conf['max_connections'] == '40'           # dw default
    assert conf['shared_buffers'] == '16GB'          # 16777216 kB
    assert conf['effective_cache_size'] == '48GB'    # 50331648 kB
    # dw: 67108864 / 8 = 8388608 kB = 8 GB, equal to the 8 GB cap
    assert conf['maintenance_work_mem'] == '8GB'
    # (67108864 - 16777216) / ((40 + 32) * 3) = 50331648 / 216 = 233016.89; /2 (dw) = 116508.44
    assert conf['work_mem'] == '116508kB'
    assert conf['default_statistics_target'] == '500'
    assert conf['huge_pages'] == 'try'
    assert 'jit' not in conf                         # PGTune leaves JIT on for dw
    assert (conf['min_wal_size'], conf['max_wal_size']) == ('4GB', '16GB')
    assert conf['max_worker_processes'] == '32'
    assert conf['max_parallel_workers_per_gather'] == '16'     # ceil(32/2), no cap for dw
    assert conf['max_parallel_workers'] == '32'
    assert conf['max_parallel_maintenance_workers'] == '4'     # min(16, 4)
    assert conf['autovacuum_max_workers'] == '5'               # cpus >= 32
    assert conf['autovacuum_work_mem'] == '2GB'                # maintenance 8 GB >= 2 GB


def test_pgtune_64gib_32cpus_mixed_caps_workers_per_gather():
    conf = pgtune(64, 32, 'mixed')
    assert conf['max_parallel_workers_per_gather'] == '4'      # ceil(32/2) = 16, capped at 4
    assert conf['maintenance_work_mem'] == '4GB'               # 67108864 / 16 = 4194304 kB
    # (67108864 - 16777216) / ((100 + 32) * 3) = 50331648 / 396 = 127100.12; /2 = 63550.06
    assert conf['work_mem'] == '63550kB'
    assert conf['autovacuum_work_mem'] == '2GB'                # 4 GB >= 2 GB


def test_pgtune_8gib_2cpus_web():
    conf = pgtune(8, 2, 'web')
    # (8388608 - 2097152) / ((200 + 8) * 3) = 6291456 / 624 = 10082.46 -> 10082 (web: no division)
    assert conf['work_mem'] == '10082kB'
    assert conf['max_connections'] == '200'
    assert (conf['min_wal_size'], conf['max_wal_size']) == ('1GB', '4GB')
    assert 'max_worker_processes' not in conf


def test_pgtune_2gib_desktop():
    conf = pgtune(2, 2, 'desktop')
    assert conf['max_connections'] == '20'
    assert conf['shared_buffers'] == '128MB'         # 2097152 / 16 = 131072 kB
    assert conf['effective_cache_size'] == '512MB'   # 2097152 / 4 = 524288 kB
    assert conf['maintenance_work_mem'] == '128MB'   # 2097152 / 16
    assert conf['wal_buffers'] == '3932kB'           # floor(3 * 131072 / 100) = 3932 kB
    # (2097152 - 131072) / ((20 + 8) * 3) = 1966080 / 84 = 23405.71; /6 = 3900.95 -> 4 MB floor
    assert conf['work_mem'] == '4MB'
    assert (conf['min_wal_size'], conf['max_wal_size']) == ('100MB', '2GB')
    assert (conf['wal_level'], conf['max_wal_senders']) == ('minimal', '0')
    assert 'jit' not in conf


def test_pgtune_max_connections_given():
    # 16 GiB mixed, 4 CPUs, 200 connections:
    # (16777216 - 4194304) / ((200 + 4) * 3) = 12582912 / 612 = 20560.31; /2 = 10280.16 -> 10280
    conf = pgtune(16, 4, 'mixed', max_connections=200)
    assert conf['work_mem'] == '10280kB'
    assert conf['max_connections'] == '200'


def test_pgtune_parallel_settings_start_at_4_cpus():
    assert 'max_worker_processes' not in pgtune(8, 3, 'mixed')
    conf = pgtune(8, 4, 'mixed')
    assert conf['max_worker_processes'] == '4'
    assert conf['max_parallel_workers_per_gather'] == '2'
    assert conf['max_parallel_workers'] == '4'
    assert conf['max_parallel_maintenance_workers'] == '2'


@pytest.mark.parametrize('pg_version, wal_compression', [(12, 'on'), (14, 'on'), (15, 'lz4'), (17, 'lz4')])
def test_pgtune_wal_compression(pg_version, wal_compression):
    assert pgtune(8, 8, 'mixed', pg_version=pg_version)['wal_compression'] == wal_compression


def test_pgtune_postgresql_18_io_settings():
    big = pgtune(64, 32, 'mixed', pg_version=18)
    assert big['io_method'] == 'io_uring'
    assert big['io_workers'] == '8'                  # floor(32/4)
    small = pgtune(8, 8, 'mixed', pg_version=18)
    assert small['io_method'] == 'io_uring'
    assert 'io_workers' not in small                 # max(3, 8 // 4) = 3: the default, not set
    assert 'io_method' not in pgtune(8, 8, 'mixed', pg_version=17)


def test_pgtune_16gib_seed_002_example():
    # Seed 002's 16 GB example is PGTune's web/mixed output on SSD.
    conf = pgtune(16, 4, 'mixed', disk_type='ssd')
    assert conf['shared_buffers'] == '4GB'           # 16777216 / 4 = 4194304 kB
    assert conf['effective_cache_size'] == '12GB'    # 12582912 kB
    assert conf['maintenance_work_mem'] == '1GB'     # 16777216 / 16 = 1048576 kB
    assert conf['wal_buffers'] == '16MB'             # 3 % of 4 GB > 16 MB -> 16 MB
    assert conf['checkpoint_completion_target'] == '0.9'
    assert conf['random_page_cost'] == '1.1'
    assert conf['effective_io_concurrency'] == '200'
    assert conf['max_wal_size'] == '4GB'
    # (16777216 - 4194304) / ((100 + 4) * 3) = 12582912 / 312 = 40329.85; /2 = 20164.92.
    # The seed's 64MB is not PGTune's but timescaledb-tune's for 2 vCPUs and 100
    # connections: 16 * (400 MB / 100) / round(2/2) = 64 MB.
    assert conf['work_mem'] == '20164kB'
    assert tsdb(16, 2, max_connections=100)['work_mem'] == '64MB'


# ===========================================================================
# Argument validation
# ===========================================================================

GOOD = dict(memory_bytes=2 * GIB, cpus=2)


@pytest.mark.parametrize('changes, names', [
    (dict(profile='analytics'), ['profile', 'web, oltp, dw, desktop, mixed']),
    (dict(profile='analytics', method='pgtune'), ['profile']),
    (dict(disk_type='ssd2'), ['disk_type', 'ssd, hdd, san, nvme']),
    (dict(method='pgtune2'), ['method', 'timescaledb, pgtune']),
    (dict(memory_bytes=128 * MIB), ['memory_bytes', '256 MiB']),
    (dict(memory_bytes='2GB'), ['memory_bytes', 'integer']),
    (dict(memory_bytes=2.0 * GIB), ['memory_bytes', 'integer']),
    (dict(memory_bytes=True), ['memory_bytes']),
    (dict(memory_bytes=None), ['memory_bytes']),
    (dict(cpus=0), ['cpus', 'at least 1']),
    (dict(cpus=-2), ['cpus']),
    (dict(cpus='2'), ['cpus']),
    (dict(cpus=2.5), ['cpus']),
    (dict(max_connections=0), ['max_connections', 'at least 1']),
    (dict(max_connections='100'), ['max_connections']),
    # timescaledb-tune refuses max_connections below 25 (pkg/pgtune/tune.go)
    (dict(max_connections=20), ['max_connections', '25']),
    (dict(pg_version=11), ['pg_version', '12 to 18']),
    (dict(pg_version=19), ['pg_version', '12 to 18']),
    (dict(pg_version='17'), ['pg_version']),
    (dict(timescaledb='yes'), ['timescaledb', 'boolean']),
    (dict(wal_disk_bytes=-1), ['wal_disk_bytes']),
    (dict(timescaledb_max_background_workers=8), ['timescaledb_max_background_workers', '16']),
])
def test_bad_input_names_the_parameter(changes, names):
    kwargs = dict(GOOD, **changes)
    with pytest.raises(TuningError) as err:
        compute_tuning(**kwargs)
    for name in names:
        assert name in str(err.value)


def test_tuning_error_is_a_value_error():
    assert issubclass(TuningError, ValueError)


def test_pgtune_accepts_fewer_than_25_connections():
    assert pgtune(2, 2, 'desktop', max_connections=10)['max_connections'] == '10'


def test_smallest_memory_is_accepted():
    conf = compute_tuning(256 * MIB, 1)
    assert conf['shared_buffers'] == '64MB'
    # 0.25 * 7864 kB = 2013184 B = 1.919921875 MB -> 1966 kB
    assert conf['wal_buffers'] == '1966kB'
