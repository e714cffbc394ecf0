#!/bin/bash
# run-guest.sh IN_DIR OUT_DIR GUEST_SCRIPT: boot Debian's kernel under qemu (TCG), give the guest
# IN_DIR as /in, run GUEST_SCRIPT there (cwd /in; IN_DIR, OUT_DIR=/out, SCRATCH=/scratch an empty
# ext4 with user xattrs), and copy /out back to OUT_DIR (guest.log, guest.rc, dmesg.txt, ...).
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 IN_DIR OUT_DIR GUEST_SCRIPT" >&2; exit 2; }
IN=$(readlink -f "$1"); OUT=$(readlink -f "$2"); GS=$(readlink -f "$3")
HERE=$(dirname "$(readlink -f "$0")")
CACHE=${ECRYPTFS_TS_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecryptfs-ts/kernel-guest}
"$HERE/build-guest.sh"
RUN=$(mktemp -d)
trap 'rm -rf "$RUN"' EXIT
mkdir "$RUN/in"; cp -a "$IN/." "$RUN/in/"; cp "$GS" "$RUN/in/.guest.sh"
tar cf "$RUN/in.tar" -C "$RUN/in" .
truncate -s 256M "$RUN/out.img" "$RUN/scratch.img"
mkfs.ext4 -q -F "$RUN/scratch.img"
timeout "${KERNEL_TIMEOUT:-900}" qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 1 -nographic -no-reboot \
  -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initramfs.cpio.gz" -append "console=ttyS0 panic=-1 loglevel=4" \
  -drive file="$RUN/in.tar",format=raw,if=none,readonly=on,id=a -device virtio-blk-pci,drive=a,serial=kin \
  -drive file="$RUN/out.img",format=raw,if=none,id=b -device virtio-blk-pci,drive=b,serial=kout \
  -drive file="$RUN/scratch.img",format=raw,if=none,id=c -device virtio-blk-pci,drive=c,serial=kscr \
  -device virtio-rng-pci > "$RUN/console.log" 2>&1 || echo "qemu exited with $?" >&2
mkdir -p "$OUT"
tar xf "$RUN/out.img" -C "$OUT" 2>/dev/null || { echo "run-guest: no output from the guest; console:" >&2; tail -30 "$RUN/console.log" >&2; exit 1; }
cp "$RUN/console.log" "$OUT/console.log"
