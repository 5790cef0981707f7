# mmdrconv: one-step set-up and the README's commands.
#   make install  create .venv (Python 3.11) with the pinned OpenMMLab stack
#   make demo     run the benchmark suite (installs first)
#   make test     run the test suite (installs first)
SHELL := /bin/bash
PYTHON_BOOTSTRAP ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# Every transitive dependency pinned to a tested version.
PIN := -c requirements/constraints.txt
STAMP := $(VENV)/.installed
JOBS ?= $(shell nproc)
# pytest-xdist workers of `make test`: one per core (tests grouped with
# xdist_group, e.g. the Slurm cluster and the smoke suite, share one worker).
TEST_WORKERS ?= $(shell nproc)
PYTEST_ARGS ?= --durations=20
SUITE ?= configs/suites/demo.py
# mmcv 2.1.0's setup.py needs pkg_resources APIs that setuptools 70 removed.
MMCV_BUILD_SETUPTOOLS := 69.5.1

.PHONY: install demo test clean-venv

install: $(STAMP)

# Rebuilt only when the pins or the package metadata change, so a second
# `make install` on a set-up machine is a no-op.
$(STAMP): requirements/build.txt requirements/mmcv.txt requirements/runtime.txt \
          requirements/tests.txt requirements/constraints.txt setup.py
	@test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PIP) install -q $(PIN) -r requirements/build.txt
	@if $(PY) -c "import mmcv, mmcv._ext" 2>/dev/null; then \
	  echo "mmcv with compiled ops already installed."; \
	else \
	  echo "==> Installing mmcv 2.1.0 with its compiled ops (MMCV_WITH_OPS=1)."; \
	  echo "    PyPI ships no mmcv wheels, so the first install compiles ~77 C++ files:"; \
	  echo "    7 to 25 minutes on 2 cores. pip caches the built wheel; later installs reuse it."; \
	  $(PIP) install -q 'setuptools==$(MMCV_BUILD_SETUPTOOLS)' && \
	  MMCV_WITH_OPS=1 MAX_JOBS=$(JOBS) $(PIP) install --no-build-isolation $(PIN) \
	    -r requirements/mmcv.txt && \
	  $(PIP) install -q $(PIN) -r requirements/build.txt || exit 1; \
	fi
	$(PIP) install -q $(PIN) -r requirements/runtime.txt -r requirements/tests.txt
	$(PIP) install -q --no-build-isolation --no-deps -e .
	$(PY) -c "import mmcv._ext, mmdet.models, mmseg.models, mmdrconv; print('mmdrconv stack ready')"
	@touch $(STAMP)

demo: install
	$(PY) tools/suite.py $(SUITE) --jobs $(JOBS)

test: install
	$(PY) tests/slurm_cluster.py install  # Slurm for tests/test_slurm.py
	$(PY) -m pytest tests -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
