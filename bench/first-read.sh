#!/bin/bash
# The first sequential read of a 1 GiB chunked file through the mount, in detail (issue 3): on a
# fresh mount (the process just started) and on a mount that has read once already (V8 has
# compiled the read path; the kernel's page cache dropped in between), each with the CPU every
# thread of the mount process used (fields 14 + 15 of /proc/PID/task/*/stat); and bindfs over the
# same bytes on a fresh mount. The packs (and bindfs's source) are read once before every read,
# so the disk is out of it. bench/mount.sh is the side-by-side benchmark; this says where a read's
# time goes.
#
# Usage (after make build, as root):   bash bench/first-read.sh [ROUNDS]   (default 3)
# Environment: GITFS_BENCH (default /var/tmp/gitfs-bench: random/random.bin from
# ../shared/bench/make-datasets.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${GITFS_BENCH:-/var/tmp/gitfs-bench}
WORK=/var/tmp/gitfs-first-read
ROUNDS=${1:-3}
GITFS=$ROOT/bin/gitfs
FILE=random.bin

log() { printf '[first-read %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (FUSE mounts, dropping caches)"
[ -f "$ROOT/dist/src/cli/main.js" ] || die "run make build first"
[ -f "$DATA/random/$FILE" ] || die "dataset missing: $DATA/random/$FILE (../shared/bench/make-datasets.sh random)"
[[ "$ROUNDS" =~ ^[1-9][0-9]?$ ]] || die "ROUNDS must be 1 to 99"
# shellcheck source=fuse-work.sh
. "$ROOT/bench/fuse-work.sh"
ensure_bindfs

unmount_all() {
  "$GITFS" umount "$WORK/mnt" >/dev/null 2>&1 || true
  fusermount -uz "$WORK/mnt" 2>/dev/null || true
  fusermount -uz "$WORK/bind" 2>/dev/null || true
}
start_work src mnt bind

cp "$DATA/random/$FILE" "$WORK/src/$FILE"
"$GITFS" init --repo "$WORK/repo" >/dev/null
"$GITFS" commit --repo "$WORK/repo" --branch main --from "$WORK/src" -m first-read >/dev/null

warm_sources() { cat "$WORK"/repo/objects/pack/*.pack "$WORK/src/$FILE" >/dev/null; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; warm_sources; }
# Seconds `dd` takes to read $1 whole.
timed_read() {
  local s e
  s=$(date +%s.%N)
  dd if="$1" of=/dev/null bs=1M status=none
  e=$(date +%s.%N)
  echo "$e - $s" | bc
}
# "tid cpu-ticks" for every thread of process $1.
threads() { for t in /proc/"$1"/task/*; do echo "${t##*/} $(awk '{print $14 + $15}' "$t/stat")"; done | sort; }
mount_gitfs() {
  "$GITFS" mount --repo "$WORK/repo" --background "$WORK/mnt" >/dev/null
  pgrep -n -f "mount.*$WORK/mnt"
}
# CPU seconds per thread between two snapshots, busiest first, and the total.
cpu_report() {
  join -a2 -e0 -o 0,1.2,2.2 "$1" "$2" | awk -v hz="$(getconf CLK_TCK)" '
    { d = ($3 - $2) / hz; t += d; if (d >= 0.05) printf "%.2f\n", d }
    END { printf "total %.2f\n", t }' | sort -rn | paste -sd' '
}

TICKS_A=$WORK/ticks-a
TICKS_B=$WORK/ticks-b
{
  echo "# The first read of a 1 GiB chunked file ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "$(nproc) vCPU, load before $(cut -d' ' -f1-3 /proc/loadavg), Node $(node --version). CPU: seconds per thread of the mount process that used 0.05 s or more, busiest first."
  echo
  echo "| round | bindfs, fresh mount | gitfs, fresh mount | its CPU s per thread | gitfs, mount that has read once | its CPU s per thread |"
  echo "|---:|---:|---:|---|---:|---|"
} >"$WORK/report.md"

for round in $(seq 1 "$ROUNDS"); do
  log "round $round of $ROUNDS"
  # bindfs: fresh mount, source in the page cache.
  bindfs "$WORK/src" "$WORK/bind"
  drop_caches
  bind_s=$(timed_read "$WORK/bind/$FILE")
  fusermount -u "$WORK/bind"

  # gitfs: a fresh mount process.
  pid=$(mount_gitfs)
  drop_caches
  threads "$pid" >"$TICKS_A"
  fresh_s=$(timed_read "$WORK/mnt/main/$FILE")
  threads "$pid" >"$TICKS_B"
  fresh_cpu=$(cpu_report "$TICKS_A" "$TICKS_B")

  # The same process again, the kernel's copy of the file dropped.
  drop_caches
  threads "$pid" >"$TICKS_A"
  warm_s=$(timed_read "$WORK/mnt/main/$FILE")
  threads "$pid" >"$TICKS_B"
  warm_cpu=$(cpu_report "$TICKS_A" "$TICKS_B")
  "$GITFS" umount "$WORK/mnt" >/dev/null

  printf '| %d | %.2f s | %.2f s | %s | %.2f s | %s |\n' "$round" "$bind_s" "$fresh_s" "$fresh_cpu" "$warm_s" "$warm_cpu" >>"$WORK/report.md"
done
cat "$WORK/report.md"
