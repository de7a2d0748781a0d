# fstore-batch: every set-up step a fresh machine needs, in order. `make demo` and `make test`
# install what is missing (system packages, venv, jars, HBase) and are safe to re-run.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HBASECTL := stack/hbase/hbasectl
CLUSTERCTL := stack/spark/clusterctl
S3CTL := stack/s3/s3ctl
# Maven's local repository: the user's usual one, so a fresh clone reuses what any earlier clone fetched.
export FSTORE_M2 ?= $(HOME)/.m2/repository
SPARK_JARS := .cache/spark-jars
export JAVA_HOME ?= $(shell [ -d /usr/lib/jvm/java-17-openjdk-amd64 ] && echo /usr/lib/jvm/java-17-openjdk-amd64)
export PYSPARK_PYTHON := $(CURDIR)/$(PY)
PYTEST_ARGS ?=
# Two test processes (pytest-xdist); tests that share HBase tables, the Thrift server, the cluster or
# a folder are kept in one process (tests/support/parallel.py). PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 2
PYTEST_XDIST := -n $(PYTEST_WORKERS) --dist loadscope
# Airflow 3 lives in its own virtualenv: its Spark provider brings a `pyspark` of its own.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_PY := $(AIRFLOW_VENV)/bin/python
# No byte-compiling of every installed module (pip's default): Python compiles what it imports, once,
# into the venv. Measured on a fresh clone with pip's cache warm: 72 s -> 44 s for .venv.
PIP_NO_COMPILE := --no-compile
AIRFLOW_REQS := apache-airflow==3.3.2 apache-airflow-providers-apache-spark==6.3.4 pytest pytest-timeout pyyaml

.PHONY: help sysdeps browser install jars airflow airflow-lock dist hbase-up hbase-down hbase-status cluster-up cluster-down \
	cluster-status s3-up s3-down s3-status sample demo test unit lint bench clean

help:  ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

sysdeps:  ## Java 17 and Maven (Debian packages) if missing
	@if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then \
	  echo "installing openjdk-17-jdk-headless and maven"; \
	  apt-get update -qq && apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null; fi

browser:  ## Debian's chromium (headless) for the report's browser test, if missing
	@if ! command -v chromium >/dev/null; then \
	  echo "installing chromium"; \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null; fi

$(VENV)/.installed: pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q $(PIP_NO_COMPILE) -c constraints.txt -e '.[dev,notebooks]'
	touch $@

install: $(VENV)/.installed  ## Python virtualenv with pinned packages (constraints.txt)

$(AIRFLOW_VENV)/.installed: constraints-airflow.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	[ -x $(AIRFLOW_PY) ] || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_PY) -m pip install -q --upgrade pip
	$(AIRFLOW_PY) -m pip install -q $(PIP_NO_COMPILE) -c constraints-airflow.txt $(AIRFLOW_REQS)
	touch $@

airflow: $(AIRFLOW_VENV)/.installed  ## Airflow 3 + Spark provider in .venv-airflow (pinned: constraints-airflow.txt)

airflow-lock:  ## re-resolve Airflow's packages from scratch and rewrite constraints-airflow.txt
	rm -rf .cache/airflow-lock && $(PYTHON) -m venv .cache/airflow-lock
	.cache/airflow-lock/bin/python -m pip install -q --upgrade pip
	.cache/airflow-lock/bin/python -m pip install -q $(AIRFLOW_REQS)
	{ echo "# Lock file for .venv-airflow (make airflow-lock rewrites it): pip freeze of a clean resolve of"; \
	  echo "#   $(AIRFLOW_REQS)"; \
	  .cache/airflow-lock/bin/python -m pip freeze --all --exclude pip; } > constraints-airflow.txt
	rm -rf .cache/airflow-lock

dist: install  ## wheel of the package, and the same as dist/fstore_batch.zip for spark-submit --py-files
	rm -rf dist build && mkdir -p dist
	$(PY) -m pip wheel -q --no-deps --no-build-isolation -w dist .
	cp dist/fstore_batch-*.whl dist/fstore_batch.zip  # a pure-Python wheel is a zip PySpark can import from
	@ls -l dist

$(SPARK_JARS)/.stamp: stack/spark/pom.xml
	rm -rf $(SPARK_JARS)
	mvn -q -B -f stack/spark/pom.xml -Dmaven.repo.local=$(FSTORE_M2) package
	touch $@

jars: sysdeps $(SPARK_JARS)/.stamp  ## Delta, hadoop-aws, HBase and S3Proxy jars into .cache/ (once; offline afterwards)
	@$(HBASECTL) fetch
	@$(S3CTL) fetch

hbase-up: sysdeps install jars  ## start standalone HBase 2.6 + thrift on 127.0.0.1 (idempotent)
	@$(HBASECTL) up

hbase-down:  ## stop HBase
	@$(HBASECTL) down

hbase-status:  ## is HBase up and answering?
	@$(HBASECTL) status

cluster-up: sysdeps install  ## Spark standalone master + 2 workers (1 core each) on 127.0.0.1:7077 (idempotent)
	@$(CLUSTERCTL) up

cluster-down:  ## stop the Spark cluster
	@$(CLUSTERCTL) down

cluster-status:  ## are the master and both workers up and registered?
	@$(CLUSTERCTL) status

s3-up: sysdeps install jars  ## S3-protocol object store (S3Proxy) on 127.0.0.1:9000, objects in .data/s3-store (idempotent)
	@$(S3CTL) up

s3-down:  ## stop the object store
	@$(S3CTL) down

s3-status:  ## is the object store up and answering?
	@$(S3CTL) status

sample: hbase-up  ## seed the sample tables (SIZE=tiny|small|medium|large)
	$(VENV)/bin/fstore-batch sample --size $(or $(SIZE),small)

demo: hbase-up  ## the end-to-end demo on built-in sample data (SIZE=tiny|small|medium)
	$(PY) scripts/demo.py

test: sysdeps browser install jars airflow  ## start HBase, the Spark cluster and the S3 store, run every test, stop what it started
	@started=""; \
	$(HBASECTL) status >/dev/null 2>&1 || started="$$started $(HBASECTL)"; \
	$(CLUSTERCTL) status >/dev/null 2>&1 || started="$$started $(CLUSTERCTL)"; \
	$(S3CTL) status >/dev/null 2>&1 || started="$$started $(S3CTL)"; \
	trap 'for ctl in $$started; do $$ctl down; done' EXIT; \
	$(HBASECTL) up && $(CLUSTERCTL) up && $(S3CTL) up && $(VENV)/bin/pytest $(PYTEST_XDIST) --durations=15 $(PYTEST_ARGS)

unit: install jars  ## tests that need no HBase
	$(VENV)/bin/pytest tests/unit $(PYTEST_XDIST) --durations=15 $(PYTEST_ARGS)

bench: hbase-up  ## benchmarks (prints ratios against in-process baselines)
	$(PY) benchmarks/snapshot.py

lint: install  ## ruff over the code and tests
	$(VENV)/bin/ruff check .

clean:  ## remove local data (keeps caches and the venv)
	-$(HBASECTL) down
	-$(CLUSTERCTL) down
	-$(S3CTL) down
	rm -rf .data spark-warehouse metastore_db derby.log
