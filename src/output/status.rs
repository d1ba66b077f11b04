//! `umm status`: what the node is doing and why, for people and for tools.
//! The JSON fields `state`, `enabled`, `reason`, `since`, `unclean_boots`,
//! `reboot_count`, `counter_reset_time` and `command` are a stable interface.

use serde_json::{json, Value};

use crate::bootmenu::{Kind, MenuEntry};
use crate::model::boot_decision::BootDecision;
use crate::model::settings::Settings;
use crate::model::state::{
    BootRecord, Episode, Maintenance, Mode, OffAction, Phase, Requester, ScheduledCommand, State,
};
use crate::model::timefmt::{format_span, rfc3339};
use crate::sys::config::{InUse, Sources};

/// Everything status shows, gathered by the caller.
pub struct Inputs<'a> {
    pub state: &'a State,
    pub state_problem: Option<&'a str>,
    pub settings: &'a Settings,
    pub sources: &'a Sources,
    pub config_error: Option<&'a str>,
    /// Which settings the boot uses (loaded, last-good, counting-only).
    pub config_in_use: &'a InUse,
    pub this_boot: Option<&'a BootDecision>,
    pub init: &'a str,
    /// umm's entries in the boot menu.
    pub menu: &'a [MenuEntry],
    /// `umm=on` / `umm=off` when this boot's command line carries one.
    pub cmdline_arg: Option<&'a str>,
    /// The caller is not root: only the public part of the state is shown
    /// (`State::public`), and the fields it lacks are left out of the JSON.
    pub restricted: bool,
}

/// Fields a caller who is not root does not get (omitted, not null): who
/// asked and from where, the scheduled command, the hooks' results.
pub const ROOT_ONLY_FIELDS: &[&str] = &["requested_by", "command", "hooks"];
const ROOT_ONLY_EPISODE_FIELDS: &[&str] = &[
    "requested_by",
    "command",
    "hooks",
    "hook_failures",
    "verify",
];

fn time(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

fn boots(records: &[BootRecord]) -> Value {
    Value::Array(
        records
            .iter()
            .map(|b| json!({ "boot_id": b.boot_id, "started": rfc3339(b.started) }))
            .collect(),
    )
}

fn requester(r: &Option<Requester>) -> Value {
    r.as_ref()
        .map_or(Value::Null, |r| json!({ "user": r.user, "from": r.from }))
}

fn command(c: &Option<ScheduledCommand>) -> Value {
    let Some(c) = c else { return Value::Null };
    let run = c.run.as_ref();
    json!({
        "argv": c.argv,
        "exit_code": run.and_then(|r| r.exit_code),
        "signal": run.and_then(|r| r.signal),
        "started": time(run.map(|r| r.started)),
        "pid": run.and_then(|r| r.pid),
        "ended": time(run.and_then(|r| r.ended)),
        "output": run.map(|r| r.output.clone()),
    })
}

pub fn state_name(m: Option<&Maintenance>) -> &'static str {
    match m.map(|m| m.phase) {
        None => "operational",
        Some(Phase::Pending) => "pending",
        Some(Phase::Active) => "maintenance",
        Some(Phase::Resuming) => "resuming",
    }
}

fn leaving(m: Option<&Maintenance>) -> Value {
    let Some(l) = m.and_then(|m| m.leaving.as_ref()) else {
        return Value::Null;
    };
    json!({
        "action": l.action,
        "started": rfc3339(l.started),
        "last_try": rfc3339(l.last_try),
        "tries": l.tries,
        "boot_id": l.boot_id,
        "finisher": l.finisher.as_ref().map(|c| json!({
            "boot_id": c.boot_id,
            "pid": c.pid,
            "since": rfc3339(c.since),
        })),
    })
}

