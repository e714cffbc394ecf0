#!/usr/bin/env python3
# Non-root FUSE mounts: fusermount3 (setuid, from Debian's fuse3) does the mount and hands the
# /dev/fuse descriptor back over a Unix socket (SCM_RIGHTS), which Node cannot receive. This helper
# receives it and execs the daemon command with the descriptor as fd 3 (and FUSE_FD=3).
# usage: fusermount-helper.py MOUNTPOINT OPTIONS -- COMMAND ARGS...
# With auto_unmount in OPTIONS, fusermount3 stays alive watching its socket; we keep our end open
# (inherited by the daemon) so that the mount is cleared when the daemon dies, however it dies.
import array, fcntl, os, socket, subprocess, sys


def main():
    if '--' not in sys.argv or sys.argv.index('--') != 3 or len(sys.argv) < 5:
        sys.stderr.write('usage: fusermount-helper.py MOUNTPOINT OPTIONS -- COMMAND ARGS...\n')
        sys.exit(2)
    mountpoint, options = sys.argv[1], sys.argv[2]
    cmd = sys.argv[4:]
    auto_unmount = 'auto_unmount' in options.split(',')
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = dict(os.environ, _FUSE_COMMFD=str(theirs.fileno()))
    try:
        p = subprocess.Popen(['fusermount3', '-o', options, '--', mountpoint], env=env, pass_fds=(theirs.fileno(),))
    except FileNotFoundError:
        sys.stderr.write('fusermount3 is not installed (or not in PATH): ordinary users mount FUSE filesystems through it. '
                         'Fix: as root run `apt-get install fuse3`\n')
        sys.exit(127)
    theirs.close()
    fds = array.array('i')
    _, anc, _, _ = ours.recvmsg(1, socket.CMSG_SPACE(fds.itemsize))
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if not fds:
        rc = p.wait()
        # fusermount3 printed the cause above; these are the fixes for what it usually is.
        sys.stderr.write('fusermount3 could not mount %s (exit %s, its message is above). Usual fixes: '
                         '/dev/fuse must be readable and writable by the user (as root: `chmod 0666 /dev/fuse`); '
                         'the mount point must be a directory the user owns and nothing may be mounted on it already\n'
                         % (mountpoint, rc))
        sys.exit(rc or 1)
    if not auto_unmount:
        p.wait()
    # Move both descriptors above 10 first so that placing the device on fd 3 clobbers neither.
    dev = fcntl.fcntl(fds[0], fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fds[0])
    keep = fcntl.fcntl(ours.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)
    ours.close()
    os.dup2(dev, 3, inheritable=True)
    os.close(dev)
    if auto_unmount:
        os.set_inheritable(keep, True)
    else:
        os.close(keep)
    os.environ['FUSE_FD'] = '3'
    os.execvp(cmd[0], cmd)


main()
