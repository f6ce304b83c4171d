# The clinic assistant's commands. `make help` lists them; README.md explains them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.10 (Rasa 3.6 supports 3.8-3.10); pyenv provides it here, .python-version selects it.
PYTHON ?= $(shell command -v python3.10 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MODEL := models/clinic.tar.gz
SPACY_MODEL := .cache/spacy-en-lookup/config.cfg
# Everything training reads: a change to any of it retrains, nothing else does.
TRAINING_INPUTS := config.yml $(shell find domain data clinic_nlu -type f \( -name '*.yml' -o -name '*.py' \) 2>/dev/null)

# Nothing leaves the machine: Rasa telemetry off in every command, no TF/HF hub downloads.
export RASA_TELEMETRY_ENABLED := false
export HF_HUB_OFFLINE := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export PYTHONPATH := $(CURDIR)
export TQDM_DISABLE := 1
# Used by endpoints.yml outside `make run` (which sets its own): `make shell`, `rasa` by hand.
export ACTION_ENDPOINT_URL ?= http://127.0.0.1:5055/webhook
export TRACKER_SQLITE_DB ?= $(CURDIR)/var/conversations.db

.PHONY: help install train validate run shell test test-unit test-stories test-nlu test-e2e clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: $(BIN)/.installed $(SPACY_MODEL)  ## create .venv and install the pinned packages

$(BIN)/.installed: requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==24.0"
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

$(SPACY_MODEL): $(BIN)/.installed clinic_nlu/spacy_pipeline.py
	$(BIN)/python -m clinic_nlu.spacy_pipeline

train: $(MODEL)  ## train the model (only when data, domain, config or components changed)

$(MODEL): $(BIN)/.installed $(SPACY_MODEL) $(TRAINING_INPUTS)
	$(BIN)/rasa train --domain domain --fixed-model-name clinic --out models
	@touch $@

validate: install  ## check the training data: no errors, warnings or story/rule conflicts
	$(BIN)/rasa data validate --domain domain --fail-on-warnings

run: train  ## start everything (action server, Rasa server); Ctrl-C stops it all
	@$(BIN)/python -m stack.launch

shell: train  ## chat in the terminal (starts the action server in the background)
	@mkdir -p var
	@$(BIN)/rasa run actions --port 5055 >/dev/null 2>&1 & pid=$$!; \
	  trap "kill $$pid" EXIT; $(BIN)/rasa shell -m $(MODEL) --endpoints endpoints.yml

test: validate train test-unit test-stories test-nlu test-e2e  ## everything CI runs

test-unit: install  ## unit tests: grounding, data, urgency detector, actions
	$(BIN)/python -m pytest tests/unit -q

test-stories: train  ## conversation tests (tests/stories), failing on any wrong prediction
	$(BIN)/rasa test core -m $(MODEL) --stories tests/stories --fail-on-prediction-errors --out results/stories

test-nlu: train  ## intent accuracy and macro F1 on the held-out set; fails below 0.90
	$(BIN)/rasa test nlu -m $(MODEL) --nlu tests/nlu/heldout.yml --out results/nlu >/dev/null
	$(BIN)/python scripts/nlu_report.py results/nlu/intent_report.json --min-accuracy 0.90

test-e2e: train  ## end-to-end tests through the REST channel against running servers
	$(BIN)/python -m pytest tests/e2e -q

clean:  ## remove the trained model and test results (keeps .venv)
	rm -rf models results .cache
