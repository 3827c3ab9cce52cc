"""Ansible's doc markup ends C(...), I(...), O(...), V(...) and E(...) at the first ')'.

A '(' inside one (C(pg_backend_pid()), C(VACUUM (ANALYZE))) renders cut in ansible-doc
(``pg_backend_pid(')``); ansible-doc 2.19's text output has no escape for it.
"""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MARKUP = re.compile(r"\b[CIOVE]\(")
FILES = sorted((ROOT / "plugins").rglob("*.py")) + sorted((ROOT / "plugins").rglob("*.yml")) \
    + sorted((ROOT / "roles").glob("*/meta/argument_specs.yml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_parenthesis_inside_doc_markup(path):
    bad = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for match in MARKUP.finditer(line):
            end = line.find(")", match.end())
            if end > 0 and "(" in line[match.end():end]:
                bad.append(f"{number}: {line.strip()[:120]}")
    assert not bad, "markup that ansible-doc renders cut:\n" + "\n".join(bad)
