# The clinic assistant's commands. `make help` lists them; README.md explains them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.10 (Rasa 3.6 supports 3.8-3.10); pyenv provides it here, .python-version selects it.
PYTHON ?= $(shell command -v python3.10 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MODEL := models/clinic.tar.gz
SPACY_MODEL := .cache/spacy-en-lookup/config.cfg
# The browser tests drive Debian's Chromium and scan pages with axe-core (npm, pinned).
CHROMIUM := /usr/bin/chromium
AXE := node_modules/axe-core/axe.min.js
# default: one Rasa process, SQLite under var/; production: PostgreSQL, Redis, 2+ Rasa processes
# behind nginx, settings from the environment or profiles/production.env (README "Production").
PROFILE ?= default
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
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: $(BIN)/.installed $(SPACY_MODEL) $(AXE)  ## create .venv and install the pinned packages
	@test -x $(CHROMIUM) || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
	@grep -qs 'enabled: false' ~/.config/rasa/global.yml || $(BIN)/rasa telemetry disable >/dev/null
	@$(NGINX_FOUND) || $(NGINX_INSTALL) || echo "nginx not installed: only the production profile needs it (make install-production)"

$(BIN)/.installed: requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==24.0"
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

$(AXE): package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(SPACY_MODEL): $(BIN)/.installed clinic_nlu/spacy_pipeline.py
	$(BIN)/python -m clinic_nlu.spacy_pipeline

train: $(MODEL)  ## train the model (only when data, domain, config or components changed)

$(MODEL): $(BIN)/.installed $(SPACY_MODEL) $(TRAINING_INPUTS)
	$(BIN)/rasa train --domain domain --fixed-model-name clinic --out models
	@touch $@

validate: install  ## check the training data: no errors, warnings or story/rule conflicts
	$(BIN)/rasa data validate --domain domain --fail-on-warnings

run: train $(if $(filter production,$(PROFILE)),install-production)  ## start everything (PROFILE=production: see README); Ctrl-C stops it all
	@$(BIN)/python -m stack.launch --profile $(PROFILE)

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

test-e2e: train install-production  ## end-to-end and browser tests against running servers (one shared stack)
	$(BIN)/python -m pytest tests/e2e tests/browser -q

clean:  ## remove the trained model and test results (keeps .venv)
	rm -rf models results .cache

try: train  ## ask every question of FILE=questions.txt (or a CSV with a question column); report in reports/
	@test -n "$$FILE" || { echo 'Usage: make try FILE=questions.txt   (one question a line, or a CSV with a "question" column)'; exit 2; }
	@$(BIN)/python scripts/try_questions.py "$$FILE"

save-test: train  ## save a regression test: Q="..." INTENT=ask_trial, or Q="..." LEVEL=urgent
	@$(BIN)/python scripts/save_test.py --question="$$Q" --intent="$$INTENT" --level="$$LEVEL"

.PHONY: bench
bench: train  ## benchmark: ours vs the stock `rasa init` bot (and production); bench/results.json
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# The production profile's front (nginx-light from Debian), as root or through sudo.
NGINX_FOUND := command -v nginx >/dev/null || test -x /usr/sbin/nginx
NGINX_INSTALL := { $(if $(filter 0,$(shell id -u)),,sudo -n) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo -n) apt-get install -y -qq nginx-light >/dev/null; }

.PHONY: install-production purge
install-production: install  ## what the production profile needs besides .venv: nginx (apt-get)
	@$(NGINX_FOUND) || $(NGINX_INSTALL)

purge: install  ## delete conversations older than DAYS=N days (PROFILE=production: in PostgreSQL)
	@test -n "$(DAYS)" || { echo 'Usage: make purge DAYS=30 [PROFILE=production]'; exit 2; }
	@$(BIN)/python scripts/purge.py --days "$(DAYS)" --profile $(PROFILE)
