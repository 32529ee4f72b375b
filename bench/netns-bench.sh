# Sourced by bench/cluster.sh and bench/swarm.sh after their own checks: runs
# `node dist/bench/NAME.js --out $OUT.new ARGS...` with its progress on stderr tee'd to $LOG, moves
# the report over $OUT once written, and removes whatever namespaces a killed run left.
# Needs ROOT, OUT, LOG and a log() function. Usage: run_netns_bench NAME [ARGS...]

run_netns_bench() {
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
  node "$ROOT/dist/bench/$1.js" --out "$OUT.new" "${@:2}" >/dev/null 2> >(tee "$LOG" >&2) &
  pid=$!
  wait "$pid" || rc=$?
  done_pid=$pid
  pid=
  remove_leftovers "$done_pid"
  if [ -s "$OUT.new" ]; then mv "$OUT.new" "$OUT"; cat "$OUT"; else log "no report written"; fi
  [ "$rc" = 0 ] || log "the benchmark exited $rc (see $LOG)"
  exit "$rc"
}
