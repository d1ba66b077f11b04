//! The package's scripts against the tree they install: every init script
//! registered and unregistered, umm run from /usr/bin (on a non-root user's
//! PATH), and the maintainer scripts never stopping or restarting the units
//! whose stop records a clean shutdown or whose start counts a boot.
//! (`make checks` builds and inspects the .deb itself.)

use std::fs;
use std::path::Path;

fn read(path: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn names(dir: &str) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "nothing in {dir}");
    out
}

/// Lines of a shell script without comments.
fn code(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn every_sysvinit_script_is_registered_on_install_and_removed_on_purge() {
    let postinst = read("packaging/debian/postinst");
    let postrm = read("packaging/debian/postrm");
    for script in names("units/sysvinit") {
        let add = format!("update-rc.d {script} defaults >/dev/null");
        let guard = format!("if [ -x /etc/init.d/{script} ]; then");
        assert!(
            code(&postinst).contains(&add.as_str()) && code(&postinst).contains(&guard.as_str()),
            "postinst must register /etc/init.d/{script} (`{guard} {add}`)"
        );
        let remove = format!("update-rc.d {script} remove >/dev/null");
        assert!(
            code(&postrm).contains(&remove.as_str()),
            "postrm purge must run `{remove}`"
        );
    }
}

/// Stopping umm-shutdown records a clean shutdown of the running boot, and
/// restarting umm-boot counts the boot again: no maintainer script may do
/// either, and debhelper must not add its own unit or init-script snippets
/// (which restart on upgrade and stop on removal).
#[test]
fn maintainer_scripts_never_stop_or_restart_the_counting_units() {
    for name in ["postinst", "prerm", "postrm"] {
        let text = read(&format!("packaging/debian/{name}"));
        for line in code(&text) {
            assert!(
                !line.contains("restart"),
                "{name}: nothing of umm is ever restarted: {line}"
            );
            if line.contains(" stop ") {
                assert!(
                    name == "prerm"
                        && line.contains(
                            "stop umm-uptime.timer umm-fleet-retry.timer umm-queue.timer "
                        ),
                    "{name}: only the timers are stopped (on removal): {line}"
                );
            }
        }
    }
    let rules = read("packaging/debian/rules");
    for helper in ["dh_installsystemd", "dh_installinit"] {
        let target = format!("override_{helper}");
        assert!(
            rules.lines().any(|l| l
                .split_once(':')
                .is_some_and(|(targets, _)| targets.split_whitespace().any(|t| t == target))),
            "debian/rules must override {helper} (its snippets would stop and restart units)"
        );
    }
}

/// Everything that runs umm runs /usr/bin/umm: on every user's PATH
/// (Debian's non-root PATH has no sbin). /usr/sbin/umm is only the
/// compatibility link that `make install` and the packages make.
#[test]
fn every_init_file_and_boot_menu_script_runs_usr_bin_umm() {
    let mut files: Vec<String> = Vec::new();
    for dir in [
        "units/systemd",
        "units/sysvinit",
        "units/upstart",
        "units/cron",
        "grub.d",
    ] {
        files.extend(names(dir).into_iter().map(|n| format!("{dir}/{n}")));
    }
    files.extend(["packaging/rpm/umm.spec".to_string()]);
    for file in &files {
        let text = read(file);
        let runs_umm = text.contains("/usr/bin/umm");
        let is_umm_runner = !file.ends_with(".target") && !file.ends_with(".timer");
        if is_umm_runner {
            assert!(runs_umm, "{file} does not run /usr/bin/umm");
        }
        for (i, line) in text.lines().enumerate() {
            if line.contains("/usr/sbin/umm") {
                assert!(
                    file.ends_with("umm.spec"),
                    "{file}:{}: runs /usr/sbin/umm, which a non-root PATH lacks: {line}",
                    i + 1
                );
            }
        }
    }
    let spec = read("packaging/rpm/umm.spec");
    let files_section = spec.split("\n%files").nth(1).unwrap();
    assert!(files_section.lines().any(|l| l == "/usr/bin/umm"));
    assert!(!files_section.lines().any(|l| l.contains("sbin")));
    let overrides = read("packaging/debian/lintian-overrides");
    assert!(overrides.contains("statically-linked-binary [usr/bin/umm]"));
}

/// Every systemd unit that can be enabled (it has an [Install] section) is
/// enabled by the .deb (postinst, and masked/purged by postrm), by the rpm
/// (its preset list) and by the preset file; every timer is started on
/// installation and stopped on removal, so that none fires once the
/// binary is gone.
#[test]
fn every_installable_unit_is_enabled_by_both_packages() {
    let postinst = read("packaging/debian/postinst");
    let postrm = read("packaging/debian/postrm");
    let prerm = read("packaging/debian/prerm");
    let preset = read("packaging/systemd/90-umm.preset");
    let spec = read("packaging/rpm/umm.spec");
    let list = |text: &str, prefix: &str| -> Vec<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no line {prefix}..."))
            .trim_matches('"')
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let deb_units = list(&postinst, "UNITS=");
    let deb_start = list(&postinst, "START_UNITS=");
    let rpm_units = list(&spec, "%global umm_units ");
    let rpm_start = list(&spec, "%global umm_start_units ");
    assert_eq!(list(&postrm, "UNITS="), deb_units, "postrm and postinst");
    assert_eq!(rpm_units, deb_units, "the rpm and the .deb");
    assert_eq!(rpm_start, deb_start, "the rpm and the .deb start");
    let files = spec.split("\n%files").nth(1).unwrap();
    for unit in names("units/systemd") {
        if !read(&format!("units/systemd/{unit}")).contains("\n[Install]") {
            continue;
        }
        assert!(deb_units.contains(&unit), "postinst does not enable {unit}");
        assert!(
            preset.lines().any(|l| l == format!("enable {unit}")),
            "90-umm.preset does not enable {unit}"
        );
        if unit.ends_with(".timer") {
            assert!(deb_start.contains(&unit), "postinst does not start {unit}");
            assert!(
                code(&prerm)
                    .iter()
                    .any(|l| l.contains("stop") && l.contains(&unit)),
                "prerm does not stop {unit}"
            );
            assert!(
                files
                    .lines()
                    .any(|l| l == format!("/usr/lib/systemd/system/{unit}")),
                "the rpm's %files lacks {unit}"
            );
        }
    }
}
