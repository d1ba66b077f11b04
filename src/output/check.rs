//! `umm check` and `umm on --dry-run`: whether entering would be allowed,
//! the checks' results, the services a maintenance boot would not run, and
//! what is scheduled. One view, as text or JSON.

use serde::Serialize;

use super::history::shell_words;
use crate::hooks;
use crate::model::hook::{HookPhase, HookRecord};

/// What `umm on` would do now.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct CheckView {
    /// Entering would go ahead: not refused, and every check passed.
    pub allowed: bool,
    /// Why `umm on` would be refused (disabled, already pending, ...).
    pub refused: Option<String>,
    pub checks: Vec<HookRecord>,
    /// Running services a maintenance boot would not start; none when the
    /// init system could not say (`services_error`).
    pub services_not_running_in_maintenance: Option<Vec<String>>,
    pub services_error: Option<String>,
    /// What a maintenance boot keeps.
    pub keep_units: Vec<String>,
    /// The command `umm on --dry-run -- ...` would schedule.
    pub command: Option<Vec<String>>,
    /// Why the boot loader does not count boots that never reach
    /// userspace (docs/boot-flow.md); none when it does.
    pub boot_loader_counting_off: Option<String>,
    /// Which boot loader counts (GRUB's environment block, systemd-boot's
    /// entries); none when none does.
    pub boot_loader_counting_by: Option<String>,
}

impl CheckView {
    pub fn text(&self) -> String {
        let mut out = vec![self.verdict()];
        out.extend(self.check_lines());
        out.extend(self.service_lines());
        out.push(match &self.command {
            Some(a) => format!("Scheduled command: {}", shell_words(a)),
            None => "Scheduled command: none".into(),
        });
        out.push(match &self.boot_loader_counting_off {
            None => format!(
                "Boot loader: counts boots that never reach userspace ({})",
                self.boot_loader_counting_by.as_deref().unwrap_or("unknown")
            ),
            Some(why) => {
                format!("Boot loader: does not count boots that never reach userspace: {why}")
            }
        });
        out.join("\n")
    }

    fn verdict(&self) -> String {
        match &self.refused {
            Some(r) => format!("Entering maintenance: refused: {r}"),
            None if self.allowed => "Entering maintenance: allowed".into(),
            None => format!(
                "Entering maintenance: vetoed by {}",
                hooks::failed_names(&self.checks).join(", ")
            ),
        }
    }

    fn check_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.checks.is_empty() {
            out.push(format!(
                "Checks: none in {}",
                hooks::dir(HookPhase::Check).display()
            ));
        }
        for c in self.checks.iter().filter(|c| c.name == hooks::WHOLE_DIR) {
            out.push(format!(
                "Checks: cannot run: {}; this vetoes `umm on` (--force overrides)",
                c.result.trim_start_matches("refused: ")
            ));
        }
        for c in self.checks.iter().filter(|c| c.name != hooks::WHOLE_DIR) {
            let result = if c.ok { "ok" } else { c.result.as_str() };
            out.push(format!("Check {}: {result}", c.name));
            if !c.ok {
                out.extend(c.output_tail.iter().map(|line| format!("    {line}")));
            }
        }
        out
    }

    fn service_lines(&self) -> Vec<String> {
        match (
            &self.services_not_running_in_maintenance,
            &self.services_error,
        ) {
            (Some(units), _) if units.is_empty() => {
                vec!["Services that would not run in maintenance: none".into()]
            }
            (Some(units), _) => {
                let mut out = vec![format!(
                    "Services that would not run in maintenance ({}):",
                    units.len()
                )];
                out.extend(units.iter().map(|u| format!("    {u}")));
                out
            }
            (None, e) => vec![format!(
                "Services that would not run in maintenance: unknown ({})",
                e.as_deref().unwrap_or_default()
            )],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// `umm check --json`: its fields and their types.
    #[test]
    fn check_json_has_its_fields() {
        let view = CheckView {
            boot_loader_counting_off: None,
            boot_loader_counting_by: Some("GRUB environment block".into()),
            allowed: false,
            refused: None,
            checks: vec![],
            services_not_running_in_maintenance: None,
            services_error: Some("no D-Bus".into()),
            keep_units: vec!["ssh.service".into()],
            command: Some(vec!["true".into()]),
        };
        let v: Value = serde_json::from_str(&super::super::json::pretty(&view).unwrap()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "allowed",
                "boot_loader_counting_by",
                "boot_loader_counting_off",
                "checks",
                "command",
                "keep_units",
                "refused",
                "services_error",
                "services_not_running_in_maintenance"
            ]
        );
        assert_eq!(v["allowed"], false);
        assert_eq!(v["refused"], Value::Null);
        assert_eq!(v["services_error"], "no D-Bus");
        assert_eq!(v["services_not_running_in_maintenance"], Value::Null);
        assert_eq!(v["command"], serde_json::json!(["true"]));
        assert!(view.text().contains("unknown (no D-Bus)"));
    }
}
