#!/bin/bash
# gitfs cluster benchmark: head propagation latency (commit on one node until every other node
# lists the new head; without loss and with 20 % of UDP dropped) and announcement traffic per node
# at 100 branches, on 8 node daemons in network namespaces. See bench/cluster.ts.
#
# Usage (after make build, as root):   bash bench/cluster.sh [--trials 50] [--nodes 8] [...]
#   (every argument goes to node dist/bench/cluster.js)
# Environment:
#   OUT  markdown report (default bench/results/cluster-latest.md)
#   LOG  progress log    (default bench/results/cluster-latest.log)
#
# With the default 30 s announce interval a full run takes about 5 minutes, longer if trials time
# out (each is bounded by 3 intervals). Run it on a quiet machine: the latencies include start-up
# of a Node process per commit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/bench/results/cluster-latest.md}
LOG=${LOG:-$ROOT/bench/results/cluster-latest.log}

log() { printf '[cluster-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (network namespaces, nftables)"
[ -f "$ROOT/dist/bench/cluster.js" ] || die "run make build first"
command -v ip >/dev/null || die "ip (iproute2) missing: make debian-deps"
command -v nft >/dev/null || die "nft (nftables) missing: make debian-deps"
source "$ROOT/bench/netns-bench.sh"
run_netns_bench cluster "$@"
