# Copyright: (c) 2026, quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run Molecule scenarios, several at once, each with its own collections path.

Molecule (ansible-compat) installs a built copy of the collection under ANSIBLE_HOME
before each run, so two scenarios sharing ~/.ansible cannot overlap. Here every scenario
gets its own ANSIBLE_HOME, .build/molecule/<scenario>/home, whose collections folder is
also the collections path; container and
network names are already per scenario (qp-<scenario>-*), so scenarios can run side by
side. The queue keeps the given order (longest first is the caller's choice) and starts
the next scenario as soon as a slot frees.

Each scenario's output goes to .build/molecule/<scenario>.log and is printed whole when
the scenario ends, so CI logs read one scenario at a time. The exit status is non-zero
when any scenario failed; the summary gives each scenario's result and wall time.

Usage: python scripts/molecule_run.py [--jobs N] SCENARIO [SCENARIO ...]
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".build" / "molecule"


def start(scenario):
    """Start one scenario's `molecule test` in the background; return its record."""
    home = WORK / scenario / "home"
    if home.exists():
        shutil.rmtree(home)
    (home / "collections").mkdir(parents=True)
    # A probe container a killed run may have left behind (tests create it themselves).
    subprocess.run(["podman", "rm", "-f", "qp-%s-probe" % scenario],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    log_path = WORK / ("%s.log" % scenario)
    log = open(log_path, "w", encoding="utf-8")
    env = dict(os.environ, ANSIBLE_HOME=str(home),
               ANSIBLE_COLLECTIONS_PATH=str(home / "collections"))
    proc = subprocess.Popen(
        ["molecule", "test", "-s", scenario], cwd=ROOT, env=env,
        stdout=log, stderr=subprocess.STDOUT)
    print("molecule: %s started (log %s)" % (scenario, log_path.relative_to(ROOT)), flush=True)
    return {"scenario": scenario, "proc": proc, "log": log, "log_path": log_path,
            "started": time.monotonic()}


def finish(run):
    """Close a finished scenario's log, print it whole and return (scenario, rc, seconds)."""
    run["log"].close()
    seconds = time.monotonic() - run["started"]
    rc = run["proc"].returncode
    print("\n===== molecule %s: %s after %.0f s =====" % (
        run["scenario"], "passed" if rc == 0 else "FAILED (rc %d)" % rc, seconds), flush=True)
    with open(run["log_path"], encoding="utf-8", errors="replace") as log:
        shutil.copyfileobj(log, sys.stdout)
    print("===== end of molecule %s =====\n" % run["scenario"], flush=True)
    return run["scenario"], rc, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1,
                        help="scenarios running at the same time (default 1)")
    parser.add_argument("scenarios", nargs="+")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1, got %d" % args.jobs)
    unknown = [s for s in args.scenarios if not (ROOT / "molecule" / s / "molecule.yml").is_file()]
    if unknown:
        parser.error("no such Molecule scenario: %s (scenarios are the folders of molecule/)"
                     % ", ".join(unknown))
    WORK.mkdir(parents=True, exist_ok=True)
    queue = list(args.scenarios)
    running, results = [], []
    began = time.monotonic()
    # A CI timeout or kill sends SIGTERM: leave through the finally below.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        while queue or running:
            while queue and len(running) < args.jobs:
                running.append(start(queue.pop(0)))
            time.sleep(2)
            for run in [r for r in running if r["proc"].poll() is not None]:
                running.remove(run)
                results.append(finish(run))
    finally:
        # Interrupted (Ctrl-C, CI timeout): stop what still runs; molecule's own
        # destroy does not run then, the next run removes the containers by name.
        for run in running:
            run["proc"].terminate()
            run["proc"].wait()
            run["log"].close()
    print("Molecule summary (%d at a time, %.0f s in all):" % (args.jobs, time.monotonic() - began))
    for scenario, rc, seconds in results:
        print("  %-16s %-7s %6.0f s" % (scenario, "passed" if rc == 0 else "FAILED", seconds))
    return 1 if any(result[1] != 0 for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
