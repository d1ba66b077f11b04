//! The boot-menu pieces as installed: grub.d/42_umm run the way grub-mkconfig
//! runs it, against a stand-in for Debian 12's /etc/grub.d/10_linux (and, when
//! the host allows it, the real grub-mkconfig and 10_linux in a private mount
//! namespace); grub.d/99-umm.install and `umm internal bls-sync` in a temp root.

mod common;

use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{assert_boot_failure_status, Node};
use rstest::rstest;
use umm::bootmenu::{grub_cfg_entries, Kind};

const UUID: &str = "0e9f3b4a-1111-2222-3333-444455556666";

/// Debian 12's 10_linux output, reduced to what 42_umm relies on: the same
/// lines, titles and ids, for the kernels in $STUB_KERNELS (newest first),
/// honouring the GRUB_* variables 10_linux reads.
const STUB_10_LINUX: &str = r#"#! /bin/sh
[ -z "$STUB_RUNS" ] || echo run >>"$STUB_RUNS"
if [ -n "$STUB_FAIL" ]; then
	echo "/usr/sbin/grub-probe: error: failed to get canonical path of \`overlay'." >&2
	exit 1
fi
OS="${GRUB_DISTRIBUTOR:-Debian} GNU/Linux"
uuid=0e9f3b4a-1111-2222-3333-444455556666
cat <<'EOF'
function gfxmode {
	set gfxpayload="${1}"
}
set linux_gfx_mode=
export linux_gfx_mode
EOF
entry() { # indent title id version args
	printf "%smenuentry '%s' --class debian --class gnu-linux --class gnu --class os \$menuentry_id_option '%s' {\n" "$1" "$2" "$3"
	[ "$GRUB_SAVEDEFAULT" = true ] && printf '%s\tsavedefault\n' "$1"
	printf '%s\tload_video\n%s\tinsmod gzio\n%s\tinsmod part_msdos\n%s\tinsmod ext2\n' "$1" "$1" "$1" "$1"
	printf "%s\tsearch --no-floppy --fs-uuid --set=root %s\n" "$1" "$uuid"
	printf "%s\techo\t'Loading Linux %s ...'\n" "$1" "$4"
	printf '%s\tlinux\t/boot/vmlinuz-%s root=UUID=%s ro %s\n' "$1" "$4" "$uuid" "$5"
	printf "%s\techo\t'Loading initial ramdisk ...'\n" "$1"
	printf '%s\tinitrd\t/boot/initrd.img-%s\n' "$1" "$4"
	printf '%s}\n' "$1"
}
indent= top=true
for v in $STUB_KERNELS; do
	echo "Found linux image: /boot/vmlinuz-$v" >&2
	if $top && [ "$GRUB_DISABLE_SUBMENU" != true ]; then
		entry "" "$OS" "gnulinux-simple-$uuid" "$v" "$GRUB_CMDLINE_LINUX $GRUB_CMDLINE_LINUX_DEFAULT"
		echo "submenu 'Advanced options for $OS' \$menuentry_id_option 'gnulinux-advanced-$uuid' {"
		indent="	"
	fi
	top=false
	entry "$indent" "$OS, with Linux $v" "gnulinux-$v-advanced-$uuid" "$v" "$GRUB_CMDLINE_LINUX $GRUB_CMDLINE_LINUX_DEFAULT"
	if [ "$GRUB_DISABLE_RECOVERY" != true ]; then
		entry "$indent" "$OS, with Linux $v (recovery mode)" "gnulinux-$v-recovery-$uuid" "$v" "single $GRUB_CMDLINE_LINUX"
	fi
done
[ -n "$indent" ] && echo "}"
echo
"#;

/// grub-probe for the directory of the environment block: the filesystem
/// in $STUB_FS (ext2 unless set), the abstraction in $STUB_ABSTRACTION;
/// fails with $STUB_PROBE_FAIL.
const STUB_GRUB_PROBE: &str = r#"#! /bin/sh
[ -z "$STUB_PROBE_FAIL" ] || exit 1
case $1 in
--target=fs) echo "${STUB_FS:-ext2}" ;;
--target=abstraction) echo "$STUB_ABSTRACTION" ;;
*) exit 1 ;;
esac
"#;

const RHEL_NAME: &str = "3f5c8a1e2b7d4c6f9a0b1c2d3e4f5a6b-5.14.0-362.8.1.el9_3.x86_64.conf";
const RHEL_ENTRY: &str = include_str!("fixtures/rhel9-bls-entry.conf");

fn source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("grub.d")
        .join(name)
}

/// A node's root with a stand-in for 10_linux.
struct Lab {
    node: Node,
}

