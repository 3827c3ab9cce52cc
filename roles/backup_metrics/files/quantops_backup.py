# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the backup jobs share: the SHA-256 of a file, its sha256sum line, the run lock.

Role backup_metrics (a dependency of pg_dump_backup and redis_backup) installs
this module as /usr/local/sbin/quantops_backup.py, beside the jobs
quantops-pg-dump-backup and quantops-redis-backup: Python puts a script's own
directory first on sys.path, so both import it without any path setting.
Python 3 standard library only.
"""

import fcntl
import hashlib
import re

CHUNK = 1024 * 1024
SHA256_LINE_RE = re.compile(r"^([0-9a-f]{64})\s+\*?(\S+)$")


def file_sha256(path):
    """The SHA-256 of the file at path, hex, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_line(digest, name):
    """The line sha256sum writes (and `sha256sum -c` reads) for a file name."""
    return "%s  %s\n" % (digest, name)


def parse_sha256_line(text):
    """The digest of a sha256sum line (binary mark allowed), or None when text is not one."""
    match = SHA256_LINE_RE.match(text.strip())
    return match.group(1) if match else None


def exclusive_lock(path):
    """Take the run lock: path opened and flock'ed exclusively without waiting.

    Returns the open file, which holds the lock as long as it stays open (keep it for the
    whole run), or None when another run holds the lock.
    """
    handle = open(path, "a", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle
