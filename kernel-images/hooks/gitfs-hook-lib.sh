# shellcheck shell=bash
# gitfs-hook-lib.sh: what the kernel hooks (qemu, grub, kexec) share. Sourced, never run.
# The contract these functions serve is in kernel-images/README.md.

HOOK_NAME="${HOOK_NAME:-gitfs-hook}"
HOOK_ACTION=""
XORRISO_TIMEOUT=300          # seconds to extract the kernel and initrd from an image
VERSION_RE='^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$'
CMDLINE_RE='^[A-Za-z0-9 ._,:=/+@%-]*$'

say() { echo "$HOOK_NAME${HOOK_ACTION:+ $HOOK_ACTION}: $*"; }
warn() { echo "$HOOK_NAME${HOOK_ACTION:+ $HOOK_ACTION}: warning: $*" >&2; }
# die MESSAGE [CODE]: exit CODE (1 by default) with the message on stderr.
die() { echo "$HOOK_NAME${HOOK_ACTION:+ $HOOK_ACTION}: error: $1" >&2; exit "${2:-1}"; }

# hook_start ACTION...: checks the action and the environment every action needs.
hook_start() {
  [ $# -eq 1 ] || die "usage: $0 apply|health|rollback (environment: see kernel-images/README.md)" 2
  case "$1" in
    apply|health|rollback) HOOK_ACTION="$1" ;;
    *) die "unknown action '$1' (expected apply, health or rollback)" 2 ;;
  esac
  [ "${GITFS_KIND:-kernel}" = kernel ] || die "GITFS_KIND is '$GITFS_KIND': this hook handles kernel images only"
  [ -n "${GITFS_STATE:-}" ] || die "GITFS_STATE is not set"
  [ -d "$GITFS_STATE" ] || die "GITFS_STATE $GITFS_STATE is not a directory"
  case "$GITFS_STATE" in /*) ;; *) die "GITFS_STATE must be an absolute path" ;; esac
  check_version_var GITFS_PREVIOUS allow-empty
  if [ "$HOOK_ACTION" = rollback ]; then
    check_version_var GITFS_VERSION allow-empty
  else
    check_version_var GITFS_VERSION
  fi
  GITFS_CMDLINE="${GITFS_CMDLINE:-}"
  [[ "$GITFS_CMDLINE" =~ $CMDLINE_RE ]] || die "GITFS_CMDLINE has characters other than letters, digits, space and ._,:=/+@%-"
}

# check_version_var NAME [allow-empty]
check_version_var() {
  local value="${!1:-}"
  if [ -z "$value" ]; then
    [ "${2:-}" = allow-empty ] && return 0
    die "$1 is not set"
  fi
  [[ "$value" =~ $VERSION_RE ]] || die "$1 '$value' is not a version name (letters, digits, ._+~- ; at most 128)"
}

# need_payload: GITFS_PAYLOAD names a readable file whose SHA-256 is the manifest's.
need_payload() {
  [ -n "${GITFS_PAYLOAD:-}" ] || die "GITFS_PAYLOAD is not set"
  if [ ! -f "$GITFS_PAYLOAD" ] || [ ! -r "$GITFS_PAYLOAD" ]; then die "GITFS_PAYLOAD $GITFS_PAYLOAD is not a readable file"; fi
  [ -n "${GITFS_MANIFEST:-}" ] || die "GITFS_MANIFEST is not set"
  [ -r "$GITFS_MANIFEST" ] || die "GITFS_MANIFEST $GITFS_MANIFEST is not readable"
  local want got mversion
  want="$(json_string "$GITFS_MANIFEST" sha256)" || die "the manifest $GITFS_MANIFEST has no \"sha256\" string"
  mversion="$(json_string "$GITFS_MANIFEST" version)" || die "the manifest $GITFS_MANIFEST has no \"version\" string"
  [ "$mversion" = "$GITFS_VERSION" ] || die "the manifest is for version '$mversion', GITFS_VERSION is '$GITFS_VERSION'"
  got="$(sha256sum "$GITFS_PAYLOAD" | cut -d' ' -f1)"
  [ "$got" = "$want" ] || die "GITFS_PAYLOAD has SHA-256 $got, the manifest says $want: refusing it"
}

# json_string FILE KEY: the value of "KEY":"value" in a flat JSON object. Values with escapes
# (backslash or quote) are refused rather than guessed at; none of ours need one.
json_string() {
  local v
  v="$(tr -d '\n' <"$1" | sed -n "s/.*\"$2\"[[:space:]]*:[[:space:]]*\"\([^\"\\\\]*\)\"[[:space:]]*[,}].*/\1/p")"
  [ -n "$v" ] || grep -q "\"$2\"[[:space:]]*:[[:space:]]*\"\"" "$1" || return 1
  printf '%s\n' "$v"
}

