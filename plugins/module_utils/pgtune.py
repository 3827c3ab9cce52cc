# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""PostgreSQL / TimescaleDB tuning computed from memory, vCPUs and disk type.

Two sets of formulas, each a line-by-line port of its upstream project so that
the numbers can be checked against the real tools:

``method='timescaledb'``
    timescale/timescaledb-tune, pkg/pgtune/{memory,parallel,wal,misc}.go and
    internal/parse/parse.go (BytesToPGFormat).  Go's math.Round rounds halves
    away from zero, uint64(x) truncates; both are reproduced below.

``method='pgtune'``
    le0pard/pgtune, src/features/configuration/configurationSlice.js (the
    selectors) and src/common/components/configurationView/index.jsx
    (formatValue: kB / MB / GB, the largest unit that divides exactly).
    Version read: commit 421728c2 (NVMe, 8GB maintenance cap, 4MB work_mem
    floor, huge_pages from shared_buffers, jit, wal_compression, autovacuum,
    io_method/io_workers for PostgreSQL 18).  Linux is assumed (osType linux).

Floating point: Python floats are IEEE 754 doubles like Go's float64 and
JavaScript numbers, and every division is done in the same order as upstream,
so results agree to the byte.

Pure Python, no imports outside the standard library: used by the
quantops.platform.pg_tune filter on the controller and by unit tests.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re

KB = 1024
MB = 1024 * KB
GB = 1024 * MB
TB = 1024 * GB

METHODS = ('timescaledb', 'pgtune')
PROFILES = ('web', 'oltp', 'dw', 'desktop', 'mixed')
DISK_TYPES = ('ssd', 'hdd', 'san', 'nvme')

# timescaledb-tune accepts PostgreSQL 10-18 (pkg/tstune/utils.go ValidPGVersions,
# AGENTS.md) and PGTune 10-18 (constants.js DB_VERSIONS); this collection only
# deploys supported majors.
MIN_PG_VERSION = 12
MAX_PG_VERSION = 18

# PGTune warns "this tool not being optimal for low memory systems" below
# 256 MB (configurationSlice.js selectWarningInfoMessages); we refuse instead.
MIN_MEMORY_BYTES = 256 * MB


# --- timescaledb-tune constants (pkg/pgtune/*.go) ---
# misc.go
TSTUNE_MIN_MAX_CONNECTIONS = 25
TSTUNE_MAX_BG_WORKERS_DEFAULT = 16       # MaxBackgroundWorkersDefault
# parallel.go: "at least checkpointer, WALwriter, vacuum"
TSTUNE_MIN_BUILTIN_PROCESSES = 3
# memory.go
TSTUNE_MAINTENANCE_WORK_MEM_LIMIT = 2047 * MB   # "2GB on Unix, but 2047MB on Windows"
TSTUNE_WORK_MEM_MIN = 64 * KB
# Per GB of RAM, spread over max_connections.  The newest memory_test.go
# (defaultMemoryToBaseVals: 10GB, 1 CPU, 20 conns -> work_mem 200MB; 12GB ->
# 240MB; 32GB -> 640MB) fixes it at 20 x baseConns = 400 MB, as REFERENCES.md
# says.  Older stored memory.go versions (commit fac23110) still have
# 6.4 x baseConns = 128 MB: those give a third of today's work_mem.
TSTUNE_WORK_MEM_PER_GB = 400.0
# wal.go
TSTUNE_WAL_BUFFERS_THRESHOLD = 2 * GB
TSTUNE_WAL_BUFFERS_DEFAULT = 16 * MB
TSTUNE_DEFAULT_MAX_WAL_BYTES = 1 * GB
TSTUNE_WAL_MAX_DISK_PCT = 60


class TuningError(ValueError):
    """A tuning input is out of range; the message names it and the fix."""


# ---------------------------------------------------------------------------
# Value formatting and parsing
# ---------------------------------------------------------------------------

def _go_round(value):
    """Go's math.Round for value >= 0: halves round away from zero.

    Python's round() rounds halves to even (round(0.5) == 0, round(2.5) == 2)
    while timescaledb-tune's math.Round(1/2.0) is 1 and math.Round(5/2.0) is 3.
    """
    return int(math.floor(value + 0.5))


