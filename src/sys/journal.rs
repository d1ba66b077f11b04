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

/// Declares `Kind` and its table: one line per kind, so that the
/// MESSAGE_ID, the `UMM_EVENT` word, what it means and the fields it
/// carries are written once. docs/monitoring.md's table and the man page
/// are generated from it; the tests check the fields against `Change` and
/// the ids against packaging/systemd/umm.catalog.
macro_rules! kinds {
    ($($kind:ident $id:literal $name:literal $about:literal [$($field:literal),*];)*) => {
        /// A kind of state change, with its stable MESSAGE_ID.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Kind {
            $($kind,)*
        }

        impl Kind {
            /// Every kind, in the order the docs list them.
            pub const ALL: &'static [Kind] = &[$(Kind::$kind,)*];

            /// The journal's MESSAGE_ID: 128 bits as 32 lowercase hex
            /// digits (random, made once; never change one).
            pub fn message_id(self) -> &'static str {
                match self {
                    $(Kind::$kind => $id,)*
                }
            }

            /// `UMM_EVENT`: the kind as a word.
            pub fn name(self) -> &'static str {
                match self {
                    $(Kind::$kind => $name,)*
                }
            }

            /// What happened, for the docs.
            pub fn about(self) -> &'static str {
                match self {
                    $(Kind::$kind => $about,)*
                }
            }

            /// The fields its entries carry besides MESSAGE_ID and
            /// UMM_EVENT, for the docs (checked against `Change::fields`).
            pub fn documented_fields(self) -> &'static [&'static str] {
                match self {
                    $(Kind::$kind => &[$($field),*],)*
                }
            }
        }
    };
}

