//! Boot counting with systemd-boot, on disk: the entries directory, umm's
//! record (/var/lib/umm/sd-boot.json), and applying `rules::sdboot::plan`.
//! Callers hold the writers' lock (`sys::store::lock`).
//!
//! An entry umm cannot read (not UTF-8, too big, an I/O error) is left as
//! it is, out of the plan, and reported; a record umm cannot parse is set
//! aside (`<name>.corrupt-<time>-<n>`) and reported, and umm starts again
//! from an empty one.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::rules::bootcount::BootFailure;
use crate::rules::sdboot::{self, Entry, Plan, PlanInput, Record};
use crate::sys::atomic::atomic_write;
use crate::sys::fsread;
use crate::sys::paths::Root;
use crate::sys::{config, paths, store};

/// Where Type #1 entries live: the XBOOTLDR partition or the ESP.
pub const ENTRY_DIRS: &[&str] = &[
    "/boot/loader/entries",
    "/efi/loader/entries",
    "/boot/efi/loader/entries",
];

/// What `bootctl install` leaves: systemd-boot is the boot loader.
const INSTALLED: &[&str] = &[
    "/efi/loader/loader.conf",
    "/boot/efi/loader/loader.conf",
    "/boot/loader/loader.conf",
    "/efi/EFI/systemd",
    "/boot/efi/EFI/systemd",
    "/boot/EFI/systemd",
];

pub const RECORD: &str = "/var/lib/umm/sd-boot.json";

/// The entries directory, where systemd-boot is installed: the first of
/// `ENTRY_DIRS` that exists.
/// (As named on the node, and its path under the root.)
pub fn entries_dir(root: &Root) -> Option<(&'static str, PathBuf)> {
    if !INSTALLED.iter().any(|p| root.path(p).exists()) {
        return None;
    }
    ENTRY_DIRS
        .iter()
        .map(|d| (*d, root.path(d)))
        .find(|(_, d)| d.is_dir())
}

/// The directory's entries as read: the parsed ones, their texts, and one
/// line for each that could not be read.
#[derive(Debug, Default)]
pub struct Entries {
    pub dir: PathBuf,
    pub entries: Vec<Entry>,
    pub texts: BTreeMap<String, String>,
    pub problems: Vec<String>,
}

pub fn read_entries(dir: &Path) -> Result<Entries, String> {
    let listing = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut names: Vec<String> = listing
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".conf") && !n.starts_with('.'))
        .collect();
    names.sort();
    let mut out = Entries {
        dir: dir.to_path_buf(),
        ..Entries::default()
    };
    for name in names {
        match fsread::read_string(&dir.join(&name), fsread::CONFIG_MAX) {
            Ok(text) => {
                out.entries.push(Entry::parse(&name, &text));
                out.texts.insert(name, text);
            }
            Err(e) => out.problems.push(format!(
                "{e}; umm leaves that entry as it is and does not count it"
            )),
        }
    }
    Ok(out)
}

