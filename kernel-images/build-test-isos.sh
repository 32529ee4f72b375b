#!/usr/bin/env bash
# build-test-isos.sh [--with-qemu] OUTDIR [VERSION]
#
# Builds two small kernel ISO images for gitfs rollout tests, from Debian packages only:
#   OUTDIR/good.iso  version VERSION:      its /init prints "GITFS-BOOT-OK VERSION" on the console
#                                          and powers the machine off;
#   OUTDIR/bad.iso   version VERSION-bad:  its /init exits, so the kernel panics ("Attempted to
#                                          kill init"); it never prints the marker.
# Each ISO holds /boot/vmlinuz (Debian's kernel), /boot/initrd.img (busybox-static, cpio newc,
# gzip), /gitfs-image.json ({"version","cmdline"}) and isolinux, so it also boots as a BIOS CD.
# Beside them: good.manifest.json and bad.manifest.json (the agent's manifest: version, sha256,
# kind, cmdline) and isos.json (both, with paths and sizes).
#
# Needs apt: the tools below are installed with apt-get when missing (as root); the kernel,
# busybox and isolinux packages are fetched with `apt-get download` into $GITFS_DEB_CACHE
# (default OUTDIR/.debs), checked against apt's SHA256, and unpacked, never installed.
# --with-qemu also installs what the qemu hook runs (for the boot test).
#
# Environment: GITFS_DEB_CACHE (the .deb cache), GITFS_BAD_VERSION (default VERSION-bad),
# GITFS_TEST_CMDLINE (the images' kernel command line, default "quiet"),
# SOURCE_DATE_EPOCH (timestamps inside the images, default 1700000000).
set -euo pipefail

# Debian packages whose programs this script runs (installed when missing).
TOOL_PACKAGES="xorriso cpio"
# Installed as well with --with-qemu: the qemu hook and the boot test run qemu-system-x86_64.
QEMU_PACKAGES="qemu-system-x86"
# Downloaded and unpacked, never installed: the metapackage whose kernel dependency is used,
# and the packages that give the initramfs its busybox and the ISO its BIOS boot loader.
KERNEL_METAPACKAGE="linux-image-amd64"
UNPACKED_PACKAGES="busybox-static isolinux syslinux-common"

APT_TIMEOUT=900      # seconds, for each apt-get call
TOOL_TIMEOUT=300     # seconds, for each unpack or image-making command

die() { echo "build-test-isos: error: $*" >&2; exit 1; }
say() { echo "build-test-isos: $*"; }

