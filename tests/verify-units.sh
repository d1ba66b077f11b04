#!/bin/bash
# `systemd-analyze verify` on every unit of units/systemd as installed
# (`make verify-units`, part of `make checks` and `make test`). Offline: PID 1
# need not be systemd. The units are installed by `make install-files` into
# a temporary root beside this host's own units (sysinit.target and the
# rest of what they name), with the programs they run: the built umm at
# /usr/bin/umm, and the host's copy of any other (/bin/true). `man:umm(8)`
# must resolve to the generated man page. verify exits 0 on some findings
# (a value it cannot parse is only logged), so any output at all fails.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
unitdir=$root/usr/lib/systemd/system

# A merged-/usr tree, as Debian 12's, holding the host's units...
mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib/systemd"
for d in bin sbin lib; do ln -s "usr/$d" "$root/$d"; done
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
# ...and umm's, over them.
make -s --no-print-directory install-files DESTDIR="$root" PREFIX=/usr >/dev/null

units=()
for f in units/systemd/*; do
    case $f in */umm-generator) continue ;; esac
    units+=("$unitdir/$(basename "$f")")
done

# Every program an Exec line names (after its -@:+! prefixes) that is not
# umm's: the host's copy.
sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\([^ ]*\).*/\1/p' "${units[@]}" | sort -u |
    while IFS= read -r prog; do
        if [ ! -e "$root$prog" ] && [ -e "$prog" ]; then
            cp "$prog" "$root$prog"
        fi
    done

out=$(MANPATH=$root/usr/share/man SYSTEMD_LOG_COLOR=0 \
    systemd-analyze verify --root="$root" "${units[@]}" 2>&1) && status=0 || status=$?
if [ "$status" -ne 0 ] || [ -n "$out" ]; then
    printf '%s\n' "$out" >&2
    echo "verify-units: FAIL (systemd-analyze verify exit status $status)" >&2
    exit 1
fi
echo "verify-units: ${#units[@]} units: clean"
