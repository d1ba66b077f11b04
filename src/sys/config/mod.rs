//! Configuration: `/etc/umm/umm.toml`, then the drop-ins in
//! `/etc/umm/umm.toml.d/*.toml` in lexical order (a later file overrides the
//! keys it sets), or the original tool's `/etc/umm.conf` when no umm.toml
//! exists. Fragments are parsed, merged, then validated into `Settings`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::model::settings::{is_unit_name, HookTimeouts, LastGood, Settings};
use crate::model::timefmt::{bounded, parse_span};
use crate::sys::fsread;
use crate::sys::paths::{self, Root};

/// Where the settings came from, for `umm status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// Files read, in the order applied.
    pub files: Vec<PathBuf>,
    /// The original tool's /etc/umm.conf was read (no umm.toml exists).
    pub legacy: bool,
    /// The file and line that set `enabled`, if any did.
    pub enabled_from: Option<(PathBuf, usize)>,
}

/// A configuration error: what is wrong, where, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
    /// The file itself could not be read (a FIFO, a device, too big, a
    /// broken link, an I/O error): `message` already says what to do.
    pub unreadable: bool,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unreadable {
            return write!(f, "{} {}", self.file.display(), self.message);
        }
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        write!(
            f,
            "{}; fix it or remove it (see umm(8), CONFIGURATION)",
            self.message
        )
    }
}

impl std::error::Error for ConfigError {}

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
    Ok((settings, sources))
}

/// Which settings are in force when the configuration is read at boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InUse {
    /// The configuration loaded.
    Loaded,
    /// It is broken: the last configuration that loaded, recorded then
    /// (seconds since the epoch).
    LastGood(i64),
    /// It is broken and none ever loaded here: the defaults, counting
    /// unclean boots but never entering maintenance for a crash loop (a
    /// broken file must not turn on a umm its author may have disabled).
    CountingOnly,
}

impl InUse {
    pub fn name(&self) -> &'static str {
        match self {
            InUse::Loaded => "loaded",
            InUse::LastGood(_) => "last-good",
            InUse::CountingOnly => "counting-only",
        }
    }

    /// What the boot does about a broken configuration, for messages.
    pub fn describe(&self) -> String {
        match self {
            InUse::Loaded => "the configuration is used".into(),
            InUse::LastGood(t) => format!(
                "at boot umm uses the last configuration that loaded (recorded {})",
                crate::model::timefmt::rfc3339(*t)
            ),
            InUse::CountingOnly => {
                "no configuration has loaded on this node yet: using the defaults at boot, \
                 counting unclean boots but never entering maintenance for a crash loop"
                    .into()
            }
        }
    }
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
        log::error!("configuration error: {err}; {}", loaded.2.describe());
    }
    loaded
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

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let (key, _) = l.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('#')).then(|| key.to_string())
}

type Value<'a> = Spanned<DeValue<'a>>;

/// One value, checked for its type; the error names what was found.
fn boolean(v: &Value) -> Result<bool, String> {
    v.get_ref()
        .as_bool()
        .ok_or_else(|| format!("expected true or false, found a {}", v.get_ref().type_str()))
}

fn integer(v: &Value) -> Result<i64, String> {
    let i = v.get_ref().as_integer().ok_or_else(|| {
        format!(
            "expected a whole number, found a {}",
            v.get_ref().type_str()
        )
    })?;
    i64::from_str_radix(i.as_str(), i.radix()).map_err(|_| "number too large".to_string())
}

/// Seconds, or a time span such as "10min", within the one rule for spans
/// (`timefmt::bounded`: 1s to 30d) that the command-line flags follow too.
fn span_value(v: &Value) -> Result<Duration, String> {
    let (d, written) = match v.get_ref() {
        DeValue::Integer(_) => {
            let n = integer(v)?;
            let d = u64::try_from(n)
                .map(Duration::from_secs)
                .map_err(|_| format!("{n} is negative"))?;
            (d, format!("{n} seconds"))
        }
        DeValue::String(s) => (parse_span(s)?, format!("{:?}", s.as_ref())),
        other => {
            return Err(format!(
                "expected seconds or a time span such as \"10min\", found a {}",
                other.type_str()
            ))
        }
    };
    bounded(d, &written)
}