impl Deref for Lab {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.node
    }
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab { node: Node::new() };
        lab.executable("/stub/10_linux", STUB_10_LINUX);
        lab.executable("/stub/grub-probe", STUB_GRUB_PROBE);
        lab
    }

    /// A command with only the environment grub-mkconfig would give it (plus
    /// the test hooks), and the given extra variables.
    fn command(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("UMM_ROOT", self.root())
            .env("UMM_INIT", "record")
            .env("UMM_GRUB_BIN", env!("CARGO_BIN_EXE_umm"))
            .env("UMM_GRUB_LINUX_SCRIPT", self.path("/stub/10_linux"))
            .env("UMM_GRUB_PROBE", self.path("/stub/grub-probe"))
            .env("pkgdatadir", "/usr/share/grub")
            .env("GRUB_DISTRIBUTOR", "Debian")
            .env("GRUB_CMDLINE_LINUX", "console=ttyS0,115200n8 net.ifnames=0")
            .env("GRUB_CMDLINE_LINUX_DEFAULT", "quiet")
            .env("STUB_KERNELS", "6.1.0-2-amd64 6.1.0-1-amd64");
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    /// Runs 42_umm with `sh`; checks it exits 0 whatever happens.
    fn snippet(&self, env: &[(&str, &str)]) -> Output {
        self.snippet_with("sh", env)
    }

    fn snippet_with(&self, shell: &str, env: &[(&str, &str)]) -> Output {
        let script = source("42_umm");
        let out = self
            .command(shell, &[script.to_str().unwrap()], env)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        out
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The titles of `menuentry` and `submenu` lines, as written.
fn titles(cfg: &str) -> Vec<String> {
    cfg.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("menuentry ") || l.starts_with("submenu "))
        .map(|l| l.split('\'').nth(1).unwrap().to_string())
        .collect()
}

fn ids(cfg: &str) -> Vec<String> {
    cfg.lines()
        .filter_map(|l| l.split_once("$menuentry_id_option '"))
        .map(|(_, r)| r.split('\'').next().unwrap().to_string())
        .collect()
}

fn linux_lines(cfg: &str) -> Vec<&str> {
    cfg.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("linux\t"))
        .collect()
}

#[test]
fn entries_for_every_kernel_boot_with_umms_argument_last() {
    let lab = Lab::new();
    let out = lab.snippet(&[("GRUB_SAVEDEFAULT", "true")]);
    let cfg = text(&out.stdout);
    assert!(
        text(&out.stderr).contains("Adding maintenance-mode boot entries (umm)"),
        "{}",
        text(&out.stderr)
    );
    let on = ", maintenance mode (umm)";
    let off = ", skip maintenance (umm=off)";
    let mut expected = Vec::new();
    for suffix in [on, off] {
        expected.extend([
            format!("Debian GNU/Linux{suffix}"),
            format!("Advanced options for Debian GNU/Linux{suffix}"),
            format!("Debian GNU/Linux, with Linux 6.1.0-2-amd64{suffix}"),
            format!("Debian GNU/Linux, with Linux 6.1.0-1-amd64{suffix}"),
        ]);
    }
    assert_eq!(titles(&cfg), expected, "{cfg}");
    let mut expected_ids = Vec::new();
    for prefix in ["umm-on-", "umm-off-"] {
        expected_ids.extend([
            format!("{prefix}gnulinux-simple-{UUID}"),
            format!("{prefix}gnulinux-advanced-{UUID}"),
            format!("{prefix}gnulinux-6.1.0-2-amd64-advanced-{UUID}"),
            format!("{prefix}gnulinux-6.1.0-1-amd64-advanced-{UUID}"),
        ]);
    }
    assert_eq!(ids(&cfg), expected_ids);
    // 10_linux's kernel, root and arguments, then umm's argument, last.
    let linux = linux_lines(&cfg);
    assert_eq!(linux.len(), 6);
    for (i, line) in linux.iter().enumerate() {
        // The maintenance entries carry GRUB's boot-failure marker, a
        // variable empty unless GRUB gave up on the default kernel.
        let arg = if i < 3 { "umm=on $umm_why" } else { "umm=off" };
        assert!(
            line.ends_with(&format!(
                " root=UUID={UUID} ro console=ttyS0,115200n8 net.ifnames=0 quiet {arg}"
            )),
            "{line}"
        );
        assert!(line.starts_with("linux\t/boot/vmlinuz-6.1.0-"), "{line}");
    }
    assert!(
        !cfg.contains("recovery") && !cfg.contains("single"),
        "{cfg}"
    );
    assert!(!cfg.contains("savedefault"), "{cfg}");
    // `umm status` finds them in a grub.cfg.
    let found = grub_cfg_entries(&cfg);
    assert_eq!(found.len(), 6);
    assert_eq!(found.iter().filter(|e| e.kind == Kind::On).count(), 3);
    assert_eq!(
        found[1].id,
        format!("umm-on-gnulinux-advanced-{UUID}>umm-on-gnulinux-6.1.0-2-amd64-advanced-{UUID}")
    );
    // GRUB accepts the script, when grub-script-check is installed.
    lab.write("/out/grub.cfg", &cfg);
    if let Ok(check) = Command::new("grub-script-check")
        .arg(lab.path("/out/grub.cfg"))
        .output()
    {
        assert!(check.status.success(), "{}", text(&check.stderr));
    }
}

