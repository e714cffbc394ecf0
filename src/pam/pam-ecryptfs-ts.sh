#!/bin/sh
# The work of pam_ecryptfs_ts.so (src/pam/pam_ecryptfs_ts.c), which runs this as root:
#   argv: NODE BIN (from the module's options in /etc/pam.d; BIN empty = ../../bin from here)
#   env:  PAM_TYPE, PAM_USER, PAM_SERVICE and a fixed PATH, nothing from the PAM environment
#   stdin: the secrets, NUL-terminated (auth: the password or -w passphrase; password: OLD, NEW)
#   stdout: "info TEXT" / "error TEXT" (shown to the user), "log TEXT" (syslog and the log file)
# auth: unwrap ~/.ecryptfs/wrapped-passphrase into the user's keyring; a version-1 file is then
#   re-wrapped as version 2 (salted) with the same password, as pam_ecryptfs does (CVE-2014-9687);
#   first finish a bootstrap (-b) setup by wrapping /dev/shm/.ecryptfs-USER with the password;
# open_session: mount ~/Private (or the home) when ~/.ecryptfs/auto-mount exists;
# close_session: leave the session; the last one unmounts when ~/.ecryptfs/auto-umount exists;
# password: re-wrap wrapped-passphrase with the new password, or finish a bootstrap.
# Every file of the user's is touched with the user's uid (setpriv), never as root. The module
# puts a time limit on the whole run and never fails the PAM stack (pam_ecryptfs does not either).
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 077
HERE=$(dirname "$(readlink -f "$0")")
NODE=${1:-/usr/bin/node}
BIN=${2:-}
[ -n "$BIN" ] || BIN=$HERE/../../bin
U=${PAM_USER:-}
[ -n "$U" ] || exit 0
case "$U" in */*|-*) exit 0 ;; esac
entry=$(getent passwd "$U") || exit 0
uid=$(echo "$entry" | cut -d: -f3); gid=$(echo "$entry" | cut -d: -f4); home=$(echo "$entry" | cut -d: -f6)
[ "$uid" != 0 ] || exit 0
dot="$home/.ecryptfs"
wrapped="$dot/wrapped-passphrase"
shm="/dev/shm/.ecryptfs-$U"
counter="/dev/shm/ecryptfs-$U-Private"
as_user() { env -i PATH="$PATH" HOME="$home" USER="$U" LOGNAME="$U" setpriv --reuid="$uid" --regid="$gid" --init-groups "$@"; }
tool() { t=$1; shift; as_user "$NODE" --openssl-legacy-provider "$BIN/$t.js" "$@"; }
# File tests run as the user: once an encrypted home is mounted (FUSE, no allow_other), root
# cannot see through it, and a later session must still find ~/.ecryptfs there.
has() { as_user test "$1" "$2"; }
log() { printf 'log %s\n' "$*"; }
tell() { printf 'error eCryptfs: %s\n' "$*"; }
# Field N (1-based) of NUL-separated stdin, without it ever being a shell variable.
field() { tr '\000' '\n' | sed -n "${1}p"; }
# A tool's output on one line, for the log and the user (the tools never print secrets; their
# prompts are left out).
first() { printf '%s\n' "$1" | sed 's/^Enter your [a-z ]*passphrase: *//' | grep . | tr '\n' ' ' | sed 's/ *$//' | cut -c1-300; }

# ecryptfs-setup-private -b leaves the mount passphrase in RAM, owned by the user, until the user
# has a password to wrap it with (pam_ecryptfs's rule: only when no wrapped file exists yet).
# It is read as the user, opened without following a link, and only if what was opened is a
# regular file of the user's that nobody else can read. $1 is the stdin field holding the password.
READ_SHM='const fs=require("fs"),c=fs.constants;let fd;try{fd=fs.openSync(process.argv[1],c.O_RDONLY|c.O_NOFOLLOW|c.O_NONBLOCK)}catch(e){process.stderr.write(e.code);process.exit(3)}const s=fs.fstatSync(fd);if(!s.isFile()||s.uid!==process.getuid()||(s.mode&0o077)||s.size>4096){process.stderr.write("not a regular file of the user with mode 0400 or 0600");process.exit(4)}process.stdout.write(fs.readFileSync(fd))'
finish_bootstrap() {
  [ -e "$shm" ] || [ -L "$shm" ] || return 1
  has -s "$wrapped" && return 1
  if [ -L "$shm" ] || [ "$(stat -c %u "$shm")" != "$uid" ]; then
    log "refused $shm: a symlink or not owned by $U (remove it; run ecryptfs-setup-private -b again)"
    return 0
  fi
  if ! pass=$(as_user "$NODE" -e "$READ_SHM" "$shm" 2>&1); then
    log "refused $shm: $pass (it must be a regular file of $U, mode 0400 or 0600)"
  elif err=$({ printf '%s\n' "$pass" && field "$1"; } | tool ecryptfs-wrap-passphrase "$wrapped" - 2>&1); then
    as_user rm -f -- "$shm"
    log "passphrase file wrapped"
  else
    log "could not wrap the bootstrap passphrase: $(first "$err")"
  fi
  pass=""
  return 0
}

