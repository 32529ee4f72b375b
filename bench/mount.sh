#!/bin/bash
# gitfs mount benchmark (issue 3, "Benchmark"): the same operations on the native file system,
# on bindfs (a pass-through FUSE file system: the ceiling for any FUSE file system here) over the
# same tree on the same disk, and on a gitfs branch directory, in one run.
#
# Usage (after make build, as root):   bash bench/mount.sh
# Environment:
#   GITFS_BENCH  dataset directory (default /var/tmp/gitfs-bench: rootfs/a and random/random.bin
#                from ../shared/bench/make-datasets.sh)
#   OUT          markdown output (default bench/results/mount-latest.md)
#
# Cold runs drop the page cache (echo 3 > /proc/sys/vm/drop_caches) and restart the FUSE
# process; warm runs repeat at once. Writes end with fsync (dd conv=fsync, sync after tar).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${GITFS_BENCH:-/var/tmp/gitfs-bench}
WORK=/var/tmp/gitfs-mount-bench
OUT=${OUT:-$ROOT/bench/results/mount-latest.md}
GITFS=$ROOT/bin/gitfs

log() { printf '[mount-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (FUSE mounts, dropping caches)"
[ -f "$ROOT/dist/src/cli/main.js" ] || die "run make build first"
[ -d "$DATA/rootfs/a" ] && [ -f "$DATA/random/random.bin" ] || die "datasets missing in $DATA (../shared/bench/make-datasets.sh)"
# shellcheck source=fuse-work.sh
. "$ROOT/bench/fuse-work.sh"
ensure_bindfs

NULL_PID=
unmount_all() {
  "$GITFS" umount "$WORK/gitfs" >/dev/null 2>&1 || true
  fusermount -uz "$WORK/bind" 2>/dev/null || true
  if [ -n "$NULL_PID" ]; then kill "$NULL_PID" 2>/dev/null || true; wait "$NULL_PID" 2>/dev/null || true; fi
  fusermount -uz "$WORK/null" 2>/dev/null || true
}
start_work native bind gitfs src

# ---------------------------------------------------------------- the same tree three ways
log "preparing: rootfs a and 1 GiB of random data in a gitfs repository and on the native disk"
cp -a "$DATA/rootfs/a" "$WORK/src/rootfs"
cp "$DATA/random/random.bin" "$WORK/src/random.bin"
"$GITFS" init --repo "$WORK/repo" >/dev/null
"$GITFS" commit --repo "$WORK/repo" --branch main --from "$WORK/src" -m bench >/dev/null
"$GITFS" export --repo "$WORK/repo" main "$WORK/native/main"
tar -C "$DATA/rootfs/a" -cf "$WORK/rootfs.tar" .
# A large checked-out tree for git status: rootfs a, its git directory outside the tree (gitfs
# cannot hold a directory named .git; see README, "Mount").
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b
git init -q --bare "$WORK/checkout.git"
git --git-dir="$WORK/checkout.git" --work-tree="$WORK/native/main/rootfs" add -A
git --git-dir="$WORK/checkout.git" --work-tree="$WORK/native/main/rootfs" commit -qm tree

mount_bindfs() { bindfs "$WORK/native" "$WORK/bind"; }
mount_gitfs() { "$GITFS" mount --repo "$WORK/repo" --background "$WORK/gitfs" >/dev/null; }
remount() { # $1: bind|gitfs
  if [ "$1" = bind ]; then fusermount -u "$WORK/bind"; mount_bindfs; else "$GITFS" umount "$WORK/gitfs" >/dev/null; mount_gitfs; fi
}
mount_bindfs
mount_gitfs
mount_pid() { pgrep -f "dist/src/cli/main.js mount --repo $WORK/repo" | head -1; }

# ---------------------------------------------------------------- measurements
RESULTS=$WORK/results.tsv; : >"$RESULTS"
timed() { # label target command...: runs the command, records seconds and exit status
  local label=$1 target=$2; shift 2
  local t0 t1 s rc=0
  t0=$EPOCHREALTIME; "$@" >"$WORK/last.log" 2>&1 || rc=$?; t1=$EPOCHREALTIME
  s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  printf '%s\t%s\t%s\t%s\n' "$label" "$target" "$s" "$rc" >>"$RESULTS"
  log "$label $target $s s (exit $rc)"
  if [ "$rc" != 0 ]; then tail -3 "$WORK/last.log" >&2; fi
}
dir_of() { case $1 in native) echo "$WORK/native/main";; bind) echo "$WORK/bind/main";; gitfs) echo "$WORK/gitfs/main";; esac; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# In this guest, filling page-cache pages the host has taken back (long free) costs several times
# more than reusing pages just freed: the first GiB read after a while took 3.4-3.8 s through
# bindfs and 0.7 s right after. An untimed read first puts each timed read on equal terms.
warm_up() { dd if="$1" of=/dev/null bs=1M 2>/dev/null; }

