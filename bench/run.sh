#!/bin/bash
# gitfs ingest benchmark, side by side with git, bup, restic, borg and casync (issue 2, "Benchmark").
#
# Usage (from the repository root, after a build):   make bench      or   bash bench/run.sh
# Environment:
#   GITFS_BENCH   dataset directory (default /var/tmp/gitfs-bench; made by ../shared/bench/make-datasets.sh)
#   STEPS         steps to run, space or comma separated: rootfs random images versions (default all)
#   TOOLS         tools to run: gitfs git bup restic borg casync (default all)
#   TOOL_TIMEOUT  seconds one timed command may take before it is killed (default 900)
#   VERIFY        1 (default) checks gitfs's output against the sources (export + diff -r, cat + cmp)
#   OUT           markdown output (default bench/results/latest.md for a full run,
#                 /var/tmp/gitfs-bench-partial.md when STEPS or TOOLS narrows the run)
#
# Steps (each tool gets its own repository per step):
#   rootfs    rootfs/a, then rootfs/b as a second snapshot into the same repository
#   random    random/random.bin (1 GiB)
#   images    images/a.raw, then images/b.raw, as the same path disk.raw, into one repository
#   versions  versions/v01..v10 into one repository
# git also runs `git gc` (timed, reported on its own row) after rootfs b, images b, v01 and v10.
# Every timed command runs under /usr/bin/time -f '%e %U %S %M' (wall, user, sys, peak RSS of the
# largest process) and `timeout`. Datasets are read once with cat before a step, so every tool
# reads them warm. Stored bytes are the apparent bytes of the regular files the tool keeps (`du -sb`
# without the directory entries): objects/ for the git-format repositories (gitfs, git, bup), the
# repository directory for restic and borg (their caches are kept outside it), store plus index
# files for casync.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${GITFS_BENCH:-/var/tmp/gitfs-bench}
WORK=/var/tmp/gitfs-bench-work
TOOL_TIMEOUT=${TOOL_TIMEOUT:-900}
VERIFY=${VERIFY:-1}
ALL_STEPS="rootfs random images versions"
ALL_TOOLS="gitfs git bup restic borg casync"
STEPS=${STEPS:-$ALL_STEPS}; STEPS=${STEPS//,/ }
TOOLS=${TOOLS:-$ALL_TOOLS}; TOOLS=${TOOLS//,/ }
if [ "$STEPS" = "$ALL_STEPS" ] && [ "$TOOLS" = "$ALL_TOOLS" ]; then FULL=1; else FULL=0; fi
if [ "$FULL" = 1 ]; then OUT=${OUT:-$ROOT/bench/results/latest.md}; else OUT=${OUT:-/var/tmp/gitfs-bench-partial.md}; fi

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

for s in $STEPS; do case " $ALL_STEPS " in *" $s "*) ;; *) die "unknown step '$s' (steps: $ALL_STEPS)";; esac; done
for t in $TOOLS; do case " $ALL_TOOLS " in *" $t "*) ;; *) die "unknown tool '$t' (tools: $ALL_TOOLS)";; esac; done
want_step() { case " $STEPS " in *" $1 "*) return 0;; esac; return 1; }

# ---------------------------------------------------------------- prerequisites
[ -f "$ROOT/dist/src/cli/main.js" ] || die "gitfs is not built: run 'make build' (or npx tsc -p .) first"
[ -f "$ROOT/dist/bench/report.js" ] || die "bench/report.ts is not built: run 'make build' (or npx tsc -p .) first"
need_pkgs=()
command -v git >/dev/null || need_pkgs+=(git)
command -v bup >/dev/null || need_pkgs+=(bup)
command -v restic >/dev/null || need_pkgs+=(restic)
command -v borg >/dev/null || need_pkgs+=(borgbackup)
command -v casync >/dev/null || need_pkgs+=(casync)
[ -x /usr/bin/time ] || need_pkgs+=(time)
command -v timeout >/dev/null || need_pkgs+=(coreutils)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing Debian packages: ${need_pkgs[*]} (install them, or run as root)"
  log "installing Debian packages: ${need_pkgs[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
fi
for d in rootfs/a rootfs/b versions/v01 versions/v10; do
  want_step "${d%%/*}" || continue
  [ -d "$DATA/$d" ] || die "dataset $DATA/$d missing: run ../shared/bench/make-datasets.sh"
