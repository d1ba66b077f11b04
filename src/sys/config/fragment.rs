//! One umm.toml file (the main file or a drop-in), as serde structures:
//! what a file may say (`Fragment`; an unknown key is an error), each value
//! read as a `toml::Value` and checked (`TryFrom`), and every error one
//! line naming the file, the line (toml's spans) and the key. `apply_toml_text` merges a file over the settings so
//! far: the keys it sets replace theirs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::{Spanned, Value};

use super::{ConfigError, Sources};
use crate::model::fleet::{check_name, check_url, Backend, FleetSettings};
use crate::model::rolling::{RollingSettings, Window};
use crate::model::settings::{is_unit_name, HookTimeouts, RebootMethod, Settings};
use crate::model::timefmt::{bounded, parse_span};

/// The keys of the top level, for the error that names an unknown one.
const KNOWN_KEYS: &str =
    "enabled, reboot_count, counter_reset_time, keep_units, command_timeout, [hooks], [grub], [metrics], [reboot], [fleet], [rolling]";

/// What one umm.toml file may set.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Fragment {
    /// Spanned: `umm enable` names the line that disables umm.
    enabled: Option<Spanned<Flag>>,
    reboot_count: Option<Count>,
    counter_reset_time: Option<Span>,
    keep_units: Option<UnitNames>,
    command_timeout: Option<Span>,
    hooks: Option<Table<HooksFragment>>,
    grub: Option<Table<GrubFragment>>,
    metrics: Option<Table<MetricsFragment>>,
    fleet: Option<Table<FleetFragment>>,
    reboot: Option<Table<RebootFragment>>,
    rolling: Option<Table<RollingFragment>>,
}

/// `[rolling]`: each value checked as read; how the keys fit together
/// (`RollingSettings::validate`) once every file is merged (`load`).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RollingFragment {
    windows: Option<Spanned<Windows>>,
    gate_url: Option<Spanned<Url>>,
    gate_alerts: Option<Spanned<Text>>,
    gate_expr: Option<Spanned<Text>>,
    gate_timeout: Option<Spanned<Span>>,
}

/// `[reboot]`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RebootFragment {
    method: Option<MethodName>,
}

/// `[fleet]`: each value checked as read; how the keys fit together
/// (`FleetSettings::validate`) once every file is merged (`load`).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct FleetFragment {
    backend: Option<Spanned<BackendName>>,
    group: Option<Spanned<Name>>,
    id: Option<Spanned<Name>>,
    endpoints: Option<Spanned<Urls>>,
    url: Option<Spanned<Url>>,
    slots: Option<Spanned<Slots>>,
    ca_file: Option<Spanned<FilePath>>,
    cert_file: Option<Spanned<FilePath>>,
    key_file: Option<Spanned<FilePath>>,
    timeout: Option<Spanned<Span>>,
}

/// `[hooks]`: `timeout` for every phase, then a phase's own.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct HooksFragment {
    timeout: Option<Span>,
    check_timeout: Option<Span>,
    pre_on_timeout: Option<Span>,
    on_timeout: Option<Span>,
    pre_off_timeout: Option<Span>,
    off_timeout: Option<Span>,
}

/// `[grub]`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct GrubFragment {
    entries_when_disabled: Option<Flag>,
}

/// `[metrics]`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct MetricsFragment {
    textfile_dir: Option<Dir>,
}

impl Fragment {
    /// The keys this file sets replace the settings' (`file` and `text`
    /// place `enabled` for `Sources::enabled_from`).
    fn apply(self, file: &Path, text: &str, settings: &mut Settings, sources: &mut Sources) {
        if let Some(enabled) = self.enabled {
            sources.enabled_from = Some((file.to_path_buf(), line_of(text, enabled.span().start)));
            settings.enabled = enabled.into_inner().0;
        }
        if let Some(Count(n)) = self.reboot_count {
            settings.reboot_count = n;
        }
        if let Some(Span(d)) = self.counter_reset_time {
            settings.counter_reset_time = d;
        }
        if let Some(UnitNames(units)) = self.keep_units {
            settings.keep_units = units;
        }
        if let Some(Span(d)) = self.command_timeout {
            settings.command_timeout = d;
        }
        if let Some(Table(hooks)) = self.hooks {
            hooks.apply(&mut settings.hook_timeouts);
        }
        if let Some(Flag(keep)) = self.grub.and_then(|g| g.0.entries_when_disabled) {
            settings.grub_entries_when_disabled = keep;
        }
        if let Some(Dir(dir)) = self.metrics.and_then(|m| m.0.textfile_dir) {
            settings.metrics_dir = dir;
        }
        if let Some(MethodName(method)) = self.reboot.and_then(|r| r.0.method) {
            settings.reboot_method = method;
        }
        if let Some(Table(fleet)) = self.fleet {
            fleet.apply(file, text, &mut settings.fleet, sources);
        }
        if let Some(Table(rolling)) = self.rolling {
            rolling.apply(file, text, &mut settings.rolling, sources);
        }
    }
}

