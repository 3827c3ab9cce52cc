"""The collection tarballs of the execution environment build (scripts/build-ee.sh), and their digest.

``pack OUT``: puts beside the collection's own tarball (already in OUT, from ``ansible-galaxy
collection build``) a tarball of each dependency galaxy.yml declares, made from the copy bundled
in the pinned ``ansible`` package (Ansible Galaxy is not reachable from the test bed), and writes
OUT/requirements.yml listing every tarball (``type: file``, paths relative to the build context
where ansible-builder's galaxy stage runs).

``digest OUT``: prints MANIFEST.json and FILES.json of every tarball in OUT (FILES.json holds the
checksum of every file), the part of the image tag's hash that changes with any collection file.
"""
import argparse
import hashlib
import io
import json
import pathlib
import sys
import tarfile

import ansible_collections
import yaml
from ansible.galaxy.dependency_resolution.versioning import meets_requirements

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUNDLED = pathlib.Path(ansible_collections.__path__[0])


def pack_installed(source, tarball):
    """Write a collection artifact of an installed copy: MANIFEST.json, FILES.json and the files.

    The ``ansible`` package leaves out files its copies' FILES.json lists (CI configs, tests):
    FILES.json is rewritten to what is there (every checksum verified) and MANIFEST.json gets the
    new FILES.json checksum, so that ansible-galaxy installs it as it installs one from Galaxy.
    """
    manifest = json.loads((source / "MANIFEST.json").read_text())
    files = json.loads((source / "FILES.json").read_text())
    kept = []
    for entry in files["files"]:
        path = source / entry["name"]
        if entry["ftype"] == "dir" and path.is_dir():
            kept.append(entry)
        elif entry["ftype"] == "file" and path.is_file():
            if hashlib.sha256(path.read_bytes()).hexdigest() != entry["chksum_sha256"]:
                raise SystemExit(f"{path} differs from its checksum in {source}/FILES.json")
            kept.append(entry)
    files["files"] = kept
    files_json = json.dumps(files, indent=4).encode()
    manifest["file_manifest_file"]["chksum_sha256"] = hashlib.sha256(files_json).hexdigest()
    with tarfile.open(tarball, "w:gz") as tar:
        for name, data in (("MANIFEST.json", json.dumps(manifest, indent=4).encode()), ("FILES.json", files_json)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for entry in kept:
            if entry["name"] != ".":
                tar.add(source / entry["name"], arcname=entry["name"], recursive=False)


def pack(out):
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    for dep, constraint in (galaxy.get("dependencies") or {}).items():
        namespace, name = dep.split(".")
        source = BUNDLED / namespace / name
        if not (source / "MANIFEST.json").is_file():
            raise SystemExit(f"{dep} (galaxy.yml) is not in the ansible package's bundle")
        version = json.loads((source / "MANIFEST.json").read_text())["collection_info"]["version"]
        if not meets_requirements(version, constraint):
            raise SystemExit(f"the bundled {dep} {version} does not meet galaxy.yml's {constraint}")
        pack_installed(source, out / f"{namespace}-{name}-{version}.tar.gz")
    requirements = {"collections": [{"name": f"collections/{p.name}", "type": "file"}
                                    for p in sorted(out.glob("*.tar.gz"))]}
    (out / "requirements.yml").write_text(yaml.safe_dump(requirements, sort_keys=False))


def digest(out):
    for tarball in sorted(out.glob("*.tar.gz")):
        with tarfile.open(tarball) as tar:
            for member in ("MANIFEST.json", "FILES.json"):
                sys.stdout.write(tar.extractfile(member).read().decode())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("action", choices=["pack", "digest"])
    parser.add_argument("out", type=pathlib.Path, help="the folder of the collection tarballs")
    args = parser.parse_args()
    {"pack": pack, "digest": digest}[args.action](args.out)


if __name__ == "__main__":
    main()
