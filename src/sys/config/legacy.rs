//! The original tool's `/etc/umm.conf` (shell syntax: `UMM=yes|no`,
//! `REBOOT_COUNT=N`, `COUNTER_RESET_TIME=N` in minutes), read when no
//! umm.toml exists.

use std::path::Path;
use std::time::Duration;

use super::{ConfigError, Sources};
use crate::model::settings::Settings;
use crate::model::timefmt::bounded;

/// Parses the original tool's shell-style file's text as `file` (for tests
/// and fuzzing: the same code path as `load`).
pub fn parse_legacy(file: &Path, text: &str) -> Result<Settings, ConfigError> {
    let mut settings = Settings::default();
    apply_legacy_text(file, text, &mut settings, &mut Sources::default())?;
    Ok(settings)
}

/// The original tool's shell-style file: `UMM=yes|no`, `REBOOT_COUNT=N`,
/// `COUNTER_RESET_TIME=N` (minutes, as the original code read it).
pub(super) fn apply_legacy_text(
    file: &Path,
    text: &str,
    settings: &mut Settings,
    sources: &mut Sources,
) -> Result<(), ConfigError> {
    for (index, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        apply_legacy_line(file, index + 1, l, settings, sources)?;
    }
    sources.legacy = true;
    sources.files.push(file.to_path_buf());
    Ok(())
}

/// One `KEY=VALUE` line (trimmed, not a comment) at `line` of `file`.
fn apply_legacy_line(
    file: &Path,
    line: usize,
    l: &str,
    settings: &mut Settings,
    sources: &mut Sources,
) -> Result<(), ConfigError> {
    let err = |key: Option<&str>, message: String| ConfigError {
        file: file.to_path_buf(),
        line: Some(line),
        key: key.map(str::to_string),
        message,
        unreadable: false,
    };
    let l = l.strip_prefix("export ").unwrap_or(l);
    let Some((key, value)) = l.split_once('=') else {
        return Err(err(None, format!("expected KEY=VALUE, found {l:?}")));
    };
    let key = key.trim();
    let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
    let err = |message: String| err(Some(key), message);
    match key {
        "UMM" => {
            settings.enabled = match value.to_ascii_lowercase().as_str() {
                "yes" | "true" | "1" | "on" => true,
                "no" | "false" | "0" | "off" => false,
                _ => return Err(err(format!("{value:?} is not yes or no"))),
            };
            sources.enabled_from = Some((file.to_path_buf(), line));
        }
        "REBOOT_COUNT" => {
            settings.reboot_count = value
                .parse()
                .map_err(|_| err(format!("{value:?} is not a count (use 0 or more)")))?;
        }
        "COUNTER_RESET_TIME" => {
            let minutes: u64 = value
                .parse()
                .map_err(|_| err(format!("{value:?} is not a number of minutes")))?;
            if minutes == 0 {
                return Err(err("must be at least 1 minute".into()));
            }
            settings.counter_reset_time = minutes
                .checked_mul(60)
                .map(Duration::from_secs)
                .ok_or_else(|| format!("{minutes} minutes is too long"))
                .and_then(|d| bounded(d, &format!("{minutes} minutes")))
                .map_err(err)?;
        }
        _ => {
            return Err(err(
                "unknown key (the original tool's keys are UMM, REBOOT_COUNT, COUNTER_RESET_TIME)"
                    .into(),
            ))
        }
    }
    Ok(())
}