/// Where each key of a table was set (`Sources::fleet_keys`,
/// `rolling_keys`), for the errors `check_fleet` and `check_rolling` place.
struct Placer<'a> {
    keys: &'a mut Vec<(&'static str, PathBuf, usize)>,
    file: &'a Path,
    text: &'a str,
}

impl Placer<'_> {
    /// The value of `key`, if this file sets it; its line noted.
    fn take<T>(&mut self, key: &'static str, value: Option<Spanned<T>>) -> Option<T> {
        let value = value?;
        self.keys.retain(|(k, _, _)| *k != key);
        let line = line_of(self.text, value.span().start);
        self.keys.push((key, self.file.to_path_buf(), line));
        Some(value.into_inner())
    }
}

impl RollingFragment {
    fn apply(self, file: &Path, text: &str, r: &mut RollingSettings, sources: &mut Sources) {
        let keys = &mut sources.rolling_keys;
        let mut at = Placer { keys, file, text };
        if let Some(Windows(w)) = at.take("windows", self.windows) {
            r.windows = w;
        }
        if let Some(Url(url)) = at.take("gate_url", self.gate_url) {
            r.gate_url = Some(url);
        }
        if let Some(Text(alerts)) = at.take("gate_alerts", self.gate_alerts) {
            r.gate_alerts = Some(alerts);
        }
        if let Some(Text(expr)) = at.take("gate_expr", self.gate_expr) {
            r.gate_expr = Some(expr);
        }
        if let Some(Span(d)) = at.take("gate_timeout", self.gate_timeout) {
            r.gate_timeout = d;
        }
    }
}

impl FleetFragment {
    fn apply(self, file: &Path, text: &str, f: &mut FleetSettings, sources: &mut Sources) {
        let keys = &mut sources.fleet_keys;
        let mut at = Placer { keys, file, text };
        if let Some(BackendName(backend)) = at.take("backend", self.backend) {
            f.backend = backend;
        }
        if let Some(Name(group)) = at.take("group", self.group) {
            f.group = group;
        }
        if let Some(Name(id)) = at.take("id", self.id) {
            f.id = Some(id);
        }
        if let Some(Urls(endpoints)) = at.take("endpoints", self.endpoints) {
            f.endpoints = endpoints;
        }
        if let Some(Url(url)) = at.take("url", self.url) {
            f.url = Some(url);
        }
        if let Some(Slots(n)) = at.take("slots", self.slots) {
            f.slots = n;
        }
        for (key, value, slot) in [
            ("ca_file", self.ca_file, &mut f.ca_file),
            ("cert_file", self.cert_file, &mut f.cert_file),
            ("key_file", self.key_file, &mut f.key_file),
        ] {
            if let Some(FilePath(path)) = at.take(key, value) {
                *slot = Some(path.into());
            }
        }
        if let Some(Span(d)) = at.take("timeout", self.timeout) {
            f.timeout = d;
        }
    }
}

/// The merged `[rolling]` settings checked as a whole, placed as
/// `check_fleet` places its errors.
pub(super) fn check_rolling(settings: &Settings, sources: &Sources) -> Result<(), ConfigError> {
    let keys = &sources.rolling_keys;
    settings
        .rolling
        .validate()
        .map_err(|(key, message)| placed(sources, keys, ("rolling", key), message))
}

/// The merged `[fleet]` settings checked as a whole: an error is placed
/// at the file and line that set the key at fault (or the last file read).
pub(super) fn check_fleet(settings: &Settings, sources: &Sources) -> Result<(), ConfigError> {
    let keys = &sources.fleet_keys;
    settings
        .fleet
        .validate()
        .map_err(|e| placed(sources, keys, ("fleet", e.key), e.message))
}

