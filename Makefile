# gitfs — `make demo` and `make test` do all set-up on a fresh Debian machine with Node 20 (as root).
SHELL := /bin/bash
.DEFAULT_GOAL := build

# Debian packages gitfs needs: git (compatibility checks), FUSE 3 runtime plus the libfuse 2
# headers that fuse-native builds against, network namespaces and packet filtering for the
# cluster tests, a native toolchain for addons, rsync (the mount tests copy trees with it),
# what kernel-images/ needs to build test ISOs and boot them (xorriso, cpio, qemu), and
# ssh-keygen (git checks release signatures with it), curl and nginx (the site hook and its
# test). Never Debian's `fuse`: it conflicts with fuse3.
DEBIAN_PACKAGES := git fuse3 libfuse2 libfuse-dev pkg-config python3 make g++ iproute2 nftables procps psmisc time openssl rsync xorriso cpio qemu-system-x86 openssh-client curl nginx
STAMP := node_modules/.gitfs-npm-ci

.PHONY: deps debian-deps build test test-node22 demo bench bench-cluster bench-swarm bench-rollout clean

debian-deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages: $$missing (run as root, or install them)"; exit 1; fi; \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# node-gyp builds fuse-native against the running Node's own headers where it has them (NodeSource's
# and Debian's nodejs packages ship them under its prefix) instead of fetching them from nodejs.org.
NODE_PREFIX := $(shell node -p "require('path').resolve(process.execPath, '..', '..')" 2>/dev/null)
NODEDIR := $(if $(wildcard $(NODE_PREFIX)/include/node/node_version.h),$(NODE_PREFIX))

# The patch script runs as postinstall: a change to it must reach the installed binding too.
$(STAMP): package.json package-lock.json scripts/patch-fuse-native.mjs
	$(if $(NODEDIR),npm_config_nodedir=$(NODEDIR) )npm ci --no-audit --no-fund
	@touch $@

deps: debian-deps $(STAMP)

build: deps
	npm run build --silent

test: build
	npx mocha

# The same tests under Node 22 (fetched from the npm registry), on a clone of the committed HEAD.
test-node22: debian-deps
	bash scripts/test-node22.sh

demo: build
	bash scripts/demo.sh

bench: build
	bash bench/run.sh

# 8 daemons in network namespaces: commit-to-all latency (no loss, 20 % loss) and announcement traffic.
bench-cluster: build
	bash bench/cluster.sh

# One image to N nodes over tbf-shaped links: gitfs's swarm against HTTP fan-out, aria2c and rsync.
SWARM_BENCH_PACKAGES := curl aria2 opentracker mktorrent
bench-swarm: build
	@missing=$$(for p in $(SWARM_BENCH_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi
	bash bench/swarm.sh

clean:
	rm -rf dist

# N nodes over tbf-shaped links: publish → blessed everywhere, rollback, halt after a failed canary.
bench-rollout: build
	node dist/bench/rollout.js
