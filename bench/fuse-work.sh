# Sourced by the FUSE benchmarks (mount.sh, first-read.sh): their work directory $WORK, made anew
# and removed with every mount the caller's `unmount_all` knows of, however the script ends.

# Installs bindfs (the pass-through FUSE file system the benchmarks compare with) when missing.
ensure_bindfs() {
  command -v bindfs >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bindfs >&2; }
}

cleanup_work() {
  local rc=$?
  trap - EXIT INT TERM
  unmount_all
  rm -rf --one-file-system "$WORK"
  exit "$rc"
}

# Clears what an earlier run left, makes $WORK with the given subdirectories, and arms the cleanup.
start_work() {
  unmount_all
  rm -rf --one-file-system "$WORK"
  local d
  for d in "$@"; do mkdir -p "$WORK/$d"; done
  trap cleanup_work EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
