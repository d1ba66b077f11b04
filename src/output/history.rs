//! Maintenance episodes as `umm history` and `umm status` show them: one
//! typed view (`EpisodeView`) rendered as a line of text or as JSON, and
//! the pieces the status view shares with it (who asked, the scheduled
//! command, boots, fields shown to root only).

use serde::{Serialize, Serializer};

use crate::model::hook::HookRecord;
use crate::model::open::Open;
use crate::model::state::{BootRecord, Episode, EpisodeEnd, Reason, Requester, ScheduledCommand};
use crate::model::timefmt::rfc3339;
use crate::model::verify::VerifyResult;

/// A field a caller who is not root does not get: omitted from the JSON
/// (not null), left out of the text. Serialize with
/// `#[serde(skip_serializing_if = "RootOnly::is_hidden")]`.
#[derive(Clone, Debug, PartialEq)]
pub enum RootOnly<T> {
    Shown(T),
    Hidden,
}

impl<T> RootOnly<T> {
    /// `value` for root, nothing for anyone else.
    pub fn new(restricted: bool, value: impl FnOnce() -> T) -> RootOnly<T> {
        if restricted {
            RootOnly::Hidden
        } else {
            RootOnly::Shown(value())
        }
    }

    pub fn is_hidden(&self) -> bool {
        matches!(self, RootOnly::Hidden)
    }

    /// The value, for root.
    pub fn shown(&self) -> Option<&T> {
        match self {
            RootOnly::Shown(v) => Some(v),
            RootOnly::Hidden => None,
        }
    }
}

impl<T: Serialize> Serialize for RootOnly<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RootOnly::Shown(v) => v.serialize(serializer),
            // Never reached with the skip attribute; null rather than a lie.
            RootOnly::Hidden => serializer.serialize_none(),
        }
    }
}

/// A time, as every view shows it: RFC 3339, UTC.
pub fn time(t: i64) -> String {
    rfc3339(t)
}

/// Who asked for a maintenance, and from where.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct RequesterView {
    pub user: String,
    /// The ssh client's address.
    pub from: Option<String>,
}

impl RequesterView {
    pub fn new(r: &Requester) -> RequesterView {
        RequesterView {
            user: r.user.clone(),
            from: r.from.clone(),
        }
    }

    /// " by alice from 192.0.2.7".
    fn by(&self) -> String {
        let from = self
            .from
            .as_deref()
            .map(|f| format!(" from {f}"))
            .unwrap_or_default();
        format!(" by {}{from}", self.user)
    }
}

/// The scheduled command and how its run went.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct CommandView {
    pub argv: Vec<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// When it started; none: not run (yet).
    pub started: Option<String>,
    /// Its process while it runs.
    pub pid: Option<u32>,
    pub ended: Option<String>,
    /// Where its output went.
    pub output: Option<String>,
}

impl CommandView {
    pub fn new(c: &ScheduledCommand) -> CommandView {
        let run = c.run.as_ref();
        CommandView {
            argv: c.argv.clone(),
            exit_code: run.and_then(|r| r.exit_code),
            signal: run.and_then(|r| r.signal),
            started: run.map(|r| time(r.started)),
            pid: run.and_then(|r| r.pid),
            ended: run.and_then(|r| r.ended).map(time),
            output: run.map(|r| r.output.clone()),
        }
    }

    /// How its run ended, as a history line says it.
    fn result(&self) -> String {
        if self.started.is_none() {
            return "not run".into();
        }
        match (self.exit_code, self.signal) {
            (Some(code), _) => format!("exited {code}"),
            (None, Some(sig)) => format!("signal {sig}"),
            _ => "did not finish".into(),
        }
    }
}

/// A boot, by id and start.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct BootView {
    pub boot_id: String,
    pub started: String,
}

impl BootView {
    pub fn list(records: &[BootRecord]) -> Vec<BootView> {
        records
            .iter()
            .map(|b| BootView {
                boot_id: b.boot_id.clone(),
                started: time(b.started),
            })
            .collect()
    }
}

/// One finished maintenance.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct EpisodeView {
    pub reason: Reason,
    pub requested_at: String,
    /// When maintenance was reached (none: it never was, a cancelled request).
    pub since: Option<String>,
    pub ended: String,
    pub end: Open<EpisodeEnd>,
    #[serde(skip_serializing_if = "RootOnly::is_hidden")]
    pub requested_by: RootOnly<Option<RequesterView>>,
    #[serde(skip_serializing_if = "RootOnly::is_hidden")]
    pub command: RootOnly<Option<CommandView>>,
    #[serde(skip_serializing_if = "RootOnly::is_hidden")]
    pub hooks: RootOnly<Vec<HookRecord>>,
    /// `phase/name` of each hook that failed.
    #[serde(skip_serializing_if = "RootOnly::is_hidden")]
    pub hook_failures: RootOnly<Vec<String>>,
    /// Did every service come back (none until checked).
    #[serde(skip_serializing_if = "RootOnly::is_hidden")]
    pub verify: RootOnly<Option<VerifyResult>>,
}

/// `phase/name` of a hook, as messages name it.
pub fn hook_name(h: &HookRecord) -> String {
    format!("{}/{}", h.phase, h.name)
}

