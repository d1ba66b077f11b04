//! One umm.toml file (the main file or a drop-in), as serde structures:
//! what a file may say (`Fragment`; an unknown key is an error), each value
//! checked as it is read, and every error one line naming the file, the
//! line and the key. `apply_toml_text` merges a file over the settings so
//! far: the keys it sets replace theirs.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

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

impl RollingFragment {
    fn apply(self, file: &Path, text: &str, r: &mut RollingSettings, sources: &mut Sources) {
        let mut at = |key: &'static str, start: usize| {
            sources.rolling_keys.retain(|(k, _, _)| *k != key);
            sources
                .rolling_keys
                .push((key, file.to_path_buf(), line_of(text, start)));
        };
        if let Some(v) = self.windows {
            at("windows", v.span().start);
            r.windows = v.into_inner().0;
        }
        if let Some(v) = self.gate_url {
            at("gate_url", v.span().start);
            r.gate_url = Some(v.into_inner().0);
        }
        if let Some(v) = self.gate_alerts {
            at("gate_alerts", v.span().start);
            r.gate_alerts = Some(v.into_inner().0);
        }
        if let Some(v) = self.gate_expr {
            at("gate_expr", v.span().start);
            r.gate_expr = Some(v.into_inner().0);
        }
        if let Some(v) = self.gate_timeout {
            at("gate_timeout", v.span().start);
            r.gate_timeout = v.into_inner().0;
        }
    }
}

/// The merged `[rolling]` settings checked as a whole, placed as
/// `check_fleet` places its errors.
pub(super) fn check_rolling(settings: &Settings, sources: &Sources) -> Result<(), ConfigError> {
    let Err((key, message)) = settings.rolling.validate() else {
        return Ok(());
    };
    let placed = sources.rolling_keys.iter().find(|(k, _, _)| *k == key);
    let (file, line) = match placed.or_else(|| sources.rolling_keys.last()) {
        Some((_, file, line)) => (file.clone(), Some(*line)),
        None => (sources.files.last().cloned().unwrap_or_default(), None),
    };
    Err(ConfigError {
        file,
        line,
        key: Some(format!("rolling.{key}")),
        message,
        unreadable: false,
    })
}

impl FleetFragment {
    fn apply(self, file: &Path, text: &str, f: &mut FleetSettings, sources: &mut Sources) {
        let mut at = |key: &'static str, start: usize| {
            sources.fleet_keys.retain(|(k, _, _)| *k != key);
            sources
                .fleet_keys
                .push((key, file.to_path_buf(), line_of(text, start)));
        };
        if let Some(v) = self.backend {
            at("backend", v.span().start);
            f.backend = v.into_inner().0;
        }
        if let Some(v) = self.group {
            at("group", v.span().start);
            f.group = v.into_inner().0;
        }
        if let Some(v) = self.id {
            at("id", v.span().start);
            f.id = Some(v.into_inner().0);
        }
        if let Some(v) = self.endpoints {
            at("endpoints", v.span().start);
            f.endpoints = v.into_inner().0;
        }
        if let Some(v) = self.url {
            at("url", v.span().start);
            f.url = Some(v.into_inner().0);
        }
        if let Some(v) = self.slots {
            at("slots", v.span().start);
            f.slots = v.into_inner().0;
        }
        if let Some(v) = self.ca_file {
            at("ca_file", v.span().start);
            f.ca_file = Some(v.into_inner().0.into());
        }
        if let Some(v) = self.cert_file {
            at("cert_file", v.span().start);
            f.cert_file = Some(v.into_inner().0.into());
        }
        if let Some(v) = self.key_file {
            at("key_file", v.span().start);
            f.key_file = Some(v.into_inner().0.into());
        }
        if let Some(v) = self.timeout {
            at("timeout", v.span().start);
            f.timeout = v.into_inner().0;
        }
    }
}

