#!/bin/sh
# Make this package's commands the ones users and `mount -t ecryptfs` get on a Debian machine
# that also has Debian's ecryptfs-utils (which needs the kernel module), and undo it.
#
#   sh scripts/ecryptfs-utils-divert.sh install     (as root)
#   sh scripts/ecryptfs-utils-divert.sh uninstall   (as root; before `npm uninstall -g`)
#
# install: every ecryptfs-utils file we replace or that would get in the way is moved aside with
# `dpkg-divert --rename` (to NAME.ecryptfs-utils; package upgrades then go there too):
#   /sbin/mount.ecryptfs and /usr/bin/ecryptfs-* that we ship: replaced by links to ours;
#   /sbin/mount.ecryptfs_private, /sbin/umount.ecryptfs_private, /sbin/umount.ecryptfs: set
#   aside (they only drive the kernel module); ours of those names need no setuid and stay in
#   the npm bin directory (/usr/local/bin), first in users' PATH;
# and the package's files are made readable by every user (the login hook runs the tools as
# the user). uninstall removes our links and gives Debian's files their names back.
set -eu
PKG=$(cd "$(dirname "$0")/.." && pwd)
NAME=ecryptfs-ts
SUFFIX=.ecryptfs-utils
ASIDE="/sbin/mount.ecryptfs_private /sbin/umount.ecryptfs_private /sbin/umount.ecryptfs"

die() { echo "ecryptfs-utils-divert: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (it edits /sbin and /usr/bin): sudo sh $0 ${1:-install}"
command -v dpkg-divert >/dev/null || die "dpkg-divert not found: this script is for Debian and its derivatives"

# Our commands and where Debian's ecryptfs-utils has each name.
replaced() {
  node -e 'for (const n of Object.keys(require(process.argv[1]).bin)) if (n !== "ecryptfs") console.log(n)' "$PKG/package.json" |
    while read -r n; do
      case " $ASIDE " in *" /sbin/$n "*) continue ;; esac
      case $n in mount.*) echo "/sbin/$n $n" ;; *) echo "/usr/bin/$n $n" ;; esac
    done
}

divert() { dpkg-divert --quiet --package "$NAME" --divert "$1$SUFFIX" --rename --add "$1"; }

case "${1:-}" in
  install)
    [ -f "$PKG/dist/src/cli/main.js" ] || die "$PKG has no dist/: install the package first (npm install -g --prefix /usr/local ./ecryptfs-ts-*.tgz)"
    chmod -R a+rX "$PKG"
    dir=$PKG
    while [ "$dir" != / ]; do
      [ "$(stat -c %A "$dir" | cut -c10)" = x ] || die "$dir is not searchable by other users, who must run the tools (chmod o+x $dir)"
      dir=$(dirname "$dir")
    done
    replaced | while read -r path n; do
      divert "$path"
      ln -sfn "$PKG/bin/$n.js" "$path"
    done
    for path in $ASIDE; do divert "$path"; done
    echo "ecryptfs-ts: installed beside ecryptfs-utils; Debian's files are kept as *$SUFFIX (undo: sh $0 uninstall)"
    ;;
  uninstall)
    dpkg-divert --list | sed -n "s/^diversion of \(.*\) to .* by $NAME\$/\1/p" | while read -r path; do
      if [ -L "$path" ]; then rm -f "$path"; fi
      dpkg-divert --quiet --package "$NAME" --rename --remove "$path"
    done
    echo "ecryptfs-ts: Debian's ecryptfs-utils files are back in place"
    ;;
  *)
    echo "usage: sh $0 install|uninstall   (as root)" >&2
    exit 2
    ;;
esac