/// update-grub runs 10_linux for its own entries; umm adds one run more,
/// not one per kind of entry: under emulation a run of Debian's 10_linux
/// took about 5 s of update-grub's 25 s, and every `dpkg -i` pays it.
#[test]
fn ten_linux_runs_once_for_both_kinds_of_entry() {
    let lab = Lab::new();
    let runs = lab.path("/out/runs");
    fs::create_dir_all(runs.parent().unwrap()).unwrap();
    let cfg = text(&lab.snippet(&[("STUB_RUNS", runs.to_str().unwrap())]).stdout);
    assert_eq!(fs::read_to_string(&runs).unwrap(), "run\n");
    let found = grub_cfg_entries(&cfg);
    assert_eq!(found.iter().filter(|e| e.kind == Kind::On).count(), 3);
    assert_eq!(found.iter().filter(|e| e.kind == Kind::Off).count(), 3);
}

#[test]
fn without_submenu_every_kernel_gets_top_level_entries() {
    let lab = Lab::new();
    let cfg = text(&lab.snippet(&[("GRUB_DISABLE_SUBMENU", "true")]).stdout);
    assert_eq!(
        titles(&cfg),
        [
            "Debian GNU/Linux, with Linux 6.1.0-2-amd64, maintenance mode (umm)",
            "Debian GNU/Linux, with Linux 6.1.0-1-amd64, maintenance mode (umm)",
            "Debian GNU/Linux, with Linux 6.1.0-2-amd64, skip maintenance (umm=off)",
            "Debian GNU/Linux, with Linux 6.1.0-1-amd64, skip maintenance (umm=off)",
        ]
    );
}

#[test]
fn bash_and_dash_print_the_same() {
    let lab = Lab::new();
    let sh = lab.snippet(&[]);
    if Command::new("bash").arg("-c").arg(":").output().is_ok() {
        let bash = lab.snippet_with("bash", &[]);
        assert_eq!(text(&sh.stdout), text(&bash.stdout));
    }
}

#[rstest]
#[case::umm_not_installed(&[("UMM_GRUB_BIN", "/nonexistent/umm")], &[], "")]
#[case::no_kernel(&[("STUB_KERNELS", "")], &[], "no kernel found")]
#[case::linux_script_fails(&[("STUB_FAIL", "1")], &[], "failed to get canonical path")]
#[case::linux_script_missing(&[("UMM_GRUB_LINUX_SCRIPT", "/nonexistent/10_linux")], &[], "is missing")]
fn prints_nothing_and_exits_0(
    #[case] env: &[(&str, &str)],
    #[case] files: &[(&str, &str)],
    #[case] says: &str,
) {
    let lab = Lab::new();
    for (path, text) in files {
        lab.write(path, text);
    }
    let out = lab.snippet(env);
    assert_eq!(text(&out.stdout), "");
    assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
}

#[rstest]
#[case::table("enabled = false\n[grub]\nentries_when_disabled = true\n")]
#[case::dotted("enabled = false\ngrub.entries_when_disabled = true\n")]
fn entries_when_disabled_keeps_them(#[case] config: &str) {
    let lab = Lab::new();
    lab.write("/etc/umm/umm.toml", config);
    let cfg = text(&lab.snippet(&[]).stdout);
    assert_eq!(titles(&cfg).len(), 8, "{cfg}");
}

#[test]
fn with_blscfg_it_syncs_the_bls_entries_and_prints_nothing() {
    let lab = Lab::new();
    lab.write(&format!("/boot/loader/entries/{RHEL_NAME}"), RHEL_ENTRY);
    let out = lab.snippet(&[("GRUB_ENABLE_BLSCFG", "true")]);
    assert_eq!(text(&out.stdout), "");
    let stem = RHEL_NAME.trim_end_matches(".conf");
    assert_eq!(
        lab.names("/boot/loader/entries"),
        [
            RHEL_NAME.to_string(),
            format!("{stem}~umm_off.conf"),
            format!("{stem}~umm_on.conf"),
        ]
    );
    let on = fs::read_to_string(lab.path(&format!("/boot/loader/entries/{stem}~umm_on.conf")));
    let on = on.unwrap();
    assert!(
        on.contains("\noptions root=/dev/mapper/rhel-root ro "),
        "{on}"
    );
    assert!(on.contains(" $tuned_params umm=on\n"), "{on}");
    assert!(on.contains("9.3 (Plow), maintenance mode (umm)\n"), "{on}");
}

