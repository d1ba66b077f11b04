#!/bin/bash
# Build a Debian 12 (bookworm) base image for the umm VM lab.
#
#   build-base.sh OUT_DIR [VARIANT]
#
# VARIANT: systemd (default) | sepvar (systemd, /var on a second disk) | sysvinit
#
# Produces in OUT_DIR:
#   base-VARIANT.raw        4 GiB sparse raw disk, MBR, one ext4 partition at 1 MiB
#   base-sepvar-var.raw     (sepvar only) whole-disk ext4 holding /var
#   id_ed25519[.pub]        ssh key allowed to log in as root and as the
#                           non-root user "op" (reused if present)
#   vmlinuz, initrd.img     the installed kernel and initramfs, for direct
#                           kernel boots (qemu -kernel/-initrd)
#   firstboot-serial.log    serial console of the GRUB-installing first boot
#
# No loop devices or mounts: the tree is built with debootstrap in a temp dir
# and written into the partition with `mke2fs -d`. GRUB cannot be installed
# from the host without partition nodes, so a first direct-kernel boot of the
# image installs it from inside the guest and powers off.
#
# Optional environment: UMM_LAB_MIRROR (override the mirror read from the apt
# sources), UMM_LAB_DEB_CACHE (debootstrap --cache-dir, speeds up rebuilds),
# UMM_LAB_TREE_SAVE (write the debootstrapped tree, before any configuration,
# to this tar file), UMM_LAB_TREE_FROM (unpack the tree from such a tar
# instead of running debootstrap: sepvar takes systemd's, whose package list
# is the same, and saves its 100-odd seconds of debootstrap).
set -euo pipefail

OUT_DIR=${1:?usage: build-base.sh OUT_DIR [systemd|sepvar|sysvinit]}
VARIANT=${2:-systemd}
SUITE=bookworm
DISK_SIZE=4G
PART_OFFSET=1048576          # 1 MiB, leaves room for GRUB's core.img
FS_SIZE=4095M                # DISK_SIZE minus PART_OFFSET
VAR_DISK_SIZE=2G
FIRSTBOOT_TIMEOUT=900        # seconds; TCG boot + grub-install is ~1-2 min

log() { printf '[build-base %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Packages common to all variants (debootstrap --variant=minbase adds only
# Priority: required, so everything the lab needs is listed here).
PACKAGES=linux-image-amd64,initramfs-tools,zstd,grub-pc,openssh-server,openssh-sftp-server
PACKAGES+=,cron,ifupdown,isc-dhcp-client,iproute2,netbase,sudo,udev,kmod,procps,less
EXCLUDE=
case "$VARIANT" in
    systemd | sepvar) PACKAGES+=,systemd-sysv,dbus,libpam-systemd ;;
    sysvinit) PACKAGES+=,sysvinit-core; EXCLUDE=--exclude=systemd-sysv ;;
    *) die "unknown variant '$VARIANT' (systemd|sepvar|sysvinit)" ;;
esac

for tool in debootstrap sfdisk mke2fs debugfs qemu-system-x86_64 ssh-keygen; do
    command -v "$tool" >/dev/null || die "missing host tool: $tool"
done
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap)"

# The mirror comes from this machine's apt configuration, never from the repo.
# Prefer an entry whose suite is exactly $SUITE, else the first plain 'deb' one.
find_mirror() {
    local f
    {
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] || continue
            # deb822: paragraphs separated by blank lines.
            awk -v suite="$SUITE" '
                BEGIN { RS = ""; FS = "\n" }
                {
                    uri = ""; suites = ""; types = ""; enabled = "yes"
                    for (i = 1; i <= NF; i++) {
                        line = $i
                        if (line ~ /^[ \t]*#/) continue
                        if (line ~ /^URIs:/)    { sub(/^URIs:[ \t]*/, "", line); split(line, u, /[ \t]+/); uri = u[1] }
                        if (line ~ /^Suites:/)  { sub(/^Suites:/, "", line); suites = " " line " " }
                        if (line ~ /^Types:/)   { types = " " line " " }
                        if (line ~ /^Enabled:/) { enabled = tolower(line) ~ /no/ ? "no" : "yes" }
                    }
                    if (uri == "" || enabled == "no" || types !~ /[ \t]deb[ \t]/) next
                    rank = (suites ~ ("[ \t]" suite "[ \t]")) ? 0 : 1
                    print rank, uri
                }' "$f"
        done
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] || continue
            # one-line: deb [opts] URL suite components...
            sed -E 's/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '
                $1 == "deb" { print ($3 == suite ? 0 : 1), $2 }'
        done
    } | sort -s -n -k1,1 | awk 'NR == 1 { print $2 }'
}
MIRROR=${UMM_LAB_MIRROR:-$(find_mirror)}
[ -n "$MIRROR" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d}"