/// The merged `[fleet]` settings checked as a whole: an error is placed
/// at the file and line that set the key at fault (or the last file read).
pub(super) fn check_fleet(settings: &Settings, sources: &Sources) -> Result<(), ConfigError> {
    let Err(e) = settings.fleet.validate() else {
        return Ok(());
    };
    let placed = sources.fleet_keys.iter().find(|(k, _, _)| *k == e.key);
    let (file, line) = match placed.or_else(|| sources.fleet_keys.last()) {
        Some((_, file, line)) => (file.clone(), Some(*line)),
        None => (sources.files.last().cloned().unwrap_or_default(), None),
    };
    Err(ConfigError {
        file,
        line,
        key: Some(format!("fleet.{}", e.key)),
        message: e.message,
        unreadable: false,
    })
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
// Values, checked as they are read

/// Any TOML value, with what the checks need of it: a value of the wrong
/// type is an error that says what was found.
enum Raw {
    Bool(bool),
    /// TOML integers are 64-bit; a larger literal is kept to say so.
    Int(i128),
    Float,
    Str(String),
    Array(Vec<Raw>),
    Datetime,
    Table,
}

impl Raw {
    /// What a value of this kind is called in messages (as toml names it).
    fn kind(&self) -> &'static str {
        match self {
            Raw::Bool(_) => "boolean",
            Raw::Int(_) => "integer",
            Raw::Float => "float",
            Raw::Str(_) => "string",
            Raw::Array(_) => "array",
            Raw::Datetime => "datetime",
            Raw::Table => "table",
        }
    }

    /// A whole number that fits TOML's (and umm's) 64 bits.
    fn integer(&self) -> Result<i64, String> {
        match self {
            Raw::Int(n) => i64::try_from(*n).map_err(|_| "number too large".to_string()),
            other => Err(format!("expected a whole number, found a {}", other.kind())),
        }
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Raw, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Raw, E> {
        Ok(Raw::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Raw, E> {
        Ok(Raw::Float)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Raw::Array(items))
    }

    /// A table, or a datetime (which toml hands over as a map with one
    /// private key).
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut raw = Raw::Table;
        while let Some(key) = map.next_key::<String>()? {
            if key.contains("toml") && key.contains("datetime") {
                raw = Raw::Datetime;
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(raw)
    }
}

/// `true` or `false`.
#[derive(Debug)]
struct Flag(bool);

impl TryFrom<Raw> for Flag {
    type Error = String;
    fn try_from(raw: Raw) -> Result<Flag, String> {
        match raw {
            Raw::Bool(b) => Ok(Flag(b)),
            other => Err(format!("expected true or false, found a {}", other.kind())),
        }
    }
}

/// A count: 0 or more.
#[derive(Debug)]
struct Count(u32);

impl TryFrom<Raw> for Count {
    type Error = String;
    fn try_from(raw: Raw) -> Result<Count, String> {
        let n = raw.integer()?;
        u32::try_from(n)
            .map(Count)
            .map_err(|_| format!("{n} is not a count (use 0 or more)"))
    }
}

/// Seconds, or a time span such as "10min", within the one rule for spans
/// (`timefmt::bounded`: 1 s to 30 d) that the command-line flags follow too.
#[derive(Debug)]
struct Span(Duration);

impl TryFrom<Raw> for Span {
    type Error = String;
    fn try_from(raw: Raw) -> Result<Span, String> {
        let (d, written) = match &raw {
            Raw::Int(_) => {
                let n = raw.integer()?;
                let d = u64::try_from(n)
                    .map(Duration::from_secs)
                    .map_err(|_| format!("{n} is negative"))?;
                (d, format!("{n} seconds"))
            }
            Raw::Str(s) => (parse_span(s)?, format!("{s:?}")),
            other => {
                return Err(format!(
                    "expected seconds or a time span such as \"10min\", found a {}",
                    other.kind()
                ))
            }
        };
        bounded(d, &written).map(Span)
    }
}

/// A list of unit names (`["zabbix-agent.service"]`).
#[derive(Debug)]
struct UnitNames(Vec<String>);

impl TryFrom<Raw> for UnitNames {
    type Error = String;
    fn try_from(raw: Raw) -> Result<UnitNames, String> {
        let Raw::Array(items) = raw else {
            return Err(format!(
                "expected a list of unit names, found a {}",
                raw.kind()
            ));
        };
        items
            .into_iter()
            .map(|item| match item {
                Raw::Str(unit) if is_unit_name(&unit) => Ok(unit),
                Raw::Str(unit) => Err(format!(
                    "{unit:?} is not a unit name (like \"zabbix-agent.service\")"
                )),
                other => Err(format!("expected unit names, found a {}", other.kind())),
            })
            .collect::<Result<_, _>>()
            .map(UnitNames)
    }
}

/// An absolute directory, or "" for none.
#[derive(Debug)]
struct Dir(Option<std::path::PathBuf>);

impl TryFrom<Raw> for Dir {
    type Error = String;
    fn try_from(raw: Raw) -> Result<Dir, String> {
        match raw {
            Raw::Str(s) if s.is_empty() => Ok(Dir(None)),
            Raw::Str(s) if s.starts_with('/') && !s.contains('\0') => Ok(Dir(Some(s.into()))),
            Raw::Str(s) => Err(format!("{s:?} is not an absolute path (or \"\" for none)")),
            other => Err(format!(
                "expected a directory such as \"/var/lib/prometheus/node-exporter\", found a {}",
                other.kind()
            )),
        }
    }
}

/// A `[table]` of keys `T` knows; anything else where a table belongs is
/// an error that says what was found.
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

/// The value types read through `Raw`: an error is a message toml places
/// at the value (its span, hence its line).
macro_rules! from_raw {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$t, D::Error> {
                <$t>::try_from(Raw::deserialize(deserializer)?).map_err(de::Error::custom)
            }
        }
    )*};
}

/// `[fleet] backend`.
#[derive(Debug)]
struct BackendName(Backend);

impl TryFrom<Raw> for BackendName {
    type Error = String;
    fn try_from(raw: Raw) -> Result<BackendName, String> {
        match raw {
            Raw::Str(s) => Backend::parse(&s).map(BackendName),
            other => Err(format!(
                "expected \"none\", \"etcd\" or \"fleetlock\", found a {}",
                other.kind()
            )),
        }
    }
}

