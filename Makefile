# quantops.platform - two commands do everything on a fresh machine:
#   make lab    the main job: lab containers, site.yml, real market data, morning check
#   make lab-ha the cluster lab: three Patroni+etcd members, HAProxy+PgBouncer, monitoring
#   make test   the whole test suite (what CI runs)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Molecule writes an ansible.cfg of its own: the test bed's connection plugin
# (podman_nsenter) is found through the environment there.
export ANSIBLE_CONNECTION_PLUGINS := $(CURDIR)/tests/testbed/connection_plugins
export ANSIBLE_FORCE_COLOR ?= 0
LINK := .build/collections/ansible_collections/quantops/platform
MARKET_DATA := .cache/market-data/ohlcv.csv
LAB := -i inventories/lab
LAB_HA := -i inventories/lab-ha

.PHONY: help bootstrap host venv image ee ee-test link market-data lab lab-down lab-ha lab-ha-down lab-ha-test test test-quick unit packaging promtool lint sanity molecule bench bench-backup bench-converge bench-data-quality bench-queries clean

help:
	@grep -E '^#   make' Makefile | sed 's/^#   //'

bootstrap: host venv image link

host:
	bash scripts/bootstrap-host.sh

# requirements.txt: what the collection runs on the controller; requirements-dev.txt:
# that plus the test and build tools.
venv: $(BIN)/.requirements.stamp link
$(BIN)/.requirements.stamp: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

image: host
	bash scripts/build-image.sh

# The execution environment (ee/execution-environment.yml, docs/execution_environment.md):
# ansible-builder on the test bed's Debian 13 image, tagged by a hash of its inputs.
ee: host venv
	bash scripts/build-ee.sh

# The EE runs quantops.platform.incidents.data_quality through ansible-runner against a
# server container of its own (tests/ee; builds the EE first if its inputs changed).
ee-test: host venv
	$(BIN)/pytest tests/ee -q -p no:cacheprovider

link:
	mkdir -p $(dir $(LINK))
	ln -sfn ../../../.. $(LINK)

market-data: venv
	$(BIN)/python scripts/lab_market_data.py --cache-dir .cache/market-data --out $(MARKET_DATA)

lab: bootstrap market-data
	ansible-playbook $(LAB) playbooks/lab/up.yml
	ansible-playbook $(LAB) playbooks/site.yml
	ansible-playbook $(LAB) playbooks/lab/load_market_data.yml
	ansible-playbook $(LAB) playbooks/lab/load_redis_quotes.yml
	ansible-playbook $(LAB) playbooks/backup/backup_now.yml -e backup_type=full
	ansible-playbook $(LAB) playbooks/backup/backup_now.yml -e backup_method=dump
	ansible-playbook $(LAB) playbooks/maintenance/morning_check.yml

lab-down: venv
	ansible-playbook $(LAB) playbooks/lab/down.yml

# The cluster lab (docs/lab.md): qp-labha-db1..3 (etcd + Patroni, cluster 'quant'),
# qp-labha-ep (HAProxy, PgBouncer), qp-labha-mon (monitoring), on a network of
# their own beside `make lab`.  The schema goes onto the leader, the market data
# through HAProxy's read-write port.  No backups yet: pgBackRest and the pg_dump
# job do not run on Patroni members (docs/high_availability.md).
lab-ha: bootstrap market-data
	ansible-playbook $(LAB_HA) playbooks/lab/up.yml
	ansible-playbook $(LAB_HA) playbooks/site.yml
	ansible-playbook $(LAB_HA) playbooks/lab/cluster_schema.yml
	ansible-playbook $(LAB_HA) playbooks/lab/load_market_data.yml
	ansible-playbook $(LAB_HA) playbooks/maintenance/morning_check.yml

lab-ha-down: venv
	ansible-playbook $(LAB_HA) playbooks/lab/down.yml

# The replication-lag and split-brain runbooks against the running cluster lab
# (tests/lab/test_ha_incidents.py: real faults, about 9 min; not part of make test yet).
lab-ha-test: venv link
	QP_HA_PREFIX=qp-labha- QP_HA_INVENTORY=inventories/lab-ha \
	  $(BIN)/pytest -p no:cacheprovider -v tests/lab/test_ha_incidents.py

test: test-quick ee-test molecule

# promtool first: it unpacks the promtool a unit test of the backup metrics uses.
test-quick: promtool unit packaging lint sanity

unit: host venv
	$(BIN)/pytest tests/unit -q -p no:cacheprovider