#[test]
fn kernel_install_plugin_follows_kernels_and_never_fails() {
    let lab = Lab::new();
    let plugin = source("99-umm.install");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec![plugin.to_str().unwrap()];
        all.extend(args);
        let out = lab.command("sh", &all, env).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        out
    };
    let entries = "/boot/loader/entries";
    let kernel = "5.14.0-362.8.1.el9_3.x86_64";
    lab.write(&format!("{entries}/{RHEL_NAME}"), RHEL_ENTRY);
    run(&["add", kernel, "/boot/x", "/lib/modules/x/vmlinuz"], &[]);
    assert_eq!(lab.names(entries).len(), 3);
    fs::remove_file(lab.path(&format!("{entries}/{RHEL_NAME}"))).unwrap();
    run(&["inspect", kernel], &[]);
    assert_eq!(lab.names(entries).len(), 2, "only add and remove sync");
    run(&["remove", kernel], &[]);
    assert!(lab.names(entries).is_empty());
    run(&["add", kernel], &[("UMM_GRUB_BIN", "/nonexistent/umm")]);
    // bls-sync failing (the entries "directory" is a file) still exits 0.
    fs::remove_dir(lab.path(entries)).unwrap();
    lab.write(entries, "not a directory");
    let out = run(&["add", kernel], &[]);
    assert!(
        text(&out.stderr).contains("bls-sync failed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bls_sync_remove_deletes_only_umms_entries() {
    let lab = Lab::new();
    lab.write(&format!("/boot/loader/entries/{RHEL_NAME}"), RHEL_ENTRY);
    let umm = |args: &[&str]| {
        let out = lab
            .command(env!("CARGO_BIN_EXE_umm"), args, &[])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    umm(&["internal", "bls-sync"]);
    assert_eq!(lab.names("/boot/loader/entries").len(), 3);
    umm(&["internal", "bls-sync", "--remove"]);
    assert_eq!(lab.names("/boot/loader/entries"), [RHEL_NAME]);
}

/// The real grub-mkconfig, 00_header and 10_linux with 42_umm, on a tmpfs
/// /boot holding two kernels, in a private mount namespace (so the host's
/// /boot, /etc/grub.d and /etc/default are never touched). Needs root,
/// grub-mkconfig and unshare; skipped otherwise.
#[test]
fn real_grub_mkconfig_in_a_private_mount_namespace() {
    let usable = nix::unistd::geteuid().is_root()
        && Path::new("/usr/sbin/grub-mkconfig").exists()
        && Path::new("/etc/grub.d/10_linux").exists()
        && Command::new("unshare")
            .args(["-m", "--propagation", "private", "true"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !usable {
        eprintln!(
            "SKIPPED real_grub_mkconfig: needs root, grub-mkconfig (grub-common) and unshare -m"
        );
        // `make deps` installs grub-common: CI must run the real thing.
        assert!(std::env::var_os("CI").is_none(), "CI must have grub-common");
        return;
    }
    let lab = Lab::new();
    lab.write("/lab/default/grub", REAL_DEFAULT_GRUB);
    lab.write(
        "/lab/default/grub.d/umm.cfg",
        &fs::read_to_string(source("umm.cfg")).unwrap(),
    );
    lab.write("/lab/run.sh", REAL_RUN);
    let lab_dir = lab.path("/lab");
    let out = lab
        .command(
            "unshare",
            &[
                "-m",
                "--propagation",
                "private",
                "sh",
                lab.path("/lab/run.sh").to_str().unwrap(),
                lab_dir.to_str().unwrap(),
                source("42_umm").to_str().unwrap(),
            ],
            &[],
        )
        .env_remove("UMM_GRUB_LINUX_SCRIPT")
        .env_remove("UMM_GRUB_PROBE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let cfg = fs::read_to_string(lab.path("/lab/grub.cfg")).unwrap();
    let umm_part = cfg
        .split("### BEGIN /etc/grub.d/42_umm ###")
        .nth(1)
        .unwrap();
    let expected: Vec<String> = [", maintenance mode (umm)", ", skip maintenance (umm=off)"]
        .iter()
        .flat_map(|s| {
            [
                format!("Bob's GNU/Linux{s}"),
                format!("Advanced options for Bob's GNU/Linux{s}"),
                format!("Bob's GNU/Linux, with Linux 6.1.0-2-amd64{s}"),
                format!("Bob's GNU/Linux, with Linux 6.1.0-1-amd64{s}"),
            ]
        })
        .collect();
    let found: Vec<String> = grub_cfg_entries(umm_part)
        .into_iter()
        .map(|e| e.title)
        .collect();
    let entries_only: Vec<&String> = expected.iter().filter(|t| !t.starts_with("Adv")).collect();
    assert_eq!(found.iter().collect::<Vec<_>>(), entries_only, "{umm_part}");
    let linux = linux_lines(umm_part);
    assert_eq!(linux.len(), 6, "{umm_part}");
    for (i, line) in linux.iter().enumerate() {
        // The maintenance entries carry GRUB's boot-failure marker, a
        // variable empty unless GRUB gave up on the default kernel.
        let arg = if i < 3 { "umm=on $umm_why" } else { "umm=off" };
        assert!(
            line.ends_with(&format!(
                " ro console=ttyS0,115200n8 net.ifnames=0 quiet panic=10 {arg}"
            )),
            "{line}"
        );
    }
    assert!(!umm_part.contains("recovery") && !umm_part.contains("savedefault"));
    // 10_linux's own entries are untouched and come first.
    let linux_part = cfg
        .split("### BEGIN /etc/grub.d/10_linux ###")
        .nth(1)
        .unwrap();
    let linux_part = linux_part.split("### END").next().unwrap();
    assert!(linux_part.contains("menuentry 'Bob'\\''s GNU/Linux' "));
    assert!(!linux_part.contains("umm"));
    // /etc/default/grub.d/umm.cfg: a panic reboots, in 10_linux's entries too.
    for line in linux_lines(linux_part) {
        assert!(
            line.contains(" quiet panic=10") || line.contains("single"),
            "{line}"
        );
    }
    // The counting code, with the block on a plain partition; GRUB's own
    // parser accepted the whole grub.cfg (grub-script-check in REAL_RUN).
    let code = counting_code(umm_part);
    assert!(
        code.contains("if [ \"$default\" = '1>2' ]; then set umm_kernel='6.1.0-1-amd64'; fi"),
        "{code}"
    );
}

const REAL_DEFAULT_GRUB: &str = r#"GRUB_DEFAULT=saved
GRUB_SAVEDEFAULT=true
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR="Bob's"
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX="console=ttyS0,115200n8 net.ifnames=0"
"#;

/// Run inside `unshare -m --propagation private`: everything mounted here
/// disappears with the namespace.
const REAL_RUN: &str = r#"set -e
lab=$1 snippet=$2
mount -t tmpfs umm-test-boot /boot
mkdir -p /boot/grub
for v in 6.1.0-1-amd64 6.1.0-2-amd64; do
	: >"/boot/vmlinuz-$v"
	: >"/boot/initrd.img-$v"
done
# grub-probe cannot see the container's root device: answer for a plain
# ext4 partition.
cat >"$lab/grub-probe" <<'EOF'
#!/bin/sh
for a in "$@"; do case $a in --target=*) t=${a#--target=} ;; esac; done
case $t in
device) echo /dev/vda1 ;;
fs_uuid) echo 0e9f3b4a-1111-2222-3333-444455556666 ;;
fs) echo ext2 ;;
partmap) echo msdos ;;
abstraction) ;;
compatibility_hint) echo hd0,msdos1 ;;
*) exit 1 ;;
esac
EOF
chmod 755 "$lab/grub-probe"
mount --bind "$lab/grub-probe" /usr/sbin/grub-probe
mkdir -p "$lab/grub.d"
cp /etc/grub.d/00_header /etc/grub.d/10_linux "$lab/grub.d/"
cp "$snippet" "$lab/grub.d/42_umm"
chmod 755 "$lab/grub.d/42_umm"
mount --bind "$lab/grub.d" /etc/grub.d
mount --bind "$lab/default" /etc/default
grub-mkconfig -o "$lab/grub.cfg"
if command -v grub-script-check >/dev/null; then grub-script-check "$lab/grub.cfg"; fi
"#;

