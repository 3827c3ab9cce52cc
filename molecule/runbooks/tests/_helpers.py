"""What the runbooks scenario's test files share: psql on the database container and the
records of the runbook runs the side-effect playbooks kept (tasks/run_runbook.yml).

Not a test file (pytest collects test_*.py only); the test files import it from their own directory.
"""
import json
import os
import pathlib

EPHEMERAL = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
RUNS = EPHEMERAL / "runbook-runs"


def psql(host, sql):
    """Run one query as postgres in quant_platform; return its output, unaligned and stripped."""
    cmd = host.run("runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d quant_platform -c %s", sql)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def run_record(name, producer):
    """The kept record of runbook run `name`, which the side-effect playbook `producer` made."""
    path = RUNS / ("%s.json" % name)
    assert path.is_file(), "%s should have run %s (%s missing)" % (producer, name, path)
    return json.loads(path.read_text())
