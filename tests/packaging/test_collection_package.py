"""The collection as a user installs it: the tarball, its declared dependencies, nothing else.

Builds the tarball with ``ansible-galaxy collection build``, installs it into an empty collections
path, and puts beside it only the collections ``galaxy.yml`` declares, taken from the ``ansible``
package's bundled copies (Ansible Galaxy is unreachable here).  ansible-core then runs with
collections scanning of sys.path off and a configuration file of its own, so neither the checkout's
ansible.cfg nor the bundled collections that are not declared can hide a missing dependency.
Nothing is mocked.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml
from ansible.galaxy.dependency_resolution.versioning import meets_requirements

ROOT = pathlib.Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
NAME = f"{GALAXY['namespace']}.{GALAXY['name']}"
BIN = pathlib.Path(sys.executable).parent
BUNDLED = pathlib.Path(__import__("ansible_collections").__path__[0])

# What must never be in the tarball: the test bed, the lab, benchmarks, tooling.
NOT_SHIPPED = [
    "molecule/", "tests/", "bench/", "scripts/", "runner/", "reports/", ".ci/", ".config/",
    ".ansible/", "inventories/", "playbooks/lab/", "Makefile", "ansible.cfg", "requirements-dev.txt",
    "requirements-dev.yml",
]
# What the controller needs, as ansible-builder reads it (meta/execution-environment.yml names the
# two files at the root), and the execution environment's definition.
SHIPPED = [
    "COPYING", "README.md", "meta/runtime.yml", "roles/postgresql/meta/argument_specs.yml",
    "plugins/modules/postgresql_health_info.py", "playbooks/site.yml",
    "meta/execution-environment.yml", "requirements.txt", "bindep.txt", "ee/execution-environment.yml",
]
# A task keyword or a module option is never namespace.collection.name: keys of that shape in task
# lists are actions (modules or action plugins).
FQCN_KEY = re.compile(r"^([a-z0-9_]+)\.([a-z0-9_]+)\.([a-z0-9_]+)$")
FQCN_FILTER = re.compile(r"\|[ ]*([a-z0-9_]+\.[a-z0-9_]+\.[a-z0-9_]+)")
FQCN_TEST = re.compile(r"\bis[ ]+(?:not[ ]+)?([a-z0-9_]+\.[a-z0-9_]+\.[a-z0-9_]+)")


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """Build, install, and return (installed collection dir, environment for ansible commands)."""
    base = tmp_path_factory.mktemp("package")
    build = base / "build"
    subprocess.run([BIN / "ansible-galaxy", "collection", "build", "--output-path", build, ROOT],
                   check=True, capture_output=True, cwd=base)
    tarball = sorted(build.glob("*.tar.gz"))[0]
    installed = base / "collections"
    subprocess.run([BIN / "ansible-galaxy", "collection", "install", "--no-deps", "--force", "-p", installed, tarball],
                   check=True, capture_output=True, cwd=base)
    deps = base / "deps" / "ansible_collections"
    for dep, constraint in (GALAXY.get("dependencies") or {}).items():
        namespace, name = dep.split(".")
        source = BUNDLED / namespace / name
        assert source.is_dir(), f"declared dependency {dep} is not in the ansible package's bundle"
        version = json.loads((source / "MANIFEST.json").read_text())["collection_info"]["version"]
        assert meets_requirements(version, constraint), f"{dep} {version} does not meet {constraint}"
        (deps / namespace).mkdir(parents=True, exist_ok=True)
        (deps / namespace / name).symlink_to(source)
    cfg = base / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(cfg), ANSIBLE_HOME=str(base / "home"),
               ANSIBLE_COLLECTIONS_PATH=f"{installed}:{deps.parent}",
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_NOCOLOR="1",
               PATH=f"{BIN}:{env.get('PATH', '')}")
    yield tarball, installed / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"], env, base
    shutil.rmtree(base, ignore_errors=True)


def run(env, cwd, *argv):
    return subprocess.run([str(a) for a in argv], env=env, cwd=cwd, capture_output=True, text=True, check=False)


def test_tarball_holds_the_collection_and_not_the_test_bed(package):
    tarball = package[0]
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    for path in NOT_SHIPPED:
        shipped = [n for n in names if n == path.rstrip("/") or n.startswith(path)]
        assert not shipped, f"{path} is in the tarball: {shipped[:5]}"
    for path in SHIPPED:
        assert path in names, f"{path} is missing from the tarball"


def test_every_module_and_filter_has_docs(package):
    coll, env, base = package[1:]
    modules = sorted(f"{NAME}.{p.stem}" for p in (coll / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
    assert modules
    result = run(env, base, BIN / "ansible-doc", "-t", "module", "--json", *modules)
    assert result.returncode == 0, result.stderr
    docs = json.loads(result.stdout)
    assert sorted(docs) == modules, result.stderr
    for name, doc in docs.items():
        assert doc["doc"].get("options"), f"{name} documents no options"
        assert doc.get("examples") and doc.get("return"), f"{name} lacks EXAMPLES or RETURN"
    filters = sorted(f"{NAME}.{p.stem}" for p in (coll / "plugins" / "filter").glob("*.yml"))
    result = run(env, base, BIN / "ansible-doc", "-t", "filter", "--json", *filters)
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(result.stdout)) == filters, result.stderr


def test_every_role_has_docs(package):
    coll, env, base = package[1:]
    roles = sorted(p.name for p in (coll / "roles").iterdir() if p.is_dir())
    for role in roles:
        result = run(env, base, BIN / "ansible-doc", "-t", "role", "--json", f"{NAME}.{role}")
        assert result.returncode == 0, f"{role}: {result.stderr}"
        entry_points = json.loads(result.stdout)[f"{NAME}.{role}"]["entry_points"]
        assert "main" in entry_points, f"{role} has no documented main entry point"
        assert entry_points["main"].get("short_description"), role


def _without_comments(text):
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def _task_fqcns(node, found):
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and FQCN_KEY.match(key) and not key.startswith(NAME + "."):
                found.add(key)
            _task_fqcns(value, found)
    elif isinstance(node, list):
        for item in node:
            _task_fqcns(item, found)


def test_every_plugin_the_shipped_yaml_names_resolves_with_the_declared_dependencies(package):
    """A role that uses a collection galaxy.yml does not declare fails to load for a user: catch it here."""
    coll, env, base = package[1:]
    modules, filters, tests = set(), set(), set()
    for path in list((coll / "roles").rglob("*.yml")) + list((coll / "playbooks").rglob("*.yml")):
        text = path.read_text()
        if "/meta/" not in str(path) and "/defaults/" not in str(path):
            _task_fqcns(yaml.safe_load(text), modules)
        code = _without_comments(text)
        filters.update(FQCN_FILTER.findall(code))
        tests.update(FQCN_TEST.findall(code))
    for path in (coll / "roles").rglob("*.j2"):
        code = _without_comments(path.read_text())
        filters.update(FQCN_FILTER.findall(code))
        tests.update(FQCN_TEST.findall(code))
    ours = {n for n in filters | tests if n.startswith(NAME + ".")}
    assert modules, "no FQCN action found: the scan is broken"
    for kind, names in (("module", modules), ("filter", filters - ours), ("test", tests - ours)):
        if not names:
            continue
        result = run(env, base, BIN / "ansible-doc", "-t", kind, "--json", *sorted(names))
        missing = sorted(names - set(json.loads(result.stdout or "{}")))
        assert not missing, (f"{kind}s used by shipped content but not provided by {NAME} or its declared "
                             f"dependencies {sorted(GALAXY.get('dependencies') or {})}: {missing}")


def test_every_shipped_playbook_passes_syntax_check_by_fqcn(package):
    coll, env, base = package[1:]
    playbooks = []
    for path in sorted((coll / "playbooks").rglob("*.yml")):
        relative = path.relative_to(coll / "playbooks")
        if "tasks" in relative.parts:
            continue  # task files included by playbooks, not playbooks
        playbooks.append(".".join((NAME, *relative.with_suffix("").parts)))
    assert f"{NAME}.site" in playbooks
    for playbook in playbooks:
        result = run(env, base, BIN / "ansible-playbook", "-i", "localhost,", "--syntax-check", playbook)
        assert result.returncode == 0, f"{playbook}: {result.stdout[-2000:]} {result.stderr[-2000:]}"
