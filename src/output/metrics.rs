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

/// One metric: what its HELP and TYPE lines say, and how its samples are
/// written.
pub struct Metric {
    pub name: &'static str,
    /// `gauge` or `counter`.
    pub kind: &'static str,
    /// The labels of its series.
    pub labels: &'static [&'static str],
    pub help: &'static str,
    /// Writes its sample lines.
    samples: fn(&mut String, &Metric, &State, &Settings),
}

/// Every metric umm writes, in the order written: the one list that
/// docs/monitoring.md's table and the man page are generated from.
pub const METRICS: &[Metric] = &[
    Metric {
        name: "umm_state",
        kind: "gauge",
        labels: &["state", "reason"],
        help: "The node's umm state: 1 for the state it is in, 0 for the others; reason: why it is not operational.",
        samples: node_state,
    },
    Metric {
        name: "umm_enabled",
        kind: "gauge",
        labels: &[],
        help: "1 when umm counts unclean boots and enforces maintenance (umm enable and umm.toml's enabled), else 0.",
        samples: enabled,
    },
    Metric {
        name: "umm_unclean_boots",
        kind: "gauge",
        labels: &[],
        help: "Unclean boots in a row (the crash-loop counter).",
        samples: unclean_boots,
    },
    Metric {
        name: "umm_unclean_boots_threshold",
        kind: "gauge",
        labels: &[],
        help: "reboot_count: a boot that finds more unclean boots in a row than this stops in maintenance.",
        samples: unclean_boots_threshold,
    },
    Metric {
        name: "umm_maintenance_entered_total",
        kind: "counter",
        labels: &["reason"],
        help: "Maintenance episodes entered (boots that stopped in maintenance for a new episode), by reason.",
        samples: entered_total,
    },
    Metric {
        name: "umm_maintenance_start_timestamp_seconds",
        kind: "gauge",
        labels: &[],
        help: "When the boot of the current maintenance episode stopped in maintenance, in seconds since the epoch (absent outside maintenance).",
        samples: start_timestamp,
    },
    Metric {
        name: "umm_maintenance_end_timestamp_seconds",
        kind: "gauge",
        labels: &[],
        help: "When the last maintenance episode ended (umm off finished, or the request was cancelled), in seconds since the epoch (absent before the first).",
        samples: end_timestamp,
    },
    Metric {
        name: "umm_scheduled_command_exit_code",
        kind: "gauge",
        labels: &[],
        help: "The exit status of the last scheduled command (umm on -- COMMAND) that finished; 128+N when killed by signal N.",
        samples: command_exit_code,
    },
    Metric {
        name: "umm_services_not_back",
        kind: "gauge",
        labels: &[],
        help: "Services running before maintenance that were not running again after the last resume.",
        samples: services_not_back,
    },
    Metric {
        name: "umm_hook_failures_total",
        kind: "counter",
        labels: &["phase"],
        help: "Hook runs that failed or were refused, by phase, of those an episode records (a umm on that its checks refuse, umm check and umm on --dry-run change nothing and are not counted).",
        samples: hook_failures_total,
    },
    Metric {
        name: "umm_fleet_slot_held",
        kind: "gauge",
        labels: &[],
        help: "1 while this node holds a slot of its fleet group (from umm on, or a crash-loop maintenance boot, until it is back in service), else 0.",
        samples: fleet_slot_held,
    },
    Metric {
        name: "umm_fleet_release_pending",
        kind: "gauge",
        labels: &[],
        help: "1 while giving this node's fleet slot back has failed and is retried (the group has one slot fewer), else 0.",
        samples: fleet_release_pending,
    },
    Metric {
        name: "umm_queued",
        kind: "gauge",
        labels: &[],
        help: "1 while a request queued by umm on --queue waits for its turn (window, gate, slot), else 0.",
        samples: queued,
    },
    Metric {
        name: "umm_queue_expired_total",
        kind: "counter",
        labels: &[],
        help: "Queued requests that were still waiting after their span and ended unserved.",
        samples: queue_expired_total,
    },
    Metric {
        name: "umm_roll_halted",
        kind: "gauge",
        labels: &["cause"],
        help: "1 while this node halts its group's roll, with its cause: work (its umm on --then work, an on.d hook or COMMAND, failed: it stays in maintenance, keeping its slot, until umm off) or check (the check after leaving was not clean: back in service, it keeps its slot until umm fleet release); else 0 with an empty cause.",
        samples: roll_halted,
    },
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
    for metric in METRICS {
        let _ = writeln!(out, "# HELP {} {}", metric.name, metric.help);
        let _ = writeln!(out, "# TYPE {} {}", metric.name, metric.kind);
        (metric.samples)(&mut out, metric, state, settings);
    }
    out
}