pub fn to_json(i: &Inputs) -> Value {
    let mut v = full_json(i);
    if i.restricted {
        if let Some(o) = v.as_object_mut() {
            for f in ROOT_ONLY_FIELDS {
                o.remove(*f);
            }
            if let Some(e) = o.get_mut("last_episode").and_then(Value::as_object_mut) {
                for f in ROOT_ONLY_EPISODE_FIELDS {
                    e.remove(*f);
                }
            }
            o.insert("restricted".into(), Value::Bool(true));
        }
    }
    v
}

/// `umm history --json` for a caller who is not root.
pub fn public_history_json(history: &[Episode]) -> Value {
    let mut v = history_json(history);
    for e in v.as_array_mut().into_iter().flatten() {
        if let Some(o) = e.as_object_mut() {
            for f in ROOT_ONLY_EPISODE_FIELDS {
                o.remove(*f);
            }
        }
    }
    v
}

fn full_json(i: &Inputs) -> Value {
    let m = i.state.maintenance.as_ref();
    json!({
        "state": state_name(m),
        "enabled": i.settings.enabled && i.state.switch_on,
        "enabled_by_config": i.settings.enabled,
        "switch": if i.state.switch_on { "on" } else { "off" },
        "reason": m.map(|m| m.reason.as_str()),
        "since": time(m.map(|m| m.since.unwrap_or(m.requested))),
        "requested_at": time(m.map(|m| m.requested)),
        "requested_by": m.map_or(Value::Null, |m| requester(&m.requested_by)),
        "unclean_boots": i.state.unclean_boots,
        "reboot_count": i.settings.reboot_count,
        "counter_reset_time": i.settings.counter_reset_time.as_secs(),
        "unclean_boot_records": boots(&i.state.unclean_records),
        "crash_boots": m.map_or(Value::Array(vec![]), |m| boots(&m.crash_boots)),
        "command": m.map_or(Value::Null, |m| command(&m.command)),
        "leaving": leaving(m),
        "this_boot": i.this_boot.map_or(Value::Null, |b| json!({
            "boot_id": b.boot_id,
            "mode": b.mode,
            "reason": b.reason.map(|r| r.as_str()),
            "decided_by": b.decided_by,
            "skipped_by_cmdline": b.skipped_by_cmdline,
            "resumed": b.resumed,
        })),
        "init": i.init,
        "boot_menu": {
            "entries": i.menu.iter().map(|e| json!({
                "title": e.title,
                "kind": match e.kind { Kind::On => "umm=on", Kind::Off => "umm=off" },
                "id": e.id,
            })).collect::<Vec<_>>(),
            "this_boot_cmdline": i.cmdline_arg,
        },
        "config": {
            // As text: `json!` panics on a path that is not UTF-8.
            "files": i.sources.files.iter().map(|f| f.to_string_lossy()).collect::<Vec<_>>(),
            "legacy": i.sources.legacy,
            "error": i.config_error,
            "in_use": i.config_in_use.name(),
            "last_good_recorded": match i.config_in_use {
                InUse::LastGood(t) => Value::String(rfc3339(*t)),
                _ => Value::Null,
            },
        },
        "hooks": m.map_or(Value::Array(vec![]), |m| json!(m.hooks)),
        "last_episode": i.state.history.last().map_or(Value::Null, episode_json),
        "after_resume_pending": i.state.after_resume.is_some()
            || m.is_some_and(|m| m.phase == Phase::Resuming),
        "state_problem": i.state_problem,
        "history_entries": i.state.history.len(),
    })
}

fn episode_json(e: &Episode) -> Value {
    json!({
        "reason": e.reason.as_str(),
        "requested_at": rfc3339(e.requested),
        "requested_by": requester(&e.requested_by),
        "since": time(e.since),
        "ended": rfc3339(e.ended),
        "end": e.end,
        "command": command(&e.command),
        "hooks": e.hooks,
        "hook_failures": e.hooks.iter().filter(|h| !h.ok).map(|h| format!("{}/{}", h.phase, h.name)).collect::<Vec<_>>(),
        "verify": e.verify,
    })
}