/// `[reboot] method`.
#[derive(Debug)]
struct MethodName(RebootMethod);

impl TryFrom<Raw> for MethodName {
    type Error = String;
    fn try_from(raw: Raw) -> Result<MethodName, String> {
        match raw {
            Raw::Str(s) => RebootMethod::parse(&s).map(MethodName),
            other => Err(format!(
                "expected {}, found a {}",
                RebootMethod::NAMES,
                other.kind()
            )),
        }
    }
}

/// A group name or node id.
#[derive(Debug)]
struct Name(String);

impl TryFrom<Raw> for Name {
    type Error = String;
    fn try_from(raw: Raw) -> Result<Name, String> {
        match raw {
            Raw::Str(s) => check_name(&s).map(|()| Name(s)),
            other => Err(format!("expected a string, found a {}", other.kind())),
        }
    }
}

/// An http or https URL.
#[derive(Debug)]
struct Url(String);

impl TryFrom<Raw> for Url {
    type Error = String;
    fn try_from(raw: Raw) -> Result<Url, String> {
        match raw {
            Raw::Str(s) => check_url(&s).map(|()| Url(s)),
            other => Err(format!(
                "expected a URL such as \"https://10.0.0.1:2379\", found a {}",
                other.kind()
            )),
        }
    }
}

/// Maintenance windows (`["Mon..Fri 22:00-05:00"]`), at most 32.
#[derive(Debug)]
struct Windows(Vec<Window>);

impl TryFrom<Raw> for Windows {
    type Error = String;
    fn try_from(raw: Raw) -> Result<Windows, String> {
        let Raw::Array(items) = raw else {
            return Err(format!(
                "expected a list of windows such as [\"Mon..Fri 22:00-05:00\"], found a {}",
                raw.kind()
            ));
        };
        if items.len() > 32 {
            return Err(format!("{} windows: at most 32", items.len()));
        }
        items
            .into_iter()
            .map(|item| match item {
                Raw::Str(s) => Window::parse(&s),
                other => Err(format!(
                    "expected a window as a string, found a {}",
                    other.kind()
                )),
            })
            .collect::<Result<_, _>>()
            .map(Windows)
    }
}

/// A regex or a PromQL expression: a non-empty string of at most 4 KiB.
#[derive(Debug)]
struct Text(String);

impl TryFrom<Raw> for Text {
    type Error = String;
    fn try_from(raw: Raw) -> Result<Text, String> {
        match raw {
            Raw::Str(s) if s.trim().is_empty() => Err("empty: remove the key instead".into()),
            Raw::Str(s) if s.len() > 4096 || s.contains('\0') => {
                Err("longer than 4096 bytes, or holds a NUL".into())
            }
            Raw::Str(s) => Ok(Text(s)),
            other => Err(format!("expected a string, found a {}", other.kind())),
        }
    }
}

/// A list of URLs (etcd's client URLs), at most 16.
#[derive(Debug)]
struct Urls(Vec<String>);

impl TryFrom<Raw> for Urls {
    type Error = String;
    fn try_from(raw: Raw) -> Result<Urls, String> {
        let Raw::Array(items) = raw else {
            return Err(format!(
                "expected a list of URLs such as [\"https://10.0.0.1:2379\"], found a {}",
                raw.kind()
            ));
        };
        if items.len() > 16 {
            return Err(format!("{} endpoints: at most 16", items.len()));
        }
        items
            .into_iter()
            .map(|item| Url::try_from(item).map(|u| u.0))
            .collect::<Result<_, _>>()
            .map(Urls)
    }
}

/// A group's size: 1 to 1,000,000.
#[derive(Debug)]
struct Slots(u64);

impl TryFrom<Raw> for Slots {
    type Error = String;
    fn try_from(raw: Raw) -> Result<Slots, String> {
        let n = raw.integer()?;
        u64::try_from(n)
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .map(Slots)
            .ok_or_else(|| format!("{n} slots: use 1 to 1000000"))
    }
}

/// An absolute file path.
#[derive(Debug)]
struct FilePath(String);

impl TryFrom<Raw> for FilePath {
    type Error = String;
    fn try_from(raw: Raw) -> Result<FilePath, String> {
        match raw {
            Raw::Str(s) if s.starts_with('/') && !s.contains('\0') && s.len() <= 4096 => {
                Ok(FilePath(s))
            }
            Raw::Str(s) => Err(format!("{s:?} is not an absolute path")),
            other => Err(format!("expected a file path, found a {}", other.kind())),
        }
    }
}

from_raw!(
    Flag,
    Count,
    Span,
    UnitNames,
    BackendName,
    MethodName,
    Name,
    Url,
    Urls,
    Slots,
    FilePath,
    Dir,
    Windows,
    Text
);

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
        Some(Found { path, .. }) => (Some(path.join(".")), one_line(e.message())),
        // Not even TOML: the key written on that line, if any.
        None => (
            line.and_then(|l| key_on_line(text, l)),
            one_line(e.message()),
        ),
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

/// A message of several lines as one.
fn one_line(message: &str) -> String {
    message
        .trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The line (from 1) that byte `offset` is on.
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
