"""Role interfaces: READMEs generated from argument_specs, and argument_specs in sync with defaults."""
import pathlib
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "meta").is_dir())


def test_every_role_readme_is_what_scripts_role_docs_writes():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "role_docs.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_role_has_argument_specs_and_a_readme(role):
    assert (role / "meta" / "argument_specs.yml").is_file()
    assert (role / "README.md").is_file()


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_argument_specs_name_every_default_and_nothing_else(role):
    """A variable in defaults/main.yml that the spec does not describe is never validated, a spec
    default that differs from defaults/ misleads (templated defaults are documented by their
    resolved value), and one the spec describes without a default in defaults/ is unset."""
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options = (specs.get("main") or {}).get("options") or {}
    every_entry_point = set().union(*[((s or {}).get("options") or {}) for s in specs.values()])
    defaults_file = role / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) or {} if defaults_file.exists() else {}
    undocumented = sorted(set(defaults) - every_entry_point)
    assert not undocumented, f"defaults without an argument spec entry: {undocumented}"
    every_option = {}
    for spec in specs.values():
        every_option.update((spec or {}).get("options") or {})
    differ = sorted(n for n, v in defaults.items() if "default" in (every_option.get(n) or {})
                    and not (isinstance(v, str) and "{{" in v) and every_option[n]["default"] != v)
    assert not differ, f"argument spec default differs from defaults/main.yml: {differ}"
    unset = sorted(n for n, s in options.items() if n not in defaults and not (s or {}).get("required")
                   and "default" in (s or {}))
    assert not unset, f"spec gives a default that defaults/main.yml does not set: {unset}"


SECRET_WORDS = ("password", "passphrase", "secret", "routing_key", "api_key", "token")
NOT_SECRETS = {"postgresql_password_encryption"}  # the hash algorithm, not a password


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_option_is_prefixed_described_and_secrets_are_no_log_without_a_default(role):
    """Role-prefixed names (ansible-lint's rule, and no clash between roles), a description for the
    generated README, and for secrets: no_log, and never a default value (no admin/admin)."""
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    defaults_file = role / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) or {} if defaults_file.exists() else {}
    for entry, spec in specs.items():
        for name, option in ((spec or {}).get("options") or {}).items():
            where = f"{role.name}:{entry}:{name}"
            assert name.startswith(role.name + "_"), where
            assert option.get("description"), where
            if any(word in name for word in SECRET_WORDS) and name not in NOT_SECRETS and option.get("type", "str") == "str":
                assert option.get("no_log") is True, f"{where} holds a secret: no_log: true"
                assert defaults.get(name) in (None, "") and option.get("default") in (None, ""), \
                    f"{where} holds a secret: it must have no default"
