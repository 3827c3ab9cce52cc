# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The execution environment (ee/execution-environment.yml) runs a runbook by FQCN against a real server.

scripts/build-ee.sh builds the image with ansible-builder (cached by a hash of its inputs).  A
systemd container of the test bed's Debian 13 image, on a podman network of its own, gets
openssh-server and PostgreSQL 17 with an ``ohlcv_data`` table holding one US series over January
2024 with two problems in it: the XNYS session of Wednesday 2024-01-10 is missing, and the bar of
2024-01-05 is there twice (the later copy, created an hour later, with another close).

``ansible-runner run --container-image <ee> --process-isolation`` then runs
``quantops.platform.incidents.data_quality`` from the image, in a container joined to that network,
over SSH with a key generated here (loaded by ansible-runner's ssh-agent from env/ssh_key), with
``data_quality_fix_confirm=true``.  The runbook's check runs on the controller, i.e. in the EE: it
needs psycopg (it connects to the server over TCP) and exchange_calendars (one missing Wednesday is
a 2-day gap, which the gap fallback does not report; only the XNYS calendar does, and the calendar
also knows that Monday 2024-01-15, Martin Luther King Jr. Day, is no session).  Neither is installed
at run time: the EE must carry them.  The test checks the module's result in the job events, the
incident report written to the private data dir, and the table on the server (the duplicate gone,
the earliest created_at kept).  Containers and network are removed at the end.
"""

import datetime
import json
import os
import pathlib
import re
import secrets
import shlex
import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
NETWORK = 'qp-ee-net'
TARGET = 'qp-ee-db'
PLAYBOOK = 'quantops.platform.incidents.data_quality'
MISSING = '2024-01-10'
HOLIDAY = '2024-01-15'
DUPLICATE = '2024-01-05'


def sh(*argv, check=True, timeout=600, **kwargs):
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if check and proc.returncode != 0:
        command = ' '.join(map(str, argv))
        raise AssertionError('%s failed (%d): %s %s' % (command, proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:]))
    return proc


def on_target(script, timeout=600):
    return sh('podman', 'exec', TARGET, 'bash', '-euo', 'pipefail', '-c', script, timeout=timeout)


def psql(sql):
    return on_target('runuser -u postgres -- psql -X -A -t -F "|" -v ON_ERROR_STOP=1 -d quant_platform -c %s'
                     % shlex.quote(sql)).stdout.strip()


def cleanup():
    sh('podman', 'rm', '-f', '-t', '0', TARGET, check=False)
    sh('podman', 'network', 'rm', '-f', NETWORK, check=False)


def pinned(name):
    for line in (ROOT / 'requirements.txt').read_text().splitlines():
        match = re.match(r'^%s(\[[^\]]*\])?==(\S+)$' % re.escape(name), line.strip())
        if match:
            return match.group(2)
    raise AssertionError('%s is not pinned in requirements.txt' % name)


@pytest.fixture(scope='module')
def ee_image():
    started = time.monotonic()
    proc = sh('bash', ROOT / 'scripts' / 'build-ee.sh', timeout=1800, cwd=ROOT)
    image = proc.stdout.strip().splitlines()[-1]
    print('\nexecution environment %s ready in %.0f s' % (image, time.monotonic() - started))
    return image


@pytest.fixture(scope='module')
def ssh_key(tmp_path_factory):
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return private, public


@pytest.fixture(scope='module')
def target(ssh_key):
    """A systemd server with sshd and PostgreSQL holding a seeded ohlcv_data; yields the app password."""
    base = sh('bash', ROOT / 'scripts' / 'build-image.sh', timeout=900, cwd=ROOT).stdout.strip().splitlines()[-1]
    password = secrets.token_urlsafe(18)
    cleanup()
    started = time.monotonic()
    try:
        sh('podman', 'network', 'create', NETWORK)
        sh('podman', 'run', '-d', '--name', TARGET, '--hostname', TARGET, '--network', NETWORK, '--systemd', 'always',
           '--runtime', 'runc', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=2000:2000',
           base, '/sbin/init', 'SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1')
        on_target('systemctl is-system-running --wait || true', timeout=120)
        on_target('apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends '
                  'openssh-server postgresql >/dev/null', timeout=900)
        on_target('install -d -m 0700 /root/.ssh && printf "%%s\\n" %s > /root/.ssh/authorized_keys '
                  '&& chmod 0600 /root/.ssh/authorized_keys && systemctl enable --now ssh'
                  % shlex.quote(ssh_key[1].strip()))
        on_target("conf=$(ls -d /etc/postgresql/*/main) && echo \"listen_addresses = '*'\" > $conf/conf.d/qp-ee.conf "
                  "&& echo 'host quant_platform quant_app samenet scram-sha-256' >> $conf/pg_hba.conf "
                  "&& systemctl restart postgresql")
        on_target('runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -c %s && runuser -u postgres -- createdb -O quant_app '
                  'quant_platform' % shlex.quote("CREATE ROLE quant_app LOGIN PASSWORD '%s'" % password))
        # One US series over the XNYS sessions of January 2024 (weekdays but New Year's Day and
        # Martin Luther King Jr. Day), 2024-01-10 left out, 2024-01-05 delivered twice.
        psql("CREATE TABLE public.ohlcv_data (ticker text NOT NULL, region text NOT NULL, date date NOT NULL, "
             "open numeric(20,6), high numeric(20,6), low numeric(20,6), close numeric(20,6), volume numeric(28,8), "
             "created_at timestamptz NOT NULL DEFAULT now()); ALTER TABLE public.ohlcv_data OWNER TO quant_app; "
             "INSERT INTO public.ohlcv_data (ticker, region, date, open, high, low, close, volume, created_at) "
             "SELECT 'QPX', 'US', d::date, 100 + mod(n, 3), 102 + mod(n, 3), 99 + mod(n, 3), 101 + mod(n, 3), 1000 + n, "
             "TIMESTAMPTZ '2024-02-01 00:00:00+00' FROM generate_series(DATE '2024-01-02', DATE '2024-01-31', "
             "INTERVAL '1 day') WITH ORDINALITY AS g(d, n) WHERE extract(isodow FROM d) < 6 "
             "AND d::date NOT IN (DATE '%s', DATE '%s'); "
             "INSERT INTO public.ohlcv_data (ticker, region, date, open, high, low, close, volume, created_at) "
             "SELECT ticker, region, date, open, high, low, close + 0.5, volume, created_at + INTERVAL '1 hour' "
             "FROM public.ohlcv_data WHERE date = DATE '%s'" % (HOLIDAY, MISSING, DUPLICATE))
        print('\ntarget %s ready in %.0f s' % (TARGET, time.monotonic() - started))
        yield password
    finally:
        cleanup()


@pytest.fixture(scope='module')
def run(ee_image, target, ssh_key, tmp_path_factory):
    """ansible-runner runs the runbook by FQCN in the EE; returns (rc, private data dir, stdout)."""
    pdd = tmp_path_factory.mktemp('runner')
    (pdd / 'inventory').mkdir()
    (pdd / 'inventory' / 'hosts.yml').write_text(json.dumps({'database': {'hosts': {TARGET: {
        'ansible_host': TARGET, 'ansible_user': 'root', 'ansible_python_interpreter': '/usr/bin/python3'}}}}))
    (pdd / 'env').mkdir()
    (pdd / 'env' / 'ssh_key').write_text(ssh_key[0])
    (pdd / 'env' / 'envvars').write_text(json.dumps({'ANSIBLE_HOST_KEY_CHECKING': 'False'}))
    (pdd / 'env' / 'extravars').write_text(json.dumps({
        'data_quality_login_password': target, 'data_quality_fix_confirm': True,
        'incident_reports_dir': '/runner/reports'}))
    for path in (pdd / 'env').iterdir():
        path.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith('ANSIBLE_')}
    started = time.monotonic()
    proc = sh(BIN / 'ansible-runner', 'run', pdd, '--ident', 'ee', '-p', PLAYBOOK,
              '--container-image', ee_image, '--process-isolation', '--process-isolation-executable', 'podman',
              '--container-option=--network=%s' % NETWORK, check=False, timeout=900, env=env)
    print('\n%s ran in the execution environment in %.0f s' % (PLAYBOOK, time.monotonic() - started))
    return proc.returncode, pdd, proc.stdout + proc.stderr


def task_results(pdd, task_prefix):
    results = []
    for path in sorted((pdd / 'artifacts' / 'ee' / 'job_events').glob('*.json')):
        event = json.loads(path.read_text())
        data = event.get('event_data', {})
        if event.get('event') == 'runner_on_ok' and data.get('task', '').startswith(task_prefix):
            results.append(data['res'])
    return results


def test_the_image_carries_the_controller_requirements(ee_image):
    """What the runbooks import on the controller is in the image, at requirements.txt's versions."""
    code = ('import json, cryptography, exchange_calendars, psycopg; print(json.dumps({"cryptography": '
            'cryptography.__version__, "exchange_calendars": exchange_calendars.__version__, '
            '"psycopg": psycopg.__version__}))')
    proc = sh('podman', 'run', '--rm', ee_image, 'python3', '-c', code)
    versions = json.loads(proc.stdout.strip().splitlines()[-1])
    assert versions == {name: pinned(name) for name in versions}
    proc = sh('podman', 'run', '--rm', ee_image, 'ansible-galaxy', 'collection', 'list', '--format', 'json')
    installed = {}
    for collections in json.loads(proc.stdout[proc.stdout.index('{'):]).values():
        installed.update(collections)
    assert {'quantops.platform', 'community.postgresql', 'community.crypto'} <= set(installed), installed
    proc = sh('podman', 'run', '--rm', ee_image, 'ansible', '--version')
    assert 'core %s]' % pinned('ansible-core') in proc.stdout


def test_runbook_runs_in_the_ee_and_repairs_the_server(run, ee_image):
    returncode, pdd, output = run
    assert returncode == 0, output[-5000:]
    command = json.loads((pdd / 'artifacts' / 'ee' / 'command').read_text())['command']
    assert command[:2] == ['podman', 'run'] and ee_image in command and '--network=%s' % NETWORK in command, command


def test_missing_session_judged_by_the_exchange_calendar(run):
    pdd = run[1]
    # The module's own result (the include of the step has the same task name, without findings).
    diagnosis = [res for res in task_results(pdd, 'Diagnosis') if 'missing_days' in res]
    assert len(diagnosis) == 1, 'no diagnosis result in the job events'
    result = diagnosis[0]
    assert result['exchange_calendars_version'] == pinned('exchange_calendars')
    missing = [row['time'][:10] for row in result['missing_days']]
    assert missing == [MISSING], result['missing_days']
    methods = [row['method'] for row in result['missing_days_methods']]
    assert methods == ['calendar'], result['missing_days_methods']


def test_duplicate_removed_on_the_server_keeping_the_earliest(run):
    rows = psql("SELECT created_at AT TIME ZONE 'UTC' FROM public.ohlcv_data WHERE ticker = 'QPX' "
                "AND date = DATE '%s'" % DUPLICATE).splitlines()
    assert rows == ['2024-02-01 00:00:00'], rows
    assert task_results(run[1], 'Solution 1'), 'the fix step did not run'


def test_incident_report_written_to_the_private_data_dir(run):
    reports = sorted((run[1] / 'reports').glob('INC-*-data-quality.md'))
    assert len(reports) == 1, reports
    text = reports[0].read_text()
    assert 'Solution 1 - duplicates removed: 1 rows' in text, text
    assert 'QPX=calendar' in text and 'exchange_calendars %s' % pinned('exchange_calendars') in text, text
    today = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d')
    assert reports[0].name.startswith('INC-%s-' % today), reports[0].name