# extract_image ISO DIR: DIR (made here; it must not exist) gets vmlinuz, initrd.img and
# gitfs-image.json from the ISO; the image's own version must be GITFS_VERSION.
extract_image() {
  local iso="$1" dir="$2" log ver
  command -v xorriso >/dev/null || die "xorriso is not installed (apt-get install xorriso)"
  mkdir -p "$dir"
  log="$dir/.xorriso.log"
  if ! timeout "$XORRISO_TIMEOUT" xorriso -osirrox on -indev "$iso" \
        -extract /boot/vmlinuz "$dir/vmlinuz" -extract /boot/initrd.img "$dir/initrd.img" \
        -extract /gitfs-image.json "$dir/gitfs-image.json" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "could not extract /boot/vmlinuz, /boot/initrd.img and /gitfs-image.json from $iso"
  fi
  rm -f "$log"
  # xorriso extracts a symlink as a symlink: one would point into this host (its own kernel, any
  # file a chmod or a read would then touch). Only regular files are taken.
  local f
  for f in vmlinuz initrd.img gitfs-image.json; do
    if [ -L "$dir/$f" ] || [ ! -f "$dir/$f" ]; then die "the image's $f is not a regular file (a symlink or other kind): refusing it"; fi
  done
  chmod 0644 "$dir/vmlinuz" "$dir/initrd.img" "$dir/gitfs-image.json"
  if [ ! -s "$dir/vmlinuz" ] || [ ! -s "$dir/initrd.img" ]; then die "the image has an empty kernel or initrd"; fi
  ver="$(json_string "$dir/gitfs-image.json" version)" || die "the image's /gitfs-image.json has no \"version\""
  [ "$ver" = "$GITFS_VERSION" ] || die "the image says it is version '$ver', GITFS_VERSION is '$GITFS_VERSION'"
}

# image_cmdline DIR: the command line to boot with: GITFS_CMDLINE, else the image's own.
image_cmdline() {
  local c=""
  if [ -n "$GITFS_CMDLINE" ]; then c="$GITFS_CMDLINE"
  else c="$(json_string "$1/gitfs-image.json" cmdline 2>/dev/null || true)"
  fi
  [[ "$c" =~ $CMDLINE_RE ]] || die "the image's cmdline has characters other than letters, digits, space and ._,:=/+@%-"
  printf '%s\n' "$c"
}

# write_file PATH CONTENT: replaces PATH atomically (temporary file, then rename).
write_file() {
  local tmp="$1.tmp.$$"
  printf '%s\n' "$2" >"$tmp" && mv -f "$tmp" "$1"
}

# read_file PATH: its first line, empty when absent.
read_file() { if [ -f "$1" ]; then head -n 1 "$1"; fi; }

# set_current VERSION: $GITFS_STATE/current names what runs now (removed when VERSION is empty).
set_current() {
  if [ -n "$1" ]; then write_file "$GITFS_STATE/current" "$1"; else rm -f "$GITFS_STATE/current"; fi
}

# now_ms: milliseconds since the epoch.
now_ms() { date +%s%3N; }
# HOOK_START_MS: when the hook began (sourcing this is among its first steps); the agent's
# deadline counts from when it started the hook, so a deadline within the hook counts from here.
HOOK_START_MS="$(now_ms)"

