# The two commands of the README: `make serve` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: serve test install clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev]' --config-settings editable_mode=compat
	@command -v git >/dev/null 2>&1 && command -v ssh >/dev/null 2>&1 || \
		(apt-get update -q && apt-get install -y -q git openssh-client)
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	mkdir -p repositories
	$(VENV)/bin/twistd -n hgwire

test: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
