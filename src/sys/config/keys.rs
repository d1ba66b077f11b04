//! Every key of umm.toml, in one list: its table, name, default and
//! meaning. It is the one source of what the keys are documented as:
//! tools/gen writes from it the man page's CONFIGURATION section,
//! docs/configuration.md's table, the README's example and the shipped
//! packaging/umm.toml. The tests here check it against the defaults
//! (`Settings::default()`), and `fragment`'s tests against the keys the
//! parser accepts, so that a key cannot be added, dropped or changed in
//! one place only.

/// What a key is when no file sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDefault {
    /// The default, written as TOML.
    Value(&'static str),
    /// No value stands for the default: `means` says what applies, and
    /// `example` (TOML) is what packaging/umm.toml shows, commented out.
    Unset {
        means: &'static str,
        example: &'static str,
    },
}

/// One key of umm.toml.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// Its table (`""`: the top level).
    pub table: &'static str,
    pub name: &'static str,
    pub default: KeyDefault,
    /// One line: the README's example and packaging/umm.toml.
    pub summary: &'static str,
    /// In full: the man page and docs/configuration.md. `code` in backquotes.
    pub about: &'static str,
}

impl Key {
    /// `reboot_count`, `[fleet] backend`.
    pub fn label(&self) -> String {
        if self.table.is_empty() {
            self.name.to_string()
        } else {
            format!("[{}] {}", self.table, self.name)
        }
    }
}

const fn key(
    table: &'static str,
    name: &'static str,
    default: &'static str,
    summary: &'static str,
    about: &'static str,
) -> Key {
    Key {
        table,
        name,
        default: KeyDefault::Value(default),
        summary,
        about,
    }
}

/// A key whose default no value says.
const fn unset(
    table: &'static str,
    name: &'static str,
    (means, example): (&'static str, &'static str),
    summary: &'static str,
    about: &'static str,
) -> Key {
    Key {
        table,
        name,
        default: KeyDefault::Unset { means, example },
        summary,
        about,
    }
}

