//! The state changes umm logs, as journal events: each kind has a stable
//! `MESSAGE_ID` (fixed here, never changed once released), and each line
//! carries structured fields (`UMM_EVENT`, `UMM_STATE`, `UMM_REASON`,
//! `UMM_EPISODE`, ...), so that `journalctl MESSAGE_ID=<id>` finds every
//! crash-loop entry of a fleet. The catalog
//! (`packaging/systemd/umm.catalog`, installed in
//! /usr/lib/systemd/catalog) explains each one (`journalctl -x`).
//!
//! The fields go through the `log` crate's key-values: the journal sink
//! (`logging`, by `systemd-journal-logger`) sends them as journal fields;
//! syslog and the kernel log get the same line without them. Under a test
//! root they are also written to `<root>/run/umm/journal.log`.

use std::fmt;

use log::Level;

use crate::model::state::{NodeState, Reason};

/// A kind of state change, with its stable MESSAGE_ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Entered,
    Held,
    Counted,
    CounterReset,
    Requested,
    Cancelled,
    Resuming,
    Resumed,
    Refused,
    HookFailed,
    Enabled,
    Disabled,
    FleetSlotTaken,
    FleetSlotReleased,
    FleetReleasePending,
}

impl Kind {
    pub const ALL: [Kind; 15] = [
        Kind::Entered,
        Kind::Held,
        Kind::Counted,
        Kind::CounterReset,
        Kind::Requested,
        Kind::Cancelled,
        Kind::Resuming,
        Kind::Resumed,
        Kind::Refused,
        Kind::HookFailed,
        Kind::Enabled,
        Kind::Disabled,
        Kind::FleetSlotTaken,
        Kind::FleetSlotReleased,
        Kind::FleetReleasePending,
    ];

    /// The journal's MESSAGE_ID: 128 bits as 32 lowercase hex digits
    /// (random, made once; never change one).
    pub fn message_id(self) -> &'static str {
        match self {
            Kind::Entered => "705a2a9089de48c1a261e47f58e427f8",
            Kind::Held => "f116fff6b4974e3cbe39f664b59e41ec",
            Kind::Counted => "fb4345c27c0a4a60a31be33cd5a3174d",
            Kind::CounterReset => "44c28149592545e2b649aa59b11d80de",
            Kind::Requested => "41fc747cc2c347c5be9d6604ff18192e",
            Kind::Cancelled => "0d8509f551a24614b41b55270c7346e2",
            Kind::Resuming => "63a27f196a084adf8576f7f07aaf5e90",
            Kind::Resumed => "99959cd78dc54e20a8705c065d7312de",
            Kind::Refused => "b8a5a30ac6ab47a6a2974807bbd1839d",
            Kind::HookFailed => "62f6b50155ce4ea694db36677c3750f2",
            Kind::Enabled => "a3a1e865e00944ed82f29d3342d432e2",
            Kind::Disabled => "88ef6cfe60e643b6a773fe3c13b05311",
            Kind::FleetSlotTaken => "de68416c8b7448b2bafcd19480512bd3",
            Kind::FleetSlotReleased => "83c4d3f2552047c1b68519e8aea7d16c",
            Kind::FleetReleasePending => "c7d75d17f1e14ab9944d5842b2a7c2f2",
        }
    }

    /// `UMM_EVENT`: the kind as a word.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Entered => "entered",
            Kind::Held => "held",
            Kind::Counted => "counted",
            Kind::CounterReset => "counter-reset",
            Kind::Requested => "requested",
            Kind::Cancelled => "cancelled",
            Kind::Resuming => "resuming",
            Kind::Resumed => "resumed",
            Kind::Refused => "refused",
            Kind::HookFailed => "hook-failed",
            Kind::Enabled => "enabled",
            Kind::Disabled => "disabled",
            Kind::FleetSlotTaken => "fleet-slot-taken",
            Kind::FleetSlotReleased => "fleet-slot-released",
            Kind::FleetReleasePending => "fleet-release-pending",
        }
    }
}