mkdir -p "$OUT_DIR"
OUT_DIR=$(realpath "$OUT_DIR")
WORK=$(mktemp -d "$OUT_DIR/build.XXXXXX")
TREE=$WORK/tree
IMG=$OUT_DIR/base-$VARIANT.raw
VAR_IMG=$OUT_DIR/base-$VARIANT-var.raw
KEY=$OUT_DIR/id_ed25519
QEMU_PID=

cleanup() {
    # Only our own qemu, by PID.
    if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
        kill -TERM "$QEMU_PID" 2>/dev/null || true
        sleep 2
        kill -KILL "$QEMU_PID" 2>/dev/null || true
    fi
    # debootstrap mounts proc/sys inside the tree; if it died midway, unmount
    # them before deleting the tree (deepest first).
    if [ -d "$TREE" ]; then
        findmnt -rn -o TARGET | grep -F "$TREE/" | sort -r | while read -r m; do
            umount -l "$m" || true
        done
    fi
    rm -rf "$WORK" "$IMG.tmp" "$VAR_IMG.tmp"
}
trap cleanup EXIT

rm -f "$IMG" "$VAR_IMG"

# ---------------------------------------------------------------- debootstrap
export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true
if [ -n "${UMM_LAB_TREE_FROM:-}" ]; then
    [ -f "$UMM_LAB_TREE_FROM" ] || die "UMM_LAB_TREE_FROM: no file $UMM_LAB_TREE_FROM"
    log "unpacking the $SUITE tree from $UMM_LAB_TREE_FROM (no debootstrap)"
    mkdir "$TREE"
    tar --numeric-owner --xattrs --xattrs-include='*' -xpf "$UMM_LAB_TREE_FROM" -C "$TREE" ||
        die "unpacking $UMM_LAB_TREE_FROM failed"
else
    log "debootstrap $SUITE ($VARIANT) from $MIRROR"
    CACHE_OPT=()
    if [ -n "${UMM_LAB_DEB_CACHE:-}" ]; then
        mkdir -p "$UMM_LAB_DEB_CACHE"
        CACHE_OPT=(--cache-dir="$(realpath "$UMM_LAB_DEB_CACHE")")
    fi
    # shellcheck disable=SC2086 # $EXCLUDE is empty or one word
    if ! debootstrap --variant=minbase --include="$PACKAGES" $EXCLUDE "${CACHE_OPT[@]}" \
        "$SUITE" "$TREE" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
        cp "$WORK/debootstrap.log" "$OUT_DIR/debootstrap.log" || true
        tail -n 40 "$WORK/debootstrap.log" >&2
        [ -f "$TREE/debootstrap/debootstrap.log" ] && tail -n 40 "$TREE/debootstrap/debootstrap.log" >&2
        die "debootstrap failed (full log: $OUT_DIR/debootstrap.log)"
    fi
    cp "$WORK/debootstrap.log" "$OUT_DIR/debootstrap.log"
    if [ -n "${UMM_LAB_TREE_SAVE:-}" ]; then
        log "saving the tree to $UMM_LAB_TREE_SAVE"
        tar --numeric-owner --xattrs --xattrs-include='*' -cpf "$UMM_LAB_TREE_SAVE.tmp" -C "$TREE" . ||
            die "saving the tree to $UMM_LAB_TREE_SAVE failed"
        mv "$UMM_LAB_TREE_SAVE.tmp" "$UMM_LAB_TREE_SAVE"
    fi
fi

# ---------------------------------------------------------------- configure
log "configuring tree"
in_tree() { chroot "$TREE" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive "$@"; }

ROOT_UUID=$(cat /proc/sys/kernel/random/uuid)
VAR_UUID=$(cat /proc/sys/kernel/random/uuid)

echo umm-lab >"$TREE/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tumm-lab\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
    >"$TREE/etc/hosts"

{
    echo "UUID=$ROOT_UUID / ext4 errors=remount-ro 0 1"
    [ "$VARIANT" = sepvar ] && echo "UUID=$VAR_UUID /var ext4 defaults 0 2"
    true
} >"$TREE/etc/fstab"

