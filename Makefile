# The two commands of the README: `make serve` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Integration tests mostly wait on real git/hg/ssh clients: four workers keep two cores busy.
TEST_WORKERS ?= 4

.PHONY: serve test install clean bench bench-corpus fuzz soak

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev]' --config-settings editable_mode=compat
	@command -v git >/dev/null 2>&1 && command -v ssh >/dev/null 2>&1 || \
		(apt-get update -q && apt-get install -y -q git openssh-client)
	@command -v gpg >/dev/null 2>&1 || apt-get install -y -q gnupg || (apt-get update -q && apt-get install -y -q gnupg) || \
		echo "gpg is not installed: OpenPGP-signed git pushes cannot be checked (and their test is skipped)"
	@command -v git-lfs >/dev/null 2>&1 || apt-get install -y -q git-lfs || (apt-get update -q && apt-get install -y -q git-lfs) || \
		echo "git-lfs is not installed: the Git LFS tests are skipped (the server needs no git-lfs)"
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	mkdir -p repositories
	$(VENV)/bin/twistd -n hgwire

test: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info

# Side-by-side benchmark (issue 7): hgwire vs git daemon / http-backend / hg serve / ssh.
# `make bench BENCH_ARGS=--quick` for a smoke run; see bench/README.md.
bench: $(STAMP)
	@command -v lighttpd >/dev/null 2>&1 || test -x /usr/sbin/lighttpd || \
		(apt-get update -q && apt-get install -y -q lighttpd) || \
		echo "lighttpd is not installed: the git-http reference will be skipped"
	@command -v sshd >/dev/null 2>&1 || test -x /usr/sbin/sshd || \
		(apt-get update -q && apt-get install -y -q openssh-server) || \
		echo "sshd is not installed: the git-sshd and hg-sshd references will be skipped"
	$(PY) bench/run.py $(BENCH_ARGS)

bench-corpus: $(STAMP)
	$(PY) -m bench.corpus --set full
	$(PY) -m bench.corpus --set quick

# Long fuzz runs (issue 8 item 6; not in CI): every parser, 10^6 inputs each by default.
# `make fuzz FUZZ_ARGS="--target bundle2 --inputs 100000"`; findings are saved in $TMPDIR/hgwire-fuzz.
FUZZ_ARGS ?= --target all --inputs 1000000
fuzz: $(STAMP)
	$(PY) -m tests.fuzz.run $(FUZZ_ARGS)

# Soak run (issue 8 acceptance; not in CI): racing git/hg pushes, hostile bytes and slow-loris on every
# port, 20 clients of load, against one `twistd -n hgwire` (≲ 15 min). `make soak SOAK_ARGS=--quick` for a
# 2-3 minute smoke run; the summary goes to bench/results/soak-latest.md; see bench/README.md.
# Then SOAK_KILLS SIGKILLs of the server per VCS during 20 MB pushes (bench/crash.py; about 15 s a kill).
SOAK_KILLS ?= 50
soak: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m bench.soak $(SOAK_ARGS)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m bench.crash --vcs both --kills $(SOAK_KILLS) --size-mb 20