/// An error about `[table] key` at the file and line that set it, else
/// the table's last key set, else the last file read (no line).
fn placed(
    sources: &Sources,
    keys: &[(&'static str, PathBuf, usize)],
    (table, key): (&str, &str),
    message: String,
) -> ConfigError {
    let at = keys.iter().find(|(k, _, _)| *k == key);
    let (file, line) = match at.or_else(|| keys.last()) {
        Some((_, file, line)) => (file.clone(), Some(*line)),
        None => (sources.files.last().cloned().unwrap_or_default(), None),
    };
    ConfigError {
        file,
        line,
        key: Some(format!("{table}.{key}")),
        message,
        unreadable: false,
    }
}

impl HooksFragment {
    /// `timeout` first: the per-phase keys override it whatever their
    /// order in the file.
    fn apply(self, t: &mut HookTimeouts) {
        if let Some(Span(d)) = self.timeout {
            *t = HookTimeouts::all(d);
        }
        for (value, slot) in [
            (self.check_timeout, &mut t.check),
            (self.pre_on_timeout, &mut t.pre_on),
            (self.on_timeout, &mut t.on),
            (self.pre_off_timeout, &mut t.pre_off),
            (self.off_timeout, &mut t.off),
        ] {
            if let Some(Span(d)) = value {
                *slot = d;
            }
        }
    }
}

/// Parses one TOML file's text as `file` and applies it over the defaults
/// (for tests and fuzzing: the same code path as `load`).
pub fn parse_toml(file: &Path, text: &str) -> Result<Settings, ConfigError> {
    let mut settings = Settings::default();
    let mut sources = Sources::default();
    apply_toml_text(file, text, &mut settings, &mut sources)?;
    check_fleet(&settings, &sources)?;
    check_rolling(&settings, &sources)?;
    Ok(settings)
}

/// Reads one file's text and applies the keys it sets.
pub(super) fn apply_toml_text(
    file: &Path,
    text: &str,
    settings: &mut Settings,
    sources: &mut Sources,
) -> Result<(), ConfigError> {
    let fragment: Fragment = toml::from_str(text).map_err(|e| located(file, text, &e))?;
    fragment.apply(file, text, settings, sources);
    sources.files.push(file.to_path_buf());
    Ok(())
}

// ---------------------------------------------------------------------------
// Values, checked as they are read: each type is read as a `toml::Value`
// and converted, and an error is a message toml places at the value (its
// span, hence its line).

/// The message for a value of the wrong type (toml's name for the type).
fn wrong(expected: &str, found: &Value) -> String {
    format!("expected {expected}, found a {}", found.type_str())
}

/// A string, else the message saying what was `expected`.
fn string(value: Value, expected: &str) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(wrong(expected, &other)),
    }
}

/// An array, else the message saying what was `expected`.
fn list(value: Value, expected: &str) -> Result<Vec<Value>, String> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(wrong(expected, &other)),
    }
}

/// At most `most` items (`what` counts them in the message).
fn at_most(items: Vec<Value>, most: usize, what: &str) -> Result<Vec<Value>, String> {
    match items.len() {
        n if n > most => Err(format!("{n} {what}: at most {most}")),
        _ => Ok(items),
    }
}

/// A whole number (TOML's are 64-bit).
fn integer(value: &Value) -> Result<i64, String> {
    match value {
        Value::Integer(n) => Ok(*n),
        other => Err(wrong("a whole number", other)),
    }
}

/// `true` or `false`.
#[derive(Deserialize, Debug)]
#[serde(try_from = "Value")]
struct Flag(bool);

impl TryFrom<Value> for Flag {
    type Error = String;
    fn try_from(value: Value) -> Result<Flag, String> {
        match value {
            Value::Boolean(b) => Ok(Flag(b)),
            other => Err(wrong("true or false", &other)),
        }
    }
}

/// A count: 0 or more.
#[derive(Deserialize, Debug)]
#[serde(try_from = "Value")]
struct Count(u32);

impl TryFrom<Value> for Count {
    type Error = String;
    fn try_from(value: Value) -> Result<Count, String> {
        let n = integer(&value)?;
        u32::try_from(n)
            .map(Count)
            .map_err(|_| format!("{n} is not a count (use 0 or more)"))
    }
}

/// Seconds, or a time span such as "10min", within the one rule for spans
/// (`timefmt::bounded`: 1 s to 30 d) that the command-line flags follow too.
#[derive(Deserialize, Debug)]
#[serde(try_from = "Value")]
struct Span(Duration);

