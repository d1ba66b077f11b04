//! The reference tables the docs show, written from the one list each
//! comes from: the keys of umm.toml (`umm::sys::config::keys`), the
//! metrics (`umm::output::metrics::METRICS`), the journal's events
//! (`umm::sys::journal::Kind`) and the counting rules (the doc comment of
//! src/rules/boot.rs). `umm-gen --docs` writes them into the regions of
//! the docs marked for them, and packaging/umm.toml whole; a test fails
//! when a file in the tree differs from what this writes.

use std::fs;
use std::io;
use std::path::Path;

use umm::output::metrics::METRICS;
use umm::sys::config::keys::{tables, Key, KeyDefault, KEYS};
use umm::sys::journal::Kind;

use crate::markdown::replace_region;

/// The source of the counting rules.
const RULES_RS: &str = include_str!("../../../src/rules/boot.rs");

/// The files this tool writes, from the repository's root, and each one's
/// regions (`None`: the whole file).
pub const WRITTEN: &[(&str, &[&str])] = &[
    ("README.md", &["config-example"]),
    ("docs/configuration.md", &["config-keys"]),
    ("docs/monitoring.md", &["metrics", "events"]),
    ("docs/state.md", &["counting-rules"]),
];

/// packaging/umm.toml, written whole.
pub const EXAMPLE_CONFIG: &str = "packaging/umm.toml";

/// The text of the generated region `name`.
pub fn region(name: &str) -> Option<String> {
    Some(match name {
        "config-example" => config_example(),
        "config-keys" => config_keys(),
        "metrics" => metrics(),
        "events" => events(),
        "counting-rules" => counting_rules_list(),
        _ => return None,
    })
}

/// Every file this tool writes, as it should read: (path, text). `root`
/// is the repository, whose docs hold the regions.
pub fn written(root: &Path) -> io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (path, names) in WRITTEN {
        let mut text = fs::read_to_string(root.join(path))?;
        for name in *names {
            let body = region(name).unwrap_or_default();
            text = replace_region(&text, name, &body).ok_or_else(|| {
                io::Error::other(format!("{path} has no generated region {name:?}"))
            })?;
        }
        out.push((path.to_string(), text));
    }
    out.push((EXAMPLE_CONFIG.to_string(), umm_toml()));
    Ok(out)
}

/// Writes the files that differ from what they should read; returns them.
pub fn write_docs(root: &Path) -> io::Result<Vec<String>> {
    let mut changed = Vec::new();
    for (path, text) in written(root)? {
        let file = root.join(&path);
        if fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
            fs::write(&file, text)?;
            changed.push(path);
        }
    }
    Ok(changed)
}

/// `"5min"` as the docs show a default: in backquotes, or what applies.
fn default_cell(key: &Key) -> String {
    match key.default {
        KeyDefault::Value(v) => format!("`{v}`"),
        KeyDefault::Unset { means, .. } => means.to_string(),
    }
}

/// docs/configuration.md: every key.
fn config_keys() -> String {
    let mut out = String::from("| key | default | meaning |\n|---|---|---|\n");
    for key in KEYS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            key.label(),
            default_cell(key),
            key.about
        ));
    }
    out
}

/// The README's example: the top-level keys at their defaults.
fn config_example() -> String {
    let mut out = String::from("```toml\n");
    for key in KEYS.iter().filter(|k| k.table.is_empty()) {
        if let KeyDefault::Value(v) = key.default {
            out.push_str(&format!("# {}\n{} = {v}\n", key.summary, key.name));
        }
    }
    out.push_str("```\n");
    out
}

/// docs/monitoring.md: every metric.
fn metrics() -> String {
    let mut out = String::from("| metric | type | meaning |\n|---|---|---|\n");
    for m in METRICS {
        let labels = if m.labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", m.labels.join(", "))
        };
        out.push_str(&format!(
            "| `{}{labels}` | {} | {} |\n",
            m.name, m.kind, m.help
        ));
    }
    out
}

