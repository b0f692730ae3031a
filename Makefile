# Every target does its own set-up: a fresh clone needs only python3 (3.11), java (17) and mvn.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HASH   := $(shell cksum pyproject.toml | cut -d' ' -f1)
STAMP  := $(VENV)/.installed-$(HASH)
TRAIN_STAMP := $(VENV)/.installed-train-$(HASH)
BENCH_STAMP := $(VENV)/.installed-bench-$(HASH)
PYTEST_ARGS ?=

.PHONY: audit bench soak default-model eval-diginetica eval-intent eval-repeat help venv venv-train kafka-up kafka-down kafka-status topics worker demo lint unit integration test clean

help:
	@echo "make demo         local broker + worker + generated traffic, one shopper followed live"
	@echo "make test         lint + unit + integration tests (starts the local broker)"
	@echo "make kafka-up     start the local Kafka 3.9.2 broker (127.0.0.1:9092); kafka-down stops it"
	@echo "make worker       run a worker in the foreground"
	@echo "make bench        throughput, latency, state size, recovery (bench/results.json, bench/latency.png)"
	@echo "make audit        known vulnerabilities in the installed packages (pip-audit; CI runs it)"
	@echo "make soak         45 min of traffic, worker SIGKILLed every 15 min: lost events, memory (bench/soak.json)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-[0-9]* && touch $@

# PyTorch (a multi-GB wheel on PyPI) only where a model is trained: tests train a tiny one.
$(TRAIN_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,train]'
	rm -f $(VENV)/.installed-train-* && touch $@

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	rm -f $(VENV)/.installed-bench-* && touch $@

venv: $(STAMP)

venv-train: $(TRAIN_STAMP)

kafka-up: venv
	$(BIN)/streams kafka up

kafka-down:
	@if [ -x $(BIN)/streams ]; then $(BIN)/streams kafka down; fi

kafka-status: venv
	$(BIN)/streams kafka status

topics: kafka-up
	$(BIN)/streams topics create

worker: topics
	$(BIN)/streams worker

demo: topics
	$(BIN)/streams demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: venv-train $(BENCH_STAMP)
	$(BIN)/pytest -q -m "not integration" $(PYTEST_ARGS)

integration: kafka-up $(BENCH_STAMP)
	$(BIN)/pytest -q -m integration --reruns 1 --reruns-delay 5 $(PYTEST_ARGS)

# Integration tests share two cores with a broker and several workers: a test that fails on a
# timing limit gets one more try (pytest-rerunfailures reports it as "rerun", never hidden).
# The benchmark's peers (bench extra) are tested too.
test: lint venv-train $(BENCH_STAMP) kafka-up
	$(BIN)/pytest -q --reruns 1 --reruns-delay 5 $(PYTEST_ARGS)

# Every installed package (our pins and what they pull in) against PyPI's vulnerability data.
# --strict: a package the service cannot look up fails the audit too (pip-audit would only warn),
# so an unreachable service never passes as "no known vulnerabilities".
# PIP_AUDIT_ARGS picks another service, e.g. "--vulnerability-service osv".
# AUDIT_STRICT= (empty) lists the packages that could not be looked up and fails only on a found
# vulnerability: .ci/run does that, because the CI machine's PyPI serves no per-version data.
PIP_AUDIT_ARGS ?=
AUDIT_STRICT ?= --strict
audit: venv-train
	$(BIN)/pip-audit --skip-editable $(AUDIT_STRICT) --progress-spinner off $(PIP_AUDIT_ARGS)

# About 10 minutes; every figure printed beside its target (docs/performance.md).
bench: kafka-up $(BENCH_STAMP)
	$(BIN)/streams bench --out bench

# 45 minutes plus the drain; prints events in and out, dead letters, lost events and memory (docs/performance.md, "Soak").
# Lives of 15 minutes: a restarted worker's memory takes about 6 minutes to level off, so each life's
# second half, which the memory verdict judges, starts after it.
soak: kafka-up
	$(BIN)/streams soak --minutes 45 --kill-every 900 --out bench

clean:
	rm -rf .cache/worker .cache/demo .pytest_cache .ruff_cache

