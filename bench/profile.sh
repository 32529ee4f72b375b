#!/usr/bin/env bash
# Where the CPU time of one commit goes, per thread (main and hash worker): runs
# `gitfs commit` under `node --cpu-prof` and prints the top functions by self time.
# Usage (after `make build`): bash bench/profile.sh DIR_TO_COMMIT   (e.g. a directory holding random.bin)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=${1:?usage: bench/profile.sh DIR}
WORK=$(mktemp -d /var/tmp/gitfs-profile.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
node "$ROOT/bin/gitfs" init --repo "$WORK/repo" > /dev/null
sync
node --cpu-prof --cpu-prof-dir="$WORK/prof" "$ROOT/bin/gitfs" commit --repo "$WORK/repo" --branch p --from "$SRC" > /dev/null
node "$ROOT/dist/bench/cpu-profile.js" "$WORK"/prof/*.cpuprofile
