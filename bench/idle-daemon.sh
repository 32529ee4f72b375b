#!/bin/bash
# What one gitfs daemon costs while nothing happens: CPU ticks (utime + stime, /proc/PID/stat)
# over SECONDS, of a `gitfs serve` alone in a network namespace of its own (a veth pair, so that it
# has an address to announce on; its multicast stays in the namespace), in a cluster that has
# revoked one node (as a fleet in service has: a revocation list on disk). Run as root after
# `make build`, on any checkout: `bash bench/idle-daemon.sh [SECONDS]` (default 30). NODE_FLAGS
# goes to node (`NODE_FLAGS="--cpu-prof --cpu-prof-dir=DIR"` profiles the daemon). BRANCHES=N
# (default 0) gives it N branches its policy keeps (images/b1 ... on one small commit), as a
# fleet with a branch per host or per service has.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECS=${1:-30}
[ "$(id -u)" = 0 ] || { echo "idle-daemon: run as root" >&2; exit 1; }
NS=gitfs-idle-$$
DIR=$(mktemp -d /tmp/gitfs-idle.XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && sleep 0.5
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
export GITFS_AUTHOR_NAME=bench GITFS_AUTHOR_EMAIL=bench@localhost
GITFS=(node ${NODE_FLAGS:-} "$ROOT/bin/gitfs")
"${GITFS[@]}" init --repo "$DIR/repo" >/dev/null
"${GITFS[@]}" cluster init --repo "$DIR/repo" >/dev/null
"${GITFS[@]}" cluster revoke --repo "$DIR/repo" 0123456789abcdef >/dev/null
echo '{"policies":[{"branches":"images/*","replicas":"all"}]}' > "$DIR/node.json"
if [ "${BRANCHES:-0}" -gt 0 ]; then
  mkdir "$DIR/src" && echo small > "$DIR/src/a.txt"
  "${GITFS[@]}" commit --repo "$DIR/repo" --branch images/b1 --from "$DIR/src" -m one >/dev/null
  c=$(git --git-dir="$DIR/repo" rev-parse images/b1)
  seq 2 "$BRANCHES" | sed "s|.*|create refs/heads/images/b& $c|" | git --git-dir="$DIR/repo" update-ref --stdin
fi
ip netns add "$NS"
ip netns exec "$NS" sh -c 'ip link set lo up; ip link add v0 type veth peer name v1; ip addr add 10.99.0.1/24 dev v0; ip link set v0 up; ip link set v1 up; ip route add 224.0.0.0/4 dev v0'
ip netns exec "$NS" "${GITFS[@]}" serve --repo "$DIR/repo" --config "$DIR/node.json" > "$DIR/log" 2>&1 &
PID=$!
for _ in $(seq 100); do grep -q '"serving"' "$DIR/log" 2>/dev/null && break; sleep 0.1; done
grep -q '"serving"' "$DIR/log" || { echo "idle-daemon: the daemon did not start:" >&2; cat "$DIR/log" >&2; exit 1; }
sleep 5 # past its start
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
a=$(ticks); sleep "$SECS"; b=$(ticks)
hz=$(getconf CLK_TCK)
awk -v t=$((b - a)) -v s="$SECS" -v hz="$hz" -v n="${BRANCHES:-0}" 'BEGIN { printf "idle daemon, %d branches: %d ticks in %d s = %.2f %% of a CPU\n", n, t, s, 100 * t / hz / s }'