pub fn history_json(history: &[Episode]) -> Value {
    Value::Array(history.iter().map(episode_json).collect())
}

/// One line per episode for `umm history`.
pub fn episode_line(e: &Episode) -> String {
    let who = e
        .requested_by
        .as_ref()
        .map(|r| {
            format!(
                " by {}{}",
                r.user,
                r.from
                    .as_deref()
                    .map(|f| format!(" from {f}"))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_default();
    let command = e.command.as_ref().map(|c| {
        let result = match c.run.as_ref() {
            Some(r) => match (r.exit_code, r.signal) {
                (Some(code), _) => format!("exited {code}"),
                (None, Some(sig)) => format!("signal {sig}"),
                _ => "did not finish".into(),
            },
            None => "not run".into(),
        };
        format!("; command {} {result}", shell_words(&c.argv))
    });
    let failures: Vec<_> = e
        .hooks
        .iter()
        .filter(|h| !h.ok)
        .map(|h| format!("{}/{}", h.phase, h.name))
        .collect();
    let hooks = if failures.is_empty() {
        String::new()
    } else {
        format!("; failed hooks: {}", failures.join(", "))
    };
    let verify = match &e.verify {
        None => String::new(),
        Some(v) if v.ok() => "; all services back".into(),
        Some(v) => format!(
            "; not back: {}; failed: {}",
            v.not_back.join(" "),
            v.failed.join(" ")
        ),
    };
    format!(
        "{} -> {} {} ({}{who}){}{hooks}{verify}",
        rfc3339(e.since.unwrap_or(e.requested)),
        rfc3339(e.ended),
        e.end,
        e.reason.as_str(),
        command.unwrap_or_default()
    )
}

pub fn to_text(i: &Inputs) -> String {
    let mut out = Vec::new();
    let m = i.state.maintenance.as_ref();
    let enabled = i.settings.enabled && i.state.switch_on;
    let headline = match m {
        None if !enabled => "operational (umm is disabled)".to_string(),
        None => "operational".to_string(),
        Some(m) if m.phase == Phase::Pending => format!(
            "pending: maintenance ({}) at the next boot, requested {}",
            m.reason.as_str(),
            rfc3339(m.requested)
        ),
        Some(m) if m.phase == Phase::Resuming => format!(
            "RESUMING: leaving maintenance ({}; in it since {}; umm off at {}); not finished until the normal target is reached and the off.d hooks and the check have run",
            m.reason.as_str(),
            rfc3339(m.since.unwrap_or(m.requested)),
            m.leaving
                .as_ref()
                .map_or_else(|| "umm off".into(), |l| rfc3339(l.started))
        ),
        Some(m) => format!(
            "MAINTENANCE ({}) since {}",
            m.reason.as_str(),
            rfc3339(m.since.unwrap_or(m.requested))
        ),
    };
    out.push(format!("State:        {headline}"));
    if let Some(m) = m {
        if let Some(r) = &m.requested_by {
            let from = r
                .from
                .as_deref()
                .map(|f| format!(" from {f}"))
                .unwrap_or_default();
            out.push(format!("Requested by: {}{from}", r.user));
        }
        if let Some(l) = &m.leaving {
            let finisher = l
                .finisher
                .as_ref()
                .map(|c| {
                    format!(
                        "; off.d hooks and check claimed by pid {} since {}",
                        c.pid,
                        rfc3339(c.since)
                    )
                })
                .unwrap_or_default();
            out.push(format!(
                "Leaving:      umm off{} {} time(s), last at {}{finisher}",
                if l.action == OffAction::Reboot {
                    " reboot"
                } else {
                    ""
                },
                l.tries,
                rfc3339(l.last_try)
            ));
        }
        if !m.crash_boots.is_empty() {
            out.push(format!(
                "Crash loop:   {} unclean boots:",
                m.crash_boots.len()
            ));
            for b in &m.crash_boots {
                out.push(format!(
                    "                {} started {}",
                    b.boot_id,
                    rfc3339(b.started)
                ));
            }
        }
        if let Some(c) = &m.command {
            let result = match &c.run {
                None => "not run yet".to_string(),
                Some(r) if r.ended.is_none() => match r.pid {
                    Some(pid) => format!("running since {}, pid {pid}", rfc3339(r.started)),
                    None => format!("running since {}", rfc3339(r.started)),
                },
                Some(r) => format!(
                    "{} at {}; output in {}",
                    match (r.exit_code, r.signal) {
                        (Some(code), _) => format!("exited {code}"),
                        (None, Some(sig)) => format!("killed by signal {sig}"),
                        _ => "ended".into(),
                    },
                    rfc3339(r.ended.unwrap_or(r.started)),
                    r.output
                ),
            };
            out.push(format!("Command:      {} ({result})", shell_words(&c.argv)));
        }
    }
    let after = if i.settings.counting_only {
        "counted only: no crash-loop maintenance while the configuration is broken".to_string()
    } else {
        format!("maintenance after more than {}", i.settings.reboot_count)
    };
    out.push(format!(
        "Unclean boots: {} in a row ({after}; reset by a clean shutdown or {} of uptime)",
        i.state.unclean_boots,
        format_span(i.settings.counter_reset_time)
    ));
    let switch = match (i.settings.enabled, i.state.switch_on) {
        (true, true) => "yes".to_string(),
        (true, false) => "no (umm disable)".to_string(),
        (false, _) => "no (enabled = false in the configuration)".to_string(),
    };
    out.push(format!("Enabled:      {switch}"));
    if let Some(b) = i.this_boot {
        let mode = match b.mode {
            Mode::Normal => "normal",
            Mode::Maintenance => "maintenance",
        };
        let mut line = format!("This boot:    {mode} (decided by {})", b.decided_by);
        if b.skipped_by_cmdline {
            line.push_str("; maintenance skipped by umm=off on the kernel command line");
        }
        if b.resumed {
            line.push_str("; resumed by umm off");
        }
        out.push(line);
    }
    out.push(format!("Init system:  {}", i.init));
    let on = i.menu.iter().filter(|e| e.kind == Kind::On).count();
    let off = i.menu.len() - on;
    let from = match i.cmdline_arg {
        Some(arg) => format!("; this boot has {arg} on its kernel command line"),
        None => String::new(),
    };
    out.push(format!(
        "Boot menu:    {on} maintenance and {off} skip entries{from}"
    ));
    let files: Vec<String> = i
        .sources
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    out.push(format!(
        "Config:       {}{}",
        if files.is_empty() {
            "defaults (no file)".to_string()
        } else {
            files.join(", ")
        },
        if i.sources.legacy {
            " (the original tool's format)"
        } else {
            ""
        }
    ));
    if let Some(e) = i.config_error {
        out.push(format!(
            "Config error: {e}; {} (shown above)",
            i.config_in_use.describe()
        ));
    }
    if let Some(p) = i.state_problem {
        out.push(format!("State file:   {p}"));
    }
    for h in m.map(|m| m.hooks.as_slice()).unwrap_or_default() {
        out.push(format!(
            "Hook:         {}/{}: {}",
            h.phase, h.name, h.result
        ));
    }
    if let Some(e) = i.state.history.last() {
        out.push(format!("Last episode: {}", episode_line(e)));
    }
    match m.map(|m| m.phase) {
        Some(Phase::Active) => {
            out.push("To leave:     umm off (resume now) or umm off reboot".into())
        }
        Some(Phase::Pending) => out.push("To cancel:    umm off".into()),
        Some(Phase::Resuming) => {
            out.push("To finish:    umm off (again: resumes and finishes) or umm off reboot".into())
        }
        None => {}
    }
    if i.restricted {
        out.push(
            "Details:      who asked, the scheduled command and hook results are shown to root only (sudo umm status)"
                .into(),
        );
    }
    out.join("\n")
}

/// An argv list shown the way a shell would read it back.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