impl EpisodeView {
    pub fn new(e: &Episode, restricted: bool) -> EpisodeView {
        EpisodeView {
            reason: e.reason,
            requested_at: time(e.requested),
            since: e.since.map(time),
            ended: time(e.ended),
            end: e.end.clone(),
            requested_by: RootOnly::new(restricted, || {
                e.requested_by.as_ref().map(RequesterView::new)
            }),
            command: RootOnly::new(restricted, || e.command.as_ref().map(CommandView::new)),
            hooks: RootOnly::new(restricted, || e.hooks.clone()),
            hook_failures: RootOnly::new(restricted, || {
                e.hooks.iter().filter(|h| !h.ok).map(hook_name).collect()
            }),
            verify: RootOnly::new(restricted, || e.verify.clone()),
        }
    }

    /// One line for `umm history`, and `umm status`'s last episode.
    pub fn line(&self) -> String {
        let who = self
            .requested_by
            .shown()
            .and_then(Option::as_ref)
            .map(RequesterView::by)
            .unwrap_or_default();
        let command = self
            .command
            .shown()
            .and_then(Option::as_ref)
            .map(|c| format!("; command {} {}", shell_words(&c.argv), c.result()))
            .unwrap_or_default();
        let failures = self.hook_failures.shown().map_or(&[][..], Vec::as_slice);
        let hooks = if failures.is_empty() {
            String::new()
        } else {
            format!("; failed hooks: {}", failures.join(", "))
        };
        let verify = match self.verify.shown().and_then(Option::as_ref) {
            None => String::new(),
            Some(v) if v.ok() => "; all services back".into(),
            Some(v) => format!(
                "; not back: {}; failed: {}",
                v.not_back.join(" "),
                v.failed.join(" ")
            ),
        };
        format!(
            "{} -> {} {} ({}{who}){command}{hooks}{verify}",
            self.since.as_deref().unwrap_or(&self.requested_at),
            self.ended,
            self.end,
            self.reason.as_str(),
        )
    }
}

/// `umm history`: the episodes, oldest first.
pub fn episodes(history: &[Episode], restricted: bool) -> Vec<EpisodeView> {
    history
        .iter()
        .map(|e| EpisodeView::new(e, restricted))
        .collect()
}

/// `umm history` as text.
pub fn text(episodes: &[EpisodeView]) -> String {
    if episodes.is_empty() {
        return "No maintenance episodes yet.".into();
    }
    episodes
        .iter()
        .map(EpisodeView::line)
        .collect::<Vec<_>>()
        .join("\n")
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

/// The scheduled command as the system log shows it: its program and how
/// many arguments follow, never the arguments themselves (they may carry
/// a token: the state file that keeps them is root's only, the journal
/// and syslog are not). The program is shown the way a shell reads it.
pub fn program_and_count(argv: &[String]) -> String {
    let Some((program, args)) = argv.split_first() else {
        return "an empty command".into();
    };
    let program = shell_words(std::slice::from_ref(program));
    match args.len() {
        1 => format!("{program} with 1 argument"),
        n => format!("{program} with {n} arguments"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hook::HookPhase;
    use serde_json::Value;

    fn episode() -> Episode {
        Episode {
            id: 3,
            reason: Reason::Cmdline,
            requested: 1,
            since: None,
            ended: 2,
            requested_by: Some(Requester {
                user: "bob".into(),
                from: None,
                extra: Default::default(),
            }),
            command: Some(ScheduledCommand {
                argv: vec!["sh".into(), "-c".into(), "exit 3".into()],
                run: None,
                extra: Default::default(),
            }),
            end: EpisodeEnd::Cancelled.into(),
            hooks: vec![HookRecord {
                phase: HookPhase::Check.into(),
                name: "10-q".into(),
                ok: false,
                result: "exited 4".into(),
                output_tail: vec![],
                extra: Default::default(),
            }],
            verify: None,
            fleet: None,
            extra: Default::default(),
        }
    }

    fn json(restricted: bool) -> Value {
        let text = super::super::json::pretty(&episodes(&[episode()], restricted)).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// `umm history --json`: each episode's fields and their types; a
    /// caller who is not root gets neither who asked, the command, the
    /// hooks nor the check (omitted, not null).
    #[test]
    fn history_json_has_its_fields_for_root_and_fewer_for_others() {
        let v = json(false);
        let e = &v[0];
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "command",
                "end",
                "ended",
                "hook_failures",
                "hooks",
                "reason",
                "requested_at",
                "requested_by",
                "since",
                "verify"
            ]
        );
        assert_eq!(e["end"], "cancelled");
        assert_eq!(e["reason"], "cmdline");
        assert_eq!(e["since"], Value::Null);
        assert_eq!(e["command"]["started"], Value::Null);
        assert_eq!(e["hook_failures"], serde_json::json!(["check/10-q"]));
        assert_eq!(e["verify"], Value::Null);
        let v = json(true);
        let keys: Vec<&str> = v[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["end", "ended", "reason", "requested_at", "since"]);
    }

    #[test]
    fn a_history_line_says_what_the_json_says() {
        let line = EpisodeView::new(&episode(), false).line();
        assert_eq!(
            line,
            "1970-01-01T00:00:01Z -> 1970-01-01T00:00:02Z cancelled (cmdline by bob); \
             command sh -c 'exit 3' not run; failed hooks: check/10-q"
        );
        let line = EpisodeView::new(&episode(), true).line();
        assert_eq!(
            line,
            "1970-01-01T00:00:01Z -> 1970-01-01T00:00:02Z cancelled (cmdline)"
        );
    }
}
