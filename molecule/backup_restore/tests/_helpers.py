"""What the backup_restore scenario's test files share: psql on a container, a metric read
from a node_exporter textfile, and ansible-playbook runs against the scenario's inventory.

Not a test file (pytest collects test_*.py only); the test files import it from their own directory.
"""
import os
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def psql(host, sql, db="quant_platform", port=5432):
    """Run one query as postgres; return its output, unaligned and stripped."""
    cmd = host.run("runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -p %s -d %s -c %s", str(port), db, sql)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def metric(text, name, **labels):
    """The value of the first sample of `name` with these labels in a textfile's content, else None."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all('%s="%s"' % kv in line for kv in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def ansible_playbook(path, *extra, timeout=900):
    """Run a playbook against the scenario's inventory; return the completed process."""
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    argv = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(path)] + list(extra)
    # ansible-core 2.19 prints a failed task's message on stderr: keep it in .stdout.
    return subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, check=False)


def playbook(name, *extra, timeout=900):
    """Run a playbook of playbooks/backup against the scenario's inventory."""
    return ansible_playbook(os.path.join(ROOT, "playbooks", "backup", name), *extra, timeout=timeout)


def assert_refused(run, *phrases):
    """A refused run: it failed, and its output names every phrase (the reason, what to do)."""
    assert run.returncode != 0, run.stdout[-3000:]
    missing = [p for p in phrases if p not in run.stdout]
    assert not missing, "%s not in the output:\n%s" % (missing, run.stdout[-3000:])


def unchanged_by(state):
    """Fixture body: take state() before the test and assert it is the same after."""
    before = state()
    yield
    assert state() == before
