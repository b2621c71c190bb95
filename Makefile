# sandu — the two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 8000
ENTERPRISES ?= 2000
HISTORY_MONTHS ?= 0

.PHONY: setup run test stories bench mutate clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "sandu needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,spark]"
	touch $(STAMP)

# the browser libraries sandu serves itself (no CDN), fetched from the npm registry and checked by SHA-256
VENDORED := src/sandu/web/static/vendor/echarts-5.6.0.min.js
$(VENDORED): tools/vendor_static.py
	$(PYTHON) tools/vendor_static.py

setup: $(STAMP) $(VENDORED)

## run: set up, migrate, seed the demo universe into var/sandu.db and serve on :$(PORT); HISTORY_MONTHS=3 first runs the new
## store forward 3 months of simulated history (sandu simulate --history; minutes, not seconds: off by default)
run: setup
	$(BIN)/sandu demo --enterprises $(ENTERPRISES) --port $(PORT) --history-months $(HISTORY_MONTHS)

## test: set up and run the whole suite (PostgreSQL runs are skipped without a server unless CI=true),
## on TEST_WORKERS processes (pytest-xdist: each test file whole and in order on one of them, the files handed out in
## collection order — not by test count, which would leave the few-but-long files to the end; TEST_WORKERS=0: one process)
TEST_WORKERS ?= 2
test: setup
	$(BIN)/ruff check src tests bench tools
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

## bench: set up and run every benchmark (bench/run: about 25–30 minutes on 2 cores), one table of figures → bench/results.md;
## BENCH_ARGS="--quick" for a ~3-minute smoke run (→ var/bench/results.md), "--only ledger_throughput,eod_speed" for some
BENCH_ARGS ?=
bench: setup
	$(BIN)/python bench/run $(BENCH_ARGS)

## mutate: mutation testing of the engines (mutmut, incremental under mutants/); ENGINES="ledger policy" narrows it
ENGINES ?= domain ledger policy scoring sources
mutate: setup
	mkdir -p mutants/src
	PYTHONPATH=$(CURDIR)/mutants/src $(BIN)/mutmut run --max-children 2 $(foreach e,$(ENGINES),"sandu.$(e).*")
	$(BIN)/python tools/mutation_report.py --engines $(ENGINES) --require ledger=90,policy=90

stories: setup
	$(BIN)/sandu stories

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis mutants