/// Every key, table by table, in the order the docs list them.
pub const KEYS: &[Key] = &[
    key(
        "",
        "enabled",
        "true",
        "The site's policy: false turns umm off, and `umm enable` cannot override it.",
        "The site's policy: `false` turns umm off (nothing is counted or enforced, boots are \
         never delayed, `umm on` is refused), and `umm enable` cannot override it; `umm enable` \
         and `umm disable` are the operator's switch while this is `true`.",
    ),
    key(
        "",
        "reboot_count",
        "2",
        "Unclean boots in a row that are tolerated; the boot that finds more stops in maintenance.",
        "Unclean boots in a row that are tolerated: the boot that finds more than this many \
         stops in maintenance (reason `crash-loop`).",
    ),
    key(
        "",
        "counter_reset_time",
        "\"10min\"",
        "Uptime after which a boot counts as good and the counter goes back to 0.",
        "Uptime after which a boot counts as good and the counter of unclean boots goes back \
         to 0 (measured on the boot's monotonic clock, never wall-clock time).",
    ),
    key(
        "",
        "keep_units",
        "[]",
        "Extra units a maintenance boot starts, besides networking, sshd and console logins.",
        "Extra units a maintenance boot starts, added to the built-in set (networking, sshd, \
         console logins, logind, dbus), e.g. `[\"zabbix-agent.service\"]`.",
    ),
    key(
        "",
        "command_timeout",
        "\"6h\"",
        "Bound on the command given to `umm on`; then its process group is killed.",
        "Bound on the command given to `umm on`; when it runs longer, its process group is \
         killed.",
    ),
    key(
        "hooks",
        "timeout",
        "\"5min\"",
        "Bound on each hook, for every phase that does not set its own below.",
        "Bound on each hook run, for every phase that does not set its own; then the hook's \
         process group is killed and the hook counts as failed.",
    ),
    key(
        "hooks",
        "check_timeout",
        "\"5min\"",
        "Bound on each hook in /etc/umm/check.d (checks that may veto `umm on`).",
        "Bound on each hook in `/etc/umm/check.d`.",
    ),
    key(
        "hooks",
        "pre_on_timeout",
        "\"5min\"",
        "Bound on each hook in /etc/umm/pre-on.d (run before rebooting into maintenance).",
        "Bound on each hook in `/etc/umm/pre-on.d`.",
    ),
    key(
        "hooks",
        "on_timeout",
        "\"5min\"",
        "Bound on each hook in /etc/umm/on.d (run once maintenance is reached).",
        "Bound on each hook in `/etc/umm/on.d`.",
    ),
    key(
        "hooks",
        "pre_off_timeout",
        "\"5min\"",
        "Bound on each hook in /etc/umm/pre-off.d (run before leaving maintenance).",
        "Bound on each hook in `/etc/umm/pre-off.d`.",
    ),
    key(
        "hooks",
        "off_timeout",
        "\"5min\"",
        "Bound on each hook in /etc/umm/off.d (run after leaving maintenance).",
        "Bound on each hook in `/etc/umm/off.d`.",
    ),
    key(
        "grub",
        "entries_when_disabled",
        "false",
        "Keep the GRUB menu entries for maintenance mode while umm is disabled.",
        "Keep the GRUB menu entries for maintenance mode while umm is disabled.",
    ),
    key(
        "metrics",
        "textfile_dir",
        "\"/var/lib/prometheus/node-exporter\"",
        "Where umm writes umm.prom for node_exporter; \"\" turns the metrics off.",
        "node_exporter's textfile collector directory: umm writes `umm.prom` there at every \
         state change and at boot, only while the directory exists; `\"\"` turns the metrics \
         off.",
    ),
    key(
        "reboot",
        "method",
        "\"auto\"",
        "How `umm on` and `umm off reboot` reboot: \"auto\" (kexec when safe), \"kexec\", \"firmware\".",
        "How `umm on` and `umm off reboot` reboot. `\"auto\"`: by kexec (the default boot \
         entry's kernel and initramfs, no firmware pass) when every check allows it, through \
         the firmware otherwise, saying why in one line; `\"kexec\"`: the same, and a \
         fallback is a warning; `\"firmware\"`: always through the firmware and the boot \
         loader (hardware whose devices kexec does not reset). `--kexec` and `--firmware` \
         override it once. A crash loop is never left by kexec.",
    ),
    key(
        "fleet",
        "backend",
        "\"none\"",
        "Fleet coordination: \"none\" (this node decides alone), \"etcd\" or \"fleetlock\".",
        "Fleet coordination: `\"none\"` (this node decides alone, nothing is ever sent), \
         `\"etcd\"` (a semaphore in etcd v3, stored as airlock stores it) or `\"fleetlock\"` \
         (a FleetLock server such as airlock). With a back-end, `umm on` takes a slot of the \
         group before the request is saved, and the node gives it back once it is back in \
         service.",
    ),
    key(
        "fleet",
        "group",
        "\"default\"",
        "The group: at most its number of slots of its nodes are in maintenance at once.",
        "The group: at most its number of slots of its nodes are in maintenance at once \
         (airlock's default group is `default` too).",
    ),
    unset(
        "fleet",
        "id",
        ("the content of `/etc/machine-id`", "\"node-a\""),
        "This node's id in the group (default: the content of /etc/machine-id).",
        "This node's id in the group.",
    ),
    key(
        "fleet",
        "endpoints",
        "[]",
        "etcd: the members' client URLs, tried in turn.",
        "etcd: the members' client URLs (at most 16), e.g. `[\"https://10.0.0.1:2379\"]`, \
         tried in turn.",
    ),
    unset(
        "fleet",
        "url",
        ("none", "\"https://airlock.example:3333\""),
        "FleetLock: the server's base URL.",
        "FleetLock: the server's base URL.",
    ),
    key(
        "fleet",
        "slots",
        "1",
        "etcd: the group's size when its key does not exist yet.",
        "etcd: the group's size when its key does not exist yet (an existing key keeps its \
         own).",
    ),
    unset(
        "fleet",
        "ca_file",
        ("the system's CA certificates", "\"/etc/umm/fleet-ca.pem\""),
        "https: the CA certificates the server must chain to.",
        "https: the CA certificates the server must chain to (PEM, an absolute path; root's \
         and writable by nobody else).",
    ),
    unset(
        "fleet",
        "cert_file",
        ("none", "\"/etc/umm/fleet-client.pem\""),
        "https: a client certificate (with key_file).",
        "https: a client certificate to send, with `key_file` (PEM, an absolute path; root's \
         and writable by nobody else).",
    ),
    unset(
        "fleet",
        "key_file",
        ("none", "\"/etc/umm/fleet-client.key\""),
        "https: the client certificate's key (root's, mode 0600).",
        "https: the client certificate's key (PEM, an absolute path; root's and readable by \
         nobody else, or the call is refused saying so).",
    ),
    key(
        "fleet",
        "timeout",
        "\"10s\"",
        "Bound on one call to the coordinator, across endpoints and retries.",
        "Bound on one call to the coordinator, across endpoints and retries.",
    ),
    key(
        "rolling",
        "windows",
        "[]",
        "Maintenance windows in local time, e.g. [\"Mon..Fri 22:00-05:00\"]; none: any time.",
        "Maintenance windows in the node's local time zone (`/etc/localtime`), at most 32, \
         each `DAYS HH:MM-HH:MM`: DAYS is `daily` or a list of days and ranges (`Mon..Fri`, \
         `Sat,Sun`), and a window whose end is not after its start runs past midnight into \
         the next day (`\"Mon..Fri 22:00-05:00\"` is open Friday night into Saturday, not \
         early Monday). Wall-clock times: a window in the hour skipped when clocks go forward \
         does not open that day. Outside every window `umm on` is refused with the next \
         window's start, unless `--force`; a crash loop ignores windows, and a window that \
         closes never interrupts a maintenance. None: any time.",
    ),
    unset(
        "rolling",
        "gate_url",
        (
            "none (no health gate)",
            "\"http://prometheus.example:9090\"",
        ),
        "The Prometheus server the health gate asks.",
        "The Prometheus server the health gate asks (its HTTP API, `/api/v1/query`; https \
         uses `[fleet]`'s `ca_file`, `cert_file` and `key_file`). With it, `umm on` is \
         refused while the gate is closed, unless `--force`. The gate fails closed: a query \
         that gets no answer, an error or an answer umm cannot read closes it too.",
    ),
    unset(
        "rolling",
        "gate_alerts",
        ("none", "\"Ceph.*|NodeDown\""),
        "Firing alerts whose name matches this regex close the gate.",
        "Firing alerts (`ALERTS{alertstate=\"firing\"}`) whose name matches this regex \
         (RE2, anchored, matched by Prometheus) close the gate; the refusal names them.",
    ),
    unset(
        "rolling",
        "gate_expr",
        ("none", "\"ceph_health_status > 0\""),
        "A PromQL expression that must return nothing for the gate to open.",
        "A PromQL expression that must return an empty instant vector for the gate to open; \
         the series it returns are named in the refusal.",
    ),
    key(
        "rolling",
        "gate_timeout",
        "\"10s\"",
        "Bound on each query of the health gate.",
        "Bound on each query of the health gate; no answer in time closes the gate.",
    ),
];