# Another user may have put a file, a directory or a link in the place of this user's session
# counter or its lock (/dev/shm is world-writable): root removes what is not the user's, so that
# the tools (running as the user) find their own or none. The tools check again when they open.
clean_counter() {
  for f in "$counter" "$counter.lock"; do
    if [ -L "$f" ] || { [ -e "$f" ] && [ "$(stat -c %u "$f")" != "$uid" ]; }; then
      log "removed $f: $(stat -c '%F owned by %U' "$f" 2>/dev/null) is not $U's session counter"
      # Never recursing into a tree the other user controls: rmdir, or rename it aside.
      if [ -d "$f" ] && [ ! -L "$f" ]; then rmdir -- "$f" 2>/dev/null || mv -T -- "$f" "$f.foreign-$$"
      else rm -f -- "$f"; fi
    fi
  done
}

case "${PAM_TYPE:-}" in
  auth)
    has -f "$dot/auto-mount" || exit 0
    independent=false
    has -f "$dot/wrapping-independent" && independent=true
    pw=$(field 1)
    $independent || printf '%s\n' "$pw" | finish_bootstrap 1
    has -f "$wrapped" || exit 0
    if ! err=$(printf '%s\n' "$pw" | tool ecryptfs-insert-wrapped-passphrase-into-keyring "$wrapped" - 2>&1); then
      log "unwrap failed: $(first "$err")"
      if $independent; then tell "the encryption passphrase does not unwrap $wrapped"
      else tell "your login password does not unwrap $wrapped (run ecryptfs-rewrap-passphrase after a password reset)"; fi
      exit 0
    fi
    log "keys added"
    # Version 1 (no salt of its own): re-wrap as version 2 with the same password.
    if [ "$(as_user head -c 1 "$wrapped")" != ":" ]; then
      if err=$(printf '%s\n%s\n' "$pw" "$pw" | tool ecryptfs-rewrap-passphrase "$wrapped" - 2>&1); then
        log "version 1 wrapped-passphrase re-wrapped as version 2"
      else
        log "could not re-wrap the version 1 wrapped-passphrase: $(first "$err")"
      fi
    fi
    ;;
  open_session)
    has -f "$dot/auto-mount" && has -f "$wrapped" || exit 0
    clean_counter
    # Without the key (no password at this login: su from root, ssh keys, cron) the mount cannot
    # happen; say so as pam_ecryptfs does, rather than let the tool ask for a password.
    sig=$(as_user head -n 1 "$dot/Private.sig" 2>/dev/null | tr -cd '0-9a-f')
    if [ -n "$sig" ] && ! as_user keyctl search @u user "$sig" >/dev/null 2>&1; then
      log "not mounted: key $sig is not in the user keyring (no password at this login)"
      tell "your private directory was not mounted: its key is not in your keyring (no password at this login); run ecryptfs-mount-private"
      exit 0
    fi
    if ! err=$(tool ecryptfs-mount-private </dev/null 2>&1); then
      log "mount failed: $(first "$err")"
      tell "your private directory was not mounted: $(first "$err") (the administrator can run: ecryptfs-verify -u $U -p)"
    fi
    ;;
  close_session)
    has -f "$dot/auto-umount" && has -f "$wrapped" || exit 0
    clean_counter
    tool ecryptfs-umount-private </dev/null >/dev/null 2>&1
    ;;
  password)
    # stdin: OLD\0NEW\0. A bootstrap needs only NEW; a re-wrap needs both.
    if { [ -e "$shm" ] || [ -L "$shm" ]; } && ! has -s "$wrapped"; then
      finish_bootstrap 2
      exit 0
    fi
    has -f "$wrapped" || exit 0
    # The login password does not wrap a wrapping-independent passphrase (-w): leave it alone.
    has -f "$dot/wrapping-independent" && exit 0
    if tr '\000' '\n' | tool ecryptfs-rewrap-passphrase "$wrapped" - >/dev/null 2>&1; then
      log "wrapped-passphrase re-wrapped with the new password"
    else
      log "re-wrap failed (old password missing or wrong?)"
    fi
    ;;
esac
exit 0
