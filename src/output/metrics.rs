//! The state as Prometheus metrics: the text that umm writes as `umm.prom`
//! into node_exporter's textfile collector directory at every state change
//! and at boot (`cmd::save`, written by `sys::textfile`). Pure: the state
//! and the settings in, the exposition text out (format 0.0.4, checked by
//! `promtool check metrics` in `tests/metrics.rs`).
//!
//! Written by hand rather than with a metrics crate. `prometheus-client`
//! (0.23, the well-kept one) would fit the size budget (39.6 KiB in a
//! static test binary built like umm's), but it writes OpenMetrics text:
//! `# TYPE umm_maintenance_entered counter` over samples named
//! `umm_maintenance_entered_total`, and `# EOF`. node_exporter's textfile
//! collector reads the Prometheus text format (0.0.4), where those samples
//! are another, untyped metric: `promtool check metrics` says "no help
//! text" for each counter. The `prometheus` crate writes 0.0.4 but brings
//! a registry of live metrics (parking_lot, lazy_static, fnv, protobuf by
//! default) for what is ten values rendered once per state change; the
//! format is small, and promtool checks what this writes.
//!
//! The counters (`_total`) come from the state (`State::counters`), which
//! is persisted, so they never go back to 0 at a reboot.

use std::fmt::Write;

use crate::model::hook::HookPhase;
use crate::model::open::Named;
use crate::model::settings::Settings;
use crate::model::state::{ByReason, CommandRun, NodeState, State};

/// Every metric umm writes: name, type, help. The README's "Monitoring"
/// section lists the same.
pub const METRICS: &[(&str, &str, &str)] = &[
    (
        "umm_state",
        "gauge",
        "The node's umm state: 1 for the state it is in, 0 for the others; reason: why it is not operational.",
    ),
    (
        "umm_enabled",
        "gauge",
        "1 when umm counts unclean boots and enforces maintenance (umm enable and umm.toml's enabled), else 0.",
    ),
    (
        "umm_unclean_boots",
        "gauge",
        "Unclean boots in a row (the crash-loop counter).",
    ),
    (
        "umm_unclean_boots_threshold",
        "gauge",
        "reboot_count: a boot that finds more unclean boots in a row than this stops in maintenance.",
    ),
    (
        "umm_maintenance_entered_total",
        "counter",
        "Maintenance episodes entered (boots that stopped in maintenance for a new episode), by reason.",
    ),
    (
        "umm_maintenance_start_timestamp_seconds",
        "gauge",
        "When the boot of the current maintenance episode stopped in maintenance, in seconds since the epoch (absent outside maintenance).",
    ),
    (
        "umm_maintenance_end_timestamp_seconds",
        "gauge",
        "When the last maintenance episode ended (umm off finished, or the request was cancelled), in seconds since the epoch (absent before the first).",
    ),
    (
        "umm_scheduled_command_exit_code",
        "gauge",
        "The exit status of the last scheduled command (umm on -- COMMAND) that finished; 128+N when killed by signal N.",
    ),
    (
        "umm_services_not_back",
        "gauge",
        "Services running before maintenance that were not running again after the last resume.",
    ),
    (
        "umm_hook_failures_total",
        "counter",
        "Hook runs that failed or were refused, by phase, of those an episode records (a umm on that its checks refuse, umm check and umm on --dry-run change nothing and are not counted).",
    ),
    (
        "umm_fleet_slot_held",
        "gauge",
        "1 while this node holds a slot of its fleet group (from umm on, or a crash-loop maintenance boot, until it is back in service), else 0.",
    ),
    (
        "umm_fleet_release_pending",
        "gauge",
        "1 while giving this node's fleet slot back has failed and is retried (the group has one slot fewer), else 0.",
    ),
];

/// The hook phases, as the `phase` label names them.
const PHASES: [HookPhase; 5] = [
    HookPhase::Check,
    HookPhase::PreOn,
    HookPhase::On,
    HookPhase::PreOff,
    HookPhase::Off,
];