fn unit_names(v: &Value) -> Result<Vec<String>, String> {
    let array = v.get_ref().as_array().ok_or_else(|| {
        format!(
            "expected a list of unit names, found a {}",
            v.get_ref().type_str()
        )
    })?;
    array
        .iter()
        .map(|item| match item.get_ref().as_str() {
            Some(unit) if is_unit_name(unit) => Ok(unit.to_string()),
            Some(unit) => Err(format!(
                "{unit:?} is not a unit name (like \"zabbix-agent.service\")"
            )),
            None => Err(format!(
                "expected unit names, found a {}",
                item.get_ref().type_str()
            )),
        })
        .collect()
}

/// Parses one TOML file's text as `file` and applies it over the defaults
/// (for tests and fuzzing: the same code path as `load`).
pub fn parse_toml(file: &Path, text: &str) -> Result<Settings, ConfigError> {
    let mut settings = Settings::default();
    apply_toml_text(file, text, &mut settings, &mut Sources::default())?;
    Ok(settings)
}

/// Parses the original tool's shell-style file's text as `file` (for tests
/// and fuzzing: the same code path as `load`).
pub fn parse_legacy(file: &Path, text: &str) -> Result<Settings, ConfigError> {
    let mut settings = Settings::default();
    apply_legacy_text(file, text, &mut settings, &mut Sources::default())?;
    Ok(settings)
}

/// Walks one file's TOML tree (spans included, so every error has its
/// line) and applies the keys it sets.
fn apply_toml_text(
    file: &Path,
    text: &str,
    settings: &mut Settings,
    sources: &mut Sources,
) -> Result<(), ConfigError> {
    let doc = DeTable::parse(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        ConfigError {
            file: file.to_path_buf(),
            line,
            key: line.and_then(|l| key_on_line(text, l)),
            message: e
                .message()
                .trim()
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("; "),
            unreadable: false,
        }
    })?;
    let err = |span: std::ops::Range<usize>, key: &str, message: String| ConfigError {
        file: file.to_path_buf(),
        line: Some(line_of(text, span.start)),
        key: Some(key.to_string()),
        message,
        unreadable: false,
    };
    for (key, value) in doc.get_ref() {
        let name = key.get_ref().as_ref();
        let fail = |message: String| err(value.span(), name, message);
        match name {
            "enabled" => {
                settings.enabled = boolean(value).map_err(fail)?;
                sources.enabled_from = Some((file.to_path_buf(), line_of(text, key.span().start)));
            }
            "reboot_count" => {
                let n = integer(value).map_err(fail)?;
                settings.reboot_count =
                    u32::try_from(n).map_err(|_| fail(format!("{n} is not a count (use 0 or more)")))?;
            }
            "counter_reset_time" => settings.counter_reset_time = span_value(value).map_err(fail)?,
            "command_timeout" => settings.command_timeout = span_value(value).map_err(fail)?,
            "keep_units" => settings.keep_units = unit_names(value).map_err(fail)?,
            "hooks" | "grub" => {
                let table = value
                    .get_ref()
                    .as_table()
                    .ok_or_else(|| fail(format!("expected a table, found a {}", value.get_ref().type_str())))?;
                // `timeout` first: the per-phase keys override it whatever
                // their order in the file.
                let mut entries: Vec<_> = table.iter().collect();
                entries.sort_by_key(|(k, _)| k.get_ref().as_ref() != "timeout");
                for (sub, v) in entries {
                    let sub_name = sub.get_ref().as_ref();
                    let full = format!("{name}.{sub_name}");
                    let fail = |message: String| err(v.span(), &full, message);
                    let t = &mut settings.hook_timeouts;
                    match (name, sub_name) {
                        ("hooks", "timeout") => {
                            let d = span_value(v).map_err(fail)?;
                            *t = HookTimeouts {
                                check: d,
                                pre_on: d,
                                on: d,
                                pre_off: d,
                                off: d,
                            };
                        }
                        ("hooks", "check_timeout") => t.check = span_value(v).map_err(fail)?,
                        ("hooks", "pre_on_timeout") => t.pre_on = span_value(v).map_err(fail)?,
                        ("hooks", "on_timeout") => t.on = span_value(v).map_err(fail)?,
                        ("hooks", "pre_off_timeout") => t.pre_off = span_value(v).map_err(fail)?,
                        ("hooks", "off_timeout") => t.off = span_value(v).map_err(fail)?,
                        ("grub", "entries_when_disabled") => {
                            settings.grub_entries_when_disabled = boolean(v).map_err(fail)?
                        }
                        _ => return Err(err(sub.span(), &full, format!("unknown key in [{name}]"))),
                    }
                }
            }
            _ => {
                return Err(err(
                    key.span(),
                    name,
                    "unknown key (known: enabled, reboot_count, counter_reset_time, keep_units, command_timeout, [hooks], [grub])".into(),
                ))
            }
        }
    }
    sources.files.push(file.to_path_buf());
    Ok(())
}

