# lactose_audio — every install step lives here. `make test` and `make demo` set up first.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lactose-installed
AOT_MANIFEST := lactose_audio/_kernels_aot.json
DDSP_VERSION := 3.7.0
DEMO_DIR ?= demo_out

.PHONY: setup test demo lint format bench bench-long bench-export plugin-deps datasets clean

setup: $(STAMP) $(AOT_MANIFEST)

# Re-run only when pyproject.toml (or this file) changed since the last install.
# ddsp is installed without its stale pins (TF<=2.11, numpy<1.24, crepe, which downloads
# weights at build time): see DESIGN §8 and lactose_audio/_ddsp.py.
$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps ddsp==$(DDSP_VERSION)
	@touch $(STAMP)

# The render path's numba kernels compiled ahead of time (lactose_audio/aot.py): a fresh
# `lactose render` then starts without importing numba (~0.2 s instead of ~0.7 s). Rebuilt when
# a kernel module changes; a failed build only warns (numba compiles on first use instead).
KERNEL_SOURCES := $(addprefix lactose_audio/,conditioning.py svf.py ranges/edges.py \
	blocks/waveshapers.py blocks/dynamics.py pitch.py pitch_viterbi.py aot.py _numba.py)
$(AOT_MANIFEST): $(STAMP) $(KERNEL_SOURCES)
	$(BIN)/python -m lactose_audio.aot

test: setup
	$(BIN)/python -m pytest -q -n 2 --dist worksteal

demo: setup
	$(BIN)/python scripts/demo.py --out $(DEMO_DIR)

lint: setup
	$(BIN)/ruff check lactose_audio tests scripts
	$(BIN)/ruff format --check lactose_audio tests scripts

format: setup
	$(BIN)/ruff format lactose_audio tests scripts
	$(BIN)/ruff check --fix lactose_audio tests scripts

datasets: setup
	$(BIN)/python scripts/make_datasets.py

bench: setup
	$(BIN)/python scripts/bench_bank.py
	$(BIN)/python scripts/bench_render.py
	$(BIN)/python scripts/bench_startup.py
	$(BIN)/python scripts/bench_pitch.py
	$(BIN)/python scripts/bench_quality.py

# The long ones: fidelity (12 effects x 2 configurations x 120 s, ~50 min), long files
# (60-minute takes), knob captures.
bench-long: setup
	$(BIN)/python scripts/bench_fidelity.py
	$(BIN)/python scripts/bench_long.py
	$(BIN)/python scripts/bench_knobs.py --budget-seconds 90 --joint-budget 2.4

bench-export: setup
	$(BIN)/python scripts/bench_export.py

# Faust's toolchain for `lactose export --format lv2|vst3|clap|jack` and lv2file for the LV2
# test (Debian/Ubuntu, needs root). Never needed by `make test` or `make demo`: the export
# tests compile with DawDreamer (PyPI), and the LV2 test skips without these.
plugin-deps:
	apt-get install -y faust libboost-dev lv2-dev lv2file

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache $(DEMO_DIR) lactose_audio/_kernels_aot*
