#!/bin/bash
# Build the real-kernel guest once and cache it: Debian's own kernel (its ecryptfs.ko and cipher
# modules) plus a busybox initramfs with ecryptfs-utils and keyutils. All from Debian packages.
# Cache: $ECRYPTFS_TS_KERNEL_CACHE (default ~/.cache/ecryptfs-ts/kernel-guest); FORCE=1 rebuilds.
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
CACHE=${ECRYPTFS_TS_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecryptfs-ts/kernel-guest}
mkdir -p "$CACHE"; cd "$CACHE"
# The cache is rebuilt when the guest's inputs change (this script, the init, the helpers).
STAMP=$(cat "$HERE/build-guest.sh" "$HERE/guest-init.sh" "$HERE/mksock.c" | sha256sum | cut -c1-16)
if [ -f initramfs.cpio.gz ] && [ -f vmlinuz ] && [ "$(cat stamp 2>/dev/null)" = "$STAMP" ] && [ "${FORCE:-0}" != 1 ]; then exit 0; fi

# The kernel package that linux-image-amd64 currently points at.
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$KPKG" ]; then apt-get update -qq; KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); fi
[ -n "$KPKG" ] || { echo "build-guest: cannot find Debian's kernel package" >&2; exit 1; }
ls ${KPKG}_*.deb >/dev/null 2>&1 || apt-get download "$KPKG" >/dev/null
rm -rf kpkg && mkdir kpkg && dpkg-deb -x ${KPKG}_*.deb kpkg
KVER=${KPKG#linux-image-}
depmod -b kpkg "$KVER"

R=$CACHE/root; rm -rf "$R"; mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,lib/modules,in,out,scratch}
cp /bin/busybox "$R/bin/busybox"
# Modules in load order, with their dependencies.
: > "$R/modules.list"
for m in virtio_pci virtio_blk virtio-rng ext4 ecb cbc ecryptfs blowfish_generic cast5_generic cast6_generic twofish_generic des_generic des3_ede-x86_64; do
  modprobe -d kpkg -S "$KVER" --show-depends "$m" 2>/dev/null | awk '$1=="insmod"{print $2}' | while read -r f; do
    b=$(basename "$f"); grep -qx "$b" "$R/modules.list" || { cp "$f" "$R/lib/modules/$b"; echo "$b" >> "$R/modules.list"; }
  done
done
with_libs() {
  [ -e "$1" ] || return 0
  mkdir -p "$R$(dirname "$1")"; cp -L "$1" "$R$1"
  for l in $(ldd "$1" 2>/dev/null | grep -oE '/[^ ]+' || true); do
    [ -e "$l" ] && [ ! -e "$R$l" ] && { mkdir -p "$R$(dirname "$l")"; cp -L "$l" "$R$l"; }
  done; return 0
}
for b in /sbin/mount.ecryptfs /usr/bin/ecryptfs-add-passphrase /bin/keyctl /usr/bin/getfattr /usr/bin/setfattr /bin/mount /bin/umount /usr/bin/sha256sum; do with_libs "$b"; done
# The guest needs Debian's real helpers, also when ecryptfs-ts is installed over them with
# dpkg-divert (scripts/ecryptfs-utils-divert.sh moves Debian's to NAME.ecryptfs-utils).
for b in /sbin/mount.ecryptfs /usr/bin/ecryptfs-add-passphrase; do
  t=$(dpkg-divert --truename "$b" 2>/dev/null || echo "$b")
  [ "$t" != "$b" ] && [ -e "$t" ] && { with_libs "$t"; cp -L "$t" "$R$b"; }
done
# libecryptfs dlopens its key module and NSS's softokn (else: "Error attempting to evaluate mount options").
for so in /usr/lib/x86_64-linux-gnu/ecryptfs/*.so /usr/lib/x86_64-linux-gnu/libecryptfs.so.1 /lib/x86_64-linux-gnu/lib{freebl3,freeblpriv3,softokn3,nssdbm3}.so; do with_libs "$so"; done
for b in /usr/bin/stat /usr/bin/od; do with_libs "$b"; done
# Sockets cannot travel in a tar: the guest makes one with this helper (static, no libs to copy).
cc -static -O2 -o "$R/bin/mksock" "$HERE/mksock.c"
mkdir -p "$R/lib64"; cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/"
ln -sf ../proc/mounts "$R/etc/mtab"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$R/etc/passwd"; printf 'root:x:0:\n' > "$R/etc/group"
printf '#!/bin/sh\nexit 1\n' > "$R/sbin/nomodprobe"; chmod +x "$R/sbin/nomodprobe"
cp "$HERE/guest-init.sh" "$R/init"; chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1 > "$CACHE/initramfs.cpio.gz.tmp")
cp kpkg/boot/vmlinuz-$KVER vmlinuz.tmp
echo "$KPKG $(dpkg-deb -f ${KPKG}_*.deb Version)" > kernel-version.txt
rm -rf kpkg "$R"
mv initramfs.cpio.gz.tmp initramfs.cpio.gz; mv vmlinuz.tmp vmlinuz; echo "$STAMP" > stamp