impl TryFrom<Value> for Span {
    type Error = String;
    fn try_from(value: Value) -> Result<Span, String> {
        let (d, written) = match value {
            Value::Integer(n) => {
                let secs = u64::try_from(n).map_err(|_| format!("{n} is negative"))?;
                (Duration::from_secs(secs), format!("{n} seconds"))
            }
            Value::String(s) => (parse_span(&s)?, format!("{s:?}")),
            other => return Err(wrong("seconds or a time span such as \"10min\"", &other)),
        };
        bounded(d, &written).map(Span)
    }
}

/// A list of unit names (`["zabbix-agent.service"]`).
#[derive(Deserialize, Debug)]
#[serde(try_from = "Value")]
struct UnitNames(Vec<String>);

impl TryFrom<Value> for UnitNames {
    type Error = String;
    fn try_from(value: Value) -> Result<UnitNames, String> {
        list(value, "a list of unit names")?
            .into_iter()
            .map(|item| match string(item, "unit names")? {
                unit if is_unit_name(&unit) => Ok(unit),
                unit => Err(format!(
                    "{unit:?} is not a unit name (like \"zabbix-agent.service\")"
                )),
            })
            .collect::<Result<_, _>>()
            .map(UnitNames)
    }
}

/// An absolute directory, or "" for none.
#[derive(Deserialize, Debug)]
#[serde(try_from = "Value")]
struct Dir(Option<std::path::PathBuf>);

impl TryFrom<Value> for Dir {
    type Error = String;
    fn try_from(value: Value) -> Result<Dir, String> {
        match string(
            value,
            "a directory such as \"/var/lib/prometheus/node-exporter\"",
        )? {
            s if s.is_empty() => Ok(Dir(None)),
            s if s.starts_with('/') && !s.contains('\0') => Ok(Dir(Some(s.into()))),
            s => Err(format!("{s:?} is not an absolute path (or \"\" for none)")),
        }
    }
}

/// `[fleet] backend`.
#[derive(Deserialize, Debug)]
#[serde(try_from = "Value")]
struct BackendName(Backend);

impl TryFrom<Value> for BackendName {
    type Error = String;
    fn try_from(value: Value) -> Result<BackendName, String> {
        let s = string(value, "\"none\", \"etcd\" or \"fleetlock\"")?;
        Backend::parse(&s).map(BackendName)
    }
}

/// `[reboot] method`.
#[derive(Deserialize, Debug)]
#[serde(try_from = "Value")]
struct MethodName(RebootMethod);

impl TryFrom<Value> for MethodName {
    type Error = String;
    fn try_from(value: Value) -> Result<MethodName, String> {
        RebootMethod::parse(&string(value, RebootMethod::NAMES)?).map(MethodName)
    }
}

/// A group name or node id.
#[derive(Deserialize, Debug)]
#[serde(try_from = "Value")]
struct Name(String);

impl TryFrom<Value> for Name {
    type Error = String;
    fn try_from(value: Value) -> Result<Name, String> {
        let s = string(value, "a string")?;
        check_name(&s).map(|()| Name(s))
    }
}

/// An http or https URL.
#[derive(Deserialize, Debug)]
#[serde(try_from = "Value")]
struct Url(String);

impl TryFrom<Value> for Url {
    type Error = String;
    fn try_from(value: Value) -> Result<Url, String> {
        let s = string(value, "a URL such as \"https://10.0.0.1:2379\"")?;
        check_url(&s).map(|()| Url(s))
    }
}

/// Maintenance windows (`["Mon..Fri 22:00-05:00"]`), at most 32.
#[derive(Deserialize, Debug)]
#[serde(try_from = "Value")]
struct Windows(Vec<Window>);

impl TryFrom<Value> for Windows {
    type Error = String;
    fn try_from(value: Value) -> Result<Windows, String> {
        let expected = "a list of windows such as [\"Mon..Fri 22:00-05:00\"]";
        at_most(list(value, expected)?, 32, "windows")?
            .into_iter()
            .map(|item| Window::parse(&string(item, "a window as a string")?))
            .collect::<Result<_, _>>()
            .map(Windows)
    }
}

/// A regex or a PromQL expression: a non-empty string of at most 4 KiB.
#[derive(Deserialize, Debug)]
#[serde(try_from = "Value")]
struct Text(String);

impl TryFrom<Value> for Text {
    type Error = String;
    fn try_from(value: Value) -> Result<Text, String> {
        match string(value, "a string")? {
            s if s.trim().is_empty() => Err("empty: remove the key instead".into()),
            s if s.len() > 4096 || s.contains('\0') => {
                Err("longer than 4096 bytes, or holds a NUL".into())
            }
            s => Ok(Text(s)),
        }
    }
}

