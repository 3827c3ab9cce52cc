"""What the default scenario's test files share: the ephemeral directory's secrets and CA, a container's address.

Not a test file (pytest collects test_*.py only); the test files import it from their own directory.
"""
import os
import pathlib
import subprocess

EPHEMERAL = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
SECRETS = EPHEMERAL / "secrets"
CA_FILE = EPHEMERAL / "pki" / "ca.crt"


def container_ip(name):
    """The address of the podman container name on its network."""
    out = subprocess.run(["podman", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def read_secret(name):
    """The secret converge generated into the ephemeral directory (its first word)."""
    path = SECRETS / name
    assert path.is_file(), "converge should have generated %s" % path
    return path.read_text().split()[0]
