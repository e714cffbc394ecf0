/* mksock PATH: make a socket inode (mknod S_IFSOCK) in the guest, where busybox cannot. */
#include <stdio.h>
#include <sys/stat.h>
int main(int argc, char **argv) {
  if (argc != 2) { fputs("usage: mksock PATH\n", stderr); return 2; }
  if (mknod(argv[1], S_IFSOCK | 0644, 0) != 0) { perror(argv[1]); return 1; }
  return 0;
}
