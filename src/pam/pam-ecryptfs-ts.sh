#!/bin/sh
# PAM integration of ecryptfs-ts (see README):
#   auth     optional pam_exec.so expose_authtok quiet /usr/lib/ecryptfs-ts/pam-ecryptfs-ts
#   session  optional pam_exec.so quiet /usr/lib/ecryptfs-ts/pam-ecryptfs-ts
#   password optional pam_ecryptfs_ts_passwd.so /usr/lib/ecryptfs-ts/pam-ecryptfs-ts
# auth: unwrap ~/.ecryptfs/wrapped-passphrase with the login password (stdin) into the user's
#   keyring; first finish a bootstrap (-b) setup by wrapping /dev/shm/.ecryptfs-USER with it;
# open_session: mount ~/Private (or the home) when ~/.ecryptfs/auto-mount exists;
# close_session: leave the session; the last one unmounts when ~/.ecryptfs/auto-umount exists;
# password: stdin is "OLD\0NEW\0" (from pam_ecryptfs_ts_passwd.so, since pam_exec cannot pass the
#   old password): re-wrap wrapped-passphrase with the new password, or finish a bootstrap.
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
wrapped="$dot/wrapped-passphrase"
shm="/dev/shm/.ecryptfs-$U"
as_user() { HOME="$home" USER="$U" setpriv --reuid="$uid" --regid="$gid" --init-groups "$@"; }
tool() { t=$1; shift; as_user "$NODE" --openssl-legacy-provider "$BIN/$t.js" "$@"; }
# File tests run as the user: once an encrypted home is mounted (FUSE, no allow_other), root
# cannot see through it, and a later session must still find ~/.ecryptfs there.
has() { as_user test "$1" "$2"; }
log() { logger -t pam-ecryptfs-ts "$*" 2>/dev/null || true; [ -n "${PAM_ECRYPTFS_TS_DEBUG:-}" ] && echo "$*" >> "$PAM_ECRYPTFS_TS_DEBUG"; return 0; }
# Field N (1-based) of NUL- or newline-separated stdin, without it ever being a shell variable.
field() { tr '\000' '\n' | sed -n "${1}p"; }

# ecryptfs-setup-private -b leaves the mount passphrase in RAM, owned by the user, until the user
# has a password to wrap it with (pam_ecryptfs's rule: only when no wrapped file exists yet).
# $1 is the stdin field holding that password.
finish_bootstrap() {
  [ -f "$shm" ] && ! has -s "$wrapped" && [ "$(stat -c %u "$shm")" = "$uid" ] || return 1
  if { cat "$shm"; echo; field "$1"; } | tool ecryptfs-wrap-passphrase "$wrapped" - >/dev/null 2>&1; then
    rm -f "$shm"
    log "Passphrase file wrapped ($U)"
  else
    log "could not wrap the bootstrap passphrase of $U"
  fi
  return 0
}

case "${PAM_TYPE:-}" in
  auth)
    has -f "$dot/auto-mount" || exit 0
    pw=$(cat | tr -d '\000')
    printf '%s\n' "$pw" | finish_bootstrap 1
    has -f "$wrapped" || exit 0
    has -f "$dot/wrapping-independent" && exit 0
    printf '%s\n' "$pw" | tool ecryptfs-insert-wrapped-passphrase-into-keyring "$wrapped" - >/dev/null 2>&1 || { log "unwrap failed for $U"; exit 0; }
    log "keys added for $U"
    ;;
  open_session)
    has -f "$dot/auto-mount" && has -f "$wrapped" || exit 0
    tool ecryptfs-mount-private </dev/null >/dev/null 2>&1 || log "mount failed for $U"
    ;;
  close_session)
    has -f "$dot/auto-umount" && has -f "$wrapped" || exit 0
    tool ecryptfs-umount-private </dev/null >/dev/null 2>&1
    ;;
  password)
    # stdin: OLD\0NEW\0. A bootstrap needs only NEW; a re-wrap needs both.
    if [ -f "$shm" ] && ! has -s "$wrapped"; then
      finish_bootstrap 2
      exit 0
    fi
    has -f "$wrapped" || exit 0
    # The login password does not wrap a wrapping-independent passphrase (-w): leave it alone.
    has -f "$dot/wrapping-independent" && exit 0
    if tr '\000' '\n' | tool ecryptfs-rewrap-passphrase "$wrapped" - >/dev/null 2>&1; then
      log "wrapped-passphrase of $U re-wrapped with the new password"
    else
      log "re-wrap failed for $U (old password missing or wrong?)"
    fi
    ;;
esac
exit 0