done
want_step random && { [ -f "$DATA/random/random.bin" ] || die "dataset $DATA/random/random.bin missing"; }
want_step images && { [ -f "$DATA/images/a.raw" ] && [ -f "$DATA/images/b.raw" ] || die "dataset $DATA/images/{a,b}.raw missing"; }

# ---------------------------------------------------------------- work directory
TIMED_PID=""   # the /usr/bin/time of the command being measured, if any
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$TIMED_PID" ] && kill -0 "$TIMED_PID" 2>/dev/null; then
    # Interrupted mid-measurement: `timeout` (the child of time) passes TERM on to the tool.
    local p
    for p in $(ps -o pid= --ppid "$TIMED_PID"); do kill -TERM "$p" 2>/dev/null || true; done
    wait "$TIMED_PID" 2>/dev/null || true
  fi
  if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then rm -rf --one-file-system "$WORK"; fi
  exit "$rc"
}
rm -rf --one-file-system "$WORK"
mkdir -p "$WORK/repos"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A private copy of the built CLI, so a rebuild of dist/ in the checkout during the run does not
# change the program under test half-way.
mkdir -p "$WORK/gitfs-build/bin" "$WORK/gitfs-build/dist"
cp "$ROOT/bin/gitfs" "$WORK/gitfs-build/bin/"
cp "$ROOT/package.json" "$WORK/gitfs-build/"
cp -r "$ROOT/dist/src" "$WORK/gitfs-build/dist/"
cp -r "$ROOT/dist/bench" "$WORK/gitfs-build/dist/"
ln -sfn "$ROOT/node_modules" "$WORK/gitfs-build/node_modules"
GITFS=$WORK/gitfs-build/bin/gitfs
REPORT_JS=$WORK/gitfs-build/dist/bench/report.js
DIST_SUM=$(cd "$WORK/gitfs-build/dist/src" && find . -type f -name '*.js' -print0 | sort -z | xargs -0 cat | sha1sum | cut -c1-12)

RESULTS=$WORK/results.tsv     # step tool label status wall user sys rss_kb stored_bytes input_bytes note
CHECKS=$WORK/checks.tsv       # name result seconds detail
FAILS=$WORK/failures.md
: >"$RESULTS"; : >"$CHECKS"; : >"$FAILS"
LOGS=$WORK/logs; mkdir -p "$LOGS"

# Peers: no global configuration, caches inside the work directory, no passwords.
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
# restic 0.17+ can make a repository without a password; older ones need one (RESTIC_PASSWORD).
export RESTIC_CACHE_DIR=$WORK/cache/restic RESTIC_NOPW=""
if restic init --help 2>/dev/null | grep -q -- '--insecure-no-password'; then RESTIC_NOPW=--insecure-no-password; else export RESTIC_PASSWORD=bench; fi
export BORG_BASE_DIR=$WORK/cache/borg BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=NO
mkdir -p "$RESTIC_CACHE_DIR" "$BORG_BASE_DIR"

# ---------------------------------------------------------------- machine notes
notes() {
  local cpu load
  cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "# gitfs ingest benchmark"
  echo
  echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/run.sh\`; steps: $STEPS; tools: $TOOLS; datasets: \`$DATA\`."
  echo
  echo "## Machine"
  echo
  echo '```'
  echo "nproc: $(nproc)    kernel: $(uname -r)    cpu: $cpu"
  echo "load average at start: $load"
  free -g
  df -h "$WORK" | sed -n '1,2p'
  echo '```'
  echo
  echo "## Versions"
  echo
  echo '```'
  echo "gitfs   $(node -p "require('$ROOT/package.json').version") at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$( [ -n "$(git -C "$ROOT" status --porcelain -- src 2>/dev/null)" ] && echo ' + uncommitted changes in src/'), dist/src sha1 $DIST_SUM"
  echo "node    $(node --version)"
  echo "git     $(git --version | sed 's/^git version //')"
  echo "bup     $(bup --version 2>&1 | head -1)"
  echo "restic  $(restic version 2>&1 | head -1 | sed 's/^restic //')"
  echo "borg    $(borg --version 2>&1 | sed 's/^borg //')"
  echo "casync  $(casync --version 2>&1 | head -1 | sed 's/^casync //')"
  echo '```'
  echo
  echo "Settings: git with default config (core.bigFileThreshold 512 MiB, zlib level -1) except \`gc.auto=0\`, so \"before gc\" stays loose;"
  echo "bup \`index\` + \`save --strip\`; restic $([ -n "$RESTIC_NOPW" ] && echo "with $RESTIC_NOPW" || echo "with RESTIC_PASSWORD set (this version has no --insecure-no-password)"), cache outside the repository;"
  echo "borg \`-e none\`, default compression lz4, cache outside the repository; casync default chunking (64 KiB average), \`.caidx\` for trees and \`.caibx\` for single files."
  echo "Timeout per timed command: ${TOOL_TIMEOUT} s. MB = 10^6 bytes; MB/s is input bytes (apparent size of the regular files read) / wall time; CPU is user + sys;"
  echo "RSS is the peak of the largest process (GNU time %M). Stored: apparent bytes of the regular files the tool keeps (du -sb less directory entries):"
  echo "objects/ for gitfs, git and bup (for gitfs this equals \`gitfs stats\` storedBytes, checked after every commit), the repository for restic and borg"
  echo "(caches kept outside it), store plus index files for casync. \"added\" is the growth over the previous row of the same repository."
  echo "Each dataset is read once with cat before its step, so every tool reads it from the page cache. The machine is shared: see the load averages."
}
notes >"$WORK/notes.md"

