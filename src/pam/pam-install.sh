#!/bin/sh
# Put ecryptfs-ts into the system's logins, or take it out, through Debian's pam-auth-update:
#   sh src/pam/pam-install.sh            build pam_ecryptfs_ts.so into the PAM module directory,
#                                        write /usr/share/pam-configs/ecryptfs-ts, enable it
#   sh src/pam/pam-install.sh --remove   disable and remove both: /etc/pam.d/common-* are as before
# pam-auth-update places the lines (auth, session, session-noninteractive, password) after the
# primary modules with the right jump counts; editing common-* by hand "after pam_unix" would
# break Debian's `[success=1 default=ignore] pam_unix.so` (it skips the next line).
# ecryptfs-utils' own pam_ecryptfs profile shares the session counter and would mount a second
# time: it is disabled while ours is in place, and enabled again at --remove if it was before.
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
PROFILE=/usr/share/pam-configs/ecryptfs-ts
STATE=/var/lib/ecryptfs-ts
die() { echo "pam-install: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (sudo sh $0 ${1:-})"
command -v pam-auth-update >/dev/null || die "pam-auth-update is missing (apt-get install libpam-runtime)"
unix=$(find /lib /usr/lib /lib64 -name pam_unix.so -path '*/security/*' 2>/dev/null | head -n 1)
[ -n "$unix" ] || die "no PAM module directory found (pam_unix.so)"
SECDIR=$(dirname "$unix")
export DEBIAN_FRONTEND=noninteractive

case "${1:-}" in
  --remove)
    pam-auth-update --package --remove ecryptfs-ts
    if [ -e "$STATE/pam-ecryptfs-utils-was-enabled" ] && [ -e /usr/share/pam-configs/ecryptfs-utils ]; then
      pam-auth-update --package --enable ecryptfs-utils
    fi
    rm -f "$PROFILE" "$SECDIR/pam_ecryptfs_ts.so" "$STATE/pam-ecryptfs-utils-was-enabled"
    echo "ecryptfs-ts is out of PAM (pam_ecryptfs_ts.so and $PROFILE removed)"
    exit 0
    ;;
  ''|--enable) ;;
  *) die "usage: sh $0 [--remove]" ;;
esac

NODE=$(readlink -f "$(command -v node)") || die "node is not in PATH"
HOOK=$ROOT/src/pam/pam-ecryptfs-ts.sh
[ -f "$ROOT/dist/src/cli/private.js" ] || die "build first: npm ci && npm run build (in $ROOT)"
# Root runs the hook and the tools at every login: nobody else may be able to change them.
bad=$(find "$ROOT/bin" "$ROOT/dist" "$ROOT/src/pam" "$ROOT/node_modules" "$NODE" \( ! -user root -o -perm /022 \) ! -type l -print -quit 2>/dev/null || true)
[ -z "$bad" ] || die "$bad is not root's or is writable by others: root runs this code at every login (chown -R root: and chmod go-w $ROOT)"
command -v cc >/dev/null && [ -e /usr/include/security/pam_modules.h ] || die "building the module needs a C compiler and the PAM headers (apt-get install gcc libpam0g-dev)"
tmp=$(mktemp "$SECDIR/.pam_ecryptfs_ts.XXXXXX")
cc -shared -fPIC -O2 -Wall -Wextra -o "$tmp" "$ROOT/src/pam/pam_ecryptfs_ts.c" -lpam || { rm -f "$tmp"; die "could not build pam_ecryptfs_ts.so"; }
chmod 644 "$tmp"
mv -f "$tmp" "$SECDIR/pam_ecryptfs_ts.so"
ARGS="hook=$HOOK node=$NODE bin=$ROOT/bin"
cat > "$PROFILE.tmp" <<EOF
Name: eCryptfs in userspace (ecryptfs-ts): unwrap at login, mount ~/Private or the encrypted home
Default: no
Priority: 0
Conflicts: ecryptfs-utils
Auth-Type: Additional
Auth-Final:
	optional	pam_ecryptfs_ts.so $ARGS
Session-Type: Additional
Session-Final:
	optional	pam_ecryptfs_ts.so $ARGS
Password-Type: Additional
Password-Final:
	optional	pam_ecryptfs_ts.so $ARGS
EOF
mv -f "$PROFILE.tmp" "$PROFILE"
if grep -qs 'pam_ecryptfs\.so' /etc/pam.d/common-auth /etc/pam.d/common-session; then
  mkdir -p -m 700 "$STATE"
  : > "$STATE/pam-ecryptfs-utils-was-enabled"
  pam-auth-update --package --disable ecryptfs-utils
fi
pam-auth-update --package --enable ecryptfs-ts
grep -qs 'pam_ecryptfs_ts\.so' /etc/pam.d/common-session || die "pam-auth-update did not enable the profile (local changes to /etc/pam.d/common-*? see pam-auth-update(8))"
echo "ecryptfs-ts is in PAM: $SECDIR/pam_ecryptfs_ts.so, $PROFILE (take it out with: sh $0 --remove)"
