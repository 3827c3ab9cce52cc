"""Render roles/prometheus/templates/slo.rules.yml.j2 the way the template module does.

Usage::

    python tests/promtool/render_slo.py [--slos FILE] [--out FILE]

``--slos``: a YAML file holding the list of SLOs (default:
``roles/prometheus/files/slo_defaults.yml``, the role's default
``prometheus_slos``); ``--out``: where to write the rule file (default:
standard output).

The environment matches the one ansible.builtin.template uses: Jinja2 with
``trim_blocks=True``, ``lstrip_blocks=False``, trailing newline kept,
``ansible_managed`` = "Ansible managed" (ansible-core's default). The
template uses Jinja2 built-in filters only, so nothing of Ansible is needed;
scripts/promtool-test.sh renders it with ``ansible localhost -m template``
as well and fails when the two outputs differ.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jinja2
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "roles" / "prometheus" / "templates" / "slo.rules.yml.j2"
DEFAULT_SLOS = ROOT / "roles" / "prometheus" / "files" / "slo_defaults.yml"
ANSIBLE_MANAGED = "Ansible managed"


def load_slos(path=DEFAULT_SLOS):
    """Return the SLO list of a YAML file (a list, or a mapping with prometheus_slos)."""
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if isinstance(data, dict):
        data = data.get("prometheus_slos")
    if not isinstance(data, list):
        raise ValueError("%s: expected a list of SLOs" % path)
    return data


def render(slos, template=TEMPLATE):
    """Render the SLO rule template for ``slos``; return the text."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(template).parent)),
        trim_blocks=True,
        lstrip_blocks=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    tmpl = env.get_template(Path(template).name)
    return tmpl.render(prometheus_slos=slos, ansible_managed=ANSIBLE_MANAGED)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--slos", default=str(DEFAULT_SLOS), help="YAML list of SLOs")
    parser.add_argument("--out", help="output file (default: stdout)")
    args = parser.parse_args(argv)
    text = render(load_slos(args.slos))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