/// The metrics text for `state` under `settings`.
pub fn render(state: &State, settings: &Settings) -> String {
    let mut out = String::new();
    let node = NodeState::of(state.maintenance.as_ref());
    let reason = state.maintenance.as_ref().map(|m| m.reason.as_str());
    for (name, kind, help) in METRICS {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        match *name {
            "umm_state" => {
                for s in NodeState::ALL {
                    let on = s == node;
                    let r = if on { reason.unwrap_or("") } else { "" };
                    let _ = writeln!(
                        out,
                        "{name}{{state=\"{}\",reason=\"{r}\"}} {}",
                        s.as_str(),
                        u8::from(on)
                    );
                }
            }
            "umm_enabled" => {
                let on = state.switch_on && settings.enabled;
                let _ = writeln!(out, "{name} {}", u8::from(on));
            }
            "umm_unclean_boots" => {
                let _ = writeln!(out, "{name} {}", state.unclean_boots);
            }
            "umm_unclean_boots_threshold" => {
                let _ = writeln!(out, "{name} {}", settings.reboot_count);
            }
            "umm_maintenance_entered_total" => {
                for r in ByReason::REASONS {
                    let n = state.counters.entered.get(r);
                    let _ = writeln!(out, "{name}{{reason=\"{}\"}} {n}", r.as_str());
                }
            }
            "umm_maintenance_start_timestamp_seconds" => {
                if let Some(since) = state.maintenance.as_ref().and_then(|m| m.since) {
                    let _ = writeln!(out, "{name} {since}");
                }
            }
            "umm_maintenance_end_timestamp_seconds" => {
                if let Some(e) = state.history.last() {
                    let _ = writeln!(out, "{name} {}", e.ended);
                }
            }
            "umm_scheduled_command_exit_code" => {
                if let Some(code) = last_command_status(state) {
                    let _ = writeln!(out, "{name} {code}");
                }
            }
            "umm_services_not_back" => {
                let n = state
                    .history
                    .iter()
                    .rev()
                    .find_map(|e| e.verify.as_ref())
                    .map_or(0, |v| v.not_back.len());
                let _ = writeln!(out, "{name} {n}");
            }
            "umm_hook_failures_total" => {
                for p in PHASES {
                    let n = state.counters.hook_failures.get(p);
                    let _ = writeln!(out, "{name}{{phase=\"{}\"}} {n}", p.name());
                }
            }
            "umm_fleet_slot_held" => {
                let _ = writeln!(out, "{name} {}", u8::from(state.fleet.held.is_some()));
            }
            "umm_fleet_release_pending" => {
                let held = state.fleet.pending_release.is_some();
                let _ = writeln!(out, "{name} {}", u8::from(held));
            }
            _ => {}
        }
    }
    out
}

