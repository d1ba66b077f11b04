//! Boot Loader Specification entries (GRUB's blscfg on the RHEL family):
//! a copy of every entry in /boot/loader/entries for each of umm's kernel
//! arguments, kept in step with the entries and with umm's switch.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{entries_wanted, Kind};
use crate::rules::sdboot;
use crate::sys::atomic::atomic_write;
use crate::sys::fsread;
use crate::sys::paths::Root;

pub const BLS_DIR: &str = "/boot/loader/entries";

/// The file name of an entry's umm variant: `x.conf` -> `x~umm_on.conf`.
pub fn bls_variant_name(base: &str, kind: Kind) -> String {
    let stem = base.strip_suffix(".conf").unwrap_or(base);
    format!("{stem}{}.conf", kind.bls_suffix())
}

/// For a variant's file name, the base entry's file name and the kind.
pub fn bls_variant_of(name: &str) -> Option<(String, Kind)> {
    let stem = name.strip_suffix(".conf")?;
    Kind::ALL.into_iter().find_map(|kind| {
        let base = stem.strip_suffix(kind.bls_suffix())?;
        (!base.is_empty()).then(|| (format!("{base}.conf"), kind))
    })
}

/// Whether umm makes variants of this entry: not of its own, nor of the
/// rescue entry (a generic kernel kept for emergencies).
/// Nor of an entry systemd-boot counts (`+LEFT-DONE`: a kernel not proven
/// yet, whose variants would come first once it has gone bad) or umm's
/// fallback (`rules::sdboot`).
pub(super) fn wants_variants(name: &str) -> bool {
    name.ends_with(".conf")
        && bls_variant_of(name).is_none()
        && sdboot::is_kernel_entry(name)
        && sdboot::split_name(name).is_some_and(|(_, counter)| counter.is_none())
}

/// A BLS line's key and value (separated by spaces or tabs).
pub(super) fn bls_key_value(line: &str) -> (&str, &str) {
    let line = line.trim_start();
    line.split_once([' ', '\t'])
        .map_or((line, ""), |(k, v)| (k, v.trim()))
}

/// The text of the `kind` variant of the BLS entry `base` (file `base_name`):
/// the title gets umm's suffix, `options` gets the argument (any umm argument
/// already there is dropped), `id` gets the file suffix; every other line is
/// kept as it is.
pub fn bls_variant(base: &str, base_name: &str, kind: Kind) -> String {
    let mut out = format!(
        "# Written by umm (umm internal bls-sync) from {base_name}; changes are overwritten.\n"
    );
    let (mut title, mut options) = (false, false);
    for line in base.lines() {
        let (key, value) = bls_key_value(line);
        match key {
            "title" if !title => {
                title = true;
                out += &format!("title {value}{}\n", kind.title_suffix());
            }
            "options" if !options => {
                options = true;
                let mut words: Vec<&str> = value
                    .split_ascii_whitespace()
                    .filter(|w| *w != "umm" && !w.starts_with("umm="))
                    .collect();
                words.push(kind.arg());
                out += &format!("options {}\n", words.join(" "));
            }
            "id" => out += &format!("id {value}{}\n", kind.bls_suffix()),
            _ => {
                out += line;
                out.push('\n');
            }
        }
    }
    if !title {
        let stem = base_name.strip_suffix(".conf").unwrap_or(base_name);
        out += &format!("title {stem}{}\n", kind.title_suffix());
    }
    if !options {
        out += &format!("options {}\n", kind.arg());
    }
    out
}

/// What `bls_sync` changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub written: Vec<PathBuf>,
    pub removed: Vec<PathBuf>,
    pub unchanged: usize,
}

/// Brings umm's entries in /boot/loader/entries up to date: both variants
/// of every entry (written only when they differ), none for entries that
/// are gone, and none at all when `remove` is set or umm's entries are not
/// wanted. Nothing to do without that directory (not a BLS system).
pub fn bls_sync(root: &Root, remove: bool) -> Result<Report> {
    let dir = root.path(BLS_DIR);
    let mut report = Report::default();
    let listing = match fs::read_dir(&dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let names: BTreeSet<String> = listing
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let keep = !remove && entries_wanted(root);
    for name in &names {
        if let Some((base, _)) = bls_variant_of(name) {
            if !keep || !names.contains(&base) || !wants_variants(&base) {
                let path = dir.join(name);
                fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                report.removed.push(path);
            }
        }
    }
    if !keep {
        return Ok(report);
    }
    for base in names.iter().filter(|n| wants_variants(n)) {
        write_variants(&dir, base, &mut report)?;
    }
    Ok(report)
}

// ---------------------------------------------------------------------------
// Listing umm's entries

/// Writes both variants of the entry `base` in `dir` where they differ
/// from what is there; an entry that cannot be read is skipped (logged).
fn write_variants(dir: &Path, base: &str, report: &mut Report) -> Result<()> {
    let base_path = dir.join(base);
    let read = fsread::read_string(&base_path, fsread::CONFIG_MAX)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            let mode = fs::metadata(&base_path)
                .map_err(|e| e.to_string())?
                .permissions()
                .mode()
                & 0o777;
            Ok((text, mode))
        });
    let (text, mode) = match read {
        Ok(read) => read,
        Err(e) => {
            log::warn!("skipping {}: {e}", base_path.display());
            return Ok(());
        }
    };
    for kind in Kind::ALL {
        let path = dir.join(bls_variant_name(base, kind));
        let variant = bls_variant(&text, base, kind);
        let current = fsread::read_string(&path, fsread::CONFIG_MAX).ok();
        if current.as_deref() == Some(variant.as_str()) {
            report.unchanged += 1;
            continue;
        }
        atomic_write(&path, variant.as_bytes(), mode)
            .with_context(|| format!("cannot write {}", path.display()))?;
        report.written.push(path);
    }
    Ok(())
}
