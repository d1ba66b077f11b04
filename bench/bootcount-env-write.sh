#!/bin/sh
# Per-boot cost of umm-boot's write of GRUB's environment block
# (docs/results-bootcount.md): `umm internal boot` against a root prefix on
# the local disk, with grub.cfg carrying 42_umm's counting marker (the block
# is written) and without it (it is not), N boots each; then the fsyncs and
# renames of one boot each way.
# Run: bench/bootcount-env-write.sh target/x86_64-unknown-linux-gnu/release/umm 100
# Writes only under /var/tmp/umm-bench.PID-*.
set -eu
bin=$1 n=${2:-100}
base=/var/tmp/umm-bench.$$

# $1: the root; $2: yes when grub.cfg has the counting marker.
prepare() {
	mkdir -p "$1/proc/sys/kernel/random" "$1/boot/grub" "$1/etc/umm"
	echo "12.5 20.0" >"$1/proc/uptime"
	echo "root=/dev/vda1 ro" >"$1/proc/cmdline"
	echo 6.1.0-2-amd64 >"$1/proc/sys/kernel/osrelease"
	if [ "$2" = yes ]; then line="# umm: boot-loader counting on"; else line="# none"; fi
	echo "$line" >"$1/boot/grub/grub.cfg"
	grub-editenv "$1/boot/grub/grubenv" create
}

# One boot: GRUB's x, then umm-boot. Prints its wall time in microseconds.
boot() {
	echo "boot-$3" >"$1/proc/sys/kernel/random/boot_id"
	[ "$2" = no ] || grub-editenv "$1/boot/grub/grubenv" set umm_tries=x
	start=$(date +%s%N)
	UMM_ROOT=$1 UMM_INIT=record "$bin" internal boot >/dev/null 2>&1
	end=$(date +%s%N)
	echo $(((end - start) / 1000))
}

median() {
	sort -n "$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

for marker in yes no; do
	prepare "$base-$marker" "$marker"
	i=0
	while [ "$i" -lt "$n" ]; do
		i=$((i + 1))
		boot "$base-$marker" "$marker" "$i"
	done >"$base-$marker.times"
done
echo "umm internal boot, median of $n: with the block write $(median "$base-yes.times") us, without $(median "$base-no.times") us"
for marker in yes no; do
	echo "boot-strace" >"$base-$marker/proc/sys/kernel/random/boot_id"
	[ "$marker" = no ] || grub-editenv "$base-$marker/boot/grub/grubenv" set umm_tries=x
	UMM_ROOT=$base-$marker UMM_INIT=record strace -f -o "$base-$marker.strace" \
		-e trace=fsync,fdatasync,rename,renameat,renameat2 "$bin" internal boot >/dev/null 2>&1 || true
	echo "marker $marker: $(grep -c 'fsync' "$base-$marker.strace") fsyncs, $(grep -c 'rename' "$base-$marker.strace") renames"
done
rm -rf "$base-yes" "$base-no" "$base"-*.times "$base"-*.strace
