# runbook.ops: `make demo` and `make test` do all the set-up on a fresh Debian/Ubuntu machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STATE := .state
COLLECTION_LINK := .collections/ansible_collections/runbook/ops
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

APT_PACKAGES := postgresql redis-server logrotate shellcheck zstd lz4 jq
APT := apt-get -o DPkg::Lock::Timeout=600 -y -q

.PHONY: help deps docker-engine venv demo demo-stop test unit sanity lint integration images molecule lab lab-down lab-test ee ee-test bench bench-daily bench-backup bench-tuning bench-logs clean

help:
	@echo "make demo       start a throwaway PostgreSQL and HTTP service, run playbooks/daily.yml"
	@echo "make demo-stop  stop what make demo started"
	@echo "make test       unit, sanity, lint and integration tests (installs what they need)"
	@echo "make molecule   every role's Molecule scenario in local containers, with stage times"
	@echo "make lab        start the three lab hosts (containers) and run playbooks/daily.yml across them"
	@echo "make lab-down   remove the lab hosts"
	@echo "make ee         build the execution environment runbook-ops/ee:bookworm (ansible-builder; cached)"
	@echo "make bench      every benchmark in bench/ (or bench-daily, bench-backup, bench-tuning, bench-logs)"

# Distribution packages the demo and the tests run for real. Installed only when missing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO $(APT) update >/dev/null && DEBIAN_FRONTEND=noninteractive $$SUDO $(APT) install $$missing >/dev/null; \
	fi

# A Docker engine for the docker_container probe tests (and later Molecule): Debian's
# docker.io and dockerd started directly (no systemd as PID 1 here), plus a tiny local
# image; no registry is reachable. Idempotent: seconds when it already runs.
docker-engine:
	@bash tests/bin/ensure-docker.sh

$(BIN)/.installed: requirements-dev.txt
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(COLLECTION_LINK):
	@mkdir -p $(dir $@)
	@ln -sfn ../../.. $@

venv: $(BIN)/.installed $(COLLECTION_LINK)

demo: deps venv
	@$(BIN)/python tools/embedded.py start --state $(STATE)/demo --services postgres,http > $(STATE)/demo-services.json
	@$(BIN)/python tools/embedded.py status --state $(STATE)/demo > /dev/null
	$(BIN)/ansible-playbook -i inventories/local playbooks/daily.yml \
	  -e runbook_ops_state_dir=$(CURDIR)/$(STATE)/demo \
	  -e daily_checks_report_dir=$(CURDIR)/reports/daily
	@echo
	@echo "Report: $(CURDIR)/reports/daily/latest/report.md (also report.json, junit.xml)"
	@echo "Stop the demo services with: make demo-stop"

demo-stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python tools/embedded.py stop --state $(STATE)/demo > /dev/null; fi
	@echo "demo services stopped"

test: deps venv unit sanity lint integration molecule lab-test ee-test

unit:
	$(BIN)/pytest -q tests/unit

sanity:
	tests/sanity/run.sh

lint:
	$(BIN)/ruff check plugins tests tools bench
	$(BIN)/ansible-lint
	$(BIN)/antsibull-changelog lint

integration: docker-engine
	$(BIN)/pytest -q -n 2 tests/integration

# Local images (debootstrap + docker import, then docker build; no registry): cached,
# seconds when current. Exit 3 from the scripts means no container engine can run here.
images: venv
	@bash tests/lab/lab.sh images

molecule: venv
	@$(BIN)/python tests/lab/molecule_run.py || { rc=$$?; [ $$rc = 3 ] || exit $$rc; }

lab: venv
	@bash tests/lab/lab.sh up
	$(BIN)/ansible-playbook -i inventories/lab playbooks/daily.yml
	@echo "Report: $(CURDIR)/reports/lab/latest/report.md   Remove the lab with: make lab-down"

lab-down:
	@bash tests/lab/lab.sh down

lab-test: venv
	$(BIN)/pytest -q tests/lab

# The execution environment AWX would run: ansible-builder from a local Debian base
# (tests/ee/build.sh; cached by a hash of its inputs). ee-test runs a playbook in it.
ee: venv
	@bash tests/ee/build.sh

ee-test: venv
	$(BIN)/pytest -q tests/ee

bench: bench-daily bench-tuning bench-logs bench-backup

bench-daily: deps venv
	$(BIN)/python bench/daily_run.py

bench-backup: deps venv
	$(BIN)/python bench/backup.py

bench-tuning: deps venv
	$(BIN)/python bench/tuning.py

bench-logs: deps venv
	$(BIN)/python bench/logs.py

clean: demo-stop
	rm -rf $(STATE) reports tests/output .collections
