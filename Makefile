# Tessera developer entry points. Run as root on Debian 12 (CI does).
#   make deps    install the Debian packages (fast no-op when already installed)
#   make build   swift build -c release (Swift stdlib linked statically: the same binaries go into the .debs)
#   make run     the whole stack on http://localhost:8080 (state kept in .stack/)
#   make test    unit + integration (swift test, with PostgreSQL/Redis up), the e2e suite, the install test and the scale-out test
#   make clean   build outputs and caches (`make clean-state` also drops .stack/)
#   make debs    the Debian 12 packages into dist/ (packaging/build-debs, lintian-checked)
#   make test-install  the .debs installed on a booted clean Debian 12 (packaging/test-install)
#   make test-scaleout two app VMs and a database VM from the .debs (packaging/test-scaleout; `make test` runs it last)

SHELL       := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
SWIFT  ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
PORT   ?= 8080
STATE  ?= .stack
BIN    := .build/release

APT_PACKAGES := libfcgi-dev libpq-dev libhiredis-dev libssl-dev \
                postgresql-15 postgresql-15-postgis-3 postgresql-contrib \
                nginx-light redis-server varnish varnish-modules gdal-bin libgdal-dev \
                python3-pytest python3-requests python3-pip openssl curl wrk unzip \
                postgresql-15-pgrouting osm2pgrouting \
                gmt gmt-gshhg-high gmt-dcw osmium-tool \
                dpkg-dev binutils lintian debootstrap systemd-container
# test-scaleout builds its containers' network by hand (bridge, addresses)
APT_PACKAGES += iproute2
# tessera_h3 (packaging/h3): PGXS headers to build the warehouse's H3 extension
APT_PACKAGES += postgresql-server-dev-15
# The H3 oracle (Tests/h3) is PyPI's h3 at the version whose C library tessera_h3 is built from.
H3_PY_VERSION := $(shell sed -n 's/^H3_PY_VERSION=//p' packaging/h3/h3.pin)
# workspace-www's map library, and the real browser its e2e journey drives
APT_PACKAGES += libjs-leaflet chromium chromium-driver python3-selenium
# the SQL editor (CodeMirror 5, its sql mode and hint add-ons)
APT_PACKAGES += libjs-codemirror

.PHONY: config-docs deps build h3 test-h3 run test test-swift test-e2e check-nginx check-varnish clean clean-state debs test-install test-scaleout

deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get install -y --no-install-recommends $$missing \
	    || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $$missing; }; \
	fi
	@# The e2e suite runs under $(PYTHON), which may be a pyenv Python that does not see the apt modules.
	@$(PYTHON) -c 'import pytest, requests' 2>/dev/null || { \
	  echo "installing pytest and requests for $$(command -v $(PYTHON))"; \
	  $(PYTHON) -m pip install --quiet pytest requests \
	    || $(PYTHON) -m pip install --quiet --break-system-packages pytest requests; }
	@$(PYTHON) -c 'import h3, sys; sys.exit(h3.__version__ != "$(H3_PY_VERSION)")' 2>/dev/null || { \
	  echo "installing h3==$(H3_PY_VERSION) (the H3 oracle) for $$(command -v $(PYTHON))"; \
	  $(PYTHON) -m pip install --quiet h3==$(H3_PY_VERSION) \
	    || $(PYTHON) -m pip install --quiet --break-system-packages h3==$(H3_PY_VERSION); }
	@test -x "$(SWIFT)" || { echo "swift not found (expected at /opt/swift/usr/bin/swift)"; exit 1; }

build: h3
	$(SWIFT) build -c release --static-swift-stdlib

# README's configuration section from the one table of keys (a unit test fails when it is stale).
config-docs:
	$(SWIFT) build --product tessera
	.build/debug/tessera config-docs --readme README.md

# The warehouse's H3 extension, installed into Debian's PostgreSQL 15 (which the harness runs).
h3:
	$(SUDO) packaging/h3/build-ext --install

run: deps build
	$(PYTHON) Tests/harness/stack.py run --state $(STATE) --port $(PORT) --bin $(BIN)

# Unit and integration tests get a throwaway PostgreSQL + Redis (see `stack.py exec`:
# STACK_METADATA_DSN, STACK_WAREHOUSE_DSN, STACK_SUPERUSER_DSN, STACK_REDIS_SOCKET, PGHOST, PGPORT).
test-swift:
	$(PYTHON) Tests/harness/stack.py exec -- $(SWIFT) test

# tessera_h3 against PyPI's h3 (random points, polygons, malformed ids) in a throwaway PostgreSQL.
test-h3:
	$(PYTHON) Tests/harness/stack.py exec -- $(PYTHON) -m pytest -q Tests/h3

test-e2e:
	STACK_BIN=$(BIN) STACK_REQUIRE_BINARIES=1 $(PYTHON) -m pytest -q Tests/e2e

test: deps build
	$(MAKE) --no-print-directory test-swift
	$(MAKE) --no-print-directory test-h3
	$(MAKE) --no-print-directory test-e2e
	$(MAKE) --no-print-directory test-install
	@# The same dist/ and cached Debian tree as test-install (its target would rebuild the .debs).
	packaging/test-scaleout dist

debs: build
	rm -rf dist
	$(PYTHON) packaging/build-debs --bin $(BIN) --out dist

test-install: debs
	SWIFT=$(SWIFT) packaging/test-install dist

test-scaleout: debs
	packaging/test-scaleout dist

check-nginx:
	$(PYTHON) Tests/harness/stack.py check-nginx

check-varnish:
	$(PYTHON) Tests/harness/stack.py check-varnish

clean:
	rm -rf .build test-artifacts dist
	find Tests -name __pycache__ -type d -prune -exec rm -rf {} +

clean-state:
	rm -rf $(STATE)
