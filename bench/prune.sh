#!/bin/bash
# What removing history costs: `gitfs prune` against `git gc --prune=now` on the same repository.
# A branch `old` holds VERSIONS versions of a disk image of SIZE_MIB MiB (each rewrites CHANGE_MIB
# MiB of the one before, at a place of its own), `main` holds the first; `old` is then deleted
# (reflogs expired), so all but main's version is unreachable, and every file is made two days
# old. Each tool runs on its own copy, timed by /usr/bin/time (wall, CPU, peak RSS); afterwards
# git fsck --strict must pass and main must read back. Reported: the time, the bytes under
# objects/ before and after, and the ratio to git. Run after `make build`:
#   bash bench/prune.sh            (SIZE_MIB=256 VERSIONS=8 CHANGE_MIB=8 by default)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE_MIB=${SIZE_MIB:-256}
VERSIONS=${VERSIONS:-8}
CHANGE_MIB=${CHANGE_MIB:-8}
DIR=$(mktemp -d /var/tmp/gitfs-prune-bench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
export GITFS_AUTHOR_NAME=bench GITFS_AUTHOR_EMAIL=bench@localhost
GITFS=(node "$ROOT/bin/gitfs")
log() { printf '[prune-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bytes() { du -sb --apparent-size "$1/objects" | cut -f1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
# keystream PASS BYTES: pseudo-random and incompressible (AES-CTR), as a disk image's data mostly is.
keystream() { { openssl enc -aes-128-ctr -pass "pass:$1" -nosalt -pbkdf2 < /dev/zero 2>/dev/null || true; } | head -c "$2"; }

log "repository: $VERSIONS versions of a $SIZE_MIB MiB image, $CHANGE_MIB MiB rewritten each"
"${GITFS[@]}" init --repo "$DIR/repo" >/dev/null
mkdir -p "$DIR/src"
keystream prune-bench $((SIZE_MIB << 20)) > "$DIR/src/disk.img"
"${GITFS[@]}" commit --repo "$DIR/repo" --branch main --from "$DIR/src" -m v0 >/dev/null
"${GITFS[@]}" branch --repo "$DIR/repo" create old main >/dev/null
for v in $(seq 1 "$VERSIONS"); do
  keystream "prune-bench-$v" $((CHANGE_MIB << 20)) |
    dd of="$DIR/src/disk.img" bs=1M seek=$(( (v * 3 * CHANGE_MIB) % (SIZE_MIB - CHANGE_MIB) )) conv=notrunc status=none
  "${GITFS[@]}" commit --repo "$DIR/repo" --branch old --from "$DIR/src" -m "v$v" >/dev/null
done
"${GITFS[@]}" branch --repo "$DIR/repo" delete old >/dev/null
git --git-dir="$DIR/repo" reflog expire --expire=now --all
find "$DIR/repo/objects" -type f -exec touch -d '2 days ago' {} +
before=$(bytes "$DIR/repo")
main_sum=$("${GITFS[@]}" cat --repo "$DIR/repo" main:disk.img | sha256sum | cut -d' ' -f1)
log "objects/ holds $(mib "$before") MiB; main's image is ${main_sum:0:12}"

# run NAME COMMAND...: on a fresh copy; prints "wall user sys rss_kb after_bytes".
run() {
  local name=$1; shift
  rm -rf "$DIR/copy"; cp -a "$DIR/repo" "$DIR/copy"
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f '%e %U %S %M' -o "$DIR/time" "$@" > "$DIR/$name.out" 2>&1 || { cat "$DIR/$name.out" >&2; exit 1; }
  git --git-dir="$DIR/copy" fsck --strict --no-dangling >/dev/null 2>&1 || { log "$name: git fsck failed"; exit 1; }
  [ "$("${GITFS[@]}" cat --repo "$DIR/copy" main:disk.img | sha256sum | cut -d' ' -f1)" = "$main_sum" ] || { log "$name: main reads back wrong"; exit 1; }
  echo "$(cat "$DIR/time") $(bytes "$DIR/copy")"
}
log "gitfs prune --grace 0"
read -r g_wall g_user g_sys g_rss g_after < <(run gitfs "${GITFS[@]}" prune --repo "$DIR/copy" --grace 0)
log "git gc --prune=now"
read -r t_wall t_user t_sys t_rss t_after < <(run git git --git-dir="$DIR/copy" gc --prune=now --quiet)
log "git repack -a -d then git prune --expire=now"
read -r r_wall r_user r_sys r_rss r_after < <(run repack sh -c "git --git-dir='$DIR/copy' repack -a -d -q && git --git-dir='$DIR/copy' prune --expire=now")

cat <<EOF
# Prune: gitfs prune against git gc ($(date -u +%Y-%m-%dT%H:%MZ))

$VERSIONS versions of a $SIZE_MIB MiB pseudo-random image on a deleted branch ($CHANGE_MIB MiB rewritten each), main keeping the first; every file two days old; caches dropped before each run. objects/ before: **$(mib "$before") MiB**. Each run on its own copy; git fsck --strict passes and main reads back after each.

| tool | wall s | user s | sys s | peak RSS MiB | objects/ after MiB | wall ÷ git gc |
|---|---|---|---|---|---|---|
| \`gitfs prune --grace 0\` | $g_wall | $g_user | $g_sys | $((g_rss / 1024)) | $(mib "$g_after") | $(awk -v a="$g_wall" -v b="$t_wall" 'BEGIN { printf "%.2f", a / b }') |
| \`git gc --prune=now\` | $t_wall | $t_user | $t_sys | $((t_rss / 1024)) | $(mib "$t_after") | 1.00 |
| \`git repack -a -d && git prune --expire=now\` | $r_wall | $r_user | $r_sys | $((r_rss / 1024)) | $(mib "$r_after") | $(awk -v a="$r_wall" -v b="$t_wall" 'BEGIN { printf "%.2f", a / b }') |

Command: \`bash bench/prune.sh\` (SIZE_MIB=$SIZE_MIB VERSIONS=$VERSIONS CHANGE_MIB=$CHANGE_MIB).
EOF