/// The exit status of the newest scheduled command that finished: the
/// current episode's, else the newest in the history.
fn last_command_status(state: &State) -> Option<i64> {
    let finished = |run: &CommandRun| -> Option<i64> {
        run.ended?;
        match (run.exit_code, run.signal) {
            (Some(code), _) => Some(i64::from(code)),
            (None, Some(sig)) => Some(128 + i64::from(sig)),
            (None, None) => None,
        }
    };
    let current = state
        .maintenance
        .as_ref()
        .and_then(|m| m.command.as_ref())
        .and_then(|c| c.run.as_ref())
        .and_then(finished);
    current.or_else(|| {
        state
            .history
            .iter()
            .rev()
            .filter_map(|e| e.command.as_ref().and_then(|c| c.run.as_ref()))
            .find_map(finished)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::state::{Maintenance, Phase, Reason};

    fn sample(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find(|l| !l.starts_with('#') && l.rsplit_once(' ').is_some_and(|(s, _)| s == series))
            .and_then(|l| l.rsplit_once(' ').map(|(_, v)| v.to_string()))
    }

    fn in_maintenance(reason: Reason) -> State {
        State {
            maintenance: Some(Maintenance {
                id: 1,
                phase: Phase::Active,
                reason,
                requested: 1_700_000_000,
                since: Some(1_700_000_100),
                requested_by: None,
                command: None,
                crash_boots: Vec::new(),
                services_before: None,
                hooks: Vec::new(),
                leaving: None,
                fleet: None,
                extra: Default::default(),
            }),
            ..State::default()
        }
    }

    #[test]
    fn an_operational_node_has_one_state_series_set_and_no_start_time() {
        let text = render(&State::default(), &Settings::default());
        assert_eq!(
            sample(&text, "umm_state{state=\"operational\",reason=\"\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            sample(&text, "umm_state{state=\"maintenance\",reason=\"\"}").as_deref(),
            Some("0")
        );
        assert_eq!(sample(&text, "umm_enabled").as_deref(), Some("1"));
        assert_eq!(
            sample(&text, "umm_unclean_boots_threshold").as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(&text, "umm_maintenance_start_timestamp_seconds"),
            None
        );
        assert_eq!(sample(&text, "umm_maintenance_end_timestamp_seconds"), None);
        assert_eq!(sample(&text, "umm_scheduled_command_exit_code"), None);
    }

    #[test]
    fn every_metric_has_help_and_type_and_counters_end_in_total() {
        let text = render(&in_maintenance(Reason::CrashLoop), &Settings::default());
        for (name, kind, _) in METRICS {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
            assert_eq!(*kind == "counter", name.ends_with("_total"), "{name}");
        }
    }

    #[test]
    fn a_crash_loop_maintenance_shows_its_reason_start_and_counts() {
        let mut s = in_maintenance(Reason::CrashLoop);
        s.unclean_boots = 3;
        s.counters.entered.add(Reason::CrashLoop);
        s.counters.entered.add(Reason::CrashLoop);
        s.counters.entered.add(Reason::Manual);
        let text = render(&s, &Settings::default());
        assert_eq!(
            sample(
                &text,
                "umm_state{state=\"maintenance\",reason=\"crash-loop\"}"
            )
            .as_deref(),
            Some("1")
        );
        assert_eq!(
            sample(&text, "umm_state{state=\"operational\",reason=\"\"}").as_deref(),
            Some("0")
        );
        assert_eq!(
            sample(
                &text,
                "umm_maintenance_entered_total{reason=\"crash-loop\"}"
            )
            .as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(&text, "umm_maintenance_entered_total{reason=\"manual\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            sample(&text, "umm_maintenance_entered_total{reason=\"cmdline\"}").as_deref(),
            Some("0")
        );
        assert_eq!(
            sample(&text, "umm_maintenance_start_timestamp_seconds").as_deref(),
            Some("1700000100")
        );
        assert_eq!(sample(&text, "umm_unclean_boots").as_deref(), Some("3"));
    }

    #[test]
    fn disabled_by_the_switch_or_the_file_is_not_enabled() {
        let off = State {
            switch_on: false,
            ..State::default()
        };
        let text = render(&off, &Settings::default());
        assert_eq!(sample(&text, "umm_enabled").as_deref(), Some("0"));
        let settings = Settings {
            enabled: false,
            ..Settings::default()
        };
        let text = render(&State::default(), &settings);
        assert_eq!(sample(&text, "umm_enabled").as_deref(), Some("0"));
    }

    #[test]
    fn hook_failures_are_counted_by_phase() {
        let mut s = State::default();
        s.counters.hook_failures.pre_off = 2;
        s.counters.hook_failures.on = 1;
        let text = render(&s, &Settings::default());
        assert_eq!(
            sample(&text, "umm_hook_failures_total{phase=\"pre-off\"}").as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(&text, "umm_hook_failures_total{phase=\"on\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            sample(&text, "umm_hook_failures_total{phase=\"check\"}").as_deref(),
            Some("0")
        );
    }

    #[test]
    fn a_held_slot_and_a_pending_release_show() {
        use crate::model::state::{FleetSlot, PendingRelease};
        let slot = FleetSlot {
            backend: "etcd".into(),
            group: "ctl".into(),
            id: "node-a".into(),
            since: 1_700_000_000,
            extra: Default::default(),
        };
        let text = render(&State::default(), &Settings::default());
        assert_eq!(sample(&text, "umm_fleet_slot_held").as_deref(), Some("0"));
        assert_eq!(
            sample(&text, "umm_fleet_release_pending").as_deref(),
            Some("0")
        );
        let mut s = State::default();
        s.fleet.held = Some(slot.clone());
        let text = render(&s, &Settings::default());
        assert_eq!(sample(&text, "umm_fleet_slot_held").as_deref(), Some("1"));
        let mut s = State::default();
        s.fleet.pending_release = Some(PendingRelease {
            slot,
            due: 1_700_000_500,
            tries: 1,
            last_try: Some(1_700_000_500),
            last_error: Some("connection refused".into()),
            extra: Default::default(),
        });
        let text = render(&s, &Settings::default());
        assert_eq!(sample(&text, "umm_fleet_slot_held").as_deref(), Some("0"));
        assert_eq!(
            sample(&text, "umm_fleet_release_pending").as_deref(),
            Some("1")
        );
    }
}