# net.ifnames=0 on the kernel command line makes the first NIC eth0 whatever
# PCI slot qemu gives it.
cat >"$TREE/etc/network/interfaces" <<'EOF'
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp
EOF

# root over ssh with the lab key only.
[ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C umm-lab -f "$KEY"
install -d -m 700 "$TREE/root/.ssh"
install -m 600 "$KEY.pub" "$TREE/root/.ssh/authorized_keys"
# A non-root login as users have: Debian's default PATH for it has no
# /usr/sbin.
in_tree useradd --create-home --shell /bin/bash op
install -d -m 700 -o "$(stat -c %u "$TREE/home/op")" -g "$(stat -c %g "$TREE/home/op")" "$TREE/home/op/.ssh"
install -m 600 -o "$(stat -c %u "$TREE/home/op")" -g "$(stat -c %g "$TREE/home/op")" "$KEY.pub" "$TREE/home/op/.ssh/authorized_keys"
cat >"$TREE/etc/ssh/sshd_config.d/umm-lab.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
EOF

# GRUB on the serial console (ttyS0 last = primary console, /dev/console).
KCMDLINE="console=tty0 console=ttyS0,115200 net.ifnames=0"
sed -i -E \
    -e 's/^#?GRUB_TIMEOUT=.*/GRUB_TIMEOUT=1/' \
    -e 's/^#?GRUB_CMDLINE_LINUX_DEFAULT=.*/GRUB_CMDLINE_LINUX_DEFAULT="quiet"/' \
    -e "s/^#?GRUB_CMDLINE_LINUX=.*/GRUB_CMDLINE_LINUX=\"$KCMDLINE\"/" \
    -e 's/^#?GRUB_TERMINAL=.*/GRUB_TERMINAL="serial console"/' \
    "$TREE/etc/default/grub"
grep -q '^GRUB_TERMINAL=' "$TREE/etc/default/grub" ||
    echo 'GRUB_TERMINAL="serial console"' >>"$TREE/etc/default/grub"
echo 'GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"' >>"$TREE/etc/default/grub"
# So that a later grub-pc upgrade inside the guest reinstalls to the right disk.
echo "grub-pc grub-pc/install_devices multiselect /dev/vda" | in_tree debconf-set-selections

# First boot: install GRUB from inside the guest, then power off.
MARKER=/etc/umm-lab-firstboot.done
cat >"$TREE/usr/local/sbin/umm-lab-firstboot" <<EOF
#!/bin/sh
# One-shot: runs on the image's first (direct-kernel) boot, then removes itself.
status=FAILED
finish() {
    echo "UMM-LAB-FIRSTBOOT-\$status" >/dev/console
    sync
    if [ -d /run/systemd/system ]; then systemctl --no-block poweroff; else (sleep 1; poweroff) & fi
}
trap finish EXIT
set -e
grub-install /dev/vda
update-grub
rm -f /etc/systemd/system/umm-lab-firstboot.service \\
      /etc/systemd/system/multi-user.target.wants/umm-lab-firstboot.service
[ ! -e /etc/rc.local ] || printf '#!/bin/sh\nexit 0\n' >/etc/rc.local
# The journal is persistent (Debian ships /var/log/journal), but this install
# boot must not show up in a fresh overlay's 'journalctl --list-boots': move
# journald back to /run and drop what it wrote to /var.
if [ -d /run/systemd/system ]; then
    journalctl --relinquish-var
    rm -rf /var/log/journal/*
fi
date -u +%FT%TZ >$MARKER
rm -f /usr/local/sbin/umm-lab-firstboot
status=OK
EOF
chmod 755 "$TREE/usr/local/sbin/umm-lab-firstboot"

case "$VARIANT" in
    systemd | sepvar)
        cat >"$TREE/etc/systemd/system/umm-lab-firstboot.service" <<'EOF'
[Unit]
Description=umm-lab first boot (install GRUB, power off)
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/umm-lab-firstboot
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
EOF
        in_tree systemctl enable umm-lab-firstboot.service >/dev/null 2>&1
        ;;
    sysvinit)
        printf '#!/bin/sh\n/usr/local/sbin/umm-lab-firstboot >/dev/console 2>&1\nexit 0\n' \
            >"$TREE/etc/rc.local"
        chmod 755 "$TREE/etc/rc.local"
        # A login prompt on the serial console.
        grep -q '^T0:' "$TREE/etc/inittab" ||
            echo 'T0:23:respawn:/sbin/getty -L ttyS0 115200 vt100' >>"$TREE/etc/inittab"
        ;;
esac

# Persistent journal, so that 'journalctl -b -1' works after a reboot.
if [ "$VARIANT" != sysvinit ]; then
    in_tree install -d -m 2755 -g systemd-journal /var/log/journal
fi

# Keep the image small.
in_tree apt-get clean
rm -rf "$TREE"/var/lib/apt/lists/* "$TREE"/var/cache/apt/*.bin \
    "$TREE"/usr/share/doc/* "$TREE"/usr/share/man/* "$TREE"/usr/share/info/* \
    "$TREE"/var/log/*.log "$TREE"/var/log/apt/* "$TREE"/tmp/*
find "$TREE/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +

# ---------------------------------------------------------------- disks
BOOT_KERNEL=$(find "$TREE/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)
BOOT_INITRD=$(find "$TREE/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n 1)
if [ -z "$BOOT_KERNEL" ] || [ -z "$BOOT_INITRD" ]; then die "no kernel/initrd in tree"; fi
cp "$BOOT_KERNEL" "$WORK/vmlinuz"
cp "$BOOT_INITRD" "$WORK/initrd.img"

if [ "$VARIANT" = sepvar ]; then
    log "writing /var disk"
    VAR_TREE=$WORK/var
    mv "$TREE/var" "$VAR_TREE"
    install -d -m 755 "$TREE/var"
    truncate -s "$VAR_DISK_SIZE" "$VAR_IMG.tmp"
    mke2fs -q -F -t ext4 -L var -U "$VAR_UUID" -d "$VAR_TREE" "$VAR_IMG.tmp"
fi

log "writing root disk"
truncate -s "$DISK_SIZE" "$IMG.tmp"
echo "start=$((PART_OFFSET / 512)), type=83, bootable" | sfdisk -q --label dos "$IMG.tmp"
mke2fs -q -F -t ext4 -L root -U "$ROOT_UUID" -d "$TREE" -E offset=$PART_OFFSET "$IMG.tmp" "$FS_SIZE"
# mke2fs must not have clobbered the partition table.
sfdisk -d "$IMG.tmp" | grep -q "start= *$((PART_OFFSET / 512))," || die "partition table lost"
rm -rf "$TREE"

# ---------------------------------------------------------------- first boot
log "first boot (direct kernel, installs GRUB; up to ${FIRSTBOOT_TIMEOUT}s)"
DRIVES=(-drive "file=$IMG.tmp,format=raw,if=virtio")
[ "$VARIANT" = sepvar ] && DRIVES+=(-drive "file=$VAR_IMG.tmp,format=raw,if=virtio")
SERIAL=$OUT_DIR/firstboot-serial.log
rm -f "$SERIAL"
qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -display none -monitor none -no-reboot \
    -serial "file:$SERIAL" "${DRIVES[@]}" \
    -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0 \
    -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" \
    -append "root=/dev/vda1 rw $KCMDLINE" >"$WORK/qemu.log" 2>&1 &
QEMU_PID=$!
deadline=$((SECONDS + FIRSTBOOT_TIMEOUT))
while kill -0 "$QEMU_PID" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        tail -n 40 "$SERIAL" >&2 || true
        die "first boot did not power off within ${FIRSTBOOT_TIMEOUT}s (serial: $SERIAL)"
    fi
    sleep 2
done
wait "$QEMU_PID" || { cat "$WORK/qemu.log" >&2; die "qemu failed"; }
QEMU_PID=

if ! grep -q 'UMM-LAB-FIRSTBOOT-OK' "$SERIAL" ||
    ! debugfs -R "cat $MARKER" "$IMG.tmp?offset=$PART_OFFSET" 2>/dev/null | grep -q .; then
    tail -n 60 "$SERIAL" >&2 || true
    die "first boot did not complete (serial: $SERIAL)"
fi
# GRUB's boot.img carries the string "GRUB" in the MBR.
head -c 512 "$IMG.tmp" | grep -aq GRUB || die "no GRUB in the MBR"

[ "$VARIANT" = sepvar ] && mv "$VAR_IMG.tmp" "$VAR_IMG"
cp "$WORK/vmlinuz" "$OUT_DIR/vmlinuz"
cp "$WORK/initrd.img" "$OUT_DIR/initrd.img"
mv "$IMG.tmp" "$IMG"
log "done: $IMG ($(du -h "$IMG" | cut -f1) used)"
