# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Import a Python file that is not a package module (a script a role installs, a repository script)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_file(name, relative_path):
    """Load ROOT/relative_path as a module called name, whatever its file name (e.g. quantops-backup-metrics.py)."""
    loader = importlib.machinery.SourceFileLoader(name, str(ROOT / relative_path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def load_backup_job(name, relative_path):
    """Load a backup job (pg_dump_backup's, redis_backup's) with quantops_backup importable, as on the host,
    where role backup_metrics installs roles/backup_metrics/files/quantops_backup.py beside the jobs."""
    shared = str(ROOT / "roles" / "backup_metrics" / "files")
    if shared not in sys.path:
        sys.path.insert(0, shared)
    return load_file(name, relative_path)
