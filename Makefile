# Set-up and entry points: `make demo` and `make test` install whatever they need first.
#
#   PYTHON=python3.13   the interpreter (a name on PATH, a path, or a pyenv version's name)
#   STACK=pinned        facetorch's own torch 2.3.1 / numpy 1.26 instead of today's torch
#
# Each (PYTHON, STACK) pair gets its own virtual environment: .venv for the default
# (python3, current), .venv-<python>-<stack> otherwise.
PYTHON ?= python3
STACK ?= current
STACKS := current pinned
ifeq ($(filter $(STACK),$(STACKS)),)
$(error STACK=$(STACK): choose one of $(STACKS))
endif
ifeq ($(PYTHON)-$(STACK),python3-current)
VENV ?= .venv
else
VENV ?= .venv-$(notdir $(PYTHON))-$(STACK)
endif
BIN := $(VENV)/bin
# Per checkout: a shared environment (STACK_VENVS below) is re-pointed at this checkout.
STAMP := $(VENV)/.fatools-installed-$(shell pwd | cksum | cut -d' ' -f1)
SHARED ?= ../shared
DEMO_DIR ?= demo
VIDEO ?= $(DEMO_DIR)/sample-pan.mp4
# The demo's photo: family4.jpg from ../shared when there is one, else a portrait that
# matplotlib ships (sha256-checked by fatools.sample), so that a fresh clone's demo runs.
SAMPLE_PHOTO ?= $(if $(wildcard $(SHARED)/testdata/faces/family4.jpg),$(SHARED)/testdata/faces/family4.jpg,builtin:grace_hopper)
# facetorch 0.6.2 declares torch<2.4, which is stale: on the current stack it is installed
# with --no-deps (fatools declares its real dependencies); on the pinned stack with them.
FACETORCH := facetorch==0.6.2
PIP := $(BIN)/python -m pip install --quiet
INSTALL_current = $(PIP) -c constraints/current.txt -e '.[test,lint]' && $(PIP) --no-deps '$(FACETORCH)'
INSTALL_pinned = $(PIP) -c constraints/pinned.txt -e '.[test]' '$(FACETORCH)'

.PHONY: install system-deps feat-envs lint test test-stacks test-part wheel-smoke demo clean

