//! Generated files and the Debian package.

use crate::build::{self, cargo, TARGET};
use crate::run::{cmd, status, stdout};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What umm-gen writes and the copyright file goes (`make install-files`
/// reads them there).
pub const GEN: &str = "target/gen";
pub const DEB_DIR: &str = "target/debian";
const DEB_ARCH: &str = "amd64";
const RPM_ARCH: &str = "x86_64";

/// The crate's version: the first `version =` of Cargo.toml ([package]'s).
fn version() -> Result<String> {
    let toml = fs::read_to_string("Cargo.toml").context("reading Cargo.toml")?;
    toml.lines()
        .filter_map(|l| l.strip_prefix("version"))
        .filter_map(|l| l.trim_start().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .next()
        .context("Cargo.toml: no version = line")
}

/// The version for dpkg and rpm: a pre-release such as 0.2.0-rc1 must sort
/// before 0.2.0, so 0.2.0~rc1.
pub fn pkg_version() -> Result<String> {
    Ok(version()?.replace('-', "~"))
}

pub fn deb_path() -> Result<PathBuf> {
    Ok(Path::new(DEB_DIR).join(format!("umm_{}_{DEB_ARCH}.deb", pkg_version()?)))
}

/// The man page's date and the files' mtimes: the last commit's, unless set.
fn source_date_epoch() {
    if std::env::var_os("SOURCE_DATE_EPOCH").is_some() {
        return;
    }
    if let Ok(t) = stdout(&mut cmd("git", &["log", "-1", "--format=%ct"])) {
        if !t.trim().is_empty() {
            std::env::set_var("SOURCE_DATE_EPOCH", t.trim());
        }
    }
}

/// Man page and completions from the clap definition (tools/gen), and the
/// copyright file with the Rust crates that the static binary contains.
pub fn gen() -> Result<()> {
    source_date_epoch();
    let mut umm_gen = cmd(&cargo(), &["run", "-q", "-p", "umm-gen", "--", GEN]);
    status(umm_gen.stdout(std::process::Stdio::null()))?;
    let template = fs::read_to_string("packaging/debian/copyright")
        .context("reading packaging/debian/copyright")?;
    let text = copyright(&template, &crates()?, &built_using());
    fs::write(Path::new(GEN).join("copyright"), text).context("writing the copyright file")
}

/// " name version: license", one per crate linked into the binary (not
/// build scripts' or proc macros'), sorted, without umm itself.
fn crates() -> Result<Vec<String>> {
    let args = [
        "tree",
        "-q",
        "-e",
        "normal,no-proc-macro",
        "-p",
        "umm",
        "--target",
        TARGET,
        "--prefix",
        "none",
        "--format",
        "{p}: {l}",
    ];
    let tree = stdout(&mut cmd(&cargo(), &args))?;
    let mut crates: Vec<String> = tree
        .lines()
        .map(|l| l.trim_end_matches(" (*)").replace(" (proc-macro)", ""))
        .filter(|l| !l.is_empty() && !l.starts_with("umm v"))
        .map(|l| format!(" {}", l.replacen(" v", " ", 1)))
        .collect();
    crates.sort();
    crates.dedup();
    if crates.is_empty() {
        bail!("cargo tree listed no crates for the copyright file");
    }
    Ok(crates)
}

/// glibc is linked into the static binary (Policy 7.8, Built-Using).
fn built_using() -> String {
    let query = ["-W", "-f=${source:Version}", "libc6-dev"];
    match stdout(cmd("dpkg-query", &query).stderr(std::process::Stdio::null())) {
        Ok(v) if !v.trim().is_empty() => format!("glibc (= {})", v.trim()),
        _ => "glibc".into(),
    }
}

/// packaging/debian/copyright with its @CRATES@ line and @BUILT_USING@ filled in.
fn copyright(template: &str, crates: &[String], built_using: &str) -> String {
    let mut out = String::new();
    for line in template.lines() {
        if line == "@CRATES@" {
            for c in crates {
                out.push_str(c);
                out.push('\n');
            }
        } else {
            out.push_str(&line.replace("@BUILT_USING@", built_using));
            out.push('\n');
        }
    }
    out
}

/// The top entry of packaging/debian/changelog must be this version.
fn check_changelog(pkg_version: &str) -> Result<()> {
    let log = fs::read_to_string("packaging/debian/changelog")?;
    let top = log
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("umm ("))
        .and_then(|l| l.split(')').next())
        .unwrap_or("");
    if top != pkg_version {
        bail!("deb: packaging/debian/changelog is at {top}, Cargo.toml at {pkg_version}: add an entry");
    }
    Ok(())
}

/// debhelper builds the .deb (packaging/debian: control, rules, maintainer
/// scripts) from `make install-files`. dpkg-buildpackage wants debian/ at
/// the top of a source tree: it runs in a copy under target/debian/build.
pub fn deb() -> Result<()> {
    let pkg_version = pkg_version()?;
    check_changelog(&pkg_version)?;
    build::build()?;
    gen()?;
    let build_dir = Path::new(DEB_DIR).join("build");
    if build_dir.exists() {
        fs::remove_dir_all(&build_dir)?;
    }
    let tree = build_dir.join("umm");
    fs::create_dir_all(&tree)?;
    status(&mut cmd(
        "cp",
        &[
            "-R",
            "packaging/debian",
            &tree.join("debian").to_string_lossy(),
        ],
    ))?;
    fs::copy(
        Path::new(GEN).join("copyright"),
        tree.join("debian/copyright"),
    )?;
    let top = std::env::current_dir()?;
    let mut dpkg = cmd("dpkg-buildpackage", &["-b", "-us", "-uc"]);
    status(dpkg.current_dir(&tree).env("UMM_TOP", top))?;
    let deb = deb_path()?;
    let built = build_dir.join(deb.file_name().context("the .deb's name")?);
    // Renamed into place: a VM lab run may be copying the previous one.
    fs::rename(&built, &deb).with_context(|| format!("moving {} into place", built.display()))?;
    println!("deb: {}", deb.display());
    Ok(())
}

/// The lintian command on the .deb (errors and warnings fail).
/// (--show-overrides would make lintian exit 2 even when clean: lintian 2.116.)
pub fn lintian_cmd() -> Result<Command> {
    let deb = deb_path()?;
    let args = ["--fail-on", "error,warning", "--display-info"];
    let mut c = cmd("lintian", &args);
    c.arg(deb);
    Ok(c)
}

pub fn lintian() -> Result<()> {
    status(&mut lintian_cmd()?)
}

/// `make install` and `make uninstall` against the .deb (the script says what).
pub fn install_check_cmd() -> Result<Command> {
    let mut c = cmd("tests/install-check.sh", &[]);
    c.arg(deb_path()?);
    Ok(c)
}

pub fn install_check() -> Result<()> {
    status(&mut install_check_cmd()?)
}

/// rpmbuild packs a prebuilt staging tree (`make install-files`); nothing
/// is compiled inside it.
pub fn rpm() -> Result<()> {
    let pkg_version = pkg_version()?;
    build::build()?;
    gen()?;
    let top = std::env::current_dir()?;
    let (rpm_dir, stage, rpm_top) = (
        top.join("target/rpm"),
        top.join("target/rpm/staging"),
        top.join("target/rpmbuild"),
    );
    let rpm = rpm_dir.join(format!("umm-{pkg_version}-1.{RPM_ARCH}.rpm"));
    for old in [&stage, &rpm_top] {
        if old.exists() {
            fs::remove_dir_all(old)?;
        }
    }
    let _ = fs::remove_file(&rpm);
    let destdir = format!("DESTDIR={}", stage.display());
    let install = [
        "install-files",
        &destdir,
        "PREFIX=/usr",
        "INITDDIR=/etc/rc.d/init.d",
    ];
    status(&mut cmd("make", &install))?;
    let preset = stage.join("usr/lib/systemd/system-preset");
    fs::create_dir_all(&preset)?;
    fs::copy(
        "packaging/systemd/90-umm.preset",
        preset.join("90-umm.preset"),
    )?;
    fs::create_dir_all(&rpm_top)?;
    let defines = [
        format!("_topdir {}", rpm_top.display()),
        format!("_rpmdir {}", rpm_dir.display()),
        "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm".to_owned(),
        format!("umm_version {pkg_version}"),
        format!("umm_staging {}", stage.display()),
    ];
    let mut rpmbuild = cmd("rpmbuild", &["-bb"]);
    for d in &defines {
        rpmbuild.args(["--define", d]);
    }
    status(rpmbuild.args(["--target", RPM_ARCH, "packaging/rpm/umm.spec"]))?;
    println!("rpm: {}", rpm.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copyright_lists_the_crates_in_place_of_the_marker_line() {
        let template = "Files: *\n@CRATES@\nBuilt-Using: @BUILT_USING@\n";
        let crates = [" anyhow 1.0.0: MIT OR Apache-2.0".to_owned()];
        assert_eq!(
            copyright(template, &crates, "glibc (= 2.36-9)"),
            "Files: *\n anyhow 1.0.0: MIT OR Apache-2.0\nBuilt-Using: glibc (= 2.36-9)\n"
        );
    }
}
