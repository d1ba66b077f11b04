//! Reading the configuration files in order and merging them over the
//! defaults; at boot, falling back to the last configuration that loaded.

use std::path::{Path, PathBuf};

use super::fragment::{apply_toml_text, check_fleet, check_rolling, enabled_in};
use super::legacy::apply_legacy_text;
use super::{ConfigError, InUse, Sources};
use crate::model::settings::{LastGood, Settings};
use crate::sys::fsread;
use crate::sys::paths::{self, Root};

/// Loads, merges and validates the configuration under `root`.
pub fn load(root: &Root) -> Result<(Settings, Sources), ConfigError> {
    let mut settings = Settings::default();
    let mut sources = Sources::default();
    let main = root.path(paths::CONFIG);
    // Only ENOENT on umm.toml itself means "no umm.toml": a dangling or
    // looping link, a FIFO or an unreadable file is an error like any other.
    match read_config(&main)? {
        Some(text) => apply_toml_text(&main, &text, &mut settings, &mut sources)?,
        None => {
            let legacy = root.path(paths::LEGACY_CONFIG);
            if let Some(text) = read_config(&legacy)? {
                apply_legacy_text(&legacy, &text, &mut settings, &mut sources)?;
            }
        }
    }
    for dropin in dropins(&root.path(paths::CONFIG_DROPINS))? {
        let text = read_config(&dropin)?
            .ok_or_else(|| unreadable(&fsread::ReadError::Absent(dropin.clone())))?;
        apply_toml_text(&dropin, &text, &mut settings, &mut sources)?;
    }
    check_fleet(&settings, &sources)?;
    check_rolling(&settings, &sources)?;
    Ok((settings, sources))
}

/// The recorded last-good configuration: the newer of the copy in /var and
/// the one on the root filesystem (the generator may see only that one).
pub fn read_last_good(root: &Root) -> Option<LastGood> {
    [paths::LAST_GOOD_CONFIG, paths::EARLY_LAST_GOOD_CONFIG]
        .iter()
        .filter_map(|p| {
            let path = root.path(p);
            match fsread::read(&path, fsread::CONFIG_MAX) {
                Ok(bytes) => serde_json::from_slice::<LastGood>(&bytes)
                    .map_err(|e| log::warn!("{} is unreadable ({e}); not used", path.display()))
                    .ok(),
                Err(e) if e.is_absent() => None,
                Err(e) => {
                    log::warn!("{e}");
                    None
                }
            }
        })
        .max_by_key(|g| g.recorded)
}

/// The configuration as the boot uses it: loaded, or when broken, the last
/// one that loaded, or counting only. The error, if any, is returned too.
pub fn load_at_boot(root: &Root) -> (Settings, Sources, InUse, Option<ConfigError>) {
    let (mut settings, mut sources, in_use, err) = fall_back(root);
    if err.is_some() {
        // A file that parses and says `enabled = false` wins over the
        // fallback: configuration management may push `enabled = false`
        // together with a broken drop-in, and the last-good configuration
        // (the defaults recorded at install, say) must not turn umm on.
        if let Some(at) = disabled_by_a_file(root) {
            settings.enabled = false;
            sources.disabled_by = Some(at);
        }
    }
    (settings, sources, in_use, err)
}

/// `load`, or when it fails, the last configuration that loaded, or the
/// defaults counting only.
fn fall_back(root: &Root) -> (Settings, Sources, InUse, Option<ConfigError>) {
    match load(root) {
        Ok((settings, sources)) => (settings, sources, InUse::Loaded, None),
        Err(err) => match read_last_good(root) {
            Some(good) => {
                let sources = Sources {
                    files: good.files.clone(),
                    ..Sources::default()
                };
                (
                    good.settings(),
                    sources,
                    InUse::LastGood(good.recorded),
                    Some(err),
                )
            }
            None => (
                Settings {
                    counting_only: true,
                    ..Settings::default()
                },
                Sources::default(),
                InUse::CountingOnly,
                Some(err),
            ),
        },
    }
}

/// Loads the configuration, or, if it is broken, logs why and what is used
/// instead (`load_at_boot`): for boot-time entry points, which must never
/// stop a boot, and for the commands that must work with a broken file.
pub fn load_or_defaults(root: &Root) -> Settings {
    load_logged(root).0
}

/// `load_at_boot`, with a broken configuration logged.
pub fn load_logged(root: &Root) -> (Settings, Sources, InUse, Option<ConfigError>) {
    let loaded = load_at_boot(root);
    if let Some(err) = &loaded.3 {
        log::error!(
            "configuration error: {err}; {}{}",
            loaded.2.describe(),
            still_disabled(&loaded.1)
        );
    }
    loaded
}

/// The file and line of the last `enabled` among the files `load` reads
/// (in its order: umm.toml or the original tool's file, then the
/// drop-ins), looking at each file on its own, when that last one says
/// false. A file that is not TOML, or whose `enabled` is not a boolean,
/// says nothing.
fn disabled_by_a_file(root: &Root) -> Option<(PathBuf, usize)> {
    let main = root.path(paths::CONFIG);
    let mut last: Option<(bool, PathBuf, usize)> = None;
    match read_config(&main) {
        Ok(Some(text)) => {
            if let Some((on, line)) = enabled_in(&text) {
                last = Some((on, main, line));
            }
        }
        Ok(None) => last = enabled_in_legacy(root),
        Err(_) => {}
    }
    for dropin in dropins(&root.path(paths::CONFIG_DROPINS)).unwrap_or_default() {
        if let Some((on, line)) = read_config(&dropin)
            .ok()
            .flatten()
            .and_then(|t| enabled_in(&t))
        {
            last = Some((on, dropin, line));
        }
    }
    last.and_then(|(on, file, line)| (!on).then_some((file, line)))
}

/// The original tool's file, when it loads and sets `UMM=`.
fn enabled_in_legacy(root: &Root) -> Option<(bool, PathBuf, usize)> {
    let legacy = root.path(paths::LEGACY_CONFIG);
    let text = read_config(&legacy).ok().flatten()?;
    let mut settings = Settings::default();
    let mut sources = Sources::default();
    apply_legacy_text(&legacy, &text, &mut settings, &mut sources).ok()?;
    let (file, line) = sources.enabled_from?;
    Some((settings.enabled, file, line))
}

/// What the messages about a broken configuration add when a file that
/// parses still disables umm (empty otherwise).
pub fn still_disabled(sources: &Sources) -> String {
    match &sources.disabled_by {
        Some((file, line)) => format!(
            "; but {}:{line} says enabled = false, and that holds: umm stays disabled",
            file.display()
        ),
        None => String::new(),
    }
}

fn dropins(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir, &e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

fn io_error(file: &Path, e: &std::io::Error) -> ConfigError {
    unreadable(&fsread::ReadError::Io(
        file.to_path_buf(),
        std::io::Error::new(e.kind(), e.to_string()),
    ))
}

fn unreadable(e: &fsread::ReadError) -> ConfigError {
    ConfigError {
        file: e.path().to_path_buf(),
        line: None,
        key: None,
        message: e.what(),
        unreadable: true,
    }
}

/// A configuration file's text, `None` when it is absent.
fn read_config(file: &Path) -> Result<Option<String>, ConfigError> {
    fsread::read_string_if_present(file, fsread::CONFIG_MAX).map_err(|e| unreadable(&e))
}
