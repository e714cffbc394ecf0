#!/bin/sh
# Runs inside the guest (see names.test.ts). /in/pass, /in/opts: the passphrase and mount options.
# 1. The kernel mounts /in/ours.tar (a lower dir ecryptfs-ts wrote: Latin-1 and 143-byte names,
#    a FIFO, a device node, xattrs and an ACL) and lists what it reads -> /out/ours.tsv
# 2. The kernel writes the same kinds of entries into a fresh lower dir -> /out/kern.tar
#    (+ kern.xattrs) and lists its upper -> /out/kern.tsv; a 144-byte name's result -> name144.txt
S=$SCRATCH
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
# One line per entry: type, hex path, what the type has (sha256, target, mode, device), user.k, ACL.
listing() { ( cd "$1" && find . -mindepth 1 | sort | while IFS= read -r p; do
  if [ -L "$p" ]; then t=l; v=$(hex "$(readlink "$p")")
  elif [ -d "$p" ]; then t=d; v=$(stat -c %a "$p")
  elif [ -p "$p" ]; then t=p; v=$(stat -c %a "$p")
  elif [ -c "$p" ]; then t=c; v=$(stat -c '%a %t:%T' "$p")
  else t=f; v=$(sha256sum "$p" | cut -d' ' -f1); fi
  a=-; [ "$t" = l ] || a=$(getfattr -h -e hex -n system.posix_acl_access "$p" 2>/dev/null | sed -n 's/^system.posix_acl_access=0x//p')
  k=-; [ "$t" = l ] || k=$(getfattr -h --only-values -n user.k "$p" 2>/dev/null)
  printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$(hex "$p")" "$v" "${k:--}" "${a:--}"; done ) > "$2"; }
printf '%s' "$(cat /in/pass)" | ecryptfs-add-passphrase - >/dev/null
OPTS=$(cat /in/opts)

L=$S/ours/lower; U=$S/ours/upper; mkdir -p "$L" "$U"
(cd "$L" && tar xf /in/ours.tar && setfattr -h --restore=/in/ours.xattrs)
if mount -i -t ecryptfs -o "$OPTS" "$L" "$U"; then listing "$U" /out/ours.tsv; umount "$U"; else echo "kernel mount of our lower FAILED"; fi

L=$S/kern/lower; U=$S/kern/upper; mkdir -p "$L" "$U"
if mount -i -t ecryptfs -o "$OPTS" "$L" "$U"; then
  cd "$U"
  printf latin > "$(printf 'caf\351.txt')"
  setfattr -n user.k -v v "$(printf 'caf\351.txt')"
  setfattr -n system.posix_acl_access -v "0x$(cat /in/acl.hex)" "$(printf 'caf\351.txt')"
  n=''; i=0; while [ $i -lt 143 ]; do n="$n$(printf '\351')"; i=$((i + 1)); done
  printf long > "$n"
  if printf x > "$n$(printf '\351')" 2>/dev/null; then echo "144 created" > /out/name144.txt; else echo "144 refused" > /out/name144.txt; fi
  mkdir "$(printf 'd\377')"; printf x > "$(printf 'd\377/f\200')"
  mkfifo -m 640 "$(printf 'fifo\351')"
  mknod -m 666 null c 1 3
  ln -s "$(printf 'caf\351.txt')" "$(printf 'l\351')"
  cd /; sync; listing "$U" /out/kern.tsv; umount "$U"
  (cd "$L" && tar cf /out/kern.tar . && getfattr -h -R -d -m - -e hex . > /out/kern.xattrs 2>/dev/null)
else echo "kernel mount for writing FAILED"; fi
echo done