// ---------------------------------------------------------------------------
// Boot-loader counting (docs/boot-flow.md, "Boots that never reach userspace")

/// What 42_umm printed after the counting marker.
fn counting_code(cfg: &str) -> &str {
    cfg.split("# umm: boot-loader counting on\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no counting code in:\n{cfg}"))
}

/// `grub-script-check` (GRUB's own parser) accepts the script.
fn assert_grub_script_checks(lab: &Lab, cfg: &str) {
    lab.write("/check.cfg", cfg);
    let out = Command::new("grub-script-check")
        .arg(lab.path("/check.cfg"))
        .output()
        .expect("grub-script-check (grub-common) must be installed");
    assert!(out.status.success(), "{}\n{cfg}", text(&out.stderr));
}

#[test]
fn counting_code_maps_every_name_of_the_default_to_its_kernel() {
    let lab = Lab::new();
    let cfg = text(&lab.snippet(&[]).stdout);
    assert_eq!(
        umm::bootmenu::counting_in_grub_cfg(&cfg),
        Some(umm::bootmenu::Counting::On)
    );
    let code = counting_code(&cfg);
    let uuid = UUID;
    let maps = |default: &str, kernel: &str| {
        format!("if [ \"$default\" = '{default}' ]; then set umm_kernel='{kernel}'; fi")
    };
    // 10_linux's entry 0 is the newest kernel; in the submenu each kernel
    // is followed by its recovery entry (1>0, 1>2, ...).
    for line in [
        "if [ -z \"$default\" ]; then set umm_kernel='6.1.0-2-amd64'; fi".to_string(),
        maps("0", "6.1.0-2-amd64"),
        maps(&format!("gnulinux-simple-{uuid}"), "6.1.0-2-amd64"),
        maps("Debian GNU/Linux", "6.1.0-2-amd64"),
        maps("1>0", "6.1.0-2-amd64"),
        maps(
            &format!("gnulinux-advanced-{uuid}>gnulinux-6.1.0-1-amd64-advanced-{uuid}"),
            "6.1.0-1-amd64",
        ),
        maps("1>2", "6.1.0-1-amd64"),
        maps(
            "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-1-amd64",
            "6.1.0-1-amd64",
        ),
        format!(
            "if [ \"$umm_good\" = '6.1.0-1-amd64' ]; then set umm_good_on='umm-on-gnulinux-advanced-{uuid}>umm-on-gnulinux-6.1.0-1-amd64-advanced-{uuid}'; set umm_good_normal='gnulinux-advanced-{uuid}>gnulinux-6.1.0-1-amd64-advanced-{uuid}'; fi"
        ),
    ] {
        assert!(code.lines().any(|l| l == line), "{line}\nnot in:\n{code}");
    }
    // The maintenance entry the redirect names is one 42_umm made.
    let on_ids: Vec<String> = grub_cfg_entries(&cfg)
        .into_iter()
        .filter(|e| e.kind == Kind::On)
        .map(|e| e.id)
        .collect();
    assert!(
        on_ids.contains(&format!(
            "umm-on-gnulinux-advanced-{uuid}>umm-on-gnulinux-6.1.0-1-amd64-advanced-{uuid}"
        )),
        "{on_ids:?}"
    );
    for needed in [
        "set umm_tries=\"${umm_tries}x\"",
        "save_env umm_tries",
        "save_env umm_failed",
        "set default=\"$umm_good_on\"",
    ] {
        assert!(code.contains(needed), "{needed}");
    }
    assert_grub_script_checks(&lab, &cfg);
}