with_qemu=0
if [ "${1:-}" = "--with-qemu" ]; then with_qemu=1; shift; fi
if [ $# -lt 1 ] || [ $# -gt 2 ]; then die "usage: $0 [--with-qemu] OUTDIR [VERSION]"; fi
[ -n "$1" ] || die "OUTDIR is empty"
version="${2:-1.0.0}"
bad_version="${GITFS_BAD_VERSION:-$version-bad}"
cmdline="${GITFS_TEST_CMDLINE-quiet}"
epoch="${SOURCE_DATE_EPOCH:-1700000000}"
version_re='^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$'
[[ "$version" =~ $version_re ]] || die "VERSION '$version' must match $version_re"
[[ "$bad_version" =~ $version_re ]] || die "GITFS_BAD_VERSION '$bad_version' must match $version_re"
[ "$version" != "$bad_version" ] || die "the good and the bad version must differ"
[[ "$cmdline" =~ ^[A-Za-z0-9\ ._,:=/+@%-]*$ ]] || die "GITFS_TEST_CMDLINE has characters other than letters, digits, space and ._,:=/+@%-"
[[ "$epoch" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be a number of seconds"
[ "$(uname -m)" = x86_64 ] || die "this builds amd64 images and runs the amd64 busybox: needs an x86_64 machine"

for c in apt-get apt-cache dpkg-deb dpkg-query gzip sha256sum find sort tar timeout touch stat; do
  command -v "$c" >/dev/null || die "command '$c' not found (is this Debian?)"
done

mkdir -p "$1" || die "cannot create $1"
outdir="$(cd "$1" && pwd)"
cache="${GITFS_DEB_CACHE:-$outdir/.debs}"
mkdir -p "$cache" || die "cannot create the .deb cache $cache"
cache="$(cd "$cache" && pwd)"

work="$(mktemp -d "${TMPDIR:-/tmp}/gitfs-isos.XXXXXX")"
trap 'rm -rf "$work"' EXIT

apt_updated=0
apt_update() {
  [ "$apt_updated" = 1 ] && return 0
  [ "$(id -u)" = 0 ] || die "apt-get update needs root (run as root, or install: $*)"
  say "apt-get update" >&2
  timeout "$APT_TIMEOUT" apt-get update -qq >&2 || die "apt-get update failed or took over ${APT_TIMEOUT}s"
  apt_updated=1
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# --- 1. tools -----------------------------------------------------------------------------------
wanted="$TOOL_PACKAGES"
[ "$with_qemu" = 1 ] && wanted="$wanted $QEMU_PACKAGES"
missing=""
for p in $wanted; do installed "$p" || missing="$missing $p"; done
missing="${missing# }"
if [ -n "$missing" ]; then
  [ "$(id -u)" = 0 ] || die "missing Debian packages: $missing (run as root, or install them)"
  say "installing Debian packages: $missing"
  apt_update "$missing"
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  DEBIAN_FRONTEND=noninteractive timeout "$APT_TIMEOUT" apt-get install -y -qq --no-install-recommends $missing \
    || die "apt-get install $missing failed or took over ${APT_TIMEOUT}s"
fi
for c in xorriso cpio; do command -v "$c" >/dev/null || die "'$c' still not found after installing $TOOL_PACKAGES"; done
if [ "$with_qemu" = 1 ]; then command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found after installing $QEMU_PACKAGES"; fi

# --- 2. packages to unpack: fetched into the cache, checked against apt's SHA256 --------------
# apt-cache show takes a second or more here, for one package or several: records are read in
# one call into $work/records/PACKAGE. apt_records PACKAGE...: true when apt has a candidate
# record for each (after one apt-get update if it had not).
apt_records() {
  local p missing
  mkdir -p "$work/records"
  read_records() {
    apt-cache show --no-all-versions "$@" 2>/dev/null \
      | awk -v dir="$work/records" '/^Package: /{f=dir "/" $2} f{print >f}' || true
  }
  missing=""
  for p in "$@"; do grep -qs '^SHA256: ' "$work/records/$p" || missing="$missing $p"; done
  [ -z "$missing" ] && return 0
  # shellcheck disable=SC2086 # a list of package names
  read_records $missing
  missing=""
  for p in "$@"; do grep -qs '^SHA256: ' "$work/records/$p" || missing="$missing $p"; done
  [ -z "$missing" ] && return 0
  apt_update "$missing"
  # shellcheck disable=SC2086
  read_records $missing
  for p in "$@"; do grep -qs '^SHA256: ' "$work/records/$p" || die "apt knows no package '$p' (apt-cache show $p)"; done
}
# apt_field PACKAGE FIELD: the field of the candidate version's record (apt_records first).
apt_field() {
  sed -n "s/^$2: //p" "$work/records/$1" | head -n 1
}

# fetch_deb PACKAGE: prints the path of the cached .deb of the candidate version.
fetch_deb() {
  local pkg="$1" ver sha file got tmp
  apt_records "$pkg"
  ver="$(apt_field "$pkg" Version)"
  sha="$(apt_field "$pkg" SHA256)"
  file="$cache/${pkg}_${ver//:/%3a}_amd64.deb"
  if [ -f "$file" ]; then
    got="$(sha256sum "$file" | cut -d' ' -f1)"
    if [ "$got" = "$sha" ]; then echo "$file"; return 0; fi
    say "cached $file does not match apt's SHA256: fetching again" >&2
    rm -f "$file"
  fi
  say "apt-get download $pkg=$ver" >&2
  tmp="$(mktemp -d "$cache/.download.XXXXXX")"
  if ! (cd "$tmp" && timeout "$APT_TIMEOUT" apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver" >&2); then
    rm -rf "$tmp"; die "apt-get download $pkg=$ver failed or took over ${APT_TIMEOUT}s"
  fi
  got="$(find "$tmp" -maxdepth 1 -name '*.deb' | head -n 1)"
  [ -n "$got" ] || { rm -rf "$tmp"; die "apt-get download $pkg gave no .deb"; }
  [ "$(sha256sum "$got" | cut -d' ' -f1)" = "$sha" ] || { rm -rf "$tmp"; die "downloaded $pkg does not match apt's SHA256 $sha"; }
  mv "$got" "$file"
  rm -rf "$tmp"
  echo "$file"
}

# unpack DEB DIR MEMBER...: extracts the named members (paths as in the package, ./usr/...).
unpack() {
  local deb="$1" dir="$2"; shift 2
  mkdir -p "$dir"
  timeout "$TOOL_TIMEOUT" dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" --wildcards "$@" \
    || die "could not extract $* from $deb"
}

apt_records "$KERNEL_METAPACKAGE"
kernel_pkg="$(apt_field "$KERNEL_METAPACKAGE" Depends | tr ',' '\n' | sed -n 's/^ *\(linux-image-[^ (|]*\).*/\1/p' | head -n 1)"
[ -n "$kernel_pkg" ] || die "cannot find the kernel package that $KERNEL_METAPACKAGE depends on"
# know every record first (apt-get update at most once, in this shell), then fetch
# shellcheck disable=SC2086 # a list of package names
apt_records "$kernel_pkg" $UNPACKED_PACKAGES
kernel_deb="$(fetch_deb "$kernel_pkg")"
debs=""
for p in $UNPACKED_PACKAGES; do debs="$debs $(fetch_deb "$p")"; done
read -r busybox_deb isolinux_deb syslinux_deb <<<"$debs"

say "unpacking $kernel_pkg (vmlinuz only), $UNPACKED_PACKAGES"
unpack "$kernel_deb" "$work/kernel" './boot/vmlinuz-*'
unpack "$busybox_deb" "$work/busybox" './bin/busybox'
unpack "$isolinux_deb" "$work/isolinux" './usr/lib/ISOLINUX/isolinux.bin' './usr/lib/ISOLINUX/isohdpfx.bin'
unpack "$syslinux_deb" "$work/syslinux" './usr/lib/syslinux/modules/bios/ldlinux.c32'
vmlinuz="$(find "$work/kernel/boot" -name 'vmlinuz-*' | head -n 1)"
[ -n "$vmlinuz" ] || die "no boot/vmlinuz-* in $kernel_deb"
kernel_release="${vmlinuz##*/vmlinuz-}"
busybox="$work/busybox/bin/busybox"
[ -x "$busybox" ] || die "no executable bin/busybox in $busybox_deb"

# --- 3. initramfs --------------------------------------------------------------------------------
# make_initrd KIND VERSION OUT: KIND is good or bad.
make_initrd() {
  local kind="$1" ver="$2" out="$3" root="$work/initrd-$1" applet
  mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/root"
  cp "$busybox" "$root/bin/busybox"
  chmod 0755 "$root/bin/busybox"
  # one symbolic link per applet, at the path busybox itself gives (bin/sh, sbin/poweroff, ...);
  # the links point into the image, so -L, not -e (which would look for /bin/busybox on this host)
  while IFS= read -r applet; do
    case "$applet" in ''|bin/busybox|*..*|/*) continue ;; esac
    [ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
  done < <("$busybox" --list-full | LC_ALL=C sort)
  if [ ! -L "$root/bin/sh" ] || [ ! -L "$root/sbin/poweroff" ]; then die "busybox lacks sh or poweroff"; fi
  if [ "$kind" = good ]; then
    cat >"$root/init" <<INIT
#!/bin/sh
# gitfs test image $ver (GOOD): report on the console, then power off.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "gitfs test image $ver: kernel \$(uname -r), cmdline: \$(cat /proc/cmdline)"
# only emergencies from the kernel from now on, so that nothing breaks the marker line
echo 1 >/proc/sys/kernel/printk
printf '\nGITFS-BOOT-OK %s\n' '$ver' >/dev/console
poweroff -f
# poweroff returned: make sure the machine stops anyway (exiting init panics, panic=N reboots)
sleep 5
exit 0
INIT
  else
    cat >"$root/init" <<INIT
#!/bin/sh
# gitfs test image $ver (BAD): init exits, so the kernel panics ("Attempted to kill init").
echo "gitfs test image $ver: this init exits on purpose; the kernel panics now"
exit 1
INIT
  fi
  chmod 0755 "$root/init"
  chmod -R u=rwX,go=rX "$root"     # the same modes whatever the umask
  find "$root" -exec touch -h -d "@$epoch" {} +
  (cd "$root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z \
     | timeout "$TOOL_TIMEOUT" cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) \
    | gzip -n -9 >"$out" || die "cpio/gzip of the $kind initramfs failed"
}

# --- 4. ISO ----------------------------------------------------------------------------------------
# make_iso KIND VERSION OUT
make_iso() {
  local kind="$1" ver="$2" out="$3" tree="$work/iso-$1"
  mkdir -p "$tree/boot" "$tree/isolinux"
  cp "$vmlinuz" "$tree/boot/vmlinuz"
  make_initrd "$kind" "$ver" "$tree/boot/initrd.img"
  printf '{"version":"%s","cmdline":"%s"}\n' "$ver" "$cmdline" >"$tree/gitfs-image.json"
  cp "$work/isolinux/usr/lib/ISOLINUX/isolinux.bin" "$work/syslinux/usr/lib/syslinux/modules/bios/ldlinux.c32" "$tree/isolinux/"
  cat >"$tree/isolinux/isolinux.cfg" <<CFG
DEFAULT gitfs
PROMPT 0
TIMEOUT 0
LABEL gitfs
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.img
  APPEND console=tty0 console=ttyS0 panic=1 gitfs.version=$ver $cmdline
CFG
  chmod -R u=rwX,go=rX "$tree"
  find "$tree" -exec touch -h -d "@$epoch" {} +
  rm -f "$out"
  SOURCE_DATE_EPOCH="$epoch" timeout "$TOOL_TIMEOUT" xorriso -report_about SORRY -as mkisofs \
      -o "$out" -V "GITFS_$(echo "$kind" | tr '[:lower:]' '[:upper:]')" -iso-level 3 -r \
      -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table \
      -isohybrid-mbr "$work/isolinux/usr/lib/ISOLINUX/isohdpfx.bin" \
      "$tree" >"$work/xorriso-$kind.log" 2>&1 \
    || { cat "$work/xorriso-$kind.log" >&2; die "xorriso failed for the $kind ISO"; }
}

write_manifest() { # KIND VERSION ISO
  local sha; sha="$(sha256sum "$3" | cut -d' ' -f1)"
  printf '{"version":"%s","sha256":"%s","kind":"kernel","cmdline":"%s"}\n' "$2" "$sha" "$cmdline" >"$outdir/$1.manifest.json"
  printf '"%s":{"path":"%s","version":"%s","sha256":"%s","size":%s,"manifest":"%s"}' \
    "$1" "$3" "$2" "$sha" "$(stat -c %s "$3")" "$outdir/$1.manifest.json"
}

make_iso good "$version" "$work/good.iso"
make_iso bad "$bad_version" "$work/bad.iso"
mv -f "$work/good.iso" "$outdir/good.iso"
mv -f "$work/bad.iso" "$outdir/bad.iso"
good_json="$(write_manifest good "$version" "$outdir/good.iso")"
bad_json="$(write_manifest bad "$bad_version" "$outdir/bad.iso")"
printf '{"kernelPackage":"%s","kernelRelease":"%s","cmdline":"%s",%s,%s}\n' \
  "$kernel_pkg" "$kernel_release" "$cmdline" "$good_json" "$bad_json" >"$outdir/isos.json"
say "kernel $kernel_release from $kernel_pkg"
say "$outdir/good.iso  version $version  $(stat -c %s "$outdir/good.iso") bytes"
say "$outdir/bad.iso  version $bad_version  $(stat -c %s "$outdir/bad.iso") bytes"