/// One state change with what its fields say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change<'a> {
    /// A boot stopped in maintenance for a new episode.
    Entered {
        reason: Reason,
        episode: u64,
        unclean_boots: u32,
    },
    /// Maintenance entered in an earlier boot still holds.
    Held {
        reason: Reason,
        episode: u64,
    },
    /// The previous boot was unclean (`state`: the node's, once decided).
    Counted {
        unclean_boots: u32,
        threshold: u32,
        state: NodeState,
    },
    /// The counter went back to 0.
    CounterReset {
        cause: &'a str,
        state: NodeState,
    },
    /// `umm on`: maintenance requested for the next boot.
    Requested {
        episode: u64,
        by: &'a str,
    },
    /// `umm off`: a pending request cancelled.
    Cancelled {
        episode: u64,
    },
    /// `umm off` began leaving (`resume` or `reboot`).
    Resuming {
        reason: Reason,
        episode: u64,
        action: &'a str,
    },
    /// Leaving finished: the episode is closed.
    Resumed {
        reason: Reason,
        episode: u64,
        not_back: usize,
    },
    /// A command refused.
    Refused {
        command: &'a str,
        why: &'a str,
    },
    /// A hook failed or was refused.
    HookFailed {
        phase: &'a str,
        hook: &'a str,
        result: &'a str,
    },
    Enabled,
    Disabled,
    /// A fleet slot taken (`umm on`, or a crash-loop maintenance boot).
    FleetSlotTaken {
        group: &'a str,
        id: &'a str,
    },
    /// A fleet slot given back.
    FleetSlotReleased {
        group: &'a str,
        id: &'a str,
    },
    /// Giving a slot back failed: it stays owed and is retried.
    FleetReleasePending {
        group: &'a str,
        id: &'a str,
        error: &'a str,
    },
}

impl Change<'_> {
    pub fn kind(&self) -> Kind {
        match self {
            Change::Entered { .. } => Kind::Entered,
            Change::Held { .. } => Kind::Held,
            Change::Counted { .. } => Kind::Counted,
            Change::CounterReset { .. } => Kind::CounterReset,
            Change::Requested { .. } => Kind::Requested,
            Change::Cancelled { .. } => Kind::Cancelled,
            Change::Resuming { .. } => Kind::Resuming,
            Change::Resumed { .. } => Kind::Resumed,
            Change::Refused { .. } => Kind::Refused,
            Change::HookFailed { .. } => Kind::HookFailed,
            Change::Enabled => Kind::Enabled,
            Change::Disabled => Kind::Disabled,
            Change::FleetSlotTaken { .. } => Kind::FleetSlotTaken,
            Change::FleetSlotReleased { .. } => Kind::FleetSlotReleased,
            Change::FleetReleasePending { .. } => Kind::FleetReleasePending,
        }
    }

    /// The node's state once this happened (`None`: not known here).
    fn state(&self) -> Option<NodeState> {
        match self {
            Change::Entered { .. } | Change::Held { .. } => Some(NodeState::Maintenance),
            Change::Requested { .. } => Some(NodeState::Pending),
            Change::Cancelled { .. } | Change::Resumed { .. } => Some(NodeState::Operational),
            Change::Resuming { .. } => Some(NodeState::Resuming),
            Change::Counted { state, .. } | Change::CounterReset { state, .. } => Some(*state),
            _ => None,
        }
    }

    /// Every field of the journal entry but MESSAGE: MESSAGE_ID first.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let kind = self.kind();
        let mut f: Vec<(&'static str, String)> = vec![
            ("MESSAGE_ID", kind.message_id().into()),
            ("UMM_EVENT", kind.name().into()),
        ];
        if let Some(s) = self.state() {
            f.push(("UMM_STATE", s.as_str().into()));
        }
        match self {
            Change::Entered {
                reason,
                episode,
                unclean_boots,
            } => {
                f.push(("UMM_REASON", reason.as_str().into()));
                f.push(("UMM_EPISODE", episode.to_string()));
                f.push(("UMM_UNCLEAN_BOOTS", unclean_boots.to_string()));
            }
            Change::Held { reason, episode } => {
                f.push(("UMM_REASON", reason.as_str().into()));
                f.push(("UMM_EPISODE", episode.to_string()));
            }
            Change::Counted {
                unclean_boots,
                threshold,
                ..
            } => {
                f.push(("UMM_UNCLEAN_BOOTS", unclean_boots.to_string()));
                f.push(("UMM_REBOOT_COUNT", threshold.to_string()));
            }
            Change::CounterReset { cause, .. } => f.push(("UMM_CAUSE", (*cause).into())),
            Change::Requested { episode, by } => {
                f.push(("UMM_REASON", Reason::Manual.as_str().into()));
                f.push(("UMM_EPISODE", episode.to_string()));
                f.push(("UMM_REQUESTED_BY", (*by).into()));
            }
            Change::Cancelled { episode } => f.push(("UMM_EPISODE", episode.to_string())),
            Change::Resuming {
                reason,
                episode,
                action,
            } => {
                f.push(("UMM_REASON", reason.as_str().into()));
                f.push(("UMM_EPISODE", episode.to_string()));
                f.push(("UMM_ACTION", (*action).into()));
            }
            Change::Resumed {
                reason,
                episode,
                not_back,
            } => {
                f.push(("UMM_REASON", reason.as_str().into()));
                f.push(("UMM_EPISODE", episode.to_string()));
                f.push(("UMM_SERVICES_NOT_BACK", not_back.to_string()));
            }
            Change::Refused { command, why } => {
                f.push(("UMM_COMMAND", (*command).into()));
                f.push(("UMM_WHY", (*why).into()));
            }
            Change::HookFailed {
                phase,
                hook,
                result,
            } => {
                f.push(("UMM_PHASE", (*phase).into()));
                f.push(("UMM_HOOK", (*hook).into()));
                f.push(("UMM_RESULT", (*result).into()));
            }
            Change::Enabled | Change::Disabled => {}
            Change::FleetSlotTaken { group, id } | Change::FleetSlotReleased { group, id } => {
                f.push(("UMM_FLEET_GROUP", (*group).into()));
                f.push(("UMM_FLEET_ID", (*id).into()));
            }
            Change::FleetReleasePending { group, id, error } => {
                f.push(("UMM_FLEET_GROUP", (*group).into()));
                f.push(("UMM_FLEET_ID", (*id).into()));
                f.push(("UMM_WHY", (*error).into()));
            }
        }
        f
    }
}

