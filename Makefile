# A thin layer over npm and the scripts: each target installs what it is
# missing first, so `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
PREFIX ?= /usr/local
QUICK ?= 0
DESTDIR ?=
export PREFIX DESTDIR

STAMP_DEBS_RUN := node_modules/.vigil-debs-run
STAMP_DEBS_TEST := node_modules/.vigil-debs-test
NODE_STAMP := node_modules/.package-lock.json
SOURCES := $(shell find daemon lib test scripts -name '*.ts' 2>/dev/null) tsconfig.json

.PHONY: all deps build clients man run test test-unit test-integration test-system lint install uninstall deb bench fuzz soak clean

all: build

$(NODE_STAMP): package.json package-lock.json
	@bash scripts/deps.sh run
	npm ci --no-audit --no-fund
	@touch $@

$(STAMP_DEBS_TEST): $(NODE_STAMP) scripts/deps.sh
	@bash scripts/deps.sh test
	@touch $@

deps: $(NODE_STAMP)

# From scratch: a test whose source was moved or deleted must not run on.
dist/.built: $(NODE_STAMP) $(SOURCES)
	rm -rf dist
	npx tsc -p .
	@touch $@

# The JSON Schema of vigil.yaml, generated from the loader's own schema
# (daemon/config/json-schema.ts), each key described by docs/configuration.md;
# make install puts it beside vigil.yaml.
dist/vigil.schema.json: dist/.built docs/configuration.md
	node dist/scripts/json-schema.js $@

# Man pages vigild(8), vigilctl(1), vigil.yaml(5) from man/*.md and
# docs/configuration.md, with Debian's go-md2man (scripts/man.sh).
dist/man/.built: dist/.built $(wildcard man/*.md) docs/configuration.md scripts/man.sh package.json
	@bash scripts/deps.sh run
	bash scripts/man.sh dist/man
	@touch $@

man: dist/man/.built

build: dist/.built dist/vigil.schema.json dist/man/.built

# The clients as packages for applications (scripts/clients.sh): the Python
# wheel and sdist, the Node tarball, laid by `make install` under
# $(PREFIX)/share/vigil/. Rebuilt after dist/ is (rm -rf dist) or when a
# client source or the version changes.
CLIENT_SOURCES := $(shell find lib/python lib/node lib/protocol -type f -not -path '*/__pycache__/*' 2>/dev/null) package.json scripts/clients.sh
dist/clients/.built: dist/.built $(CLIENT_SOURCES)
	@bash scripts/deps.sh run
	bash scripts/clients.sh python dist/clients/python
	bash scripts/clients.sh node dist/clients/node
	@touch $@

clients: build dist/clients/.built

# What make test checks before running any test: types, lint, and layers
# that only point down (scripts/check-layers.ts, run from dist).
lint: build
	npx tsc -p . --noEmit
	npx eslint --max-warnings 0 daemon lib test scripts
	node dist/scripts/check-layers.js

run: build
	@bash scripts/deps.sh run
	@mkdir -p .run/state
	STATE_DIRECTORY="$(CURDIR)/.run/state" node dist/daemon/main.js --config examples/vigil.yaml

test: build $(STAMP_DEBS_TEST) clients
	@bash scripts/test.sh

# vigil beside the physical floor, PM2 and supervisord (QUICK=1: under 2 minutes).
bench: build
	QUICK=$(QUICK) bash bench/run.sh

# The tiers alone (make test runs all three, in this order):
# pure and fake-clock tests, then real processes, then real systemd.
test-unit: build
	@bash scripts/test.sh unit

test-integration: build $(STAMP_DEBS_TEST) clients
	@bash scripts/test.sh integration

test-system: build $(STAMP_DEBS_TEST) clients
	@bash scripts/test.sh system

# vigil under a real systemd for SOAK_SECONDS (600) with crashing, hanging
# and chatty workers and a reload every 20 s; prints its figures.
soak: build $(STAMP_DEBS_TEST)
	SOAK_SECONDS=$${SOAK_SECONDS:-600} npx mocha --no-config --timeout 0 'dist/test/soak/*.soak.js'

# The property tests of make test, with many more cases (FUZZ_RUNS).
fuzz: build
	FUZZ_RUNS=$${FUZZ_RUNS:-20000} npx mocha --no-config --timeout 0 'dist/test/*/fuzz/*.test.js'

install: build clients
	@bash scripts/install.sh install

uninstall:
	@bash scripts/install.sh uninstall

# vigil_<version>_<arch>.deb here, laid out as make install does for
# PREFIX=/usr (packaging/deb/build.sh; DEB_VERSION=0.1.0-2 for another version).
deb: build clients
	@bash packaging/deb/build.sh

clean:
	rm -rf dist .run
	rm -f vigil_*.deb
