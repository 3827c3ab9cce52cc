# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.quantops.platform`` importable for the unit tests.

The checkout is the collection; ``.build/collections`` holds a symlink
``ansible_collections/quantops/platform`` -> the repository root (see
ansible.cfg).  When the tests run from a real collection tree instead (for
example under ``ansible-test units``), the ``ansible_collections`` ancestor
of this file is used.  In a fresh clone without ``.build`` (it is
git-ignored) the same symlink is made in a temporary directory, so the
repository itself is never modified by the tests.
"""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]


def _collections_path():
    for parent in Path(__file__).absolute().parents:
        if parent.name == 'ansible_collections':
            return parent.parent
    build = _ROOT / '.build' / 'collections'
    link = build / 'ansible_collections' / 'quantops' / 'platform'
    if link.exists() and link.resolve() == _ROOT:
        return build
    tmp = Path(tempfile.mkdtemp(prefix='quantops-collections-'))
    atexit.register(shutil.rmtree, str(tmp), True)
    (tmp / 'ansible_collections' / 'quantops').mkdir(parents=True)
    os.symlink(str(_ROOT), str(tmp / 'ansible_collections' / 'quantops' / 'platform'))
    return tmp


_PATH = str(_collections_path())
if _PATH not in sys.path:
    sys.path.insert(0, _PATH)