# The shipped default model, trained on traffic the project generates itself.
default-model: venv-train
	$(BIN)/streams generate --users 2000 --items 2000 --events 200000 --seed 7 --out build/default/traffic.jsonl.gz
	@# The training defaults; no time budget, so every machine runs the same epochs.
	$(BIN)/streams train --events build/default/traffic.jsonl.gz --out models/onnx/default \
	  --threads 1 --max-minutes 0 --quiet

# Research-only: trains on the Diginetica files into build/ (never committed) and prints the table.
DIGINETICA ?= ../shared/data/diginetica-srgnn
eval-diginetica: venv-train
	$(BIN)/streams train --sessions $(DIGINETICA)/train_sessions.txt.gz --out build/diginetica \
	  --epochs 8 --decay-after 4 --dropout 0.25 --refit --max-minutes 38 --threads 1 --quiet
	$(BIN)/streams evaluate --model build/diginetica --data $(DIGINETICA) \
	  --threads 2 --json build/diginetica/evaluation.json
	@# The serving path, scored by nothing of ours: `streams predict`'s top 20 against the targets.
	$(BIN)/streams predict --model build/diginetica --prefixes $(DIGINETICA)/test_prefix_target.tsv.gz \
	  --k 20 --out build/diginetica/predictions.txt
	gzip -dc $(DIGINETICA)/test_prefix_target.tsv.gz | cut -f2 | paste - build/diginetica/predictions.txt | \
	  awk -F'\t' '{ n++; k = split($$2, p, " "); for (i = 1; i <= k && i <= 20; i++) if (p[i] == $$1) { h++; m += 1 / i; break } } \
	  END { printf "streams predict, scored by awk: HR@20 %.2f MRR@20 %.2f (%d cases)\n", 100 * h / n, 100 * m / n, n }'

# S-POP beside the model where shoppers re-visit items: generated traffic (the default model's) and
# the YOOCHOOSE sample's sessions, each split in time and trained with the defaults, and Diginetica
# (its model only if `make eval-diginetica` built one). Research-only, into build/; one table.
YOOCHOOSE ?= ../shared/data/yoochoose-sample
define eval_log_sessions
	$(BIN)/streams sessions build/$(1)/events.jsonl.gz --out build/$(1) --json build/$(1)/sessions.json
	$(BIN)/streams train --sessions build/$(1)/train_sessions.txt.gz --out build/$(1)/model --quiet
	$(BIN)/streams evaluate --model build/$(1)/model --data build/$(1) --json build/$(1)/evaluation.json
endef
eval-repeat: venv-train
	$(BIN)/streams generate --users 2000 --items 2000 --events 200000 --seed 7 --out build/generated/events.jsonl.gz
	$(call eval_log_sessions,generated)
	$(BIN)/streams import yoochoose $(YOOCHOOSE) --out build/yoochoose/events.jsonl.gz
	$(call eval_log_sessions,yoochoose)
	mkdir -p build/eval-repeat
	if [ -f build/diginetica/metadata.json ]; then \
	  $(BIN)/streams evaluate --model build/diginetica --data $(DIGINETICA) --json build/eval-repeat/diginetica.json; \
	else \
	  $(BIN)/python -m streams.model.evaluate $(DIGINETICA) --json build/eval-repeat/diginetica.json; \
	fi
	$(BIN)/python -m streams.model.comparison --json build/eval-repeat.json \
	  --dataset generated build/generated build/generated/evaluation.json \
	  --dataset yoochoose build/yoochoose build/yoochoose/evaluation.json \
	  --dataset diginetica $(DIGINETICA) build/eval-repeat/diginetica.json

# Research-only: purchase intent on the YOOCHOOSE sample (read by path; everything lands in build/intent,
# never committed): the newest 20 % of sessions tested, each cut before its first buy; prints the table.
eval-intent: venv-train
	$(BIN)/streams import yoochoose $(YOOCHOOSE) --out build/intent/yoochoose.jsonl.gz
	$(BIN)/streams intent-split --events build/intent/yoochoose.jsonl.gz --out build/intent
	$(BIN)/streams train --events build/intent/train.jsonl.gz --out build/intent --threads 1 --quiet
	$(BIN)/streams predict --intent --model build/intent --events build/intent/test.jsonl.gz \
	  --out build/intent/test_intent.tsv
	$(BIN)/streams evaluate-intent --split build/intent --predictions build/intent/test_intent.tsv \
	  --json build/intent/evaluation.json