/// The original tool's shell-style file: `UMM=yes|no`, `REBOOT_COUNT=N`,
/// `COUNTER_RESET_TIME=N` (minutes, as the original code read it).
fn apply_legacy_text(
    file: &Path,
    text: &str,
    settings: &mut Settings,
    sources: &mut Sources,
) -> Result<(), ConfigError> {
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let err = |key: &str, message: String| ConfigError {
            file: file.to_path_buf(),
            line: Some(line),
            key: Some(key.to_string()),
            message,
            unreadable: false,
        };
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let l = l.strip_prefix("export ").unwrap_or(l);
        let Some((key, value)) = l.split_once('=') else {
            return Err(ConfigError {
                file: file.to_path_buf(),
                line: Some(line),
                key: None,
                message: format!("expected KEY=VALUE, found {l:?}"),
                unreadable: false,
            });
        };
        let key = key.trim();
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        match key {
            "UMM" => {
                settings.enabled = match value.to_ascii_lowercase().as_str() {
                    "yes" | "true" | "1" | "on" => true,
                    "no" | "false" | "0" | "off" => false,
                    _ => return Err(err(key, format!("{value:?} is not yes or no"))),
                };
                sources.enabled_from = Some((file.to_path_buf(), line));
            }
            "REBOOT_COUNT" => {
                settings.reboot_count = value
                    .parse()
                    .map_err(|_| err(key, format!("{value:?} is not a count (use 0 or more)")))?;
            }
            "COUNTER_RESET_TIME" => {
                let minutes: u64 = value
                    .parse()
                    .map_err(|_| err(key, format!("{value:?} is not a number of minutes")))?;
                if minutes == 0 {
                    return Err(err(key, "must be at least 1 minute".into()));
                }
                settings.counter_reset_time = minutes
                    .checked_mul(60)
                    .map(Duration::from_secs)
                    .ok_or_else(|| format!("{minutes} minutes is too long"))
                    .and_then(|d| bounded(d, &format!("{minutes} minutes")))
                    .map_err(|e| err(key, e))?;
            }
            other => return Err(err(
                other,
                "unknown key (the original tool's keys are UMM, REBOOT_COUNT, COUNTER_RESET_TIME)"
                    .into(),
            )),
        }
    }
    sources.legacy = true;
    sources.files.push(file.to_path_buf());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn root_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let root = Root::new(dir.path());
        (dir, root)
    }

    #[test]
    fn defaults_match_the_original_tool() {
        let (_d, root) = root_with(&[]);
        let (s, src) = load(&root).unwrap();
        assert!(s.enabled);
        assert_eq!(s.reboot_count, 2);
        assert_eq!(s.counter_reset_time, Duration::from_secs(600));
        assert!(src.files.is_empty());
    }

    #[test]
    fn dropins_apply_in_lexical_order_over_the_main_file() {
        let (_d, root) = root_with(&[
            (
                "/etc/umm/umm.toml",
                "reboot_count = 5\ncounter_reset_time = 300\n",
            ),
            ("/etc/umm/umm.toml.d/20-b.toml", "reboot_count = 7\n"),
            (
                "/etc/umm/umm.toml.d/10-a.toml",
                "reboot_count = 6\ncounter_reset_time = \"2h\"\n",
            ),
            ("/etc/umm/umm.toml.d/30-ignored.conf", "reboot_count = 99\n"),
        ]);
        let (s, src) = load(&root).unwrap();
        assert_eq!(s.reboot_count, 7);
        assert_eq!(s.counter_reset_time, Duration::from_secs(7200));
        let names: Vec<_> = src
            .files
            .iter()
            .map(|f| f.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["umm.toml", "10-a.toml", "20-b.toml"]);
    }

    #[test]
    fn legacy_file_is_read_only_without_umm_toml() {
        let legacy = "# old\nUMM=no\nREBOOT_COUNT=4\nCOUNTER_RESET_TIME=15\n";
        let (_d, root) = root_with(&[("/etc/umm.conf", legacy)]);
        let (s, src) = load(&root).unwrap();
        assert!(!s.enabled);
        assert_eq!((s.reboot_count, s.counter_reset_time.as_secs()), (4, 900));
        assert!(src.legacy);
        let (_d, root) = root_with(&[
            ("/etc/umm.conf", legacy),
            ("/etc/umm/umm.toml", "reboot_count = 1\n"),
        ]);
        let (s, src) = load(&root).unwrap();
        assert!(s.enabled && !src.legacy);
        assert_eq!(s.reboot_count, 1);
    }

    #[rstest]
    #[case::syntax("enabled = \n", 1, "enabled", "")]
    #[case::unknown_key(
        "reboot_count = 2\nreboot_cuont = 3\n",
        2,
        "reboot_cuont",
        "unknown key"
    )]
    #[case::wrong_type("enabled = \"yes\"\n", 1, "enabled", "found a string")]
    #[case::negative("\n\nreboot_count = -1\n", 3, "reboot_count", "not a count")]
    #[case::bad_span(
        "counter_reset_time = \"10 parsecs\"\n",
        1,
        "counter_reset_time",
        "unknown time unit"
    )]
    #[case::zero_span("counter_reset_time = 0\n", 1, "counter_reset_time", "too short")]
    #[case::huge_seconds(
        "[hooks]\ncheck_timeout = 9223372036854775807\n",
        2,
        "hooks.check_timeout",
        "too long"
    )]
    #[case::huge_span(
        "command_timeout = \"18446744073709551615s\"\n",
        1,
        "command_timeout",
        "too long"
    )]
    #[case::over_thirty_days(
        "counter_reset_time = \"31d\"\n",
        1,
        "counter_reset_time",
        "at most 30d"
    )]
    #[case::span_type(
        "counter_reset_time = true\n",
        1,
        "counter_reset_time",
        "found a boolean"
    )]
    #[case::bad_unit(
        "keep_units = [\"zabbix agent\"]\n",
        1,
        "keep_units",
        "not a unit name"
    )]
    #[case::unknown_table("[hooks]\nfoo = 1\n", 2, "hooks.foo", "unknown key in [hooks]")]
    fn toml_errors_name_file_line_and_key(
        #[case] text: &str,
        #[case] line: usize,
        #[case] key: &str,
        #[case] message: &str,
    ) {
        let (_d, root) = root_with(&[("/etc/umm/umm.toml", text)]);
        let e = load(&root).unwrap_err();
        assert!(e.file.ends_with("etc/umm/umm.toml"));
        assert_eq!(e.line, Some(line), "{e}");
        assert_eq!(e.key.as_deref(), Some(key), "{e}");
        assert!(e.message.contains(message), "{e}");
        let shown = e.to_string();
        assert!(
            shown.contains(&format!("umm.toml:{line}: {key}: ")),
            "{shown}"
        );
        assert_eq!(shown.lines().count(), 1, "one line: {shown}");
    }

    #[rstest]
    #[case::not_key_value("UMM yes\n", None)]
    #[case::bad_bool("UMM=maybe\n", Some("UMM"))]
    #[case::bad_count("REBOOT_COUNT=two\n", Some("REBOOT_COUNT"))]
    #[case::zero_minutes("COUNTER_RESET_TIME=0\n", Some("COUNTER_RESET_TIME"))]
    #[case::huge_minutes(
        "COUNTER_RESET_TIME=18446744073709551615\n",
        Some("COUNTER_RESET_TIME")
    )]
    #[case::over_thirty_days("COUNTER_RESET_TIME=43201\n", Some("COUNTER_RESET_TIME"))]
    #[case::unknown("FOO=1\n", Some("FOO"))]
    fn legacy_errors_name_file_line_and_key(#[case] text: &str, #[case] key: Option<&str>) {
        let (_d, root) = root_with(&[("/etc/umm.conf", &format!("# c\n{text}"))]);
        let e = load(&root).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert_eq!(e.key.as_deref(), key);
    }

    #[test]
    fn broken_dropin_names_the_dropin() {
        let (_d, root) =
            root_with(&[("/etc/umm/umm.toml.d/50-site.toml", "reboot_count = \"x\"\n")]);
        let e = load(&root).unwrap_err();
        assert!(e.file.ends_with("50-site.toml"), "{e}");
    }

    #[test]
    fn boot_counts_only_on_error_when_nothing_ever_loaded() {
        let (_d, root) = root_with(&[("/etc/umm/umm.toml", "enabled = false\nreboot_count = [\n")]);
        let settings = load_or_defaults(&root);
        assert!(settings.counting_only && settings.enabled);
        assert_eq!(settings.policy().reboot_count, u32::MAX);
    }

    #[test]
    fn boot_uses_the_newer_last_good_copy_on_error() {
        let (_d, root) = root_with(&[("/etc/umm/umm.toml", "enabled = \n")]);
        let old = LastGood::new(&Settings::default(), &[], 10);
        let mut newer = old.clone();
        newer.recorded = 20;
        newer.enabled = false;
        newer.counter_reset_time = 90;
        // /var not mounted: only the early copy, which is the newer here.
        std::fs::create_dir_all(root.path("/etc/umm")).unwrap();
        std::fs::create_dir_all(root.path("/var/lib/umm")).unwrap();
        std::fs::write(
            root.path(paths::LAST_GOOD_CONFIG),
            serde_json::to_vec(&old).unwrap(),
        )
        .unwrap();
        std::fs::write(
            root.path(paths::EARLY_LAST_GOOD_CONFIG),
            serde_json::to_vec(&newer).unwrap(),
        )
        .unwrap();
        let (settings, _, in_use, err) = load_at_boot(&root);
        assert!(err.is_some());
        assert_eq!(in_use, InUse::LastGood(20));
        assert!(!settings.enabled);
        assert_eq!(settings.counter_reset_time, Duration::from_secs(90));
    }

    #[test]
    fn hook_timeouts_default_and_override_per_phase() {
        let (_d, root) = root_with(&[(
            "/etc/umm/umm.toml",
            "[hooks]\ntimeout = \"1min\"\noff_timeout = \"20min\"\n",
        )]);
        let (s, _) = load(&root).unwrap();
        assert_eq!(s.hook_timeouts.check.as_secs(), 60);
        assert_eq!(s.hook_timeouts.off.as_secs(), 1200);
        assert_eq!(Settings::default().hook_timeouts.pre_on.as_secs(), 300);
    }

    #[test]
    fn keep_units_add_to_the_defaults() {
        let (_d, root) = root_with(&[(
            "/etc/umm/umm.toml",
            "keep_units = [\"zabbix-agent.service\"]\n",
        )]);
        let (s, _) = load(&root).unwrap();
        let all = s.all_keep_units();
        assert!(all.contains(&"ssh.service".to_string()));
        assert_eq!(all.last().map(String::as_str), Some("zabbix-agent.service"));
    }
}