kinds! {
    Entered "705a2a9089de48c1a261e47f58e427f8" "entered"
        "a boot stopped in maintenance (a new episode)"
        ["UMM_STATE", "UMM_REASON", "UMM_EPISODE", "UMM_UNCLEAN_BOOTS"];
    BootFailure "1fd49e7ee0564c58bf3e3dfa20d245b8" "boot-failure"
        "GRUB gave up on a kernel that never reached userspace and booted the last good one's maintenance entry"
        ["UMM_STATE", "UMM_REASON", "UMM_EPISODE", "UMM_KERNEL", "UMM_ATTEMPTS", "UMM_GOOD_KERNEL"];
    Held "f116fff6b4974e3cbe39f664b59e41ec" "held"
        "maintenance entered in an earlier boot holds for this one"
        ["UMM_STATE", "UMM_REASON", "UMM_EPISODE"];
    Counted "fb4345c27c0a4a60a31be33cd5a3174d" "counted"
        "the previous boot was unclean"
        ["UMM_STATE", "UMM_UNCLEAN_BOOTS", "UMM_REBOOT_COUNT"];
    CounterReset "44c28149592545e2b649aa59b11d80de" "counter-reset"
        "the counter of unclean boots went back to 0"
        ["UMM_STATE", "UMM_CAUSE"];
    Requested "41fc747cc2c347c5be9d6604ff18192e" "requested"
        "`umm on`: maintenance requested for the next boot"
        ["UMM_STATE", "UMM_REASON", "UMM_EPISODE", "UMM_REQUESTED_BY"];
    Cancelled "0d8509f551a24614b41b55270c7346e2" "cancelled"
        "`umm off` cancelled a pending request"
        ["UMM_STATE", "UMM_EPISODE"];
    Resuming "63a27f196a084adf8576f7f07aaf5e90" "resuming"
        "`umm off` or `umm off reboot` began leaving"
        ["UMM_STATE", "UMM_REASON", "UMM_EPISODE", "UMM_ACTION"];
    Resumed "99959cd78dc54e20a8705c065d7312de" "resumed"
        "leaving finished: the episode is closed"
        ["UMM_STATE", "UMM_REASON", "UMM_EPISODE", "UMM_SERVICES_NOT_BACK"];
    Refused "b8a5a30ac6ab47a6a2974807bbd1839d" "refused"
        "a command was refused"
        ["UMM_COMMAND", "UMM_WHY"];
    HookFailed "62f6b50155ce4ea694db36677c3750f2" "hook-failed"
        "a hook failed or was refused"
        ["UMM_PHASE", "UMM_HOOK", "UMM_RESULT"];
    Enabled "a3a1e865e00944ed82f29d3342d432e2" "enabled"
        "`umm enable`"
        [];
    Disabled "88ef6cfe60e643b6a773fe3c13b05311" "disabled"
        "`umm disable`"
        [];
    FleetSlotTaken "de68416c8b7448b2bafcd19480512bd3" "fleet-slot-taken"
        "a fleet slot taken (`umm on`, or a crash-loop maintenance boot)"
        ["UMM_FLEET_GROUP", "UMM_FLEET_ID"];
    FleetSlotReleased "83c4d3f2552047c1b68519e8aea7d16c" "fleet-slot-released"
        "a fleet slot given back"
        ["UMM_FLEET_GROUP", "UMM_FLEET_ID"];
    FleetReleasePending "c7d75d17f1e14ab9944d5842b2a7c2f2" "fleet-release-pending"
        "giving a slot back failed: it stays owed and is retried"
        ["UMM_FLEET_GROUP", "UMM_FLEET_ID", "UMM_WHY"];
    Queued "8a48d5a2ce524e96b047a70340eb55b9" "queued"
        "`umm on --queue`: a request waits for its turn (window, gate, slot)"
        ["UMM_REQUESTED_BY", "UMM_THEN"];
    QueueCancelled "338448e92acc46c8b2ae541594406ce8" "queue-cancelled"
        "`umm off` cancelled a queued request"
        [];
    QueueExpired "9d6b5f1feb6443f580de9ca8f28b712d" "queue-expired"
        "a queued request was still waiting after its span: it ended unserved"
        ["UMM_WHY"];
    QueueDropped "6c02fae52b914fe7ae36579c74158cfc" "queue-dropped"
        "a queued request's turn came but `umm on` would refuse it: it was dropped"
        ["UMM_WHY"];
    RollHalted "4b1d7c0e9a5f4e2c8d3b6a1f0e7c9d52" "roll-halted"
        "the node halts its group's roll: its `umm on --then` work failed (it stays in maintenance), or the check after leaving was not clean (it keeps its slot)"
        ["UMM_STATE", "UMM_EPISODE", "UMM_WHY"];
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
    /// GRUB gave up on `kernel` after `attempts` attempts and booted the
    /// maintenance entry of `good` (this boot's kernel).
    BootFailure {
        episode: u64,
        kernel: &'a str,
        attempts: usize,
        good: &'a str,
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
    /// `umm on --queue`: a request queued.
    Queued {
        by: &'a str,
        then: &'a str,
    },
    /// `umm off`: a queued request cancelled.
    QueueCancelled,
    /// A queued request's span ended (`why`: what it waited for last).
    QueueExpired {
        why: &'a str,
    },
    /// A queued request's turn was refused by the rules of `umm on`.
    QueueDropped {
        why: &'a str,
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
    /// The node halts its group's roll: its `umm on --then` work failed
    /// (it stays in maintenance), or the check after leaving was not clean
    /// (back in service, it keeps its slot).
    RollHalted {
        episode: u64,
        why: &'a str,
        in_maintenance: bool,
    },
}

impl Change<'_> {
    pub fn kind(&self) -> Kind {
        match self {
            Change::Entered { .. } => Kind::Entered,
            Change::BootFailure { .. } => Kind::BootFailure,
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
            Change::Queued { .. } => Kind::Queued,
            Change::QueueCancelled => Kind::QueueCancelled,
            Change::QueueExpired { .. } => Kind::QueueExpired,
            Change::QueueDropped { .. } => Kind::QueueDropped,
            Change::RollHalted { .. } => Kind::RollHalted,
        }
    }

    /// The node's state once this happened (`None`: not known here).
    fn state(&self) -> Option<NodeState> {
        match self {
            Change::Entered { .. }
            | Change::Held { .. }
            | Change::BootFailure { .. }
            | Change::RollHalted {
                in_maintenance: true,
                ..
            } => Some(NodeState::Maintenance),
            Change::RollHalted { .. } => Some(NodeState::Operational),
            Change::Requested { .. } => Some(NodeState::Pending),
            Change::Cancelled { .. } | Change::Resumed { .. } => Some(NodeState::Operational),
            Change::Resuming { .. } => Some(NodeState::Resuming),
            Change::Counted { state, .. } | Change::CounterReset { state, .. } => Some(*state),
            _ => None,
        }
    }

    /// Every field of the journal entry but MESSAGE: MESSAGE_ID first,
    /// then UMM_EVENT, UMM_STATE, the episode's and the kind's own.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let kind = self.kind();
        let mut f: Vec<(&'static str, String)> = vec![
            ("MESSAGE_ID", kind.message_id().into()),
            ("UMM_EVENT", kind.name().into()),
        ];
        if let Some(s) = self.state() {
            f.push(("UMM_STATE", s.as_str().into()));
        }
        if let Some(reason) = self.reason() {
            f.push(("UMM_REASON", reason.as_str().into()));
        }
        if let Some(episode) = self.episode() {
            f.push(("UMM_EPISODE", episode.to_string()));
        }
        f.extend(self.own_fields());
        f
    }

    /// UMM_REASON: why the node is, or is going, in maintenance.
    fn reason(&self) -> Option<Reason> {
        match self {
            Change::Entered { reason, .. }
            | Change::Held { reason, .. }
            | Change::Resuming { reason, .. }
            | Change::Resumed { reason, .. } => Some(*reason),
            Change::Requested { .. } => Some(Reason::Manual),
            Change::BootFailure { .. } => Some(Reason::BootFailure),
            _ => None,
        }
    }

    /// UMM_EPISODE: the episode it belongs to.
    fn episode(&self) -> Option<u64> {
        match self {
            Change::Entered { episode, .. }
            | Change::Held { episode, .. }
            | Change::BootFailure { episode, .. }
            | Change::Requested { episode, .. }
            | Change::Cancelled { episode }
            | Change::Resuming { episode, .. }
            | Change::Resumed { episode, .. }
            | Change::RollHalted { episode, .. } => Some(*episode),
            _ => None,
        }
    }

    /// The fields only this kind carries.
    fn own_fields(&self) -> Vec<(&'static str, String)> {
        match self {
            Change::Entered { unclean_boots, .. } => {
                vec![("UMM_UNCLEAN_BOOTS", unclean_boots.to_string())]
            }
            Change::Counted {
                unclean_boots,
                threshold,
                ..
            } => vec![
                ("UMM_UNCLEAN_BOOTS", unclean_boots.to_string()),
                ("UMM_REBOOT_COUNT", threshold.to_string()),
            ],
            Change::BootFailure {
                kernel,
                attempts,
                good,
                ..
            } => vec![
                ("UMM_KERNEL", (*kernel).into()),
                ("UMM_ATTEMPTS", attempts.to_string()),
                ("UMM_GOOD_KERNEL", (*good).into()),
            ],
            Change::CounterReset { cause, .. } => vec![("UMM_CAUSE", (*cause).into())],
            Change::Requested { by, .. } => vec![("UMM_REQUESTED_BY", (*by).into())],
            Change::Resuming { action, .. } => vec![("UMM_ACTION", (*action).into())],
            Change::RollHalted { why, .. } => vec![("UMM_WHY", (*why).into())],
            Change::Resumed { not_back, .. } => {
                vec![("UMM_SERVICES_NOT_BACK", not_back.to_string())]
            }
            Change::Refused { command, why } => {
                vec![
                    ("UMM_COMMAND", (*command).into()),
                    ("UMM_WHY", (*why).into()),
                ]
            }
            Change::HookFailed {
                phase,
                hook,
                result,
            } => vec![
                ("UMM_PHASE", (*phase).into()),
                ("UMM_HOOK", (*hook).into()),
                ("UMM_RESULT", (*result).into()),
            ],
            Change::FleetSlotTaken { .. }
            | Change::FleetSlotReleased { .. }
            | Change::FleetReleasePending { .. }
            | Change::Queued { .. }
            | Change::QueueExpired { .. }
            | Change::QueueDropped { .. } => self.fleet_and_queue_fields(),
            Change::Held { .. }
            | Change::Cancelled { .. }
            | Change::QueueCancelled
            | Change::Enabled
            | Change::Disabled => Vec::new(),
        }
    }

    /// `own_fields` of the fleet's and the queue's changes.
    fn fleet_and_queue_fields(&self) -> Vec<(&'static str, String)> {
        match self {
            Change::FleetSlotTaken { group, id } | Change::FleetSlotReleased { group, id } => {
                vec![
                    ("UMM_FLEET_GROUP", (*group).into()),
                    ("UMM_FLEET_ID", (*id).into()),
                ]
            }
            Change::FleetReleasePending { group, id, error } => vec![
                ("UMM_FLEET_GROUP", (*group).into()),
                ("UMM_FLEET_ID", (*id).into()),
                ("UMM_WHY", (*error).into()),
            ],
            Change::Queued { by, then } => vec![
                ("UMM_REQUESTED_BY", (*by).into()),
                ("UMM_THEN", (*then).into()),
            ],
            Change::QueueExpired { why } | Change::QueueDropped { why } => {
                vec![("UMM_WHY", (*why).into())]
            }
            _ => Vec::new(),
        }
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
            Kind::BootFailure => Change::BootFailure {
                episode: 5,
                kernel: "6.1.0-99-amd64",
                attempts: 3,
                good: "6.1.0-2-amd64",
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
            Kind::Queued => Change::Queued {
                by: "alice",
                then: "off",
            },
            Kind::QueueCancelled => Change::QueueCancelled,
            Kind::QueueExpired => Change::QueueExpired {
                why: "slot: all held (node-b)",
            },
            Kind::QueueDropped => Change::QueueDropped {
                why: "umm is disabled",
            },
            Kind::RollHalted => Change::RollHalted {
                episode: 4,
                why: "the scheduled command exited 1",
                in_maintenance: true,
            },
        }
    }

    #[test]
    fn every_kind_has_its_own_well_formed_message_id() {
        let mut seen = std::collections::BTreeSet::new();
        for &kind in Kind::ALL {
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

    /// Each event carries MESSAGE_ID, UMM_EVENT, then exactly the fields
    /// its kind documents (docs/monitoring.md shows them).
    #[test]
    fn every_event_carries_its_id_and_the_documented_fields() {
        for &kind in Kind::ALL {
            let fields = sample(kind).fields();
            assert_eq!(
                fields[0],
                ("MESSAGE_ID", kind.message_id().to_string()),
                "{kind:?}"
            );
            assert_eq!(fields[1], ("UMM_EVENT", kind.name().to_string()));
            let names: Vec<&str> = fields[2..].iter().map(|(k, _)| *k).collect();
            assert_eq!(names, kind.documented_fields(), "{kind:?}");
            for (k, v) in &fields {
                assert!(!v.is_empty(), "{kind:?}: {k} is empty");
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

    /// The catalog has an entry for every MESSAGE_ID umm logs, and no
    /// other.
    #[test]
    fn the_catalog_explains_every_message_id_and_no_other() {
        let catalog = include_str!("../../packaging/systemd/umm.catalog");
        let mut entries: Vec<&str> = Vec::new();
        for entry in catalog.split("\n-- ").skip(1) {
            let (id, body) = entry.split_once('\n').unwrap();
            assert!(body.starts_with("Subject: "), "{id}: {body}");
            assert!(body.contains("\nDefined-By: umm\n"), "{id}");
            entries.push(id.trim());
        }
        let mut logged: Vec<&str> = Kind::ALL.iter().map(|k| k.message_id()).collect();
        entries.sort_unstable();
        logged.sort_unstable();
        assert_eq!(
            entries, logged,
            "packaging/systemd/umm.catalog (left) and the MESSAGE_IDs umm logs (right)"
        );
    }
}
