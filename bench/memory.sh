#!/usr/bin/env bash
# Peak memory of gitfs on a large file: commits a 4 GiB incompressible file (source cold, then
# warm in the page cache) and exports it back, reporting wall time and peak RSS (GNU time).
# Usage (after `make build`): bash bench/memory.sh [SIZE_GIB]   (default 4; needs ~3x that on disk)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GIB=${1:-4}
WORK=/var/tmp/gitfs-bench-memory
rm -rf "$WORK"; mkdir -p "$WORK/src"
trap 'rm -rf "$WORK"' EXIT
GITFS=("$(command -v node)" "$ROOT/bin/gitfs")
measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" > /dev/null 2> "$WORK/stderr"
  read -r wall rss < "$WORK/time"
  printf '| %s | %s s | %s MiB | %s MB/s |\n' "$label" "$wall" "$((rss / 1024))" "$(awk -v w="$wall" -v g="$GIB" 'BEGIN { printf "%.0f", g * 1073.741824 / w }')"
}
{ openssl enc -aes-128-ctr -pass pass:gitfs-memory -nosalt -pbkdf2 < /dev/zero 2>/dev/null || true; } | head -c "$((GIB << 30))" > "$WORK/src/big.bin"
echo "| run ($GIB GiB incompressible) | wall | peak RSS | throughput |"
echo "|---|---|---|---|"
for cache in cold warm; do
  rm -rf "$WORK/repo"; "${GITFS[@]}" init --repo "$WORK/repo" > /dev/null
  sync
  if [ "$cache" = cold ]; then echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; else cat "$WORK/src/big.bin" > /dev/null; fi
  measure "commit, source $cache" "${GITFS[@]}" commit --repo "$WORK/repo" --branch big --from "$WORK/src"
done
measure "export" "${GITFS[@]}" export --repo "$WORK/repo" big "$WORK/out"
mkdir -p "$WORK/tiny"; echo tiny > "$WORK/tiny/file"
/usr/bin/time -f "%M" -o "$WORK/time" "${GITFS[@]}" commit --repo "$WORK/repo" --branch tiny --from "$WORK/tiny" > /dev/null
echo "| commit of one small file | – | $(( $(cat "$WORK/time") / 1024 )) MiB | – |"
cmp "$WORK/out/big.bin" "$WORK/src/big.bin" && echo "(export verified with cmp)"
