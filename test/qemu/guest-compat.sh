#!/bin/sh
# Runs inside the guest. /in/params.tsv lines: name <TAB> passphrase <TAB> keymode(plain|fnek) <TAB> mount options
# 1. For every /in/ours/NAME.tar (a lower dir written by ecryptfs-ts): the kernel mounts it and
#    lists what it reads -> /out/ours/NAME.tsv
# 2. For every NAME: the kernel writes /in/clear into a fresh lower dir (plus a sparse file and a
#    truncated one) -> /out/kern/NAME.tar (+ NAME.xattrs) and the upper listing /out/kern/NAME.tsv
S=$SCRATCH; tab=$(printf '\t')
mkdir -p /out/ours /out/kern
# One line per entry: type, hex of the path's bytes (names are bytes), then the content's sha256,
# the hex of a link target, or a device's major:minor.
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
listing() { ( cd "$1" && find . -mindepth 1 | sort | while IFS= read -r p; do n=$(hex "$p")
  if [ -L "$p" ]; then printf 'l\t%s\t%s\n' "$n" "$(hex "$(readlink "$p")")"
  elif [ -d "$p" ]; then printf 'd\t%s\t-\n' "$n"
  elif [ -p "$p" ]; then printf 'p\t%s\t-\n' "$n"
  elif [ -S "$p" ]; then printf 's\t%s\t-\n' "$n"
  elif [ -c "$p" ]; then printf 'c\t%s\t%s\n' "$n" "$(stat -c '%t:%T' "$p")"
  elif [ -b "$p" ]; then printf 'b\t%s\t%s\n' "$n" "$(stat -c '%t:%T' "$p")"
  else h=$(sha256sum "$p" 2>/dev/null | cut -d' ' -f1); printf 'f\t%s\t%s\n' "$n" "${h:-ERR}"; fi; done ) > "$2"; }
addkeys() { keyctl clear @u; if [ "$2" = fnek ]; then printf '%s' "$1" | ecryptfs-add-passphrase --fnek - >/dev/null; else printf '%s' "$1" | ecryptfs-add-passphrase - >/dev/null; fi; }
while IFS="$tab" read -r name pass mode opts; do
  addkeys "$pass" "$mode"
  if [ -f "/in/ours/$name.tar" ]; then
    L=$S/ours-$name/lower; U=$S/ours-$name/upper; mkdir -p "$L" "$U"
    (cd "$L" && tar xf "/in/ours/$name.tar")
    # tar cannot carry sockets: they come as a list of lower paths and are made again here.
    [ -s "/in/ours/$name.sockets" ] && while IFS= read -r p; do /bin/mksock "$L/$p"; done < "/in/ours/$name.sockets"
    [ -s "/in/ours/$name.xattrs" ] && (cd "$L" && setfattr -h --restore="/in/ours/$name.xattrs")
    if mount -i -t ecryptfs -o "$opts" "$L" "$U"; then listing "$U" "/out/ours/$name.tsv"; umount "$U"; else echo "$name: kernel mount of our lower FAILED"; fi
  fi
  L=$S/kern-$name/lower; U=$S/kern-$name/upper; mkdir -p "$L" "$U"
  if mount -i -t ecryptfs -o "$opts" "$L" "$U"; then
    cp -a /in/clear/. "$U/"
    dd if=/dev/urandom of="$U/sparse" bs=1 count=10 seek=300000 2>/dev/null
    dd if=/dev/urandom of="$U/truncated" bs=1000 count=30 2>/dev/null; truncate -s 7000 "$U/truncated"
    # A socket (tar cannot carry one in /in/clear): made by the kernel mount itself.
    /bin/mksock "$U/ksocket" || echo "$name: mksock FAILED"
    sync; listing "$U" "/out/kern/$name.tsv"; umount "$U"
    (cd "$L" && tar cf "/out/kern/$name.tar" . 2>/dev/null && find . -type s > "/out/kern/$name.sockets")
    (cd "$L" && getfattr -h -R -d -m - -e hex . > "/out/kern/$name.xattrs" 2>/dev/null)
  else echo "$name: kernel mount for writing FAILED"; fi
done < /in/params.tsv
echo done
