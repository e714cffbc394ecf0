#!/bin/sh
# PAM integration of ecryptfs-ts through pam_exec (see README):
#   auth     optional pam_exec.so expose_authtok quiet /usr/lib/ecryptfs-ts/pam-ecryptfs-ts
#   session  optional pam_exec.so quiet /usr/lib/ecryptfs-ts/pam-ecryptfs-ts
# auth: unwrap ~/.ecryptfs/wrapped-passphrase with the login password (stdin) into the user's keyring;
# open_session: mount ~/Private (or the home) when ~/.ecryptfs/auto-mount exists;
# close_session: leave the session; the last one unmounts when ~/.ecryptfs/auto-umount exists.
# (pam_exec does not pass the new password at a password change, so re-wrapping after `passwd`
# is `ecryptfs-rewrap-passphrase ~/.ecryptfs/wrapped-passphrase`; see README.)
# Every step runs with the user's uid (setpriv) so keys land in the user's keyring. Never fails
# the PAM stack (pam_ecryptfs does not either); problems go to syslog.
set -u
HERE=$(dirname "$(readlink -f "$0")")
BIN=${ECRYPTFS_TS_BIN:-$HERE/../../bin}
NODE=${ECRYPTFS_TS_NODE:-node}
U=${PAM_USER:-}
[ -n "$U" ] || exit 0
entry=$(getent passwd "$U") || exit 0
uid=$(echo "$entry" | cut -d: -f3); gid=$(echo "$entry" | cut -d: -f4); home=$(echo "$entry" | cut -d: -f6)
dot="$home/.ecryptfs"
[ -f "$dot/wrapped-passphrase" ] || exit 0
as_user() { HOME="$home" USER="$U" setpriv --reuid="$uid" --regid="$gid" --init-groups "$@"; }
log() { logger -t pam-ecryptfs-ts "$*" 2>/dev/null || true; [ -n "${PAM_ECRYPTFS_TS_DEBUG:-}" ] && echo "$*" >> "$PAM_ECRYPTFS_TS_DEBUG"; return 0; }
case "${PAM_TYPE:-}" in
  auth)
    [ -f "$dot/auto-mount" ] || exit 0
    pw=$(cat | tr -d '\000')
    printf '%s\n' "$pw" | as_user "$NODE" --openssl-legacy-provider "$BIN/ecryptfs-insert-wrapped-passphrase-into-keyring.js" "$dot/wrapped-passphrase" - >/dev/null 2>&1 || { log "unwrap failed for $U"; exit 0; }
    log "keys added for $U"
    ;;
  open_session)
    [ -f "$dot/auto-mount" ] || exit 0
    as_user "$NODE" --openssl-legacy-provider "$BIN/ecryptfs-mount-private.js" </dev/null >/dev/null 2>&1 || log "mount failed for $U"
    ;;
  close_session)
    [ -f "$dot/auto-umount" ] || exit 0
    as_user "$NODE" --openssl-legacy-provider "$BIN/ecryptfs-umount-private.js" </dev/null >/dev/null 2>&1
    ;;
esac
exit 0
