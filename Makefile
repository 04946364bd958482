PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test lint bench install clean schemas packages mutation

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,examples]'
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
# the embedded broker), promtool (the shipped alerting rules).
PACKAGES := chromium:chromium kcat:kcat nginx:nginx stunnel4:stunnel promtool:prometheus
packages:
	@missing="$(foreach p,$(PACKAGES),$$(command -v $(word 1,$(subst :, ,$(p))) >/dev/null || echo $(word 2,$(subst :, ,$(p)))))"; \
	missing=$$(echo $$missing); \
	test -z "$$missing" || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null)

test: lint packages
	$(BIN)/pytest -n auto --dist worksteal

bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.token_bench
	$(BIN)/python -m bench.introspection_bench
	$(BIN)/python -m bench.relay_bench
	$(BIN)/python -m bench.detector_bench
	$(BIN)/python -m bench.limiter_bench
	$(BIN)/python -m bench.rebuild_bench
	$(BIN)/python -m bench.assertion_bench
	$(BIN)/python -m bench.ledger_bench

# Mutation testing of the rule modules ([tool.mutmut] in pyproject.toml): a fresh run, then the
# kill rate per module (bench/mutation_equivalents.toml: the survivors no test can kill).
# Not part of `make test`; about two minutes on two cores.
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -rf mutants
	$(BIN)/mutmut run
	$(BIN)/python -m bench.mutation_report --survivors --min 90

schemas: $(STAMP)
	$(BIN)/python -m schemas.generate

clean:
	rm -rf $(VENV) var