/// umm's record; a default one when there is none. One that cannot be
/// parsed is set aside (reported in `problems`).
pub fn read_record(root: &Root, problems: &mut Vec<String>) -> Record {
    let path = root.path(RECORD);
    let bytes = match fsread::read(&path, fsread::SMALL_MAX) {
        Ok(bytes) => bytes,
        Err(e) if e.is_absent() => return Record::default(),
        Err(e) => {
            problems.push(e.to_string());
            return Record::default();
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(record) => record,
        Err(e) => {
            let problem = format!("{}: {e}", path.display());
            problems.push(store::set_aside(&path, &problem));
            Record::default()
        }
    }
}

/// Whether umm is enabled (configuration and switch): otherwise systemd-boot
/// must never be redirected.
pub fn umm_enabled(root: &Root) -> bool {
    let settings = config::load_or_defaults(root);
    let state = store::read(&root.path(paths::STATE)).state;
    crate::rules::effective_enabled(&state, settings.policy())
}

/// What `sync` did.
#[derive(Debug, Default)]
pub struct Report {
    pub plan: Plan,
    pub problems: Vec<String>,
}

/// Brings the entries in line with `input` (see `rules::sdboot`); nothing
/// where systemd-boot is not installed. Err: what stopped it, in one line.
pub fn sync(root: &Root, input: &PlanInput) -> Result<Option<Report>, String> {
    let Some((_, dir)) = entries_dir(root) else {
        return Ok(None);
    };
    let read = read_entries(&dir)?;
    let mut problems = read.problems.clone();
    let record = read_record(root, &mut problems);
    let plan = sdboot::plan(&read.entries, &record, input);
    apply(&read, &plan, &mut problems);
    if plan.record != record {
        let json = serde_json::to_vec_pretty(&plan.record).map_err(|e| e.to_string())?;
        let path = root.path(RECORD);
        atomic_write(&path, &json, 0o644)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    for p in &problems {
        log::error!("{p}");
    }
    Ok(Some(Report { plan, problems }))
}

/// The renames, the fallback, the removals; each failure is a problem and
/// the rest goes on. A rename never replaces a file.
fn apply(read: &Entries, plan: &Plan, problems: &mut Vec<String>) {
    let dir = &read.dir;
    for (from, to) in &plan.renames {
        let (from, to) = (dir.join(from), dir.join(to));
        let done = if to.exists() {
            Err(format!("{} exists", to.display()))
        } else {
            fs::rename(&from, &to).map_err(|e| e.to_string())
        };
        match done {
            Ok(()) => log::info!("boot entry renamed: {} -> {}", from.display(), to.display()),
            Err(e) => problems.push(format!("cannot rename {}: {e}", from.display())),
        }
    }
    if let Some(f) = &plan.fallback {
        if let Err(e) = write_fallback(read, plan, f) {
            problems.push(e);
        }
    }
    for name in &plan.remove {
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => log::info!("boot entry removed: {}", path.display()),
            Err(e) => problems.push(format!("cannot remove {}: {e}", path.display())),
        }
    }
}

/// Writes the fallback where it differs from what is there, with the
/// mode of the entry it copies.
fn write_fallback(read: &Entries, plan: &Plan, f: &sdboot::Fallback) -> Result<(), String> {
    let was = plan
        .renames
        .iter()
        .find(|(_, to)| *to == f.from)
        .map_or(&f.from, |(from, _)| from);
    let good = read
        .texts
        .get(was)
        .ok_or_else(|| format!("{} went away", f.from))?;
    let text = sdboot::fallback_text(good, f);
    let path = read.dir.join(&f.name);
    if read.texts.get(&f.name) == Some(&text) {
        return Ok(());
    }
    let mode = fs::metadata(read.dir.join(&f.from))
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o644);
    atomic_write(&path, text.as_bytes(), mode)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    log::info!("boot entry written: {}", path.display());
    Ok(())
}

/// The boot failure systemd-boot's entries show: the one umm-boot recorded,
/// else a newest entry that went bad (not seen by umm-boot yet).
pub fn boot_failure(root: &Root) -> Option<BootFailure> {
    let (_, dir) = entries_dir(root)?;
    let read = read_entries(&dir).ok()?;
    let record = read_record_quietly(root);
    if let Some(kernel) = &record.failed {
        return Some(BootFailure {
            kernel: kernel.clone(),
            attempts: record.failed_attempts as usize,
            good: record.good.clone(),
            since: record.failed_since,
        });
    }
    let bad = sdboot::newest(&read.entries).filter(|e| e.is_bad())?;
    Some(BootFailure {
        kernel: bad
            .version
            .clone()
            .unwrap_or_else(|| bad.stem().to_string()),
        attempts: bad.counter().map_or(0, |c| c.done as usize),
        good: record.good.clone(),
        since: None,
    })
}

/// The record for reading only: one that cannot be read is an empty one.
fn read_record_quietly(root: &Root) -> Record {
    fsread::read(&root.path(RECORD), fsread::SMALL_MAX)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// `umm boot retry`: the failed kernel's entry gets `tries` again and the
/// fallback is armed again. Ok(None): no failure recorded.
pub fn retry(root: &Root, input: &PlanInput) -> Result<Option<BootFailure>, String> {
    let Some(failure) = boot_failure(root) else {
        return Ok(None);
    };
    let (_, dir) = entries_dir(root).ok_or("systemd-boot is not installed")?;
    let read = read_entries(&dir)?;
    let mut problems = Vec::new();
    let mut record = read_record(root, &mut problems);
    if let Some(bad) = read
        .entries
        .iter()
        .find(|e| e.is_bad() && e.version.as_deref() == Some(failure.kernel.as_str()))
    {
        let to = sdboot::counted_name(bad.stem(), Some(input.tries));
        fs::rename(dir.join(&bad.name), dir.join(&to))
            .map_err(|e| format!("cannot rename {}: {e}", dir.join(&bad.name).display()))?;
        if !record.counted.iter().any(|s| s == bad.stem()) {
            record.counted.push(bad.stem().to_string());
        }
    }
    record.failed = None;
    record.failed_attempts = 0;
    record.failed_since = None;
    let json = serde_json::to_vec_pretty(&record).map_err(|e| e.to_string())?;
    atomic_write(&root.path(RECORD), &json, 0o644)
        .map_err(|e| format!("cannot write {}: {e}", root.path(RECORD).display()))?;
    sync(root, input)?;
    Ok(Some(failure))
}