/// A list of URLs (etcd's client URLs), at most 16.
#[derive(Deserialize, Debug)]
#[serde(try_from = "Value")]
struct Urls(Vec<String>);

impl TryFrom<Value> for Urls {
    type Error = String;
    fn try_from(value: Value) -> Result<Urls, String> {
        let expected = "a list of URLs such as [\"https://10.0.0.1:2379\"]";
        at_most(list(value, expected)?, 16, "endpoints")?
            .into_iter()
            .map(|item| Url::try_from(item).map(|u| u.0))
            .collect::<Result<_, _>>()
            .map(Urls)
    }
}

/// A group's size: 1 to 1,000,000.
#[derive(Deserialize, Debug)]
#[serde(try_from = "Value")]
struct Slots(u64);

impl TryFrom<Value> for Slots {
    type Error = String;
    fn try_from(value: Value) -> Result<Slots, String> {
        let n = integer(&value)?;
        u64::try_from(n)
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .map(Slots)
            .ok_or_else(|| format!("{n} slots: use 1 to 1000000"))
    }
}

/// An absolute file path.
#[derive(Deserialize, Debug)]
#[serde(try_from = "Value")]
struct FilePath(String);

impl TryFrom<Value> for FilePath {
    type Error = String;
    fn try_from(value: Value) -> Result<FilePath, String> {
        match string(value, "a file path")? {
            s if s.starts_with('/') && !s.contains('\0') && s.len() <= 4096 => Ok(FilePath(s)),
            s => Err(format!("{s:?} is not an absolute path")),
        }
    }
}

/// A `[table]` of keys `T` knows; anything else where a table belongs is
/// an error that says what was found. (Not through `Value`: the keys
/// inside keep their own spans, hence their own lines.)
#[derive(Debug)]
struct Table<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Table<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Table<T>, D::Error> {
        deserializer.deserialize_any(TableVisitor(std::marker::PhantomData))
    }
}

struct TableVisitor<T>(std::marker::PhantomData<T>);

