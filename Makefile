# Set-up and entry points: `make demo` and `make test` install whatever they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fatools-installed
SHARED ?= ../shared
DEMO_DIR ?= demo
VIDEO ?= $(DEMO_DIR)/family4-pan.mp4

.PHONY: install system-deps test demo clean

# The virtual environment, rebuilt when the dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

# The ffmpeg CLI makes variable-frame-rate and rotated test clips.
system-deps:
	@command -v ffmpeg >/dev/null 2>&1 || { \
	  echo "installing ffmpeg (the tests make VFR and rotated clips with it)"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq ffmpeg >/dev/null; }

test: install system-deps
	$(BIN)/python -m pytest -q

# A sample clip (camera pan and zoom over a real photo) when no VIDEO is given.
$(DEMO_DIR)/family4-pan.mp4: | $(STAMP)
	mkdir -p $(DEMO_DIR)
	$(BIN)/python -m fatools.sample $(SHARED)/testdata/faces/family4.jpg $@ --seconds 4

demo: install $(VIDEO)
	bash scripts/demo.sh $(VIDEO) $(DEMO_DIR)

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
