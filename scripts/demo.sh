#!/usr/bin/env bash
# `make demo`: the main job at this stage, on embedded data. A repository with two branches (a
# small site tree, and a disk image in two versions that differ by a few MiB), then log, diff,
# ls, cat, stats with the dedup ratio, the FUSE mount (write, status, commit, history), and the
# real git reading it all; then a small cluster (scripts/demo-cluster.ts): replication, a flipped
# bit mended from a peer, reads on demand through a mount, and rollouts of a site and a test kernel
# (scripts/demo-rollout.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
GITFS="$PWD/bin/gitfs"
work=$(mktemp -d /tmp/gitfs-demo.XXXXXX)
mnt="$work/mnt"
cleanup() { "$GITFS" umount "$mnt" >/dev/null 2>&1 || true; rm -rf --one-file-system "$work"; }
trap cleanup EXIT
repo="$work/repo"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

# Deterministic pseudo-random bytes: prng SEED BYTES (openssl's SIGPIPE after head is expected).
prng() { { openssl enc -aes-128-ctr -pass "pass:$1" -nosalt -pbkdf2 < /dev/zero 2>/dev/null || true; } | head -c "$2"; }

say "A site tree, and a 64 MiB disk image (deterministic pseudo-random content)"
mkdir -p "$work/site/css" "$work/site/img" "$work/image"
printf '<!doctype html><title>gitfs</title><h1>Hello from gitfs</h1>\n' > "$work/site/index.html"
printf 'body { font-family: sans-serif }\n' > "$work/site/css/site.css"
head -c 300000 /dev/zero | tr '\0' 'x' > "$work/site/img/logo.svg"
ln -s index.html "$work/site/home.html"
prng gitfs-demo $((64 << 20)) > "$work/image/disk.img"

run "$GITFS" init --repo "$repo"
run "$GITFS" commit --repo "$repo" --branch site/main --from "$work/site" -m "site: first version"
run "$GITFS" commit --repo "$repo" --branch images/disk --from "$work/image" -m "disk image v1"

say "Version 2 of the image: 2 MiB rewritten in the middle"
prng gitfs-demo-v2 $((2 << 20)) | dd of="$work/image/disk.img" bs=1M seek=30 conv=notrunc status=none
run "$GITFS" commit --repo "$repo" --branch images/disk --from "$work/image" -m "disk image v2"

say "Version 2 of the site"
printf '<!doctype html><title>gitfs</title><h1>Hello again</h1>\n' > "$work/site/index.html"
printf 'news\n' > "$work/site/news.txt"
run "$GITFS" commit --repo "$repo" --branch site/main --from "$work/site" -m "site: news"

say "Branches, history, changes"
run "$GITFS" branch --repo "$repo"
run "$GITFS" log --repo "$repo" --oneline images/disk
run "$GITFS" diff --repo "$repo" images/disk~1 images/disk
run "$GITFS" diff --repo "$repo" site/main~1 site/main
run "$GITFS" ls --repo "$repo" -r site/main
run "$GITFS" ls --repo "$repo" images/disk

say "Time machine: the site as it was one commit ago, and by reflog"
run "$GITFS" cat --repo "$repo" site/main~1:index.html
run "$GITFS" cat --repo "$repo" 'site/main@{1}:index.html'

say "A byte range of the image, read without reading the rest"
printf '$ gitfs cat images/disk:disk.img --offset 31457280 --length 16 | od -An -tx1\n'
"$GITFS" cat --repo "$repo" images/disk:disk.img --offset 31457280 --length 16 | od -An -tx1

say "Storage: two 64 MiB image versions and two site versions"
run "$GITFS" stats --repo "$repo"

say "The mount: every branch a writable directory, every commit a read-only one"
run "$GITFS" mount --repo "$repo" --background "$mnt"
run ls "$mnt" "$mnt/site/main" "$mnt/.history/site/main"
printf '$ echo "<p>written through the mount</p>" >> %s\n' "$mnt/site/main/index.html"
echo "<p>written through the mount</p>" >> "$mnt/site/main/index.html"
run mkdir "$mnt/site/main/blog"
printf '$ echo "first post" > %s\n' "$mnt/site/main/blog/post.txt"
echo "first post" > "$mnt/site/main/blog/post.txt"
run "$GITFS" status --repo "$repo"
run "$GITFS" commit --repo "$repo" --branch site/main -m "site: written through the mount"
run ls "$mnt/.history/site/main"
run cat "$mnt/site/main/index.html"
# The first version's directory by its id: two commits made in the same second list in the order of their ids.
first=$(git --git-dir="$repo" rev-parse --short=12 images/disk~1)
printf '$ cmp <(gitfs cat images/disk~1:disk.img) %s\n' "$mnt/.history/images/disk/*_$first/disk.img (the first version, through the mount)"
cmp <("$GITFS" cat --repo "$repo" images/disk~1:disk.img) "$mnt"/.history/images/disk/*_"$first"/disk.img && echo identical
run "$GITFS" umount "$mnt"

say "It is a git repository: the real git reads it"
run git --git-dir="$repo" log --oneline --all
run git --git-dir="$repo" fsck --strict
run "$GITFS" fsck --repo "$repo"

say "A cluster: members find each other and their heads; a stranger is never heard"
node dist/scripts/demo-cluster.js "$work/cluster"
