#!/bin/busybox sh
# PID 1 in the guest: load the modules, unpack /in (a raw tar on the disk with serial "kin"),
# mount an empty ext4 /scratch ("kscr"), run /in/.guest.sh, write /out as a tar to "kout", power off.
/bin/busybox --install -s /bin 2>/dev/null
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmpfs /tmp
echo /sbin/nomodprobe > /proc/sys/kernel/modprobe
for m in $(cat /modules.list); do insmod /lib/modules/$m 2>/dev/null; done
disk() { for d in /sys/block/vd*; do [ "$(cat $d/serial 2>/dev/null)" = "$1" ] && echo /dev/${d##*/}; done; }
i=0; while [ -z "$(disk kout)" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
tar xf "$(disk kin)" -C /in
mount -t ext4 "$(disk kscr)" /scratch
export IN_DIR=/in OUT_DIR=/out SCRATCH=/scratch
(cd /in && sh /in/.guest.sh) > /out/guest.log 2>&1
echo $? > /out/guest.rc
dmesg > /out/dmesg.txt
umount /scratch 2>/dev/null
tar cf "$(disk kout)" -C /out .
sync
poweroff -f
