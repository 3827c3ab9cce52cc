"""Converge speed of playbooks/site.yml (issue 19, part 1): bench/results/converge.json.

    .venv/bin/python bench/converge.py [--noop-runs N] [--keep]

What it measures, in one run, on containers of its own (the lab's recipe:
playbooks/lab/up.yml and inventories/lab with lab_container_prefix=qp-bc-, on
network qp-bc; stale ones of the same names are removed first):

  cold    ansible-playbook playbooks/site.yml on two fresh lab containers
          (qp-bc-db1: database + redis, qp-bc-mon1: monitoring + backup_repo),
          wall time, containers already booted
  floor   the same Debian packages installed with one `apt-get update &&
          apt-get install` in two other fresh lab containers (qp-bc-floor-db1,
          qp-bc-floor-mon1), side by side; wall time of both.  The package list
          of each host is what the cold converge left marked as manually
          installed (apt-mark showmanual) minus what the image already had, so it
          follows the roles and is not kept by hand
  no-op   site.yml again on the converged containers, N times; each must report
          changed=0 (the benchmark fails otherwise)
  profile per-play, per-role and per-task times from ansible.posix.profile_tasks
          (its timestamp after each task start gives the previous task's
          duration; profile_roles is enabled too and its summary is in the logs)

The containers are removed at the end unless --keep.  Logs of every
ansible-playbook run: .build/bench/converge/.  Needs podman and the test bed's
image (make image; /work/shared/TESTBED.md).
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, '.build', 'bench', 'converge')
RESULT = os.path.join(ROOT, 'bench', 'results', 'converge.json')
NETWORK = 'qp-bc'
SUBNET = '10.89.71.0/24'
PREFIX = 'qp-bc-'
FLOOR_PREFIX = 'qp-bc-floor-'
HOSTS = ('db1', 'mon1')
CALLBACKS = 'ansible.posix.profile_tasks,ansible.posix.profile_roles'

# profile_tasks: "Tuesday 08 December 2026  02:40:00 +0000 (0:00:01.234)       0:00:05.000 ***"
STAMP = re.compile(r'^\w+ \d+ \w+ \d{4} +[\d:]+ [+-]\d{4} \((\d+):(\d+):([\d.]+)\) +(\d+):(\d+):([\d.]+) ')
HEADER = re.compile(r'^(PLAY|TASK|RUNNING HANDLER) \[(.*)\] \*+$')
RECAP = re.compile(r'^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+'
                   r'skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)')


def seconds(hours, minutes, secs):
    return int(hours) * 3600 + int(minutes) * 60 + float(secs)


def run(argv, **kwargs):
    return subprocess.run(argv, check=True, text=True, capture_output=True, **kwargs).stdout


def lab_argv(playbook_path, prefix, secrets):
    """ansible-playbook on the lab's inventory, with the bench's container names and network."""
    argv = ['ansible-playbook', '-i', os.path.join(ROOT, 'inventories', 'lab'),
            '-i', names_inventory(prefix), playbook_path]
    for key, value in lab_vars(secrets).items():
        argv += ['-e', '%s=%s' % (key, value)]
    return argv


def playbook(name, argv, log):
    """Run an ansible-playbook command line with the profile callbacks; returns (wall s, log text)."""
    env = dict(os.environ,
               PATH=os.path.join(ROOT, '.venv', 'bin') + os.pathsep + os.environ['PATH'],
               ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
               ANSIBLE_CALLBACKS_ENABLED=CALLBACKS,
               PROFILE_TASKS_TASK_OUTPUT_LIMIT='all',
               ANSIBLE_FORCE_COLOR='0', ANSIBLE_NOCOLOR='1')
    with open(log, 'w', encoding='utf-8') as handle:
        start = time.monotonic()
        proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False)
        wall = time.monotonic() - start
    with open(log, encoding='utf-8') as handle:
        text = handle.read()
    if proc.returncode != 0:
        sys.stderr.write(text[-6000:])
        raise SystemExit('%s failed (rc %d), log: %s' % (name, proc.returncode, log))
    return wall, text


def lab_vars(secrets):
    """The lab's variables for a lab of the bench's own: its network, subnet and secrets."""
    return {'lab_network': NETWORK, 'lab_subnet': SUBNET, 'lab_secrets_dir': secrets}


def names_inventory(prefix):
    """An inventory read after the lab's: each lab host's container is prefix + host."""
    path = os.path.join(WORK, 'names-%s.yml' % prefix.rstrip('-'))
    with open(path, 'w', encoding='utf-8') as handle:
        json.dump({'all': {'hosts': {h: {'ansible_host': prefix + h} for h in HOSTS}}}, handle)
    return path


def recap(text):
    hosts = {}
    for line in text.splitlines():
        match = RECAP.match(line.strip())
        if match:
            keys = ('ok', 'changed', 'unreachable', 'failed', 'skipped', 'rescued', 'ignored')
            hosts[match.group(1)] = dict(zip(keys, (int(g) for g in match.groups()[1:])))
    return hosts


def profile(text):
    """Per-play, per-role and per-task seconds from profile_tasks' timestamps.

    Each timestamp printed at a task's start carries the previous task's
    duration: it is charged to the header seen before that previous timestamp.
    The recap's stamp (after the last task) closes the last task.
    """
    entries = []    # [play, kind, name, seconds]
    play = None
    current = None
    total = 0.0
    fresh = False
    for line in text.splitlines():
        if line.startswith('TASKS RECAP'):
            fresh = True
            continue
        header = HEADER.match(line)
        if header:
            if header.group(1) == 'PLAY':
                play = header.group(2)
            else:
                entries.append([play, header.group(1), header.group(2), 0.0])
                fresh = True
            continue
        stamp = STAMP.match(line)
        # profile_tasks and profile_roles both print a stamp: the first one counts.
        if stamp and fresh:
            fresh = False
            delta = seconds(*stamp.groups()[0:3])
            total = seconds(*stamp.groups()[3:6])
            if current is not None:
                current[3] += delta
            current = entries[-1] if entries else None
    plays, roles = {}, {}
    for play_name, _kind, name, secs in entries:
        plays[play_name] = plays.get(play_name, 0.0) + secs
        role = name.split(' : ', 1)[0] if ' : ' in name else '(play tasks)'
        role = role.rsplit('.', 1)[-1]
        roles[role] = roles.get(role, 0.0) + secs
    tasks = sorted(entries, key=lambda e: -e[3])
    return {
        'profiled_seconds': round(total, 2),
        'task_starts': len(entries),
        'plays': [{'play': p, 'seconds': round(s, 2)} for p, s in plays.items()],
        'roles': [{'role': r, 'seconds': round(s, 2)}
                  for r, s in sorted(roles.items(), key=lambda kv: -kv[1])],
        'top_tasks': [{'task': e[2], 'play': e[0], 'seconds': round(e[3], 2)} for e in tasks[:15]],
    }


def manual_packages(container):
    return set(run(['podman', 'exec', container, 'apt-mark', 'showmanual']).split())


def install_floor(container, packages):
    script = ('apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive '
              'apt-get install -y -q --no-install-recommends ' + ' '.join(sorted(packages)) + ' >/dev/null')
    start = time.monotonic()
    subprocess.run(['podman', 'exec', container, 'sh', '-c', script], check=True)
    return time.monotonic() - start


def remove_containers():
    names = [p + h for p in (PREFIX, FLOOR_PREFIX) for h in HOSTS]
    subprocess.run(['podman', 'rm', '-f', '-t', '2'] + names, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(['podman', 'network', 'rm', NETWORK], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def versions(container):
    def pkg(name):
        out = subprocess.run(['podman', 'exec', container, 'dpkg-query', '-W', '-f', '${Version}', name],
                             text=True, capture_output=True, check=False)
        return out.stdout.strip() or None
    return pkg


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--noop-runs', type=int, default=2, help='no-op re-runs of site.yml (default 2)')
    parser.add_argument('--keep', action='store_true', help='leave the containers running')
    parser.add_argument('--out', default=RESULT, help='result file (default bench/results/converge.json)')
    args = parser.parse_args()

    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(os.path.join(WORK, 'secrets'))
    secrets = os.path.join(WORK, 'secrets')
    site = os.path.join(ROOT, 'playbooks', 'site.yml')
    up = os.path.join(ROOT, 'playbooks', 'lab', 'up.yml')
    down = os.path.join(ROOT, 'playbooks', 'lab', 'down.yml')
    load_before = os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc)

    remove_containers()
    try:
        playbook('up', lab_argv(up, PREFIX, secrets), os.path.join(WORK, 'up.log'))
        print('cold converge of site.yml ...', flush=True)
        cold_wall, cold_log = playbook('cold converge', lab_argv(site, PREFIX, secrets),
                                       os.path.join(WORK, 'cold.log'))
        cold_recap = recap(cold_log)
        print('cold: %.1f s' % cold_wall, flush=True)

        # The floor: the same packages in two fresh lab containers, side by side.
        playbook('up (floor)', lab_argv(up, FLOOR_PREFIX, secrets), os.path.join(WORK, 'up-floor.log'))
        packages = {}
        for host in HOSTS:
            baseline = manual_packages(FLOOR_PREFIX + host)
            packages[host] = sorted(manual_packages(PREFIX + host) - baseline)
        print('floor: apt-get install of %s ...' % {h: len(p) for h, p in packages.items()}, flush=True)
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(len(HOSTS)) as pool:
            futures = {h: pool.submit(install_floor, FLOOR_PREFIX + h, packages[h]) for h in HOSTS}
            floor_hosts = {h: round(f.result(), 2) for h, f in futures.items()}
        floor_wall = time.monotonic() - start
        print('floor: %.1f s' % floor_wall, flush=True)

        noop = []
        for index in range(args.noop_runs):
            wall, text = playbook('no-op run %d' % (index + 1), lab_argv(site, PREFIX, secrets),
                                  os.path.join(WORK, 'noop-%d.log' % (index + 1)))
            hosts = recap(text)
            changed = sum(h['changed'] for h in hosts.values())
            print('no-op %d: %.1f s, changed=%d' % (index + 1, wall, changed), flush=True)
            noop.append({'wall_seconds': round(wall, 2), 'recap': hosts, 'profile': profile(text)})
            if changed:
                raise SystemExit('no-op run %d changed %d tasks (log: %s): the converge is not idempotent'
                                 % (index + 1, changed, os.path.join(WORK, 'noop-%d.log' % (index + 1))))
        pkg = versions(PREFIX + 'db1')
        mon_pkg = versions(PREFIX + 'mon1')
        image = run(['podman', 'image', 'inspect', '--format', '{{.Id}}',
                     'localhost/quantops-trixie:latest']).strip()[:12]
        software = {
            'ansible_core': run([os.path.join(ROOT, '.venv', 'bin', 'python'), '-c',
                                 'import ansible; print(ansible.__version__)']).strip(),
            'podman': run(['podman', 'version', '--format', '{{.Client.Version}}']).strip(),
            'image': 'localhost/quantops-trixie:latest (%s)' % image,
            'postgresql': pkg('postgresql-17'),
            'timescaledb': pkg('postgresql-17-timescaledb'),
            'prometheus': mon_pkg('prometheus'),
            'alertmanager': mon_pkg('prometheus-alertmanager'),
            'pgbackrest': pkg('pgbackrest'),
            'redis': pkg('redis-server'),
        }
    finally:
        if not args.keep:
            for prefix in (PREFIX, FLOOR_PREFIX):
                subprocess.run(lab_argv(down, prefix, secrets), cwd=ROOT, check=False, stdout=subprocess.DEVNULL,
                               env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
                                        PATH=os.path.join(ROOT, '.venv', 'bin') + os.pathsep
                                        + os.environ['PATH']))
            remove_containers()
    load_after = os.getloadavg()

    noop_walls = [n['wall_seconds'] for n in noop]
    noop_median = statistics.median(noop_walls) if noop_walls else None
    result = {
        'benchmark': 'converge speed of playbooks/site.yml (bench/converge.py, make bench-converge)',
        'date': started.strftime('%Y-%m-%dT%H:%M:%SZ'),
        'method': {
            'cold': 'ansible-playbook -i inventories/lab playbooks/site.yml on two fresh, booted lab '
                    'containers (playbooks/lab/up.yml, names qp-bc-db1/qp-bc-mon1), wall time',
            'floor': 'apt-get update && apt-get install --no-install-recommends of the packages the cold '
                     'converge installed (apt-mark showmanual after it minus the image\'s), in two other '
                     'fresh lab containers side by side; wall time until both finished',
            'noop': 'site.yml again on the converged containers; each run must report changed=0',
            'profile': 'ansible.posix.profile_tasks timestamps: per play, per role and per task '
                       '(roles running on two hosts at once are charged their wall time once)',
        },
        'sizes': {
            'hosts': {'db1': 'database, redis', 'mon1': 'monitoring, backup_repo'},
            'packages': packages,
            'package_count': {h: len(p) for h, p in packages.items()},
            'container_memory': '2g (lab_memory)',
            'noop_runs': args.noop_runs,
        },
        'versions': software,
        'load_average': {'before': [round(x, 2) for x in load_before],
                         'after': [round(x, 2) for x in load_after],
                         'cpus': os.cpu_count()},
        'cold': {'wall_seconds': round(cold_wall, 2), 'recap': cold_recap, 'profile': profile(cold_log)},
        'floor': {'wall_seconds': round(floor_wall, 2), 'per_host_seconds': floor_hosts},
        'noop': {'runs': noop, 'wall_seconds': noop_walls,
                 'median_seconds': noop_median},
        'summary': {
            'cold_seconds': round(cold_wall, 2),
            'floor_seconds': round(floor_wall, 2),
            'cold_over_floor': round(cold_wall / floor_wall, 2),
            'cold_over_floor_goal': 1.5,
            'noop_median_seconds': noop_median,
            'noop_goal_seconds': 30,
            'noop_changed': 0,
        },
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w', encoding='utf-8') as handle:
        json.dump(result, handle, indent=2)
        handle.write('\n')
    print(json.dumps(result['summary'], indent=2))


if __name__ == '__main__':
    main()
