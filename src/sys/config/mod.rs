//! Configuration: `/etc/umm/umm.toml`, then the drop-ins in
//! `/etc/umm/umm.toml.d/*.toml` in lexical order (a later file overrides the
//! keys it sets), or the original tool's `/etc/umm.conf` when no umm.toml
//! exists; read into `model::settings::Settings`.
//!
//! Each TOML file is one fragment (`fragment`): serde structures that say
//! what a file may contain (an unknown key is an error), whose values are
//! checked as they are read (spans within 1 s..30 d, unit names), and whose
//! errors name the file, the line and the key. The fragments are merged
//! over the defaults in file order (`load`): the settings in force. The
//! original tool's shell-style file has its own reader (`legacy`). Every
//! key, with its default and meaning, is listed once in `keys`, which the
//! man page and the docs are generated from.

use std::fmt;
use std::path::PathBuf;

mod fragment;
pub mod keys;
mod legacy;
mod load;

pub use fragment::parse_toml;
pub use legacy::parse_legacy;
pub use load::{load, load_at_boot, load_logged, load_or_defaults, read_last_good, still_disabled};

/// Where the settings came from, for `umm status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// Files read, in the order applied.
    pub files: Vec<PathBuf>,
    /// The original tool's /etc/umm.conf was read (no umm.toml exists).
    pub legacy: bool,
    /// The file and line that set `enabled`, if any did.
    pub enabled_from: Option<(PathBuf, usize)>,
    /// The configuration is broken, and a file that parses on its own says
    /// `enabled = false` here (file, line): that holds over the fallback.
    pub disabled_by: Option<(PathBuf, usize)>,
    /// The file and line that last set each `[fleet]` key, to place an
    /// error found once every file is merged (`FleetSettings::validate`).
    pub fleet_keys: Vec<(&'static str, PathBuf, usize)>,
    /// The same for `[rolling]`.
    pub rolling_keys: Vec<(&'static str, PathBuf, usize)>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::settings::{LastGood, Settings};
    use crate::sys::paths::{self, Root};
    use rstest::rstest;
    use std::time::Duration;

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
    fn the_metrics_directory_is_node_exporters_unless_set_or_emptied() {
        let (_d, root) = root_with(&[]);
        let dir = load(&root).unwrap().0.metrics_dir.unwrap();
        assert_eq!(
            dir,
            std::path::Path::new("/var/lib/prometheus/node-exporter")
        );
        let (_d, root) = root_with(&[(
            "/etc/umm/umm.toml",
            "[metrics]\ntextfile_dir = \"/srv/prom\"\n",
        )]);
        let dir = load(&root).unwrap().0.metrics_dir.unwrap();
        assert_eq!(dir, std::path::Path::new("/srv/prom"));
        let (_d, root) = root_with(&[("/etc/umm/umm.toml", "[metrics]\ntextfile_dir = \"\"\n")]);
        assert_eq!(load(&root).unwrap().0.metrics_dir, None);
    }

    #[test]
    fn fleet_table_reads_and_merges_across_files() {
        let (_d, root) = root_with(&[
            (
                "/etc/umm/umm.toml",
                "[fleet]\nbackend = \"etcd\"\ngroup = \"ctl\"\nendpoints = [\"http://10.0.0.1:2379\"]\n",
            ),
            (
                "/etc/umm/umm.toml.d/60-fleet.toml",
                "[fleet]\nid = \"node-a\"\nslots = 2\ntimeout = \"5s\"\n",
            ),
        ]);
        let (s, _) = load(&root).unwrap();
        assert_eq!(s.fleet.backend, crate::model::fleet::Backend::Etcd);
        assert_eq!(s.fleet.group, "ctl");
        assert_eq!(s.fleet.id.as_deref(), Some("node-a"));
        assert_eq!(s.fleet.slots, 2);
        assert_eq!(s.fleet.timeout, Duration::from_secs(5));
        let (_d, root) = root_with(&[]);
        let (s, _) = load(&root).unwrap();
        assert_eq!(s.fleet, crate::model::fleet::FleetSettings::default());
    }

    #[rstest]
    #[case::unknown_backend("[fleet]\nbackend = \"zk\"\n", 2, "fleet.backend", "unknown back-end")]
    #[case::unknown_key(
        "[fleet]\nbackend = \"etcd\"\nendpoint = 1\n",
        3,
        "fleet.endpoint",
        "unknown key"
    )]
    #[case::bad_url(
        "[fleet]\n\nendpoints = [\"10.0.0.1:2379\"]\n",
        3,
        "fleet.endpoints",
        "http"
    )]
    #[case::zero_slots("[fleet]\nslots = 0\n", 2, "fleet.slots", "use 1 to")]
    #[case::relative_file("[fleet]\nkey_file = \"k.pem\"\n", 2, "fleet.key_file", "absolute")]
    #[case::no_endpoints("[fleet]\nbackend = \"etcd\"\n", 2, "fleet.endpoints", "is empty")]
    #[case::url_for_etcd(
        "[fleet]\nbackend = \"etcd\"\nendpoints = [\"http://h:1\"]\nurl = \"http://h:2\"\n",
        4,
        "fleet.url",
        "fleetlock"
    )]
    fn fleet_errors_name_file_line_and_key(
        #[case] text: &str,
        #[case] line: usize,
        #[case] key: &str,
        #[case] words: &str,
    ) {
        let (_d, root) = root_with(&[("/etc/umm/umm.toml", text)]);
        let e = load(&root).unwrap_err();
        assert_eq!(e.line, Some(line), "{e}");
        assert_eq!(e.key.as_deref(), Some(key), "{e}");
        let line_text = e.to_string();
        assert!(line_text.contains(words), "{line_text}");
        assert!(line_text.contains("umm.toml:"), "{line_text}");
        assert_eq!(line_text.lines().count(), 1);
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
    #[case::beyond_64_bits(
        "reboot_count = 9223372036854775808\n",
        1,
        "reboot_count",
        "number too large"
    )]
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
    #[case::relative_metrics_dir(
        "[metrics]\ntextfile_dir = \"prom\"\n",
        2,
        "metrics.textfile_dir",
        "not an absolute path"
    )]
    #[case::not_a_table("hooks = 5\n", 1, "hooks", "expected a table, found a integer")]
    #[case::in_a_dotted_table("grub.x = 1\n", 1, "grub.x", "unknown key in [grub]")]
    #[case::a_datetime(
        "counter_reset_time = 1979-05-27T07:32:00Z\n",
        1,
        "counter_reset_time",
        "found a datetime"
    )]
    #[case::a_list_over_lines(
        "keep_units = [\n  \"a.service\",\n  \"bad unit\",\n]\n",
        1,
        "keep_units",
        "not a unit name"
    )]
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

    /// `[fleet]` is part of the last good configuration: a boot (or the
    /// retry timer) that finds umm.toml broken keeps the coordinator, so
    /// a pending release still reaches it.
    #[test]
    fn last_good_keeps_the_fleet_settings() {
        use crate::model::fleet::Backend;
        let fleet = "[fleet]\nbackend = \"etcd\"\ngroup = \"g\"\nid = \"n1\"\n\
                     endpoints = [\"http://10.0.0.1:2379\", \"https://10.0.0.2:2379\"]\n\
                     slots = 2\ntimeout = \"90s\"\nca_file = \"/etc/umm/ca.pem\"\n";
        let (_d, root) = root_with(&[("/etc/umm/umm.toml.d/60-fleet.toml", fleet)]);
        let (loaded, sources) = load(&root).unwrap();
        assert_eq!(loaded.fleet.backend, Backend::Etcd);
        let good = LastGood::new(&loaded, &sources.files, 30);
        std::fs::create_dir_all(root.path("/var/lib/umm")).unwrap();
        std::fs::write(
            root.path(paths::LAST_GOOD_CONFIG),
            serde_json::to_vec(&good).unwrap(),
        )
        .unwrap();
        std::fs::write(root.path(paths::CONFIG), "enabled = \n").unwrap();
        let (settings, _, in_use, err) = load_at_boot(&root);
        assert!(err.is_some());
        assert_eq!(in_use, InUse::LastGood(30));
        assert_eq!(settings.fleet, loaded.fleet);
        assert_eq!(load_or_defaults(&root).fleet, loaded.fleet);

        // A record of an earlier version has no fleet: none is used.
        let mut value = serde_json::to_value(&good).unwrap();
        value.as_object_mut().unwrap().remove("fleet");
        let old: LastGood = serde_json::from_value(value).unwrap();
        assert_eq!(old.settings().fleet.backend, Backend::None);
        // An edited record is checked again: a bad value means no fleet.
        let mut edited = good.clone();
        if let Some(f) = edited.fleet.as_mut() {
            f.endpoints = vec!["ftp://x".into()];
        }
        assert_eq!(edited.settings().fleet.backend, Backend::None);
        let mut edited = good.clone();
        if let Some(f) = edited.fleet.as_mut() {
            f.timeout = u64::MAX;
        }
        assert_eq!(
            edited.settings().fleet.timeout,
            crate::model::timefmt::MAX_SPAN
        );
        // No back-end, or a URL with user information: nothing recorded.
        assert_eq!(LastGood::new(&Settings::default(), &[], 1).fleet, None);
        let mut with_user = loaded.clone();
        with_user.fleet.endpoints = vec!["http://u:secret@10.0.0.1:2379".into()];
        let recorded = LastGood::new(&with_user, &[], 1);
        assert_eq!(recorded.fleet, None);
        assert!(!serde_json::to_string(&recorded).unwrap().contains("secret"));
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
