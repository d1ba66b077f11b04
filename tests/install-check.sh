#!/bin/bash
# `make install` and `make uninstall` into temporary trees, against the .deb
# (`make install-check DEB=...`, part of `make checks` and `make test`):
#  1. PREFIX=/usr installs exactly what the .deb ships (paths, modes, link
#     targets), less what debhelper adds (changelog.gz, lintian overrides);
#  2. umm is found by a non-root user's default PATH (Debian's, from
#     /etc/login.defs) and `umm status` works for that user;
#  3. /usr/sbin/umm, where earlier versions put the binary, is a link to
#     ../bin/umm, also over an earlier install's binary there; where sbin is
#     bin (merged), the binary is never replaced by a link to itself;
#  4. PREFIX=/usr/local: every installed unit and script runs
#     /usr/local/bin/umm;
#  5. uninstall leaves only the configuration (and the empty directories of
#     /etc/umm and /var/lib/umm).
set -euo pipefail
cd "$(dirname "$0")/.."

deb=${1:?usage: tests/install-check.sh PATH/TO/umm.deb}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"
failed=0
fail() {
    echo "install-check: FAIL: $*" >&2
    failed=1
}
install_into() { # DESTDIR PREFIX
    make -s --no-print-directory install-files DESTDIR="$1" PREFIX="$2" >/dev/null
}
# "MODE PATH" or "MODE PATH -> TARGET", one line per entry of a tree.
listing() {
    (cd "$1" && find . -mindepth 1 -printf '%M %P\n' -type l -printf '%M %P -> %l\n' |
        awk '!/^l/ || / -> /' | sort)
}

# 1. The same tree as the .deb.
a=$tmp/usr-prefix
install_into "$a" /usr
listing "$a" >"$tmp/installed"
dpkg-deb -c "$deb" |
    awk '{ p = $6; for (i = 7; i <= NF; i++) p = p " " $i; sub(/^\.\//, "", p); sub(/\/$/, "", p);
           if (p != "") print $1, p }' |
    grep -Ev ' usr/share/doc/umm/changelog\.gz$| usr/share/lintian(/|$)' |
    sort >"$tmp/packaged"
if ! diff -u "$tmp/packaged" "$tmp/installed" >"$tmp/diff"; then
    fail "make install and $deb differ (- .deb, + make install):"
    cat "$tmp/diff" >&2
fi

# 2. A non-root user: Debian's default PATH finds umm, and status works.
user_path=/usr/local/bin:/usr/bin:/bin:/usr/games
IFS=: read -ra dirs <<<"$user_path"
in_tree=$(printf "$a%s:" "${dirs[@]}") # (no % in a mktemp name)
found=$(env -i PATH="${in_tree%:}" /bin/sh -c 'command -v umm') ||
    fail "umm is not on a non-root user's PATH ($user_path)"
[ "$found" = "$a/usr/bin/umm" ] || fail "a non-root user's PATH finds ${found:-nothing}, not $a/usr/bin/umm"
node=$tmp/node
mkdir -p "$node/proc/sys/kernel/random"
echo boot-0 >"$node/proc/sys/kernel/random/boot_id"
echo "12.50 20.00" >"$node/proc/uptime"
chmod -R a+rX "$node"
if out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
    env -i PATH="$a/usr/bin:/usr/bin:/bin" UMM_ROOT="$node" UMM_INIT=record umm status 2>&1); then
    case $out in
    *operational*) ;;
    *) fail "umm status as a non-root user says: $out" ;;
    esac
else
    fail "umm status as a non-root user failed: $out"
fi

# 3. The old path: a link, also over an earlier install's binary.
[ "$(readlink "$a/usr/sbin/umm")" = ../bin/umm ] || fail "$a/usr/sbin/umm is not a link to ../bin/umm"
b=$tmp/over-old
mkdir -p "$b/usr/sbin"
echo 'an earlier umm binary' >"$b/usr/sbin/umm"
install_into "$b" /usr
[ "$(readlink "$b/usr/sbin/umm")" = ../bin/umm ] || fail "an earlier /usr/sbin/umm was not replaced by the link"
c=$tmp/merged-sbin
mkdir -p "$c/usr/bin"
ln -s bin "$c/usr/sbin"
install_into "$c" /usr
if [ -L "$c/usr/bin/umm" ] || ! [ -x "$c/usr/bin/umm" ]; then
    fail "with /usr/sbin -> bin, /usr/bin/umm is not the binary"
fi

# 4. PREFIX=/usr/local: the units and scripts run the binary installed.
d=$tmp/usr-local
install_into "$d" /usr/local
[ -x "$d/usr/local/bin/umm" ] || fail "no $d/usr/local/bin/umm"
[ "$(readlink "$d/usr/local/sbin/umm")" = ../bin/umm ] || fail "no link $d/usr/local/sbin/umm"
stale=$(grep -rlI '/usr/s\?bin/umm' "$d/etc" "$d/usr/local/lib" || true)
[ -z "$stale" ] || fail "PREFIX=/usr/local, still naming /usr/bin/umm or /usr/sbin/umm: $stale"
runs=$(grep -rlI '/usr/local/bin/umm' "$d/etc" "$d/usr/local/lib" | wc -l)
[ "$runs" -ge 10 ] || fail "PREFIX=/usr/local: only $runs files run /usr/local/bin/umm"

# 5. Uninstall keeps the configuration and nothing else.
make -s --no-print-directory uninstall DESTDIR="$a" PREFIX=/usr >/dev/null
left=$(cd "$a" && find . ! -type d -printf '%P\n' | sort | tr '\n' ' ')
[ "$left" = "etc/umm/umm.toml " ] || fail "after make uninstall, left besides etc/umm/umm.toml: $left"
[ -d "$a/var/lib/umm" ] || fail "make uninstall removed /var/lib/umm"

if [ "$failed" -ne 0 ]; then
    exit 1
fi
echo "install-check: make install = $(basename "$deb") ($(wc -l <"$tmp/installed") entries), non-root PATH and status, /usr/sbin link, PREFIX=/usr/local, uninstall: ok"