impl<T> TableVisitor<T> {
    fn found<E: de::Error>(kind: &str) -> E {
        E::custom(format!("expected a table, found a {kind}"))
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for TableVisitor<T> {
    type Value = Table<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a table")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Table<T>, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Table)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Table<T>, E> {
        Err(Self::found("boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Table<T>, E> {
        Err(Self::found("integer"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Table<T>, E> {
        Err(Self::found("integer"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Table<T>, E> {
        Err(Self::found("float"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Table<T>, E> {
        Err(Self::found("string"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Table<T>, A::Error> {
        Err(Self::found("array"))
    }
}

// ---------------------------------------------------------------------------
// Errors, placed at their file, line and key

/// A toml error as one line: the line from its span, and the key from the
/// document's own spans (the key whose name or value holds the error).
fn located(file: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let offset = e.span().map(|s| s.start);
    let line = offset.map(|o| line_of(text, o));
    let found = offset.and_then(|o| {
        let doc = DeTable::parse(text).ok()?;
        key_at(doc.get_ref(), o, &[])
    });
    let (key, message) = match found {
        // The span is a key's own: a key no fragment has.
        Some(Found { path, on_key: true }) => {
            let message = match path.split_last() {
                Some((_, [])) | None => format!("unknown key (known: {KNOWN_KEYS})"),
                Some((_, table)) => format!("unknown key in [{}]", table.join(".")),
            };
            (Some(path.join(".")), message)
        }
        Some(Found { path, .. }) => (Some(path.join(".")), said(e)),
        // Not even TOML: the key written on that line, if any.
        None => (line.and_then(|l| key_on_line(text, l)), said(e)),
    };
    ConfigError {
        file: file.to_path_buf(),
        line,
        key,
        message,
        unreadable: false,
    }
}

/// Where in the document an offset is.
struct Found {
    /// The keys down to it (`["hooks", "check_timeout"]`).
    path: Vec<String>,
    /// On the key itself, not its value.
    on_key: bool,
}

/// The deepest key whose name or value holds `offset`.
fn key_at(table: &DeTable, offset: usize, above: &[String]) -> Option<Found> {
    for (key, value) in table {
        let mut path = above.to_vec();
        path.push(key.get_ref().to_string());
        if key.span().contains(&offset) {
            return Some(Found { path, on_key: true });
        }
        // A table's own span may not cover its keys (a [header] section).
        if let DeValue::Table(inner) = value.get_ref() {
            if let Some(found) = key_at(inner, offset, &path) {
                return Some(found);
            }
        }
        if value.span().contains(&offset) {
            return Some(Found {
                path,
                on_key: false,
            });
        }
    }
    None
}

/// toml's message as one line; an integer beyond TOML's 64 bits, which
/// `toml::Value` refuses in serde's words, as umm has always said it.
fn said(e: &toml::de::Error) -> String {
    let message = one_line(e.message());
    let beyond_64_bits = message == "u64 value was too large"
        || (message.starts_with("invalid type: integer `")
            && message.ends_with(", expected any valid TOML value"));
    if beyond_64_bits {
        "number too large".into()
    } else {
        message
    }
}

/// A message of several lines as one.
fn one_line(message: &str) -> String {
    message
        .trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a TOML file says of `enabled`, and on which line, when the file is
/// TOML at all and `enabled` a boolean; whatever else it holds (unknown
/// keys, bad values) is not looked at. For a configuration that is broken
/// as a whole: a file that says `enabled = false` still disables umm.
pub(super) fn enabled_in(text: &str) -> Option<(bool, usize)> {
    #[derive(Deserialize)]
    struct EnabledOnly {
        enabled: Option<Spanned<bool>>,
    }
    let only: EnabledOnly = toml::from_str(text).ok()?;
    only.enabled
        .map(|e| (*e.get_ref(), line_of(text, e.span().start)))
}

/// The line (from 1) that byte `offset` is on.
fn line_of(text: &str, offset: usize) -> usize {
    let before = text.as_bytes().get(..offset).unwrap_or(text.as_bytes());
    before.iter().filter(|b| **b == b'\n').count() + 1
}

/// The key written on `line` (`key = ...`), for a syntax error.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let (key, _) = l.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('#')).then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::config::keys::{tables, KEYS};

    /// Stops a deserialization once the field names are known.
    #[derive(Debug)]
    struct Stop;

    impl fmt::Display for Stop {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("stop")
        }
    }

    impl std::error::Error for Stop {}

    impl de::Error for Stop {
        fn custom<T: fmt::Display>(_: T) -> Stop {
            Stop
        }
    }

    /// serde's derive hands a struct's field names to `deserialize_struct`:
    /// this deserializer keeps them and stops there.
    struct FieldNames<'a>(&'a mut Vec<&'static str>);

    impl<'de> Deserializer<'de> for FieldNames<'_> {
        type Error = Stop;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.extend_from_slice(fields);
            Err(Stop)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }

    /// The keys a fragment accepts.
    fn fields<T: for<'de> Deserialize<'de>>() -> Vec<&'static str> {
        let mut names = Vec::new();
        let _ = T::deserialize(FieldNames(&mut names));
        names
    }

    /// The keys the parser accepts are the keys `keys::KEYS` documents.
    #[test]
    fn every_key_the_parser_accepts_is_documented_and_no_other() {
        let tables_read: &[(&str, Vec<&str>)] = &[
            ("hooks", fields::<HooksFragment>()),
            ("grub", fields::<GrubFragment>()),
            ("metrics", fields::<MetricsFragment>()),
            ("fleet", fields::<FleetFragment>()),
            ("reboot", fields::<RebootFragment>()),
            ("rolling", fields::<RollingFragment>()),
        ];
        let mut accepted: Vec<(&str, &str)> = Vec::new();
        for name in fields::<Fragment>() {
            if tables_read.iter().all(|(t, _)| *t != name) {
                accepted.push(("", name));
            }
        }
        for (table, names) in tables_read {
            assert!(
                fields::<Fragment>().contains(table),
                "[{table}] is not read"
            );
            accepted.extend(names.iter().map(|n| (*table, *n)));
        }
        let mut documented: Vec<(&str, &str)> = KEYS.iter().map(|k| (k.table, k.name)).collect();
        accepted.sort();
        documented.sort();
        assert_eq!(
            accepted, documented,
            "the keys umm.toml accepts (left; a new [table] goes in `tables_read`) and the \
             keys src/sys/config/keys.rs documents (right)"
        );
    }

    /// The error for an unknown top-level key lists the documented ones.
    #[test]
    fn the_unknown_key_error_names_the_documented_keys() {
        let mut known: Vec<String> = KEYS
            .iter()
            .filter(|k| k.table.is_empty())
            .map(|k| k.name.to_string())
            .collect();
        known.extend(
            tables()
                .iter()
                .filter(|t| !t.is_empty())
                .map(|t| format!("[{t}]")),
        );
        assert_eq!(KNOWN_KEYS, known.join(", "));
    }
}