/// The tables of umm.toml, in the order of `KEYS` (`""` first).
pub fn tables() -> Vec<&'static str> {
    let mut tables: Vec<&'static str> = Vec::new();
    for k in KEYS {
        if !tables.contains(&k.table) {
            tables.push(k.table);
        }
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::settings::Settings;
    use crate::sys::config::fragment::apply_toml_text;
    use crate::sys::config::{parse_toml, Sources};
    use std::path::Path;

    /// A file that sets `value` (TOML) for `key`.
    fn file_setting(key: &Key, value: &str) -> String {
        if key.table.is_empty() {
            format!("{} = {value}\n", key.name)
        } else {
            format!("[{}]\n{} = {value}\n", key.table, key.name)
        }
    }

    /// Every key with a default, set to it: the settings are the defaults.
    #[test]
    fn the_listed_defaults_are_the_defaults() {
        let mut text = String::new();
        for table in tables() {
            if !table.is_empty() {
                text.push_str(&format!("[{table}]\n"));
            }
            for k in KEYS.iter().filter(|k| k.table == table) {
                if let KeyDefault::Value(v) = k.default {
                    text.push_str(&format!("{} = {v}\n", k.name));
                }
            }
        }
        let settings = parse_toml(Path::new("umm.toml"), &text).unwrap();
        assert_eq!(settings, Settings::default(), "{text}");
    }

    /// Each key alone, at its default or example, is accepted; a default
    /// that differs from `Settings::default()` fails the test above.
    #[test]
    fn every_key_is_accepted_at_its_default_or_example() {
        for k in KEYS {
            let value = match k.default {
                KeyDefault::Value(v) => v,
                KeyDefault::Unset { example, .. } => example,
            };
            let text = file_setting(k, value);
            // Each value as read; how `[fleet]`'s keys fit together is
            // checked once the files are merged, not here.
            let mut settings = Settings::default();
            let read = apply_toml_text(
                Path::new("umm.toml"),
                &text,
                &mut settings,
                &mut Sources::default(),
            );
            if let Err(e) = read {
                panic!("{} = {value}: {e}", k.label());
            }
        }
    }

    #[test]
    fn keys_are_listed_once_and_say_something() {
        for (i, k) in KEYS.iter().enumerate() {
            assert!(
                !KEYS[..i]
                    .iter()
                    .any(|o| o.table == k.table && o.name == k.name),
                "{} is listed twice",
                k.label()
            );
            assert!(
                !k.summary.is_empty() && !k.about.is_empty(),
                "{}",
                k.label()
            );
            assert!(!k.summary.contains('\n'), "{}", k.label());
        }
        // A table's keys are together, so each table is written once.
        let mut seen: Vec<&str> = Vec::new();
        for k in KEYS {
            if seen.last() != Some(&k.table) {
                assert!(!seen.contains(&k.table), "[{}] is split", k.table);
                seen.push(k.table);
            }
        }
    }
}