# The binding's ceiling first, while the page cache is as fresh as for the reads below (pages the
# guest touched long ago cost more to fill): a file system on gitfs's FUSE binding that does no
# work per request (bench/null-fuse.ts), against bindfs, in the gitfs column.
mkdir -p "$WORK/null"
node "$ROOT/dist/bench/null-fuse.js" "$WORK/null" >"$WORK/null.log" 2>&1 &
NULL_PID=$!
for _ in $(seq 100); do grep -q mounted "$WORK/null.log" && break; sleep 0.1; done
grep -q mounted "$WORK/null.log" || die "null file system did not mount: $(cat "$WORK/null.log")"
cat "$WORK/native/main/random.bin" >/dev/null
CEILING="read 1 GiB: bindfs / a null FS on gitfs's binding"
warm_up "$WORK/bind/main/random.bin"
timed "$CEILING" bind dd if="$WORK/bind/main/random.bin" of=/dev/null bs=1M
warm_up "$WORK/null/null.bin"
timed "$CEILING" gitfs dd if="$WORK/null/null.bin" of=/dev/null bs=1M
kill "$NULL_PID"; wait "$NULL_PID" 2>/dev/null || true; NULL_PID=

for t in native bind gitfs; do
  d=$(dir_of "$t")
  # Each reads its source from the page cache: the exported file (native, bindfs), the packs (gitfs).
  if [ "$t" = gitfs ]; then cat "$WORK/repo/objects/pack/"*.pack >/dev/null; else cat "$WORK/native/main/random.bin" >/dev/null; fi
  # Once untimed, then on a fresh mount: every target's timed read fills pages the guest has just used.
  if [ "$t" != native ]; then warm_up "$d/random.bin"; remount "$t"; d=$(dir_of "$t"); fi
  timed "read 1 GiB (warm)" "$t" dd if="$d/random.bin" of=/dev/null bs=1M
  # Read again at once: a file system that lets the kernel keep the file's pages across opens
  # answers from the page cache (gitfs does for committed content; bindfs asks its source again).
  timed "read 1 GiB again" "$t" dd if="$d/random.bin" of=/dev/null bs=1M
done
# The sequential reads above come first for every target, so that each fills the page cache in
# the same state (after the writes below, filling pages the guest reclaimed cost several times more).
for t in native bind gitfs; do
  d=$(dir_of "$t")
  for temp in cold warm; do
    if [ "$temp" = cold ]; then drop; [ "$t" = native ] || remount "$t"; d=$(dir_of "$t"); fi
    timed "find \\| xargs stat ($temp)" "$t" sh -c "cd '$d/rootfs' && find . -type f -print0 | xargs -0 stat"
    [ "$temp" = cold ] && { drop; [ "$t" = native ] || remount "$t"; }
    timed "ls -lR ($temp)" "$t" ls -lR "$d/rootfs"
  done
  # The first status refreshes the index's stat data for this tree (files are hashed again); the second is the everyday one.
  # Each stat of a missing name is one request that reaches the file system (nothing caches it).
  timed "10 000 stats of a missing name (one request each)" "$t" node -e "const fs = require('fs'); for (let i = 0; i < 10000; i++) { try { fs.statSync('$d/no-such-name'); } catch {} }"
  timed "git status, rootfs checkout (first)" "$t" git --git-dir="$WORK/checkout.git" --work-tree="$d/rootfs" status --porcelain
  timed "git status, rootfs checkout (again)" "$t" git --git-dir="$WORK/checkout.git" --work-tree="$d/rootfs" status --porcelain
  timed "write 1 GiB + fsync" "$t" dd if=/dev/zero of="$d/written.bin" bs=1M count=1024 conv=fsync
  mkdir -p "$d/untar"
  timed "untar rootfs + sync" "$t" sh -c "tar -C '$d/untar' -xf '$WORK/rootfs.tar' && sync"
done
commit=$(ls "$WORK/gitfs/.history/main" | head -1)
timed "du -sh of a .history commit" gitfs du -sh "$WORK/gitfs/.history/main/$commit"
pid=$(mount_pid)
RSS=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
log "gitfs mount peak RSS ${RSS} kB"

# ---------------------------------------------------------------- report
{
  echo "# gitfs mount benchmark ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "$(nproc) vCPU $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, load before the run $(cut -d' ' -f1-3 /proc/loadavg), Linux $(uname -r), Node $(node --version), bindfs $(bindfs --version 2>&1 | head -1 | awk '{print $2}')."
  echo "Datasets: rootfs a ($(find "$WORK/src/rootfs" | wc -l) entries, $(du -sh "$WORK/src/rootfs" | cut -f1)), 1 GiB of random data (a chunked file in gitfs)."
  echo
  echo "| operation | native | bindfs | gitfs | gitfs / bindfs (rate) |"
  echo "|---|---:|---:|---:|---:|"
  awk -F'\t' '{ t[$1 "\t" $2] = $3 " s" ($4 == 0 ? "" : " (exit " $4 ")"); r[$1 "\t" $2] = $3; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
    END { for (i = 1; i <= n; i++) { l = order[i]; nat = t[l "\tnative"]; b = t[l "\tbind"]; g = t[l "\tgitfs"];
      printf "| %s | %s | %s | %s | %s |\n", l,
        nat, b, g, (b == "" || g == "" ? "" : sprintf("%.0f%%", 100 * r[l "\tbind"] / r[l "\tgitfs"])) } }' "$RESULTS"
  echo
  echo "The row \"$CEILING\" reads a 1 GiB file of a file system on gitfs's own FUSE binding that answers each"
  echo "request at once from memory (bench/null-fuse.ts): the ceiling of any file system on that binding."
  echo
  echo "Peak RSS of the gitfs mount process over the whole run: $((RSS / 1024)) MiB. An untar into a gitfs branch"
  echo "exits 2 because rootfs a holds device files, which a branch refuses (EPERM) as git cannot hold them."
} >"$OUT"
cat "$OUT"