#[test]
fn without_recovery_entries_the_index_paths_follow() {
    let lab = Lab::new();
    let cfg = text(&lab.snippet(&[("GRUB_DISABLE_RECOVERY", "true")]).stdout);
    let code = counting_code(&cfg);
    assert!(
        code.contains("if [ \"$default\" = '1>1' ]; then set umm_kernel='6.1.0-1-amd64'; fi"),
        "{code}"
    );
    assert_grub_script_checks(&lab, &cfg);
}

#[rstest]
#[case::lvm(&[("STUB_ABSTRACTION", "lvm")], "on lvm, which GRUB cannot write")]
#[case::raid(&[("STUB_ABSTRACTION", "diskfilter mdraid1x")], "on diskfilter mdraid1x")]
#[case::luks(&[("STUB_ABSTRACTION", "cryptodisk luks2")], "on cryptodisk luks2")]
#[case::btrfs(&[("STUB_FS", "btrfs")], "on btrfs, which GRUB cannot write")]
#[case::zfs(&[("STUB_FS", "zfs")], "on zfs")]
#[case::probe_fails(&[("STUB_PROBE_FAIL", "1")], "grub-probe failed")]
fn no_counting_where_grub_cannot_write_its_block(#[case] env: &[(&str, &str)], #[case] why: &str) {
    let lab = Lab::new();
    let out = lab.snippet(env);
    let cfg = text(&out.stdout);
    assert!(!cfg.contains("save_env"), "{cfg}");
    assert!(!cfg.contains("umm_tries"), "{cfg}");
    // The maintenance entries are still there.
    assert_eq!(titles(&cfg).len(), 8, "{cfg}");
    match umm::bootmenu::counting_in_grub_cfg(&cfg) {
        Some(umm::bootmenu::Counting::Off(reason)) => assert!(reason.contains(why), "{reason}"),
        other => panic!("{other:?}\n{cfg}"),
    }
    assert!(text(&out.stderr).contains(why), "{}", text(&out.stderr));
    assert_grub_script_checks(&lab, &cfg);
}

