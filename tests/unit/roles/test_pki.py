"""The pki role run for real on the controller: a CA, host certificates, renewal, bring-your-own.

ansible-playbook runs the role against two inventory hosts with the local connection, so every
community.crypto module does its real work in a temporary pki_dir; openssl verifies the results.
Nothing is mocked.
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
BIN = pathlib.Path(sys.executable).parent

PLAY = textwrap.dedent("""\
    - name: Certificates for two hosts
      hosts: all
      gather_facts: false
      tasks:
        - name: Install this host's certificate
          ansible.builtin.include_role:
            name: quantops.platform.pki
            tasks_from: install
          vars:
            pki_install_dir: "{{ out_dir }}/{{ inventory_hostname }}"
            pki_install_group: "{{ lookup('ansible.builtin.pipe', 'id -gn') }}"
            pki_install_owner: "{{ lookup('ansible.builtin.pipe', 'id -un') }}"
    """)


@pytest.fixture()
def pki(tmp_path):
    inventory = {"all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                  "pki_dir": str(tmp_path / "pki"), "out_dir": str(tmp_path / "out")},
                         "hosts": {"h1": {"ansible_host": "10.1.2.3"}, "h2": {}}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    (tmp_path / "play.yml").write_text(PLAY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build" / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOME=str(tmp_path / "home"), ANSIBLE_CONFIG=str(tmp_path / "none.cfg"))

    def run(*extra, check=True):
        result = subprocess.run([BIN / "ansible-playbook", "-i", tmp_path / "inventory.json", tmp_path / "play.yml",
                                 *extra], env=env, cwd=tmp_path, capture_output=True, text=True, check=False)
        if check:
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        return result
    return tmp_path, run


def changed(result):
    return {line.split()[0]: int(line.split("changed=")[1].split()[0])
            for line in result.stdout.splitlines() if "changed=" in line}


def openssl(*argv):
    return subprocess.run(["openssl", *map(str, argv)], capture_output=True, text=True, check=True).stdout


def end_date(path):
    return openssl("x509", "-in", path, "-noout", "-enddate").strip()


def test_check_mode_on_an_empty_controller_creates_nothing(pki):
    tmp, run = pki
    run("--check")
    assert not (tmp / "pki").exists() and not (tmp / "out").exists()


def test_ca_signs_each_host_and_a_rerun_changes_nothing(pki):
    tmp, run = pki
    run()
    for host in ("h1", "h2"):
        assert "OK" in openssl("verify", "-CAfile", tmp / "out" / host / "ca.crt", tmp / "out" / host / "host.crt")
        text = openssl("x509", "-in", tmp / "out" / host / "host.crt", "-noout", "-text")
        assert f"Subject: CN = {host}" in text and f"DNS:{host}" in text
        assert "TLS Web Server Authentication, TLS Web Client Authentication" in text
        assert oct((tmp / "pki" / f"{host}.key").stat().st_mode & 0o777) == "0o600"
        assert oct((tmp / "out" / host / "host.key").stat().st_mode & 0o777) == "0o640"
    assert "IP Address:10.1.2.3" in openssl("x509", "-in", tmp / "out" / "h1" / "host.crt", "-noout", "-text")
    assert changed(run()) == {"h1": 0, "h2": 0}


def test_a_certificate_is_renewed_within_the_renewal_window_and_not_before(pki):
    tmp, run = pki
    run("-e", "pki_cert_days=3", "-e", "pki_renew_before_days=2")
    first = end_date(tmp / "out" / "h1" / "host.crt")
    assert changed(run("-e", "pki_cert_days=3", "-e", "pki_renew_before_days=2")) == {"h1": 0, "h2": 0}
    # The 3-day certificate now expires within a 5-day window: re-issued for 6 days, and installed.
    result = run("-e", "pki_cert_days=6", "-e", "pki_renew_before_days=5")
    assert changed(result)["h1"] > 0
    assert end_date(tmp / "out" / "h1" / "host.crt") != first
    assert "OK" in openssl("verify", "-CAfile", tmp / "out" / "h1" / "ca.crt", tmp / "out" / "h1" / "host.crt")


def test_bad_settings_are_refused_before_anything_is_made(pki):
    tmp, run = pki
    result = run("-e", "pki_cert_days=10", "-e", "pki_renew_before_days=30", check=False)
    assert result.returncode != 0 and "pki_renew_before_days" in result.stdout
    result = run("-e", '{"pki_host_sans": ["DNS:a b"]}', check=False)
    assert result.returncode != 0 and "pki_host_sans" in result.stdout
    assert not (tmp / "pki").exists()


def test_bring_your_own_certificates_are_used_as_they_are_and_a_wrong_key_is_refused(pki):
    tmp, run = pki
    run()  # a CA to sign "their" certificates with
    byo = {"pki_provider": "byo", "pki_byo_ca_cert": str(tmp / "pki" / "ca.crt"),
           "pki_byo_cert": str(tmp / "pki" / "{{ inventory_hostname }}.crt"),
           "pki_byo_key": str(tmp / "pki" / "{{ inventory_hostname }}.key")}
    for host in ("h1", "h2"):
        (tmp / "out" / host / "host.crt").unlink()
    run("-e", json.dumps(byo))
    assert (tmp / "out" / "h1" / "host.crt").read_text() == (tmp / "pki" / "h1.crt").read_text()
    wrong = dict(byo, pki_byo_key=str(tmp / "pki" / "ca.key"))
    result = run("-e", json.dumps(wrong), check=False)
    assert result.returncode != 0 and "does not match the key" in result.stdout