# --- host hooks (grub, kexec): a fake root for tests --------------------------------------------
# With GITFS_ROOT set, every host path is under it, and commands that change the host
# (update-grub, grub-reboot, kexec, reboot ...) are not run: each is appended, one line of
# words, to $GITFS_ROOT/gitfs-dry-run.log and printed as "would run: ...".
ROOT="${GITFS_ROOT:-}"
if [ -n "$ROOT" ]; then
  case "$ROOT" in /*) ;; *) die "GITFS_ROOT must be an absolute path" 2 ;; esac
  [ -d "$ROOT" ] || die "GITFS_ROOT $ROOT is not a directory" 2
  ROOT="${ROOT%/}"
fi
HOST_COMMAND_TIMEOUT=600     # seconds for one host command (update-grub on a slow disk, kexec -l)

# host_run COMMAND ARG...: runs it (bounded), or records it in the fake root.
host_run() {
  if [ -n "$ROOT" ]; then
    say "would run: $*"
    printf '%s\n' "$*" >>"$ROOT/gitfs-dry-run.log"
    return 0
  fi
  say "running: $*"
  timeout "$HOST_COMMAND_TIMEOUT" "$@" || die "'$*' failed (exit $?)"
}

# host_need COMMAND...: the commands exist (not checked in the fake root, where none runs).
host_need() {
  [ -n "$ROOT" ] && return 0
  local c
  for c in "$@"; do command -v "$c" >/dev/null || die "'$c' is not installed (see kernel-images/README.md, installing)"; done
}

boot_id() { read_file "$ROOT/proc/sys/kernel/random/boot_id"; }
proc_cmdline() { read_file "$ROOT/proc/cmdline"; }

# running_version: the gitfs.version=... of the running kernel's command line, empty if none.
running_version() {
  local w
  for w in $(proc_cmdline); do
    case "$w" in gitfs.version=*) printf '%s\n' "${w#gitfs.version=}"; return 0 ;; esac
  done
}

# boot_cmdline IMAGE_DIR: the full command line for a host boot: the operator's base line
# ($ROOT/etc/gitfs/kernel-cmdline: root=..., console=...), the image's, and gitfs.version.
boot_cmdline() {
  local base="" file="$ROOT/etc/gitfs/kernel-cmdline" image line
  if [ -f "$file" ]; then base="$(grep -v '^[[:space:]]*#' "$file" | tr '\n' ' ' | tr -s ' ')"; fi
  [[ "$base" =~ $CMDLINE_RE ]] || die "$file has characters other than letters, digits, space and ._,:=/+@%-"
  image="$(image_cmdline "$1")"
  line="$base $image gitfs.version=$GITFS_VERSION"
  [ -n "${GITFS_CHANNEL:-}" ] && line="$line gitfs.channel=$GITFS_CHANNEL"
  line="$(printf '%s' "$line" | tr -s ' ')"
  line="${line# }"
  [[ "$line" =~ $CMDLINE_RE ]] || die "GITFS_CHANNEL has characters that cannot go on a kernel command line"
  printf '%s\n' "$line"
}

# staged_health: the health check of hooks that boot by restarting the host (grub, kexec).
# 0: the running kernel is GITFS_VERSION; 75: the host has not restarted since apply (the
# version is staged, not running: ask again after the restart); 1: it restarted into another
# kernel (the one-shot boot failed and the host fell back), or apply never ran.
staged_health() {
  local before now running
  running="$(running_version)"
  if [ "$running" = "$GITFS_VERSION" ]; then
    say "running $GITFS_VERSION (/proc/cmdline: $(proc_cmdline))"
    return 0
  fi
  before="$(read_file "$GITFS_STATE/boot-id.$GITFS_VERSION")"
  [ -n "$before" ] || die "no apply of $GITFS_VERSION is recorded in $GITFS_STATE, and it is not running (running: '${running:-no gitfs version}')"
  now="$(boot_id)"
  [ -n "$now" ] || die "cannot read $ROOT/proc/sys/kernel/random/boot_id"
  if [ "$now" = "$before" ]; then
    echo "$HOOK_NAME health: $GITFS_VERSION is staged but the host has not restarted since apply (running: '${running:-no gitfs version}'); ask again after the restart" >&2
    exit 75
  fi
  die "the host restarted but runs '${running:-no gitfs version}', not $GITFS_VERSION: the new kernel did not come up and the host fell back"
}

# stage_image PARENT: PARENT/GITFS_VERSION/ gets vmlinuz, initrd.img, gitfs-image.json from
# GITFS_PAYLOAD, plus cmdline (boot_cmdline), channel and manifest.json; replaced whole.
stage_image() {
  local parent="$1" dir tmp line
  dir="$parent/$GITFS_VERSION"
  tmp="$parent/.new-$GITFS_VERSION.$$"
  mkdir -p "$parent"
  rm -rf "$tmp"
  extract_image "$GITFS_PAYLOAD" "$tmp"
  line="$(boot_cmdline "$tmp")"
  printf '%s\n' "$line" >"$tmp/cmdline"
  printf '%s\n' "${GITFS_CHANNEL:-}" >"$tmp/channel"
  if [ -n "${GITFS_MANIFEST:-}" ] && [ -r "$GITFS_MANIFEST" ]; then cp "$GITFS_MANIFEST" "$tmp/manifest.json"; fi
  rm -rf "$dir"
  mv "$tmp" "$dir"
  say "installed $GITFS_VERSION in $dir (kernel command line: $line)"
}

# prune_images PARENT: removes this channel's versions other than GITFS_VERSION, GITFS_PREVIOUS
# and the running one (other channels' directories are left alone).
prune_images() {
  local d v running
  running="$(running_version)"
  for d in "$1"/*/; do
    [ -d "$d" ] || continue
    v="$(basename "$d")"
    case "$v" in "${GITFS_VERSION:-}"|"${GITFS_PREVIOUS:-}"|"$running") continue ;; esac
    [ "$(read_file "$d/channel")" = "${GITFS_CHANNEL:-}" ] || continue
    say "removing old version $v from $1"
    rm -rf "$d"
  done
}

# record_boot_id: remembers which boot applied GITFS_VERSION, for staged_health.
record_boot_id() {
  local id; id="$(boot_id)"
  [ -n "$id" ] || die "cannot read $ROOT/proc/sys/kernel/random/boot_id"
  write_file "$GITFS_STATE/boot-id.$GITFS_VERSION" "$id"
}

# failed_version: the version a rollback undoes: the staged one, else the running gitfs version
# when it is not the one returned to. Empty if neither.
failed_version() {
  local v
  v="$(read_file "$GITFS_STATE/staged")"
  [ -n "$v" ] || v="$(running_version)"
  [ "$v" = "${GITFS_VERSION:-}" ] && v=""
  printf '%s\n' "$v"
}