# The virtual environment, brought up to date when the dependencies change.
# fatools/versions.py: the version is read from it at install time (pyproject dynamic), so a bump reinstalls.
$(STAMP): pyproject.toml fatools/versions.py constraints/$(STACK).txt
	@[ -x $(BIN)/python ] || { py=$$(scripts/find-python $(PYTHON)) && echo "$(VENV): $$py, $(STACK) stack" && $$py -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(INSTALL_$(STACK))
	touch $@

install: $(STAMP)

# What the tests use from Debian: the ffmpeg CLI (variable-frame-rate and rotated clips),
# GNU parallel, SLURM with munge (a one-node cluster the scheduler tests start), and
# headless Chromium with its driver (the HTML report's browser tests, through Selenium),
# and man (make wheel-smoke finds the installed pages with `man -w`); the live-input servers
# of tests/test_live_servers.py: nginx with its RTMP module, and GStreamer's RTSP server run
# by Debian's python3 (python3-gi, the typelib, the plugins of its test pipeline:
# videotestsrc, x264enc, rtph264pay). Those are libraries, not commands: their pair names a
# file the package installs (`command -v` finds any existing path; `*` is the multiarch
# directory). Installing libnginx-mod-rtmp pulls in nginx, which Debian may start as a
# service on port 80 where an init system runs; the tests start their own.
SYSTEM_TOOLS := ffmpeg:ffmpeg parallel:parallel sbatch:slurm-wlm slurmctld:slurmctld slurmd:slurmd munged:munge \
	chromium:chromium chromedriver:chromium-driver man:man-db \
	/usr/lib/nginx/modules/ngx_rtmp_module.so:libnginx-mod-rtmp \
	/usr/lib/python3/dist-packages/gi/__init__.py:python3-gi \
	/usr/lib/*/girepository-1.0/GstRtspServer-1.0.typelib:gir1.2-gst-rtsp-server-1.0 \
	/usr/lib/*/gstreamer-1.0/libgstvideotestsrc.so:gstreamer1.0-plugins-base \
	/usr/lib/*/gstreamer-1.0/libgstrtp.so:gstreamer1.0-plugins-good \
	/usr/lib/*/gstreamer-1.0/libgstx264.so:gstreamer1.0-plugins-ugly
system-deps:
	@missing=; for pair in $(SYSTEM_TOOLS); do \
	  tool=$${pair%%:*}; package=$${pair##*:}; \
	  command -v $$tool >/dev/null 2>&1 || [ -x /usr/sbin/$$tool ] || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing (the tests use them)"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# Two workers by default (pytest-xdist), each on its own core (tests/conftest.py sets the
# worker's CPU affinity, which fatools sizes its threads by: two workers each running two
# torch and ONNX Runtime threads spun against each other, 14.3 CPU minutes instead of 8.6).
# Each test module runs whole on one worker (--dist loadscope), so that its module fixtures
# (a browser, a SLURM cluster, parity models) start once, and the costliest modules go
# first (tests/scheduling.py). TEST_WORKERS=0: one process.
# Measured on 2 Intel Xeon cores (548 tests): 4 min 33 s quiet (5 min 31 s for 538 tests
# before this round's cuts; two unpinned workers: 10 min 19 s; three workers, pinned or
# unpinned with one thread each, were slower than two: 7 min 56 s).
TEST_WORKERS ?= 2
PYTEST_WORKERS = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadscope)

# ruff's lint and format check and mypy, with the versions and rules pyproject.toml pins.
LINT_PATHS := fatools tests benchmarks scripts examples
lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

test: install system-deps feat-envs
	FATOOLS_FEAT_VENVS=$(STACK_VENVS) $(BIN)/python -m pytest -q $(PYTEST_WORKERS)

# The other ends of the supported range, beside the default stack: facetorch's pinned
# torch 2.3.1 / numpy 1.26, and Python 3.13 on today's torch. Each runs the parity,
# pipeline and export tests, and checks its records against the default stack's on a
# clip, and fa-agree's statistics (pandas and scikit-learn differ most between the stacks).
# Their environments live outside the checkout, so a machine that has one reuses it.
STACK_TESTS ?= tests/test_stack.py tests/test_predict_parity.py tests/test_run.py tests/test_export.py tests/test_detect_real.py tests/test_agree.py
STACK_VENVS ?= $(HOME)/.cache/fatools/venvs
test-stacks: install system-deps
	$(MAKE) test-part STACK=pinned VENV=$(STACK_VENVS)/python3-pinned
	$(MAKE) test-part PYTHON=python3.13 VENV=$(STACK_VENVS)/python3.13-current

test-part: install system-deps
	FATOOLS_REFERENCE_PYTHON=$(abspath .venv/bin/python) $(BIN)/python -m pytest -q $(PYTEST_WORKERS) $(STACK_TESTS)

# The package as a user installs it (scripts/wheel-smoke): sdist and wheel built and checked
# (twine), the wheel installed into an environment outside the checkout (STACK_VENVS/
# wheel-smoke; build and twine in STACK_VENVS/wheel-build, not in fatools' dependencies),
# then, outside the checkout, every command's --help and --version, fa-models doctor, a
# short fa-run writing every format, every package file and man page installed, man -w.
wheel-smoke: system-deps
	PYTHON=$(PYTHON) WHEEL_SMOKE_VENVS=$(STACK_VENVS) bash scripts/wheel-smoke

# py-feat itself, one environment per release, outside the checkout like the stacks': the
# clients tests/test_pyfeat.py runs on the wide table (its FEAT_VERSIONS are these). Each
# is a plain `pip install py-feat==X` under constraints/py-feat-X.txt (what old releases
# need of today's packages), checked by importing read_feat, and stamped so that a rerun
# is instant. The stamp is named by the constraints' content, not dated by their files,
# so that a fresh clone (CI's) reuses the environments. Python 3.11: py-feat 2 needs
# >= 3.11, and 0.6's nltools pins numpy < 1.24, whose wheels stop at 3.11. Measured:
# 5.3 minutes for both, 6.5 GB (2.1.5) and 7.9 GB (0.6.2, its own older torch, a 3.9 GB
# download); PyTorch's CUDA wheels are most of it. torchcodec (py-feat 2) loads FFmpeg's
# libraries: system-deps.
FEAT_VERSIONS := 2.1.5 0.6.2
FEAT_PYTHON ?= python3.11
FEAT_STAMP := .fatools-feat-$(shell cat constraints/py-feat-*.txt | cksum | cut -d' ' -f1)
$(STACK_VENVS)/py-feat-%/$(FEAT_STAMP): | system-deps
	@[ -x $(@D)/bin/python ] || { py=$$(scripts/find-python $(FEAT_PYTHON)) && echo "$(@D): $$py, py-feat $*" && $$py -m venv $(@D); }
	$(@D)/bin/python -m pip install --quiet --upgrade pip
	$(@D)/bin/python -m pip install --quiet -c constraints/py-feat-$*.txt 'py-feat==$*'
	$(@D)/bin/python -W ignore -c 'import feat; from feat.utils.io import read_feat; assert feat.__version__ == "$*", feat.__version__'
	rm -f $(@D)/.fatools-feat-* && touch $@

feat-envs: $(foreach version,$(FEAT_VERSIONS),$(STACK_VENVS)/py-feat-$(version)/$(FEAT_STAMP))

# A sample clip (camera pan and zoom over a real photo) when no VIDEO is given.
$(DEMO_DIR)/sample-pan.mp4: | $(STAMP)
	mkdir -p $(DEMO_DIR)
	$(BIN)/python -m fatools.sample $(SAMPLE_PHOTO) $@ --seconds 4

demo: install $(VIDEO)
	bash scripts/demo.sh $(VIDEO) $(DEMO_DIR)

clean:
	rm -rf .venv .venv-* $(DEMO_DIR) .pytest_cache

# Tests of the tests (issue 29): each mutant of the pre-processing (tests/mutants.py: a
# crop one pixel off, BGR for RGB, a resize without antialiasing, a wrong normalisation),
# in the default and the facetorch-exact mode, must fail the tests that back that mode's
# exactness claim; the unmutated run must pass. Prints which tests caught each mutant.
# MUTANTS="crop:default ..." picks some (default: all eight).
MUTANTS ?=
.PHONY: test-mutants
test-mutants: install
	$(BIN)/python tests/mutants.py $(MUTANTS)
