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
mkdir -p "$(dirname "$OUT")" "$(dirname "$LOG")"

# The benchmark removes its namespaces itself (also on SIGINT/SIGTERM, and the next run removes
# those of a SIGKILLed one); this removes at once whatever a killed run of ours left.
remove_leftovers() { # PID of the benchmark process
  local ns p
  for ns in $(ip netns list | awk '{print $1}' | grep "^gfs$1-" || true); do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    if ip netns del "$ns" 2>/dev/null; then log "removed leftover namespace $ns"; fi
  done
}
pid=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$pid" ]; then
    # Interrupted: let the benchmark clean up (it handles SIGTERM), then make sure.
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    remove_leftovers "$pid"
  fi
  rm -f "$OUT.new"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "report: $OUT, progress log: $LOG"
rc=0
# The report is written to $OUT.new and moved over $OUT once complete (also for a failed run: it
# says so); stdout carries the same text.
node "$ROOT/dist/bench/swarm.js" --out "$OUT.new" "$@" >/dev/null 2> >(tee "$LOG" >&2) &
pid=$!
wait "$pid" || rc=$?
done_pid=$pid
pid=
remove_leftovers "$done_pid"
if [ -s "$OUT.new" ]; then mv "$OUT.new" "$OUT"; cat "$OUT"; else log "no report written"; fi
[ "$rc" = 0 ] || log "the benchmark exited $rc (see $LOG)"
exit "$rc"