# ---------------------------------------------------------------- helpers
input_bytes() { # DIR or FILE -> apparent bytes of its regular files
  find "$1" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d\n", s}'
}
warm() { # read a dataset once so every tool finds it in the page cache
  local p
  for p in "$@"; do
    if [ -d "$p" ]; then find "$p" -type f -print0 | xargs -0 -r cat >/dev/null
    else cat "$p" >/dev/null; fi
  done
}
file_bytes() { # apparent bytes of the regular files under DIR (what `du -sb` counts, less directory entries)
  find "$1" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d\n", s}'
}
stored_bytes() { # TOOL REPO
  case $1 in
    gitfs | bup) file_bytes "$2/objects" ;;
    git) file_bytes "$2/.git/objects" ;;
    restic | borg | casync) file_bytes "$2" ;;
  esac
}
tsv_clean() { tr '\t\n' '  '; }

# The timed commands, one function per tool: ACTION REPO LABEL SOURCE [file]
# (SOURCE is a directory; with "file", casync indexes the single regular file inside it).
t_gitfs() { "$GITFS" commit --repo "$1" --branch bench --from "$3" -m "$2" --json; }
t_git() { git --git-dir="$1/.git" --work-tree="$3" add -A && git --git-dir="$1/.git" --work-tree="$3" commit -q -m "$2"; }
t_bup() { BUP_DIR=$1 bup index "$3" && BUP_DIR=$1 bup save --strip -n bench "$3"; }
t_restic() { restic -r "$1" $RESTIC_NOPW backup --quiet "$3"; }
t_borg() { cd "$3" && borg create "$1::$2" .; }
t_casync() {
  if [ "${4:-}" = file ]; then
    local f; f=$(find "$3" -maxdepth 1 -type f | head -1)
    casync make --store="$1/store" "$1/$2.caibx" "$f"
  else
    casync make --store="$1/store" "$1/$2.caidx" "$3"
  fi
}
export -f t_gitfs t_git t_bup t_restic t_borg t_casync
export GITFS

init_repo() { # TOOL REPO
  local tool=$1 repo=$2
  case $tool in
    gitfs) "$GITFS" init --repo "$repo" >/dev/null ;;
    git) git init -q "$repo" && git -C "$repo" config gc.auto 0 ;;
    bup) BUP_DIR=$repo bup init >/dev/null 2>&1 ;;
    restic) restic -r "$repo" $RESTIC_NOPW init >/dev/null ;;
    borg) borg init -e none "$repo" >/dev/null ;;
    casync) mkdir -p "$repo/store" ;;
  esac
  record "$STEP" "$tool" init ok - - - - "$(stored_bytes "$tool" "$repo")" 0 ""
}

# timed PREFIX CMD...: runs CMD under time and timeout, output to PREFIX.{time,out,err}; its status.
# In the background plus `wait`, so that an interrupt reaches the script's trap at once.
timed() {
  local pfx=$1 rc=0; shift
  /usr/bin/time -f '%e %U %S %M' -o "$pfx.time" timeout --kill-after=30 "$TOOL_TIMEOUT" "$@" >"$pfx.out" 2>"$pfx.err" </dev/null &
  TIMED_PID=$!
  wait "$TIMED_PID" || rc=$?
  TIMED_PID=""
  return "$rc"
}