/// Logs `message` at `level` as the journal entry of `change`.
pub fn log(level: Level, change: &Change, message: fmt::Arguments) {
    let fields = change.fields();
    let kv: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let source: &[(&str, &str)] = &kv;
    log::logger().log(
        &log::Record::builder()
            .args(message)
            .level(level)
            .target("umm")
            .key_values(&source)
            .build(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: Kind) -> Change<'static> {
        match kind {
            Kind::Entered => Change::Entered {
                reason: Reason::CrashLoop,
                episode: 3,
                unclean_boots: 3,
            },
            Kind::Held => Change::Held {
                reason: Reason::CrashLoop,
                episode: 3,
            },
            Kind::Counted => Change::Counted {
                unclean_boots: 1,
                threshold: 2,
                state: NodeState::Operational,
            },
            Kind::CounterReset => Change::CounterReset {
                cause: "clean shutdown",
                state: NodeState::Operational,
            },
            Kind::Requested => Change::Requested {
                episode: 4,
                by: "alice",
            },
            Kind::Cancelled => Change::Cancelled { episode: 4 },
            Kind::Resuming => Change::Resuming {
                reason: Reason::Manual,
                episode: 4,
                action: "resume",
            },
            Kind::Resumed => Change::Resumed {
                reason: Reason::Manual,
                episode: 4,
                not_back: 1,
            },
            Kind::Refused => Change::Refused {
                command: "on",
                why: "already in maintenance",
            },
            Kind::HookFailed => Change::HookFailed {
                phase: "pre-off",
                hook: "50-drain",
                result: "exited 3",
            },
            Kind::Enabled => Change::Enabled,
            Kind::Disabled => Change::Disabled,
            Kind::FleetSlotTaken => Change::FleetSlotTaken {
                group: "ctl",
                id: "node-a",
            },
            Kind::FleetSlotReleased => Change::FleetSlotReleased {
                group: "ctl",
                id: "node-a",
            },
            Kind::FleetReleasePending => Change::FleetReleasePending {
                group: "ctl",
                id: "node-a",
                error: "connection refused",
            },
        }
    }

    #[test]
    fn every_kind_has_its_own_well_formed_message_id() {
        let mut seen = std::collections::BTreeSet::new();
        for kind in Kind::ALL {
            let id = kind.message_id();
            assert_eq!(id.len(), 32, "{kind:?}");
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
                "{kind:?}: {id}"
            );
            assert!(seen.insert(id), "{kind:?} shares {id}");
            assert_eq!(sample(kind).kind(), kind);
        }
    }

    #[test]
    fn every_event_carries_its_id_and_fields() {
        let must: &[(Kind, &[&str])] = &[
            (
                Kind::Entered,
                &[
                    "UMM_STATE",
                    "UMM_REASON",
                    "UMM_EPISODE",
                    "UMM_UNCLEAN_BOOTS",
                ],
            ),
            (Kind::Held, &["UMM_STATE", "UMM_REASON", "UMM_EPISODE"]),
            (
                Kind::Counted,
                &["UMM_STATE", "UMM_UNCLEAN_BOOTS", "UMM_REBOOT_COUNT"],
            ),
            (Kind::CounterReset, &["UMM_STATE", "UMM_CAUSE"]),
            (
                Kind::Requested,
                &["UMM_STATE", "UMM_REASON", "UMM_EPISODE", "UMM_REQUESTED_BY"],
            ),
            (Kind::Cancelled, &["UMM_STATE", "UMM_EPISODE"]),
            (
                Kind::Resuming,
                &["UMM_STATE", "UMM_REASON", "UMM_EPISODE", "UMM_ACTION"],
            ),
            (
                Kind::Resumed,
                &[
                    "UMM_STATE",
                    "UMM_REASON",
                    "UMM_EPISODE",
                    "UMM_SERVICES_NOT_BACK",
                ],
            ),
            (Kind::Refused, &["UMM_COMMAND", "UMM_WHY"]),
            (Kind::HookFailed, &["UMM_PHASE", "UMM_HOOK", "UMM_RESULT"]),
            (Kind::Enabled, &[]),
            (Kind::Disabled, &[]),
            (Kind::FleetSlotTaken, &["UMM_FLEET_GROUP", "UMM_FLEET_ID"]),
            (
                Kind::FleetSlotReleased,
                &["UMM_FLEET_GROUP", "UMM_FLEET_ID"],
            ),
            (
                Kind::FleetReleasePending,
                &["UMM_FLEET_GROUP", "UMM_FLEET_ID", "UMM_WHY"],
            ),
        ];
        assert_eq!(must.len(), Kind::ALL.len());
        for (kind, names) in must {
            let fields = sample(*kind).fields();
            assert_eq!(
                fields[0],
                ("MESSAGE_ID", kind.message_id().to_string()),
                "{kind:?}"
            );
            assert_eq!(fields[1], ("UMM_EVENT", kind.name().to_string()));
            for name in *names {
                assert!(
                    fields.iter().any(|(k, v)| k == name && !v.is_empty()),
                    "{kind:?} lacks {name}: {fields:?}"
                );
            }
            for (k, _) in &fields {
                assert!(
                    k.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                    "{k} is not a journal field name"
                );
            }
        }
    }

    #[test]
    fn the_crash_loop_entry_says_maintenance_and_its_reason() {
        let fields = sample(Kind::Entered).fields();
        assert!(fields.contains(&("UMM_STATE", "maintenance".into())));
        assert!(fields.contains(&("UMM_REASON", "crash-loop".into())));
        assert!(fields.contains(&("UMM_EPISODE", "3".into())));
    }

    #[test]
    fn the_catalog_explains_every_message_id() {
        let catalog = include_str!("../../packaging/systemd/umm.catalog");
        for kind in Kind::ALL {
            let head = format!("-- {}\n", kind.message_id());
            let at = catalog
                .find(&head)
                .unwrap_or_else(|| panic!("umm.catalog has no entry for {kind:?}"));
            let entry = &catalog[at + head.len()..];
            let entry = entry.split("\n-- ").next().unwrap();
            assert!(entry.starts_with("Subject: "), "{kind:?}: {entry}");
            assert!(entry.contains("\nDefined-By: umm\n"), "{kind:?}");
        }
    }
}