/// `name value`, for a metric without labels.
fn sample(out: &mut String, m: &Metric, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{} {value}", m.name);
}

/// One series per state: 1 for the node's, with its reason; 0 for the others.
fn node_state(out: &mut String, m: &Metric, state: &State, _: &Settings) {
    let node = NodeState::of(state.maintenance.as_ref());
    let reason = state.maintenance.as_ref().map(|m| m.reason.as_str());
    for s in NodeState::ALL {
        let on = s == node;
        let r = if on { reason.unwrap_or("") } else { "" };
        let _ = writeln!(
            out,
            "{}{{state=\"{}\",reason=\"{r}\"}} {}",
            m.name,
            s.as_str(),
            u8::from(on)
        );
    }
}

fn enabled(out: &mut String, m: &Metric, state: &State, settings: &Settings) {
    sample(out, m, u8::from(state.switch_on && settings.enabled));
}

fn unclean_boots(out: &mut String, m: &Metric, state: &State, _: &Settings) {
    sample(out, m, state.unclean_boots);
}

fn unclean_boots_threshold(out: &mut String, m: &Metric, _: &State, settings: &Settings) {
    sample(out, m, settings.reboot_count);
}

fn entered_total(out: &mut String, m: &Metric, state: &State, _: &Settings) {
    for r in ByReason::REASONS {
        let n = state.counters.entered.get(r);
        let _ = writeln!(out, "{}{{reason=\"{}\"}} {n}", m.name, r.as_str());
    }
}

fn start_timestamp(out: &mut String, m: &Metric, state: &State, _: &Settings) {
    if let Some(since) = state.maintenance.as_ref().and_then(|m| m.since) {
        sample(out, m, since);
    }
}

fn end_timestamp(out: &mut String, m: &Metric, state: &State, _: &Settings) {
    if let Some(e) = state.history.last() {
        sample(out, m, e.ended);
    }
}

fn command_exit_code(out: &mut String, m: &Metric, state: &State, _: &Settings) {
    if let Some(code) = last_command_status(state) {
        sample(out, m, code);
    }
}

fn services_not_back(out: &mut String, m: &Metric, state: &State, _: &Settings) {
    let last_check = state.history.iter().rev().find_map(|e| e.verify.as_ref());
    sample(out, m, last_check.map_or(0, |v| v.not_back.len()));
}

fn hook_failures_total(out: &mut String, m: &Metric, state: &State, _: &Settings) {
    for p in PHASES {
        let n = state.counters.hook_failures.get(p);
        let _ = writeln!(out, "{}{{phase=\"{}\"}} {n}", m.name, p.name());
    }
}

fn fleet_slot_held(out: &mut String, m: &Metric, state: &State, _: &Settings) {
    sample(out, m, u8::from(state.fleet.held.is_some()));
}

fn fleet_release_pending(out: &mut String, m: &Metric, state: &State, _: &Settings) {
    sample(out, m, u8::from(state.fleet.pending_release.is_some()));
}

fn queued(out: &mut String, m: &Metric, state: &State, _: &Settings) {
    sample(out, m, u8::from(state.queued.is_some()));
}

fn queue_expired_total(out: &mut String, m: &Metric, state: &State, _: &Settings) {
    sample(out, m, state.counters.queue_expired);
}

fn roll_halted(out: &mut String, m: &Metric, state: &State, _: &Settings) {
    // As the state records it (`fleet.halt`): a command still recorded as
    // running counts as running here; only the maintenance worker can
    // tell a killed one (and then records the halt).
    let cause = match (&state.fleet.halt, &state.maintenance) {
        (None, _) => "",
        (Some(_), Some(_)) => "work",
        (Some(_), None) => "check",
    };
    let _ = writeln!(
        out,
        "{}{{cause=\"{cause}\"}} {}",
        m.name,
        u8::from(!cause.is_empty())
    );
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
                then: Default::default(),
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
        for Metric { name, kind, .. } in METRICS {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
            assert_eq!(*kind == "counter", name.ends_with("_total"), "{name}");
        }
    }

    /// The labels each series carries are the ones its metric lists (and
    /// the docs show).
    #[test]
    fn every_series_has_the_listed_labels() {
        let text = render(&in_maintenance(Reason::CrashLoop), &Settings::default());
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let series = line.rsplit_once(' ').unwrap().0;
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            let metric = METRICS.iter().find(|m| m.name == name).unwrap();
            let names: Vec<&str> = labels
                .trim_end_matches('}')
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| l.split_once('=').unwrap().0)
                .collect();
            assert_eq!(names, metric.labels, "{line}");
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