# record STEP TOOL LABEL STATUS WALL USER SYS RSS STORED INPUT NOTE
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }

# run_timed STEP TOOL LABEL REPO SOURCE INPUT_BYTES [file]: one timed ingest, recorded.
run_timed() {
  local step=$1 tool=$2 label=$3 repo=$4 src=$5 input=$6 mode=${7:-}
  local pfx="$LOGS/$step-$tool-$label" rc=0 status=ok note=""
  log "$step: $tool $label"
  timed "$pfx" bash -c 't_'"$tool"' "$@"' _ "$repo" "$label" "$src" "$mode" || rc=$?
  local wall=- user=- sys=- rss=-
  if [ -s "$pfx.time" ]; then read -r wall user sys rss < <(tail -n 1 "$pfx.time") || true; fi
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then status=timeout
  elif [ "$rc" != 0 ]; then
    if { [ "$tool" = borg ] && [ "$rc" = 1 ]; } || { [ "$tool" = restic ] && [ "$rc" = 3 ]; }; then status=warning; else status="failed($rc)"; fi
  fi
  if [ "$tool" = gitfs ] && [ "$rc" = 0 ]; then
    local j; j=$(tail -n 1 "$pfx.out")
    if ! note=$(node -e '
      const j = JSON.parse(process.argv[1]);
      if (typeof j.commit !== "string") throw new Error("no commit in output");
      const r = j.report, s = j.stats;
      process.stdout.write(`commit ${j.commit.slice(0, 12)}: ${r.files} files (${r.chunkedFiles} chunked), ${r.symlinks} symlinks, ${r.directories} dirs; ` +
        `${s.objectsWritten} objects / ${s.bytesWritten} bytes written, ${s.bytesStored} stored; ${r.skipped.length} not stored, ${r.hardLinks.length} hard links; internal ${j.seconds.toFixed(2)} s`);
    ' "$j" 2>"$pfx.jsonerr"); then status="bad-output"; note="$(head -c 300 "$pfx.jsonerr" | tsv_clean)"; fi
  fi
  local stored; stored=$(stored_bytes "$tool" "$repo" 2>/dev/null || echo -)
  if [ "$tool" = gitfs ] && [ "$rc" = 0 ]; then
    local sj sb
    if sj=$("$GITFS" stats --repo "$repo" --json 2>>"$pfx.err") && sb=$(node -p 'JSON.parse(process.argv[1]).storedBytes' "$sj"); then
      [ "$sb" = "$stored" ] || note="$note; gitfs stats storedBytes $sb differs from du $stored"
    else note="$note; gitfs stats failed"; fi
  fi
  if [ "$status" != ok ]; then
    { echo "### $step / $tool / $label: $status"; echo; echo '```'; tail -n 15 "$pfx.err"; echo '```'; echo; } >>"$FAILS"
    log "  $tool $label: $status (see failures in the report)"
  fi
  record "$step" "$tool" "$label" "$status" "$wall" "$user" "$sys" "$rss" "$stored" "$input" "$(printf '%s' "$note" | tsv_clean)"
  log "  wall ${wall}s cpu ${user}+${sys}s rss ${rss}KB stored $stored"
  [ "$status" = ok ] || [ "$status" = warning ]
}

# run_plain STEP TOOL LABEL REPO CMD...: a timed maintenance command (git gc), recorded.
run_plain() {
  local step=$1 tool=$2 label=$3 repo=$4; shift 4
  local pfx="$LOGS/$step-$tool-$label" rc=0 status=ok wall=- user=- sys=- rss=-
  log "$step: $tool $label"
  timed "$pfx" "$@" || rc=$?
  if [ -s "$pfx.time" ]; then read -r wall user sys rss < <(tail -n 1 "$pfx.time") || true; fi
  [ "$rc" = 0 ] || status="failed($rc)"
  record "$step" "$tool" "$label" "$status" "$wall" "$user" "$sys" "$rss" "$(stored_bytes "$tool" "$repo")" 0 ""
}

check() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(printf '%s' "$4" | tsv_clean)" >>"$CHECKS"; log "check $1: $2 ($4)"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }

# Tree check: diff -r (contents, types, symlink targets) plus the executable bit of regular files;
# the paths gitfs reported as not stored (devices, FIFOs, sockets) are expected to be missing.
verify_tree() { # NAME REPO REV SOURCE LOGPREFIX
  local name=$1 repo=$2 rev=$3 src=$4 pfx=$5 out="$WORK/verify-export" t0 rc=0
  rm -rf "$out"; t0=$(now)
  if ! "$GITFS" export --repo "$repo" "$rev" "$out" 2>"$pfx.export.err"; then
    check "$name" FAIL "$(since "$t0")" "gitfs export failed: $(tail -n 3 "$pfx.export.err")"; rm -rf "$out"; return 0
  fi
  local secs; secs=$(since "$t0")
  node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").pop());
    for (const s of j.report.skipped) console.log(s.path);' "$pfx.out" | sort >"$pfx.skipped"
  diff -r --no-dereference "$src" "$out" >"$pfx.diff" 2>&1 || rc=$?
  # "Only in SRC/dir: name" for a reported skipped path is expected.
  local unexpected
  unexpected=$(awk -v src="$src" -v skipped="$pfx.skipped" '
    BEGIN { while ((getline p < skipped) > 0) skip[p] = 1 }
    /^Only in / { line = $0; sub(/^Only in /, "", line); i = index(line, ": ");
      dir = substr(line, 1, i - 1); name = substr(line, i + 2);
      if (index(dir, src) == 1) { rel = substr(dir, length(src) + 2); path = (rel == "" ? name : rel "/" name); if (path in skip) next } }
    { print }' "$pfx.diff")
  local modes_src modes_out
  modes_src=$(cd "$src" && find . -type f -perm -u=x | sort | sha1sum)
  modes_out=$(cd "$out" && find . -type f -perm -u=x | sort | sha1sum)
  local nskip; nskip=$(wc -l <"$pfx.skipped")
  if [ -z "$unexpected" ] && [ "$modes_src" = "$modes_out" ] && [ "$rc" -le 1 ]; then
    local skipped=""
    [ "$nskip" = 0 ] || skipped="; $nskip paths reported as not stored and absent as expected: $(head -n 4 "$pfx.skipped" | tr '\n' ' ')$([ "$nskip" -le 4 ] || echo ...)"
    check "$name" PASS "$secs" "export identical to the source (diff -r --no-dereference, exec bits)$skipped"
  else
    check "$name" FAIL "$secs" "$(printf '%s\n' "$unexpected" | head -n 5 | tr '\n' ';') $([ "$modes_src" = "$modes_out" ] || echo 'executable bits differ')"
  fi
  rm -rf "$out"
}
verify_file() { # NAME REPO REV:PATH FILE
  local name=$1 repo=$2 spec=$3 file=$4 t0 rc=0
  t0=$(now)
  set +o pipefail
  "$GITFS" cat --repo "$repo" "$spec" 2>"$WORK/verify-cat.err" | cmp - "$file" >"$WORK/verify-cmp.out" 2>&1 || rc=$?
  set -o pipefail
  if [ "$rc" = 0 ]; then check "$name" PASS "$(since "$t0")" "gitfs cat $spec | cmp: identical"
  else check "$name" FAIL "$(since "$t0")" "$(cat "$WORK/verify-cmp.out" "$WORK/verify-cat.err" | head -n 3)"; fi
}

write_report() { # [partial]
  local tmp="$OUT.tmp"
  mkdir -p "$(dirname "$OUT")"
  {
    cat "$WORK/notes.md"
    echo
    node "$REPORT_JS" "$RESULTS" "$CHECKS" "$FAILS" ${1:+--partial} "--load=$(cut -d' ' -f1-3 /proc/loadavg)"
  } >"$tmp"
  mv "$tmp" "$OUT"
}

# ---------------------------------------------------------------- steps
BENCH_T0=$(now)

step_rootfs() {
  local a=$DATA/rootfs/a b=$DATA/rootfs/b ia ib tool repo
  ia=$(input_bytes "$a"); ib=$(input_bytes "$b")
  log "rootfs: warming the page cache"; warm "$a" "$b"
  for tool in $TOOLS; do
    repo=$WORK/repos/rootfs-$tool; init_repo "$tool" "$repo"
    if run_timed rootfs "$tool" a "$repo" "$a" "$ia" && [ "$tool" = gitfs ] && [ "$VERIFY" = 1 ]; then
      verify_tree "rootfs a: gitfs export vs source" "$repo" bench "$a" "$LOGS/rootfs-gitfs-a"
    fi
    run_timed rootfs "$tool" b "$repo" "$b" "$ib" || true
    if [ "$tool" = git ]; then run_plain rootfs git gc "$repo" git -C "$repo" gc -q; fi
    rm -rf "$repo"
  done
}

step_random() {
  local src=$DATA/random in tool repo
  [ "$(find "$src" -maxdepth 1 -type f | wc -l)" = 1 ] || die "$src must hold random.bin alone"
  in=$(input_bytes "$src")
  log "random: warming the page cache"; warm "$src"
  for tool in $TOOLS; do
    repo=$WORK/repos/random-$tool; init_repo "$tool" "$repo"
    if run_timed random "$tool" random "$repo" "$src" "$in" file && [ "$tool" = gitfs ] && [ "$VERIFY" = 1 ]; then
      verify_file "random: gitfs cat vs source" "$repo" bench:random.bin "$src/random.bin"
    fi
    rm -rf "$repo"
  done
}

step_images() {
  # Each image is offered as the same path, disk.raw, in a directory of its own: a hard link
  # (no copy) when the work directory shares the datasets' file system, else a sparse copy.
  local v tool repo
  for v in a b; do
    mkdir -p "$WORK/data/image-$v"
    ln "$DATA/images/$v.raw" "$WORK/data/image-$v/disk.raw" 2>/dev/null ||
      cp --sparse=always "$DATA/images/$v.raw" "$WORK/data/image-$v/disk.raw"
  done
  local ia ib; ia=$(input_bytes "$WORK/data/image-a"); ib=$(input_bytes "$WORK/data/image-b")
  log "images: warming the page cache"; warm "$WORK/data/image-a" "$WORK/data/image-b"
  for tool in $TOOLS; do
    repo=$WORK/repos/images-$tool; init_repo "$tool" "$repo"
    run_timed images "$tool" a "$repo" "$WORK/data/image-a" "$ia" file || true
    if run_timed images "$tool" b "$repo" "$WORK/data/image-b" "$ib" file && [ "$tool" = gitfs ] && [ "$VERIFY" = 1 ]; then
      verify_file "images b: gitfs cat vs source" "$repo" bench:disk.raw "$DATA/images/b.raw"
      verify_file "images a: gitfs cat vs source" "$repo" bench~1:disk.raw "$DATA/images/a.raw"
    fi
    if [ "$tool" = git ]; then run_plain images git gc "$repo" git -C "$repo" gc -q; fi
    rm -rf "$repo"
  done
  rm -rf "$WORK/data"
}

step_versions() {
  local i v tool repo ok
  local -a vers=()
  for i in $(seq 1 10); do vers+=("$(printf 'v%02d' "$i")"); done
  declare -A vin=()
  for v in "${vers[@]}"; do vin[$v]=$(input_bytes "$DATA/versions/$v"); done
  log "versions: warming the page cache"
  for v in "${vers[@]}"; do warm "$DATA/versions/$v"; done
  for tool in $TOOLS; do
    repo=$WORK/repos/versions-$tool; init_repo "$tool" "$repo"
    ok=1
    for v in "${vers[@]}"; do
      run_timed versions "$tool" "$v" "$repo" "$DATA/versions/$v" "${vin[$v]}" || ok=0
      if [ "$tool" = git ] && [ "$v" = v01 ]; then
        # Packed size of v01 alone, the base for "bytes per later version after gc". Loose objects
        # written later do not depend on what is packed, so this does not change "before gc".
        run_plain versions git gc-after-v01 "$repo" git -C "$repo" gc -q
      fi
    done
    if [ "$tool" = git ]; then run_plain versions git gc-after-v10 "$repo" git -C "$repo" gc -q; fi
    if [ "$tool" = gitfs ] && [ "$ok" = 1 ] && [ "$VERIFY" = 1 ]; then
      verify_tree "versions v10: gitfs export vs source" "$repo" bench "$DATA/versions/v10" "$LOGS/versions-gitfs-v10"
      verify_tree "versions v01: gitfs export vs source" "$repo" bench~9 "$DATA/versions/v01" "$LOGS/versions-gitfs-v01"
    fi
    rm -rf "$repo"
  done
}

for STEP in $STEPS; do
  log "=== step $STEP"
  "step_$STEP"
  write_report partial
done

log "done in $(since "$BENCH_T0") s"
write_report
echo "Total benchmark time: $(since "$BENCH_T0") s." >>"$OUT"
cat "$OUT"
log "report written to $OUT"
