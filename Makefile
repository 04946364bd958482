PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test lint bench install clean schemas packages mutation lock interop

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,examples,embedded]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/keyledger serve

lint: $(STAMP)
	$(BIN)/ruff check domain adapters projections api tests bench schemas examples
	$(BIN)/ruff format --check domain adapters projections api tests bench schemas examples
	$(BIN)/mypy
	$(BIN)/mypy --strict --ignore-missing-imports examples/*/*.py

# Debian packages the suite drives as real components: Chromium (the dashboard), kcat (the
# README's audit blocks), nginx (a reverse proxy in front of serve), stunnel (TLS in front of
# the embedded broker), promtool (the shipped alerting rules), kubectl (renders
# deploy/kubernetes with its kustomize), Node.js and npm (the interop clients, below).
PACKAGES := chromium:chromium kcat:kcat nginx:nginx stunnel4:stunnel promtool:prometheus \
    kubectl:kubernetes-client node:nodejs npm:npm openssl:openssl
packages:
	@missing="$(foreach p,$(PACKAGES),$$(command -v $(word 1,$(subst :, ,$(p))) >/dev/null || echo $(word 2,$(subst :, ,$(p)))))"; \
	missing=$$(echo $$missing); \
	test -z "$$missing" || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null)

# Standard clients from npm that the suite runs against a real server (tests/interop:
# panva's openid-client), installed from the lock file when missing or when it changes.
interop: packages tests/interop/node_modules/.package-lock.json
tests/interop/node_modules/.package-lock.json: tests/interop/package-lock.json
	npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error

test: lint packages interop
	$(BIN)/pytest -n auto --dist worksteal

bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.token_bench
	$(BIN)/python -m bench.token_cpu
	$(BIN)/python -m bench.introspection_bench
	$(BIN)/python -m bench.relay_bench
	$(BIN)/python -m bench.detector_bench
	$(BIN)/python -m bench.limiter_bench
	$(BIN)/python -m bench.rebuild_bench
	$(BIN)/python -m bench.assertion_bench
	$(BIN)/python -m bench.ledger_bench
	$(BIN)/python -m bench.storage_bench
	$(BIN)/python -m bench.retention_bench

# Mutation testing of the rule modules ([tool.mutmut] in pyproject.toml): a fresh run, then the
# kill rate per module (bench/mutation_equivalents.toml: the survivors no test can kill).
# Not part of `make test`; about two minutes on two cores.
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -rf mutants
	$(BIN)/mutmut run
	$(BIN)/python -m bench.mutation_report --survivors --min 90

# requirements.lock: the runtime dependencies (no extras) pinned with their hashes, for the
# image's `pip install --require-hashes`; Linux and the image's Python. Run after changing
# `dependencies` in pyproject.toml (tests/unit/test_image.py fails until then).
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes --python-version 3.11 \
		--python-platform linux --custom-compile-command 'make lock' -o requirements.lock

schemas: $(STAMP)
	$(BIN)/python -m schemas.generate

clean:
	rm -rf $(VENV) var
