# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""End state of the data-quality runbook on the problems seed_data_quality.yml (H4) injected into
the lab's real series: three SPX duplicates (one with a different close), two missing IXIC trading
days (XNYS sessions 2017-06-13/14) and an SPX outlier (2016-06-15 close x 10).

The runbook exits non-zero while duplicates remain, so it is run here (not in side_effect) with
ansible-playbook against the scenario's inventory (MOLECULE_INVENTORY_FILE), twice, in order:
  1. without confirmation: everything detected, nothing changed, exit code 2, report P1;
  2. with -e data_quality_fix_confirm=true: duplicates removed keeping the earliest created_at,
     exit code 0, report P2 (missing days and outliers need a person), removed rows in the report.
The database is the real TimescaleDB of the scenario's host, read with psql through testinfra.
The check runs on the controller (exchange_calendars there) and logs in over TCP as quant_app
(password from the scenario's secrets dir).
"""

import glob
import os
import re
import subprocess

import pytest

testinfra_hosts = ["podman://qp-rb-db"]

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
DUP_DATES = ('2018-03-01', '2018-03-02', '2018-03-05')


def psql(host, sql):
    cmd = host.run("runuser -u postgres -- psql -X -A -t -F '|' -d quant_platform -c %s"
                   % ("'" + sql.replace("'", "'\"'\"'") + "'"))
    assert cmd.rc == 0, cmd.stderr
    return [line.split('|') for line in cmd.stdout.strip().splitlines() if line]


def ephemeral():
    base = os.environ.get('MOLECULE_EPHEMERAL_DIRECTORY')
    if not base or not os.environ.get('MOLECULE_INVENTORY_FILE'):
        pytest.skip('MOLECULE_EPHEMERAL_DIRECTORY / MOLECULE_INVENTORY_FILE not set: run through molecule verify')
    return base


def run_runbook(*extra):
    base = ephemeral()
    with open(os.path.join(base, 'secrets', 'quant_app')) as handle:
        password = handle.read().strip()
    cmd = ['ansible-playbook', '-i', os.environ['MOLECULE_INVENTORY_FILE'],
           os.path.join(ROOT, 'playbooks', 'incidents', 'data_quality.yml'),
           '-e', 'data_quality_login_password=%s' % password,
           '-e', '{"data_quality_regions": ["US"]}'] + list(extra)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    return proc


def latest_report(before):
    reports = sorted(set(glob.glob(os.path.join(ephemeral(), 'reports', 'INC-*-data-quality*.md'))) - set(before))
    assert reports, 'the runbook wrote no data-quality report'
    with open(reports[-1]) as handle:
        return handle.read()


def severity(text):
    match = re.search(r'^\*\*Severity\*\*: (P[0-3])', text, re.M)
    return match.group(1) if match else None


def dup_rows(host):
    return psql(host, "SELECT date::text, close::text, created_at::text FROM ohlcv_data WHERE ticker = 'SPX' "
                      "AND region = 'US' AND date IN ('2018-03-01', '2018-03-02', '2018-03-05') ORDER BY 1, 3")


@pytest.fixture(scope='module')
def runs(host):
    ephemeral()
    existing = glob.glob(os.path.join(ephemeral(), 'reports', 'INC-*-data-quality*.md'))
    seeded = dup_rows(host)
    total_before = psql(host, 'SELECT count(*) FROM ohlcv_data')[0][0]
    report_only = run_runbook()
    total_after_report = psql(host, 'SELECT count(*) FROM ohlcv_data')[0][0]
    report_only_text = latest_report(existing)
    existing = glob.glob(os.path.join(ephemeral(), 'reports', 'INC-*-data-quality*.md'))
    fixed = run_runbook('-e', 'data_quality_fix_confirm=true')
    fixed_text = latest_report(existing)
    return dict(seeded=seeded, total_before=total_before, total_after_report=total_after_report,
                report_only=report_only, report_only_text=report_only_text, fixed=fixed, fixed_text=fixed_text)


def test_seed_is_in_place(runs):
    dates = [r[0] for r in runs['seeded']]
    assert all(dates.count(d) == 2 for d in DUP_DATES), runs['seeded']


def test_without_confirmation_everything_is_detected_and_nothing_changed(runs):
    proc, text = runs['report_only'], runs['report_only_text']
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert runs['total_after_report'] == runs['total_before']
    assert severity(text) == 'P1'
    assert '3 duplicate groups, 3 extra rows' in text
    assert '2 missing sessions by exchange calendar' in text
    assert 'IXIC=calendar' in text and 'exchange_calendars 4.13.2' in text
    assert 'SPX 2016-06-15' in text                     # the seeded outlier, largest z-score first
    assert 'duplicates NOT removed' in text


def test_confirmed_fix_keeps_the_earliest_created_at(runs, host):
    proc = runs["fixed"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    seeded = runs['seeded']
    earliest = {}
    for date, close, created in seeded:
        earliest.setdefault(date, (close, created))      # rows ordered by created_at
    rows = dup_rows(host)
    assert [r[0] for r in rows] == list(DUP_DATES)
    for date, close, created in rows:
        assert (close, created) == earliest[date]
    assert int(psql(host, 'SELECT count(*) FROM ohlcv_data')[0][0]) == int(runs['total_before']) - 3


def test_confirmed_report_lists_the_removed_rows_and_keeps_p2(runs):
    text = runs['fixed_text']
    assert severity(text) == 'P2'                        # missing days and outliers remain for a person
    assert text.count('Removed duplicate SPX US') == 3
    assert 'duplicates removed: 3 rows' in text


def test_missing_days_and_outlier_are_not_touched(host, runs):
    assert psql(host, "SELECT count(*) FROM ohlcv_data WHERE ticker = 'IXIC' "
                      "AND date IN ('2017-06-13', '2017-06-14')") == [['0']]
    (close,), = psql(host, "SELECT close > 10000 FROM ohlcv_data WHERE ticker = 'SPX' AND date = '2016-06-15'")
    assert close == 't'
