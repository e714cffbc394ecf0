#!/usr/bin/env python3
# Non-root FUSE mounts: fusermount3 (setuid, from Debian's fuse3) does the mount and hands the
# /dev/fuse descriptor back over a Unix socket (SCM_RIGHTS), which Node cannot receive. This helper
# receives it and execs the daemon command with the descriptor as fd 3.
# usage: fusermount-helper.py MOUNTPOINT OPTIONS -- COMMAND ARGS...
import array, os, socket, subprocess, sys

def main():
    sep = sys.argv.index('--')
    mountpoint, options = sys.argv[1], sys.argv[2]
    cmd = sys.argv[sep + 1:]
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    os.set_inheritable(theirs.fileno(), True)
    env = dict(os.environ, _FUSE_COMMFD=str(theirs.fileno()))
    p = subprocess.Popen(['fusermount3', '-o', options, '--', mountpoint], env=env, pass_fds=(theirs.fileno(),))
    theirs.close()
    fds = array.array('i')
    msg, anc, _, _ = ours.recvmsg(1, socket.CMSG_SPACE(fds.itemsize))
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    rc = p.wait() if not options.count('auto_unmount') else 0
    if not fds:
        sys.stderr.write('fusermount3 did not pass a /dev/fuse descriptor (exit %s)\n' % rc)
        sys.exit(1)
    fd = fds[0]
    if fd != 3:
        os.dup2(fd, 3)
        os.close(fd)
    os.set_inheritable(3, True)
    # With auto_unmount, fusermount3 stays alive holding `ours` to watch for our exit.
    os.execvp(cmd[0], cmd)

main()
