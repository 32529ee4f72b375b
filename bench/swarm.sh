#!/bin/bash
# gitfs swarm benchmark (issue 5): one large commit (a disk image) from one node to all, on N node
# namespaces whose links are shaped by tbf, against naive HTTP fan-out, aria2c (BitTorrent) and the
# lower bound S/B; then a second version of the image against rsync's delta transfer. See
# bench/swarm.ts.
#
# Usage (after make build, as root):   bash bench/swarm.sh [--nodes 4,8,16] [--size-mib 512] [--rate-mbit 200] [...]
#   (every argument goes to node dist/bench/swarm.js)
# Environment:
#   OUT  markdown report (default bench/results/swarm-latest.md)
#   LOG  progress log    (default bench/results/swarm-latest.log)
#
# Needs: ip and tc (iproute2), curl, python3, aria2c (aria2), opentracker, mktorrent, rsync,
# /usr/bin/time (time). The default (512 MiB at 4, 8 and 16 nodes, 200 Mbit/s) takes well over half
# an hour, mostly naive fan-out (15 × S/B = 5.4 min alone at 16 nodes); try --size-mib 64 --nodes 4 first.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/bench/results/swarm-latest.md}
LOG=${LOG:-$ROOT/bench/results/swarm-latest.log}

log() { printf '[swarm-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (network namespaces, tc)"
[ -f "$ROOT/dist/bench/swarm.js" ] || die "run make build first"
missing=
for t in ip tc curl aria2c opentracker mktorrent rsync; do command -v "$t" >/dev/null || missing="$missing $t"; done
[ -x /usr/bin/python3 ] || missing="$missing python3"
[ -x /usr/bin/time ] || missing="$missing time"
[ -z "$missing" ] || die "missing:$missing (apt-get install iproute2 curl python3 aria2 opentracker mktorrent rsync time)"
source "$ROOT/bench/netns-bench.sh"
run_netns_bench swarm "$@"