#[rstest]
#[case::by_config(&[("/etc/umm/umm.toml", "enabled = false\n")])]
#[case::dropin_drops_them_again(&[
    ("/etc/umm/umm.toml", "enabled = false\n[grub]\nentries_when_disabled = true\n"),
    ("/etc/umm/umm.toml.d/50-site.toml", "[grub]\nentries_when_disabled = false # site\n"),
])]
fn a_disabled_umm_adds_no_entry_and_says_why_grub_does_not_count(#[case] files: &[(&str, &str)]) {
    let lab = Lab::new();
    for (path, text) in files {
        lab.write(path, text);
    }
    let out = lab.snippet(&[]);
    let cfg = text(&out.stdout);
    assert_eq!(cfg, "# umm: boot-loader counting off: umm is disabled\n");
    assert_eq!(
        umm::bootmenu::counting_in_grub_cfg(&cfg),
        Some(umm::bootmenu::Counting::Off("umm is disabled".into()))
    );
    assert!(
        text(&out.stderr).contains("umm is disabled"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_disabled_umm_emits_no_counting_code_even_with_its_entries() {
    let lab = Lab::new();
    lab.write(
        "/etc/umm/umm.toml",
        "enabled = false\n[grub]\nentries_when_disabled = true\n",
    );
    let cfg = text(&lab.snippet(&[]).stdout);
    assert_eq!(titles(&cfg).len(), 8, "{cfg}");
    assert!(!cfg.contains("save_env"), "{cfg}");
    assert_eq!(
        umm::bootmenu::counting_in_grub_cfg(&cfg),
        Some(umm::bootmenu::Counting::Off("umm is disabled".into()))
    );
}

/// /etc/default/grub.d/umm.cfg sourced as grub-mkconfig sources it: the
/// GRUB_CMDLINE_LINUX_DEFAULT it leaves.
fn panic_cfg(lab: &Lab, linux: &str, default: &str, extra: &str) -> String {
    let script = format!(
        "GRUB_CMDLINE_LINUX='{linux}'; GRUB_CMDLINE_LINUX_DEFAULT='{default}'; {extra}\n. '{}'\nprintf '%s' \"$GRUB_CMDLINE_LINUX_DEFAULT\"",
        source("umm.cfg").display()
    );
    let out = lab.command("sh", &["-c", &script], &[]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[rstest]
#[case::added("console=ttyS0", "quiet", "", "quiet panic=10")]
#[case::added_to_nothing("", "", "", "panic=10")]
#[case::admins_default_wins("", "quiet panic=5", "", "quiet panic=5")]
#[case::admins_linux_wins("panic=30", "quiet", "", "quiet")]
#[case::panic_0_opts_out("", "panic=0 quiet", "", "panic=0 quiet")]
#[case::turned_off("", "quiet", "UMM_PANIC_REBOOT=false", "quiet")]
#[case::umm_removed("", "quiet", "UMM_GRUB_BIN=/nonexistent", "quiet")]
fn panic_reboots_unless_the_administrator_says_otherwise(
    #[case] linux: &str,
    #[case] default: &str,
    #[case] extra: &str,
    #[case] expected: &str,
) {
    let lab = Lab::new();
    assert_eq!(panic_cfg(&lab, linux, default, extra), expected);
}

/// GRUB's side of the counting, run in sh: the code 42_umm emitted, where
/// GRUB script's `set NAME=VALUE` becomes an sh assignment and `load_env` /
/// `save_env` read and write the block through the real grub-editenv. It
/// prints the entry GRUB would boot (`$default`) and what it saved.
const GRUB_ENV_IN_SH: &str = r#"
load_env() {
	for v in "$@"; do unset "$v"; done
	eval "$(grub-editenv "$prefix/grubenv" list | sed -n "/^umm_[a-z_]*=/{s/'/'\\\\''/g; s/=\(.*\)/='\1'/; p}")"
}
save_env() {
	for v in "$@"; do eval "grub-editenv \"\$prefix/grubenv\" set \"$v=\$$v\""; done
}
"#;

/// One boot as GRUB runs it, with `default` set by 00_header (GRUB_DEFAULT):
/// the entry it boots.
fn grub_boots(lab: &Lab, cfg: &str, default: &str) -> String {
    grub_boots_why(lab, cfg, default).0
}

/// One boot as GRUB runs it: the entry it boots, and `$umm_why`, which the
/// maintenance entries' `linux` line expands (the boot-failure marker).
/// The entries sit in a submenu, a new GRUB context that sees only the
/// exported variables: `$umm_why` is read by a child shell, which sees
/// only what is exported too (a real boot showed the difference).
fn grub_boots_why(lab: &Lab, cfg: &str, default: &str) -> (String, String) {
    let code: String = counting_code(cfg)
        .lines()
        .map(|l| {
            let t = l.trim_start();
            let indent = &l[..l.len() - t.len()];
            let l = t
                .strip_prefix("set ")
                .map_or(l.to_string(), |a| format!("{indent}{a}"));
            // `if ...; then set a=b; set c=d; fi` on one line.
            l.replace("then set ", "then ").replace("; set ", "; ") + "\n"
        })
        .collect();
    let script = format!(
        "{GRUB_ENV_IN_SH}\nprefix='{}'\ndefault='{default}'\n{code}\nprintf '%s\\n' \"$default\"\nsh -c 'printf %s \"$umm_why\"'",
        lab.path("/boot/grub").display()
    );
    let out = lab.command("sh", &["-ec", &script], &[]).output().unwrap();
    assert!(out.status.success(), "{}\n{script}", text(&out.stderr));
    let printed = text(&out.stdout);
    let (entry, why) = printed.split_once('\n').unwrap();
    (entry.to_string(), why.to_string())
}

/// A lab whose grub.cfg is the snippet's (the counting code in place):
/// the lab and that grub.cfg.
fn counting_lab() -> (Lab, String) {
    let lab = Lab::new();
    let cfg = text(&lab.snippet(&[]).stdout);
    lab.write("/boot/grub/grub.cfg", &cfg);
    (lab, cfg)
}

/// `counting_lab` after a first boot of 6.1.0-1 reached userspace (it is
/// the good kernel).
fn lab_after_a_good_boot() -> (Lab, String) {
    let (lab, cfg) = counting_lab();
    userspace(&lab, "6.1.0-1-amd64", 1, "");
    (lab, cfg)
}

/// A boot that reaches userspace on `kernel`: umm-boot runs.
fn userspace(lab: &Lab, kernel: &str, n: u32, cmdline: &str) {
    lab.write("/proc/sys/kernel/random/boot_id", &format!("boot-{n}\n"));
    lab.write("/proc/sys/kernel/osrelease", &format!("{kernel}\n"));
    lab.write("/proc/cmdline", &format!("root=/dev/vda1 ro {cmdline}\n"));
    let mut c = lab.node.command(&["internal", "boot"]);
    c.env("UMM_GRUB_BIN", env!("CARGO_BIN_EXE_umm"));
    let ran = lab.node.run_cmd(c);
    assert_eq!(ran.code, Some(0), "{}", ran.out);
}

fn block(lab: &Lab, name: &str) -> String {
    let out = Command::new("grub-editenv")
        .arg(lab.path("/boot/grub/grubenv"))
        .arg("list")
        .output()
        .unwrap();
    text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(String::from))
        .unwrap_or_default()
}

#[test]
fn a_kernel_that_never_reaches_userspace_ends_in_maintenance_on_the_good_one() {
    let (lab, cfg) = counting_lab();
    let u = UUID;
    let good_on =
        format!("umm-on-gnulinux-advanced-{u}>umm-on-gnulinux-6.1.0-1-amd64-advanced-{u}");
    let good_normal = format!("gnulinux-advanced-{u}>gnulinux-6.1.0-1-amd64-advanced-{u}");
    // 6.1.0-1 boots and reaches userspace (GRUB_DEFAULT pointed at it).
    assert_eq!(
        grub_boots(&lab, &cfg, "1>2"),
        "1>2",
        "no block yet: nothing to do"
    );
    userspace(&lab, "6.1.0-1-amd64", 1, "");
    assert_eq!(block(&lab, "umm_good"), "6.1.0-1-amd64");
    assert_eq!(block(&lab, "umm_max_tries"), "xxx");
    // 6.1.0-2 becomes the default (entry 0) and never reaches userspace:
    // reboot_count (2) + 1 attempts, each counted before the kernel starts.
    for tries in ["x", "xx", "xxx"] {
        assert_eq!(grub_boots_why(&lab, &cfg, "0"), ("0".into(), "".into()));
        assert_eq!(block(&lab, "umm_tries"), tries);
    }
    // The next boot goes to the good kernel's maintenance entry, whose
    // command line then carries the boot-failure marker.
    let (entry, why) = grub_boots_why(&lab, &cfg, "0");
    assert_eq!(
        (entry, why.as_str()),
        (good_on.clone(), "umm.why=boot-failure")
    );
    assert_eq!(block(&lab, "umm_failed"), "6.1.0-2-amd64");
    userspace(&lab, "6.1.0-1-amd64", 2, &format!("umm=on {why}"));
    assert_boot_failure_status(&lab.status(), "6.1.0-2-amd64", "6.1.0-1-amd64");
    assert_eq!(block(&lab, "umm_tries"), "");
    // No new loop: the following boots run the good kernel's normal entry,
    // still counted.
    for n in 3..5 {
        assert_eq!(grub_boots(&lab, &cfg, "0"), good_normal);
        assert_eq!(block(&lab, "umm_tries"), "x");
        userspace(&lab, "6.1.0-1-amd64", n, "");
    }
    // The good kernel failing too counts and ends in its maintenance entry.
    for _ in 0..3 {
        assert_eq!(grub_boots(&lab, &cfg, "0"), good_normal);
    }
    assert_eq!(grub_boots(&lab, &cfg, "0"), good_on);
    assert_eq!(block(&lab, "umm_failed"), "6.1.0-2-amd64");
    userspace(&lab, "6.1.0-1-amd64", 5, "umm=on");
    // The operator clears the failure: the default kernel is tried again.
    let cleared = Command::new("grub-editenv")
        .arg(lab.path("/boot/grub/grubenv"))
        .args(["unset", "umm_failed"])
        .status()
        .unwrap();
    assert!(cleared.success());
    assert_eq!(grub_boots(&lab, &cfg, "0"), "0");
    // It works now: it is the good kernel.
    userspace(&lab, "6.1.0-2-amd64", 6, "");
    assert_eq!(block(&lab, "umm_good"), "6.1.0-2-amd64");
}

#[test]
fn another_default_kernel_is_tried_with_a_fresh_failure_record() {
    let (lab, cfg) = lab_after_a_good_boot();
    for _ in 0..4 {
        grub_boots(&lab, &cfg, "0");
    }
    assert_eq!(block(&lab, "umm_failed"), "6.1.0-2-amd64");
    // The administrator makes 6.1.0-1 the default by its id path: it is
    // not the failed kernel, so GRUB forgets the failure.
    let u = UUID;
    let other = format!("gnulinux-advanced-{u}>gnulinux-6.1.0-1-amd64-advanced-{u}");
    userspace(&lab, "6.1.0-1-amd64", 2, "umm=on");
    assert_eq!(grub_boots(&lab, &cfg, &other), other);
    assert_eq!(block(&lab, "umm_failed"), "");
}

#[test]
fn a_disabled_umm_never_redirects_even_with_the_count_full() {
    let (lab, cfg) = lab_after_a_good_boot();
    for _ in 0..3 {
        grub_boots(&lab, &cfg, "0");
    }
    // `enabled = false` set while the count was already full: the next
    // boot that reaches userspace tells GRUB.
    lab.write("/etc/umm/umm.toml", "enabled = false\n");
    userspace(&lab, "6.1.0-1-amd64", 2, "");
    assert_eq!(block(&lab, "umm_enabled"), "0");
    for _ in 0..5 {
        assert_eq!(grub_boots(&lab, &cfg, "0"), "0");
    }
    assert_eq!(block(&lab, "umm_tries"), "");
    assert_eq!(block(&lab, "umm_failed"), "");
}
