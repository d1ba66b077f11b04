#!/bin/bash
# Runs shellcheck on every shell script of the tree (`make shellcheck`,
# part of `make checks` and `make test`): each file whose first line names sh, dash
# or bash (init scripts, the generator wrapper, grub.d/42_umm,
# grub.d/99-umm.install, the maintainer scripts, the example hooks, the VM
# lab's image recipe, .ci/run, these checks), found by its #! line so that a
# new script cannot be missed; the `script ... end script` blocks of the
# upstart jobs (run by /bin/sh -e); the commands of the cron entries; and
# the rpm scriptlets as rpmspec
# expands them (bash: /bin/sh is bash in the RHEL family).
# Every finding fails, whatever its severity; a deliberate exception is an
# inline `# shellcheck disable=SCnnnn` with its reason beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

scripts=()
while IFS= read -r -d '' f; do
    if head -n1 "$f" | grep -Eq '^#! ?(/usr)?/bin/(env )?(sh|dash|bash)( |$)'; then
        scripts+=("${f#./}")
    fi
done < <(find . \( -path ./target -o -path ./.git \) -prune -o -type f -print0 | sort -z)
[ "${#scripts[@]}" -gt 0 ] || { echo "shellcheck: no shell scripts found" >&2; exit 1; }

# Upstart jobs: the script blocks in place, every other line blanked, so
# that the line numbers shellcheck reports are the job file's own.
upstart=()
for job in units/upstart/*.conf; do
    mkdir -p "$tmp/$(dirname "$job")"
    awk '
        /^[ \t]*end script[ \t]*$/ { inside = 0; print ""; next }
        inside { print; next }
        /^[ \t]*((pre|post)-(start|stop) )?script[ \t]*$/ { inside = 1 }
        { print "" }' "$job" >"$tmp/$job"
    upstart+=("$tmp/$job")
done

# cron entries (units/cron, /etc/cron.d format): each job's command, the
# fields after the schedule and the user, as /bin/sh runs it; the other
# lines blanked so that line numbers are the file's own.
cron=()
for entry in units/cron/*; do
    [ -e "$entry" ] || continue
    mkdir -p "$tmp/$(dirname "$entry")"
    awk '
        /^[ \t]*(#|$)/ || /^[A-Za-z_][A-Za-z0-9_]*=/ { print ""; next }
        { for (i = 1; i <= 6; i++) sub(/^[ \t]*[^ \t]+/, ""); print }' "$entry" >"$tmp/$entry"
    cron+=("$tmp/$entry")
done

# rpm scriptlets, one file per section of the expanded spec.
spec=$tmp/rpm/umm.spec
mkdir -p "$tmp/rpm"
rpmspec -P --define "umm_version 0" --define "umm_staging /nonexistent" \
    packaging/rpm/umm.spec >"$spec"
rpm=()
for section in install pre post preun postun posttrans; do
    out=$tmp/rpm/%$section
    # (A first line of its own: a comment opening a scriptlet would read as #!.)
    echo "# rpm %$section scriptlet, from packaging/rpm/umm.spec" >"$out"
    awk -v want="%$section" '
        /^%[a-z]+/ { inside = ($1 == want); next }
        inside' "$spec" >>"$out"
    if [ "$(wc -l <"$out")" -gt 1 ]; then rpm+=("$out"); fi
done
[ "${#rpm[@]}" -ge 4 ] || { echo "shellcheck: rpm scriptlets not found in $spec" >&2; exit 1; }

status=0
shellcheck "${scripts[@]}" || status=1
shellcheck --shell=sh "${upstart[@]}" || status=1
if [ "${#cron[@]}" -gt 0 ]; then
    shellcheck --shell=sh "${cron[@]}" || status=1
fi
shellcheck --shell=bash "${rpm[@]}" || status=1
total=$((${#scripts[@]} + ${#upstart[@]} + ${#cron[@]} + ${#rpm[@]}))
if [ "$status" -ne 0 ]; then
    echo "shellcheck: FAIL (findings above; $total scripts checked)" >&2
    exit 1
fi
echo "shellcheck: ${#scripts[@]} scripts, ${#upstart[@]} upstart jobs, ${#cron[@]} cron entries, ${#rpm[@]} rpm scriptlets: clean"
