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
node "$ROOT/dist/bench/cluster.js" --out "$OUT.new" "$@" >/dev/null 2> >(tee "$LOG" >&2) &
pid=$!
wait "$pid" || rc=$?
done_pid=$pid
pid=
remove_leftovers "$done_pid"
if [ -s "$OUT.new" ]; then mv "$OUT.new" "$OUT"; cat "$OUT"; else log "no report written"; fi
[ "$rc" = 0 ] || log "the benchmark exited $rc (see $LOG)"
exit "$rc"
