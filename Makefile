# Two commands on a fresh machine: `make run` trains and tests the default model, `make test` runs
# the test suite. Both create .venv and install into it from this repository's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_DIR ?= runs/default

.PHONY: run test bench studies report install install-test install-bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'

install-bench: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'

# --replace: a second `make run` trains again and swaps the new run in only once it has finished.
run: install
	$(BIN)/mnistlab train --out $(RUN_DIR) --replace
	$(BIN)/mnistlab test --weights $(RUN_DIR)/model.safetensors

# .ci/install-browser: Debian's chromium for the browser tests, when missing and installable (else skipped).
test: install-test
	.ci/install-browser
	$(BIN)/python -m pytest

# Every study of the report, one after the other (hours of 2-core time; rerun to resume).
STUDIES ?= init batch_size stopping stopping_fast fine_tuning augmentation architecture best
studies: install-test
	for s in $(STUDIES); do $(BIN)/mnistlab sweep experiments/$$s.toml --no-progress || exit 1; done

# The studies' figures under docs/figures/ and docs/report.html, redrawn from results/ (no training).
REPORT_STUDIES ?= init,batch_size,architecture,stopping,stopping_fast,fine_tuning,fine_tuning_readings,augmentation,augmentation_student,best,cnn_recipe,cnn_recipe2,cnn_recipe3,cnn
REPORT_WEIGHTS ?= pretrained
report: install-test
	for s in $$(echo $(REPORT_STUDIES) | tr , ' '); do $(BIN)/mnistlab plot results/$$s/ --out docs/figures/$$s || exit 1; done
	$(BIN)/mnistlab report results/ --out docs/report.html --studies $(REPORT_STUDIES) --weights $(REPORT_WEIGHTS)

bench: install-bench
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf $(VENV) runs build dist