# The collection as users install it: build the tarball, install it with only
# its declared dependencies, ansible-doc every plugin and role, syntax-check
# every shipped playbook by FQCN (tests/packaging).
packaging: venv
	$(BIN)/pytest tests/packaging -q -p no:cacheprovider

# Every alerting/recording rule and its promtool unit tests (tests/promtool).
promtool: host venv
	bash scripts/promtool-test.sh

lint: venv
	# Its cache dir comes first in the collections path: keep it in the checkout so
	# a copy Molecule left in ~/.ansible/collections never shadows the tree.
	# MOLECULE_PROJECT_DIRECTORY: the scenarios import the lab's data loader from
	# the project Molecule runs in, as Molecule sets it.
	MOLECULE_PROJECT_DIRECTORY=$(CURDIR) ANSIBLE_HOME=$(CURDIR)/.ansible ansible-lint --offline

sanity: venv
	bash scripts/sanity.sh

# Scenarios: default (the whole stack of site.yml on a database and a monitoring
# host), backup_restore (pgBackRest, dumps, restores, drill, faults), runbooks
# (maintenance and incident playbooks on seeded problems), ha (a Patroni + etcd
# cluster of three members with HAProxy and PgBouncer, runbooks and faults under
# a writer; docs/high_availability.md).  One of them:
#   make molecule MOLECULE_SCENARIOS=runbooks
# scripts/molecule_run.py runs MOLECULE_JOBS scenarios at a time, each with its
# own ANSIBLE_HOME and collections path (Molecule installs a copy of the collection
# there) and its log in .build/molecule/; the longest scenario goes first.
MOLECULE_SCENARIOS ?= ha default backup_restore runbooks
MOLECULE_JOBS ?= 2
molecule: bootstrap market-data
	$(BIN)/python scripts/molecule_run.py --jobs $(MOLECULE_JOBS) $(MOLECULE_SCENARIOS)

# Benchmarks (not part of make test; results in bench/results/*.json):
#   bench-converge      site.yml's cold converge on two fresh lab containers of its own
#                       (qp-bc-*) against the floor (apt-get install of the same packages
#                       side by side), its no-op re-run (changed=0), per-play/role times
#   bench-backup        pgBackRest backup/restore MB/s on two containers of its own:
#                       a matrix of compress-type/level, process-max, repo-bundle and
#                       (incrementals) repo-block on the lab data plus BENCH_BACKUP_MB
#                       of generated rows (BENCH_BACKUP_MATRIX=full for the whole
#                       matrix), dd as the disk reference in the same run, and the
#                       restore drill's RTO/RPO on a BENCH_BACKUP_RTO_MB data directory
#   bench-data-quality  ohlcv_data_quality vs seed 002's SQL on a generated
#                       BENCH_DQ_ROWS-row hypertable in the bench's own container
#                       qp-dq-db (the postgresql+timescaledb roles; kept for re-runs)
#   bench-queries       seed 002's query types (the benchmark runbook's role) on the seed's
#                       size estimate (BENCH_Q_TICKERS tickers x 10 years), the role's tuned
#                       configuration vs Debian's defaults in alternating rounds, plus
#                       pgbench, on a container of its own (qp-qb-db)
BENCH_BACKUP_MB ?= 2048
BENCH_BACKUP_RTO_MB ?= 5000
BENCH_BACKUP_MATRIX ?= default
BENCH_CONVERGE_NOOP_RUNS ?= 2
BENCH_DQ_ROWS ?= 10000000
BENCH_DQ_ROUNDS ?= 3
BENCH_Q_TICKERS ?= 1000
BENCH_Q_ROUNDS ?= 3
bench: bench-converge bench-backup bench-data-quality bench-queries

bench-backup: bootstrap market-data
	bash bench/backup_throughput.sh --size-mb $(BENCH_BACKUP_MB) --rto-mb $(BENCH_BACKUP_RTO_MB) --matrix $(BENCH_BACKUP_MATRIX)

bench-converge: bootstrap
	$(BIN)/python bench/converge.py --noop-runs $(BENCH_CONVERGE_NOOP_RUNS)

bench-data-quality: bootstrap
	$(BIN)/python bench/data_quality_scan.py --rows $(BENCH_DQ_ROWS) --rounds $(BENCH_DQ_ROUNDS) --reference main

bench-queries: bootstrap
	bash bench/query_benchmark.sh --tickers $(BENCH_Q_TICKERS) --rounds $(BENCH_Q_ROUNDS)

clean:
	rm -rf .build .cache/ansible-test