def format_memory(kb):
    """PGTune's formatValue (configurationView/index.jsx): kB -> 'NGB'/'NMB'/'NkB'.

    The largest unit is used only when it loses nothing: 1048576 -> '1GB',
    1572864 -> '1536MB', 4854 -> '4854kB'.
    """
    kb = int(kb)
    if kb % (GB // KB) == 0:
        return '%dGB' % (kb // (GB // KB))
    if kb % (MB // KB) == 0:
        return '%dMB' % (kb // (MB // KB))
    return '%dkB' % kb


def bytes_to_pg_format(num_bytes):
    """timescaledb-tune's parse.BytesToPGFormat (internal/parse/parse.go).

    Picks the largest unit not above the value; if the value is not a whole
    number of that unit (fraction > 0.001) it steps down ONE unit and truncates:
    1.5 GiB -> '1536MB', 33.6 MiB -> '34406kB'.  Below 1 kB it answers '1kB';
    in kB it rounds (half away from zero).
    """
    num_bytes = int(num_bytes)
    if num_bytes <= 0:
        raise TuningError('bytes_to_pg_format needs at least 1 byte, got %d' % num_bytes)
    units = ''
    divisor = 1.0
    for size, name in ((TB, 'TB'), (GB, 'GB'), (MB, 'MB'), (KB, 'kB')):
        if num_bytes >= size:
            divisor = float(size)
            units = name
            break
    value = num_bytes / divisor
    if units == '':
        value, units = 1.0, 'kB'
    elif units == 'kB':
        value = float(_go_round(value))
    elif value - float(int(value)) > 0.001:
        value = value * 1024
        units = {'TB': 'GB', 'GB': 'MB', 'MB': 'kB'}[units]
    return '%d%s' % (int(value), units)


# PostgreSQL memory units (docs: "Parameter Names and Values"); case-sensitive.
MEMORY_UNITS = {'B': 1, 'kB': KB, '8kB': 8 * KB, 'MB': MB, 'GB': GB, 'TB': TB}
_MEMORY_RE = re.compile(r"^\s*'?\s*(\d+)\s*(B|kB|MB|GB|TB)?\s*'?\s*$")


def parse_memory(value, default_unit='B'):
    """Parse a PostgreSQL memory value ('4GB', '64MB', '8kB', '128') into bytes.

    A number without a unit is taken in ``default_unit``: bytes by default, as
    timescaledb-tune's parse.PGFormatToBytes does; pass the GUC's own unit from
    pg_settings.unit ('8kB' for shared_buffers, 'kB' for work_mem) to read a
    bare number the way PostgreSQL would.  Units are case-sensitive, as in
    PostgreSQL ('4gb' is rejected by the server too).
    """
    if default_unit not in MEMORY_UNITS:
        raise TuningError(
            "default_unit=%r is not a PostgreSQL memory unit: use one of %s"
            % (default_unit, ', '.join(sorted(MEMORY_UNITS, key=MEMORY_UNITS.get))))
    if isinstance(value, bool):
        raise TuningError('memory value %r is a boolean, not a size such as 4GB' % (value,))
    if isinstance(value, int):
        if value < 0:
            raise TuningError('memory value %d is negative; a size is 0 or more' % value)
        return value * MEMORY_UNITS[default_unit]
    if not isinstance(value, str):
        raise TuningError('memory value %r is a %s, expected a string such as 4GB'
                          % (value, type(value).__name__))
    match = _MEMORY_RE.match(value)
    if not match:
        raise TuningError(
            "memory value %r is not in PostgreSQL's format: a whole number with an optional "
            "unit B, kB, MB, GB or TB (case-sensitive), e.g. 4GB, 64MB, 8kB, 128" % (value,))
    number, unit = match.group(1), match.group(2)
    return int(number) * MEMORY_UNITS[unit or default_unit]


# ---------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------

def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_choice(name, value, choices):
    if value not in choices:
        raise TuningError('%s=%r is not known: set %s to one of %s'
                          % (name, value, name, ', '.join(choices)))


def _validate(memory_bytes, cpus, disk_type, max_connections, profile, method, pg_version,
              timescaledb, wal_disk_bytes, timescaledb_max_background_workers):
    _check_choice('method', method, METHODS)
    _check_choice('profile', profile, PROFILES)
    _check_choice('disk_type', disk_type, DISK_TYPES)
    if not _is_int(memory_bytes):
        raise TuningError('memory_bytes=%r is not an integer number of bytes: pass e.g. '
                          '2147483648 for 2 GiB (in a template: "{{ value | int }}")' % (memory_bytes,))
    if memory_bytes < MIN_MEMORY_BYTES:
        raise TuningError('memory_bytes=%d is below 256 MiB (268435456): the formulas are not '
                          'meant for such small hosts; give PostgreSQL at least 256 MiB'
                          % memory_bytes)
    if not _is_int(cpus) or cpus < 1:
        raise TuningError('cpus=%r must be an integer of at least 1 (the vCPUs PostgreSQL may use)'
                          % (cpus,))
    if max_connections is not None:
        if not _is_int(max_connections) or max_connections < 1:
            raise TuningError('max_connections=%r must be an integer of at least 1, or left '
                              'unset (None) for the default of the method' % (max_connections,))
        if method == 'timescaledb' and max_connections < TSTUNE_MIN_MAX_CONNECTIONS:
            # pkg/pgtune/tune.go NewSystemConfig: "maxConns must be 0 OR >= 25"
            # (misc.go: Patroni replaces anything below 25 with 100).
            raise TuningError('max_connections=%d is below 25, which timescaledb-tune refuses '
                              '(pkg/pgtune/tune.go): set max_connections to 25 or more, leave it '
                              'unset, or use method=pgtune' % max_connections)
    if not _is_int(pg_version) or not MIN_PG_VERSION <= pg_version <= MAX_PG_VERSION:
        raise TuningError('pg_version=%r is not supported: set pg_version to a PostgreSQL major '
                          'version from %d to %d' % (pg_version, MIN_PG_VERSION, MAX_PG_VERSION))
    if not isinstance(timescaledb, bool):
        raise TuningError('timescaledb=%r must be a boolean (true when TimescaleDB is preloaded)'
                          % (timescaledb,))
    if wal_disk_bytes is not None and (not _is_int(wal_disk_bytes) or wal_disk_bytes < 0):
        raise TuningError('wal_disk_bytes=%r must be an integer number of bytes (0 or unset: '
                          'size unknown, max_wal_size 1GB)' % (wal_disk_bytes,))
    if timescaledb_max_background_workers is not None and (
            not _is_int(timescaledb_max_background_workers)
            or timescaledb_max_background_workers < TSTUNE_MAX_BG_WORKERS_DEFAULT):
        # pkg/pgtune/tune.go NewSystemConfig: "maxBGWorkers must be >= 16".
        raise TuningError('timescaledb_max_background_workers=%r must be an integer of at least '
                          '16, the minimum timescaledb-tune accepts (pkg/pgtune/tune.go)'
                          % (timescaledb_max_background_workers,))


# ---------------------------------------------------------------------------
# timescaledb-tune
# ---------------------------------------------------------------------------

def tstune_default_max_connections(memory_bytes):
    """misc.go getMaxConns: a step function of memory."""
    if memory_bytes <= 2 * GB:
        return TSTUNE_MIN_MAX_CONNECTIONS
    if memory_bytes <= 4 * GB:
        return 50
    if memory_bytes <= 6 * GB:
        return 75
    return 100


def tstune_max_wal_bytes(wal_disk_bytes):
    """wal.go calcMaxWALBytes: 60 % of the WAL disk, rounded UP to 16 MB."""
    if not wal_disk_bytes:
        return TSTUNE_DEFAULT_MAX_WAL_BYTES
    max_bytes = (wal_disk_bytes * TSTUNE_WAL_MAX_DISK_PCT) // 100
    segment = 16 * MB
    if max_bytes % segment != 0:
        max_bytes = (max_bytes // segment + 1) * segment
    return max_bytes


def tstune_max_locks(memory_bytes):
    """misc.go maxLocksValues: 128 / 256 / 512 / 1024 for < 8 / < 16 / < 32 / >= 32 GB."""
    values = (128, 256, 512, 1024)
    for i in range(len(values) - 1, 0, -1):
        if memory_bytes >= (2 ** (2 + i)) * GB:
            return values[i]
    return values[0]


def _timescaledb_tune(memory_bytes, cpus, conns, pg_version, timescaledb, bg_workers,
                      wal_disk_bytes):
    conf = {}

    # --- memory.go (MemoryRecommender, Linux) --------------------------------
    conf['shared_buffers'] = bytes_to_pg_format(memory_bytes // 4)
    conf['effective_cache_size'] = bytes_to_pg_format((memory_bytes * 3) // 4)
    maintenance = (float(memory_bytes) / GB) * (128.0 * MB)
    if maintenance > TSTUNE_MAINTENANCE_WORK_MEM_LIMIT:
        maintenance = float(TSTUNE_MAINTENANCE_WORK_MEM_LIMIT)
    conf['maintenance_work_mem'] = bytes_to_pg_format(int(maintenance))
    cpu_factor = _go_round(cpus / 2.0)
    gigs = float(memory_bytes) / GB
    work_mem = int(gigs * (TSTUNE_WORK_MEM_PER_GB * MB / conns) / cpu_factor)
    if work_mem < TSTUNE_WORK_MEM_MIN:
        work_mem = TSTUNE_WORK_MEM_MIN
    conf['work_mem'] = bytes_to_pg_format(work_mem)

    # --- parallel.go: the whole group is skipped unless cpus > 1 (IsAvailable)
    if cpus > 1:
        workers = bg_workers if timescaledb else 0
        if timescaledb:
            conf['timescaledb.max_background_workers'] = str(bg_workers)
        conf['max_worker_processes'] = str(TSTUNE_MIN_BUILTIN_PROCESSES + workers + cpus)
        conf['max_parallel_workers_per_gather'] = str(_go_round(cpus / 2.0))
        conf['max_parallel_workers'] = str(cpus)

    # --- wal.go (default profile: no checkpoint_timeout, no wal_compression) -
    if memory_bytes < TSTUNE_WAL_BUFFERS_THRESHOLD:
        wal_buffers = (float(memory_bytes) / GB) * (7864.0 * KB)
        conf['wal_buffers'] = bytes_to_pg_format(int(wal_buffers))
    else:
        conf['wal_buffers'] = bytes_to_pg_format(TSTUNE_WAL_BUFFERS_DEFAULT)
    max_wal = tstune_max_wal_bytes(wal_disk_bytes)
    conf['min_wal_size'] = bytes_to_pg_format(max_wal // 2)
    conf['max_wal_size'] = bytes_to_pg_format(max_wal)

    # --- misc.go ---------------------------------------------------------------
    conf['default_statistics_target'] = '100'
    conf['random_page_cost'] = '1.1'          # no disk type in timescaledb-tune
    conf['checkpoint_completion_target'] = '0.9'
    conf['max_connections'] = str(conns)
    conf['max_locks_per_transaction'] = str(tstune_max_locks(memory_bytes))
    conf['autovacuum_max_workers'] = '10'
    conf['autovacuum_naptime'] = '10'
    # getEffectiveIOConcurrency: 200 up to PG 12, 256 from PG 13 (the new
    # meaning of the setting; "200 is translated to 1176, excessively high").
    conf['effective_io_concurrency'] = '200' if pg_version <= 12 else '256'
    # misc_test.go TestJIT / TestDefaultToastCompression.
    if pg_version >= 12:
        conf['jit'] = 'off'
    if pg_version >= 14:
        conf['default_toast_compression'] = 'lz4'
    return conf


# ---------------------------------------------------------------------------
# PGTune
# ---------------------------------------------------------------------------

# selectMaxConnections
PGTUNE_DEFAULT_MAX_CONNECTIONS = {'web': 200, 'oltp': 300, 'dw': 40, 'desktop': 20, 'mixed': 100}
# selectCheckpointSegments, in kB
PGTUNE_WAL_SIZES_KB = {
    'web': (1024 * 1024, 4096 * 1024),
    'oltp': (2048 * 1024, 8192 * 1024),
    'dw': (4096 * 1024, 16384 * 1024),
    'desktop': (100 * 1024, 2048 * 1024),
    'mixed': (1024 * 1024, 4096 * 1024),
}
PGTUNE_RANDOM_PAGE_COST = {'hdd': '4', 'ssd': '1.1', 'san': '1.1', 'nvme': '1.1'}
PGTUNE_EFFECTIVE_IO_CONCURRENCY = {'hdd': '2', 'ssd': '200', 'san': '300', 'nvme': '1000'}
# DEFAULT_DB_SETTINGS.default.max_worker_processes: PostgreSQL's default, used
# by selectWorkMem when fewer than 4 CPUs leave the parallel settings unset.
PGTUNE_DEFAULT_MAX_WORKER_PROCESSES = 8


def pgtune_parallel_settings(cpus, profile, pg_version):
    """selectParallelSettings: nothing at all below 4 CPUs."""
    if cpus < 4:
        return {}
    per_gather = int(math.ceil(cpus / 2.0))
    if profile != 'dw' and per_gather > 4:
        per_gather = 4
    settings = {'max_worker_processes': cpus, 'max_parallel_workers_per_gather': per_gather}
    if pg_version >= 10:
        settings['max_parallel_workers'] = cpus
    if pg_version >= 11:
        settings['max_parallel_maintenance_workers'] = min(int(math.ceil(cpus / 2.0)), 4)
    return settings


def _pgtune(memory_bytes, cpus, disk_type, conns, profile, pg_version):
    total_kb = memory_bytes / 1024.0                       # selectTotalMemoryInKb

    if profile == 'desktop':
        shared_buffers = int(math.floor(total_kb / 16))
        effective_cache = int(math.floor(total_kb / 4))
    else:
        shared_buffers = int(math.floor(total_kb / 4))
        effective_cache = int(math.floor((total_kb * 3) / 4))

    maintenance = int(math.floor(total_kb / 8)) if profile == 'dw' else int(math.floor(total_kb / 16))
    maintenance_limit = 8 * GB // KB                       # "Default cap is 8GB" (Linux)
    if maintenance >= maintenance_limit:
        maintenance = maintenance_limit

    wal_buffers = int(math.floor((3 * shared_buffers) / 100.0))
    max_wal_buffer = 16 * MB // KB
    if wal_buffers > max_wal_buffer:
        wal_buffers = max_wal_buffer
    if 14 * MB // KB < wal_buffers < max_wal_buffer:       # "nice ... even 16MB if near"
        wal_buffers = max_wal_buffer
    if wal_buffers < 32:
        wal_buffers = 32

    parallel = pgtune_parallel_settings(cpus, profile, pg_version)
    workers_for_work_mem = parallel.get('max_worker_processes', PGTUNE_DEFAULT_MAX_WORKER_PROCESSES)
    work_mem_value = (total_kb - shared_buffers) / ((conns + workers_for_work_mem) * 3)
    if profile in ('dw', 'mixed'):
        work_mem = int(math.floor(work_mem_value / 2))
    elif profile == 'desktop':
        work_mem = int(math.floor(work_mem_value / 6))
    else:
        work_mem = int(math.floor(work_mem_value))
    if work_mem < 4 * MB // KB:                            # "Modern floor limit: 4 MB"
        work_mem = 4 * MB // KB

    conf = {}
    # Order of configurationView/index.jsx postgresqlConfig().
    conf['max_connections'] = str(conns)
    conf['shared_buffers'] = format_memory(shared_buffers)
    conf['effective_cache_size'] = format_memory(effective_cache)
    conf['maintenance_work_mem'] = format_memory(maintenance)
    conf['checkpoint_completion_target'] = '0.9'
    conf['wal_buffers'] = format_memory(wal_buffers)
    conf['default_statistics_target'] = '500' if profile == 'dw' else '100'
    conf['random_page_cost'] = PGTUNE_RANDOM_PAGE_COST[disk_type]
    conf['effective_io_concurrency'] = PGTUNE_EFFECTIVE_IO_CONCURRENCY[disk_type]
    conf['work_mem'] = format_memory(work_mem)
    # selectHugePages: 'try' once shared_buffers reaches 2GB.
    conf['huge_pages'] = 'try' if shared_buffers >= 2 * GB // KB else 'off'
    if pg_version >= 12 and profile in ('web', 'oltp', 'mixed'):
        conf['jit'] = 'off'
    conf['wal_compression'] = 'lz4' if pg_version >= 15 else 'on'
    if cpus >= 32:
        conf['autovacuum_max_workers'] = '5'
    elif cpus >= 16:
        conf['autovacuum_max_workers'] = '4'
    if maintenance >= 2 * GB // KB:                        # selectAutovacuumWorkMem
        conf['autovacuum_work_mem'] = format_memory(2 * GB // KB)
    if pg_version >= 18:
        conf['io_method'] = 'io_uring'                     # Linux
        io_workers = min(32, max(3, cpus // 4))
        if io_workers > 3:
            conf['io_workers'] = str(io_workers)
    min_wal, max_wal = PGTUNE_WAL_SIZES_KB[profile]
    conf['min_wal_size'] = format_memory(min_wal)
    conf['max_wal_size'] = format_memory(max_wal)
    for name in ('max_worker_processes', 'max_parallel_workers_per_gather',
                 'max_parallel_workers', 'max_parallel_maintenance_workers'):
        if name in parallel:
            conf[name] = str(parallel[name])
    if profile == 'desktop':                               # selectWalLevel
        conf['wal_level'] = 'minimal'
        conf['max_wal_senders'] = '0'
    return conf


def _add_timescaledb_to_pgtune(conf, cpus, bg_workers):
    """Room for TimescaleDB's background workers on top of PGTune.

    PGTune knows nothing of TimescaleDB.  We apply timescaledb-tune's own rule
    (pkg/pgtune/parallel.go): only when cpus > 1, set
    timescaledb.max_background_workers and max_worker_processes = 3 + workers
    + cpus.  PGTune's work_mem is left exactly as PGTune computes it (its
    denominator uses PGTune's max_worker_processes, or 8 below 4 CPUs).
    """
    if cpus > 1:
        conf['timescaledb.max_background_workers'] = str(bg_workers)
        conf['max_worker_processes'] = str(TSTUNE_MIN_BUILTIN_PROCESSES + bg_workers + cpus)
    return conf


# ---------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------

def compute_tuning(memory_bytes, cpus, disk_type='ssd', max_connections=None, profile='mixed',
                   method='timescaledb', pg_version=17, timescaledb=True, wal_disk_bytes=None,
                   timescaledb_max_background_workers=None):
    """Return {GUC name: value as postgresql.conf accepts it} for a host.

    memory_bytes: memory PostgreSQL may use (the smaller of RAM and the cgroup
        limit), integer bytes, at least 256 MiB.
    cpus: vCPUs, integer >= 1.
    disk_type: ssd, hdd, san or nvme.  timescaledb-tune has no disk type: it
        is validated but does not change method=timescaledb results.
    max_connections: None for the method's default (timescaledb-tune: 25/50/
        75/100 by memory; PGTune: 200/300/40/20/100 by profile).  Returned too.
    profile: web, oltp, dw, desktop or mixed (PGTune's DB types); validated
        but unused by method=timescaledb.
    method: timescaledb (timescaledb-tune) or pgtune (PGTune).
    pg_version: PostgreSQL major version, 12 to 18.
    timescaledb: when true, timescaledb.max_background_workers is set and
        max_worker_processes leaves room for it (only when cpus > 1, as
        timescaledb-tune does); when false no timescaledb.* key is returned.
    wal_disk_bytes: size of the disk holding pg_wal, method=timescaledb only
        (max_wal_size = 60 % of it, rounded up to 16 MB); None or 0: unknown.
    timescaledb_max_background_workers: default 16, at least 16.

    Raises TuningError (a ValueError) naming the parameter to fix.
    """
    _validate(memory_bytes, cpus, disk_type, max_connections, profile, method, pg_version,
              timescaledb, wal_disk_bytes, timescaledb_max_background_workers)
    bg_workers = timescaledb_max_background_workers or TSTUNE_MAX_BG_WORKERS_DEFAULT

    if method == 'timescaledb':
        conns = max_connections or tstune_default_max_connections(memory_bytes)
        return _timescaledb_tune(memory_bytes, cpus, conns, pg_version, timescaledb, bg_workers,
                                 wal_disk_bytes)

    conns = max_connections or PGTUNE_DEFAULT_MAX_CONNECTIONS[profile]
    conf = _pgtune(memory_bytes, cpus, disk_type, conns, profile, pg_version)
    if timescaledb:
        _add_timescaledb_to_pgtune(conf, cpus, bg_workers)
    return conf