/// docs/monitoring.md: every event umm logs.
fn events() -> String {
    let mut out =
        String::from("| UMM_EVENT | MESSAGE_ID | what happened | fields |\n|---|---|---|---|\n");
    for kind in Kind::ALL {
        let fields: Vec<String> = kind
            .documented_fields()
            .iter()
            .map(|f| format!("`{f}`"))
            .collect();
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            kind.name(),
            kind.message_id(),
            kind.about(),
            fields.join(", ")
        ));
    }
    out
}

/// The counting rules, from the doc comment at the top of src/rules/boot.rs.
pub fn counting_rules() -> Vec<String> {
    let mut rules: Vec<String> = Vec::new();
    let mut inside = false;
    for line in RULES_RS.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            break;
        };
        let doc = doc.trim();
        if !inside {
            inside = doc.starts_with("The counting rules");
            continue;
        }
        if let Some(rule) = doc.strip_prefix("- ") {
            rules.push(rule.to_string());
        } else if doc.is_empty() {
            break;
        } else if let Some(last) = rules.last_mut() {
            last.push(' ');
            last.push_str(doc);
        }
    }
    rules
}

/// docs/state.md: the counting rules as a list.
fn counting_rules_list() -> String {
    counting_rules()
        .iter()
        .map(|r| format!("- {r}\n"))
        .collect()
}

/// The head of packaging/umm.toml.
const UMM_TOML_HEAD: &str = "\
# /etc/umm/umm.toml: configuration of umm, the unified maintenance mode.
# See umm(8), section CONFIGURATION, and /usr/share/doc/umm/configuration.md.
#
# Every key is optional; each is shown here commented out, with its default.
# Local changes can also go in drop-ins, /etc/umm/umm.toml.d/*.toml, which
# are applied in lexical order over this file (a later file wins).
# Time spans are seconds or a string such as \"90s\", \"10min\", \"1h 30min\".
";

/// packaging/umm.toml: every key, commented out, at its default (or an
/// example, for a key whose default no value says).
pub fn umm_toml() -> String {
    let mut out = String::from(UMM_TOML_HEAD);
    for table in tables() {
        if !table.is_empty() {
            out.push_str(&format!("\n# [{table}]\n"));
        }
        for key in KEYS.iter().filter(|k| k.table == table) {
            let value = match key.default {
                KeyDefault::Value(v) => v,
                KeyDefault::Unset { example, .. } => example,
            };
            if table.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!("# {}\n# {} = {value}\n", key.summary, key.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use umm::model::settings::Settings;

    fn repo() -> &'static Path {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
    }

    /// The tables in the tree are the ones the sources say.
    #[test]
    fn the_generated_docs_are_up_to_date() {
        for (path, text) in written(repo()).unwrap() {
            let now = fs::read_to_string(repo().join(&path)).unwrap();
            assert!(
                now == text,
                "{path} is not what the sources say: run `cargo run -p umm-gen -- --docs` \
                 and commit the result"
            );
        }
    }

    /// packaging/umm.toml, uncommented, is a configuration equal to the
    /// defaults, apart from the keys it can only show by example.
    #[test]
    fn the_example_config_uncommented_is_the_defaults() {
        let mut text = String::new();
        for line in umm_toml().lines() {
            let body = line.trim_start_matches("# ");
            let example = KEYS.iter().any(|k| {
                matches!(k.default, KeyDefault::Unset { .. })
                    && body.starts_with(&format!("{} =", k.name))
            });
            let setting = body.starts_with('[')
                || KEYS
                    .iter()
                    .any(|k| body.starts_with(&format!("{} =", k.name)));
            if setting && !example {
                text.push_str(body);
                text.push('\n');
            }
        }
        let settings = umm::sys::config::parse_toml(Path::new("umm.toml"), &text).unwrap();
        assert_eq!(settings, Settings::default(), "{text}");
        assert!(umm_toml()
            .lines()
            .all(|l| l.is_empty() || l.starts_with('#')));
    }

    #[test]
    fn counting_rules_are_quoted_from_the_rules() {
        let rules = counting_rules();
        assert_eq!(rules.len(), 4, "{rules:#?}");
        assert!(rules[0].contains("counter_reset_time"));
        assert!(rules[3].contains("umm off"));
    }

    #[test]
    fn every_region_named_is_generated() {
        for (_, names) in WRITTEN {
            for name in *names {
                assert!(region(name).is_some(), "{name}");
            }
        }
    }
}
