//! Fleet coordination as shown: this node's part, from its state
//! (`LocalView`, also in `umm status`), and `umm fleet status`
//! (`FleetView`: the group as the coordinator tells it, with this node's
//! part), as text and JSON from the same structure.

use serde::Serialize;

use super::history::time;
use crate::fleet::{escaped, hide_userinfo, GroupStatus, Listing};
use crate::model::fleet::{Backend, FleetSettings};
use crate::model::state::State;

/// A release still owed.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct PendingView {
    pub group: String,
    pub id: String,
    /// Since when it is owed.
    pub due: String,
    pub tries: u32,
    pub last_try: Option<String>,
    pub last_error: Option<String>,
}

/// The last try to take a slot in a crash-loop maintenance boot.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct AttemptView {
    pub at: String,
    /// `granted`, `refused` or `failed`.
    pub result: String,
    pub detail: String,
}

impl PendingView {
    /// The text line, without its end (the node's view and the group's end
    /// it differently).
    fn line(&self) -> String {
        format!(
            "Release pending: the slot of group {:?} ({}), owed since {}, {} tries{}",
            self.group,
            self.id,
            self.due,
            self.tries,
            self.last_error
                .as_ref()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default()
        )
    }
}

impl AttemptView {
    fn line(&self) -> String {
        format!(
            "Crash-loop maintenance: take {} at {}: {}.",
            self.result, self.at, self.detail
        )
    }
}

/// This node's part, from its state (no network).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct LocalView {
    pub backend: Backend,
    pub group: String,
    /// This node's id (`None`: neither `id` nor /etc/machine-id).
    pub id: Option<String>,
    /// This node holds a slot, as far as its state says.
    pub holds_slot: bool,
    pub held_since: Option<String>,
    /// A take recorded and not settled (its run killed, its answer lost):
    /// the group it may hold a slot of, until the next reconcile.
    pub may_hold: Option<String>,
    pub pending_release: Option<PendingView>,
    pub crash_loop_attempt: Option<AttemptView>,
    /// A request queued by `umm on --queue`, waiting for a slot (and its
    /// window and gate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<QueuedSummary>,
}

/// A queued request, as the fleet views show it.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct QueuedSummary {
    pub since: String,
    pub expires: String,
    pub next_try: String,
    pub waiting_for: Vec<String>,
}

impl QueuedSummary {
    fn line(&self) -> String {
        let waits = if self.waiting_for.is_empty() {
            "not tried yet".to_string()
        } else {
            self.waiting_for.join("; ")
        };
        format!(
            "Queued since {} until {}: waiting for {waits}; next try at {}.",
            self.since, self.expires, self.next_try
        )
    }
}

impl LocalView {
    pub fn new(settings: &FleetSettings, id: Option<&str>, state: &State) -> LocalView {
        let f = &state.fleet;
        LocalView {
            backend: settings.backend,
            group: f
                .held
                .as_ref()
                .map_or_else(|| settings.group.clone(), |h| h.group.clone()),
            id: id.map(str::to_string),
            holds_slot: f.held.is_some(),
            held_since: f.held.as_ref().map(|h| time(h.since)),
            may_hold: f.taking.as_ref().map(|t| t.group.clone()),
            pending_release: f.pending_release.as_ref().map(|p| PendingView {
                group: p.slot.group.clone(),
                id: p.slot.id.clone(),
                due: time(p.due),
                tries: p.tries,
                last_try: p.last_try.map(time),
                last_error: p.last_error.clone(),
            }),
            crash_loop_attempt: f.last_attempt.as_ref().map(|a| AttemptView {
                at: time(a.at),
                result: a.result.clone(),
                detail: a.detail.clone(),
            }),
            queued: state.queued.as_ref().map(|q| QueuedSummary {
                since: time(q.since),
                expires: time(q.expires),
                next_try: time(q.next_try),
                waiting_for: q.waiting_for.clone(),
            }),
        }
    }

    /// Worth showing in `umm status`: a back-end is configured, or the
    /// state remembers something.
    pub fn for_status(settings: &FleetSettings, state: &State) -> Option<LocalView> {
        (settings.backend != Backend::None || !state.fleet.is_empty())
            .then(|| LocalView::new(settings, settings.id.as_deref(), state))
    }

    /// The lines of `umm status` and `umm fleet status` about this node.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let who = self.id.as_deref().unwrap_or("this node");
        out.push(if self.holds_slot {
            format!(
                "This node ({who}) holds a slot{}.",
                self.held_since
                    .as_ref()
                    .map(|s| format!(" since {s}"))
                    .unwrap_or_default()
            )
        } else {
            format!("This node ({who}) holds no slot.")
        });
        if let Some(group) = &self.may_hold {
            out.push(format!(
                "This node may hold a slot of group {group:?}: a take was not settled (its run ended or its answer was lost); the next umm run as root that changes something, the retry timer or the boot settles it."
            ));
        }
        if let Some(p) = &self.pending_release {
            out.push(format!(
                "{}; retried every 10 minutes, at every boot and at every umm run as root that changes something.",
                p.line()
            ));
        }
        if let Some(a) = &self.crash_loop_attempt {
            out.push(a.line());
        }
        out
    }

    /// The line of `umm status`.
    pub fn status_lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "Fleet: {} group {:?}.",
            self.backend_name(),
            self.group
        )];
        lines.extend(self.lines());
        lines
    }

    fn backend_name(&self) -> &'static str {
        self.backend.name()
    }
}

/// A holder of a slot.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct HolderView {
    pub id: String,
    pub host: Option<String>,
    pub since: Option<String>,
}

/// `umm fleet status`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct FleetView {
    pub backend: Backend,
    pub group: String,
    pub id: Option<String>,
    /// The endpoints or the URL.
    pub place: Option<String>,
    /// The group's size (etcd; `None`: not known).
    pub slots: Option<u64>,
    /// Who holds a slot (etcd; `None`: FleetLock cannot list them, or the
    /// coordinator did not answer).
    pub holders: Option<Vec<HolderView>>,
    /// This node holds a slot: per the coordinator where it lists holders,
    /// else per this node's state.
    pub holds_slot: bool,
    pub pending_release: Option<PendingView>,
    pub crash_loop_attempt: Option<AttemptView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<QueuedSummary>,
    /// Why the coordinator could not be asked.
    pub error: Option<String>,
}

impl FleetView {
    pub fn new(
        settings: &FleetSettings,
        local: LocalView,
        group: Option<GroupStatus>,
        error: Option<String>,
    ) -> FleetView {
        let (slots, holders) = match group.as_ref().map(|g| &g.listing) {
            Some(Listing::Stored {
                total_slots,
                holders,
            }) => (
                Some(*total_slots),
                Some(
                    holders
                        .iter()
                        .map(|h| HolderView {
                            id: h.id.clone(),
                            host: h.host.clone(),
                            since: h.since.map(time),
                        })
                        .collect::<Vec<_>>(),
                ),
            ),
            Some(Listing::NotCreated { slots }) => (Some(*slots), Some(Vec::new())),
            _ => (None, None),
        };
        let holds_slot = match (&holders, &local.id) {
            (Some(h), Some(id)) => h.iter().any(|h| &h.id == id),
            _ => local.holds_slot,
        };
        FleetView {
            backend: settings.backend,
            group: settings.group.clone(),
            id: local.id.clone(),
            place: group.as_ref().map(|g| g.place.clone()),
            slots,
            holders,
            holds_slot,
            pending_release: local.pending_release,
            crash_loop_attempt: local.crash_loop_attempt,
            queued: local.queued,
            error,
        }
    }

    pub fn text(&self) -> String {
        if self.backend == Backend::None {
            return self.text_without_coordinator();
        }
        let mut out = vec![format!(
            "Fleet: {} group {:?}{}.",
            self.backend.name(),
            self.group,
            self.place
                .as_ref()
                .map(|p| format!(" on {}", hide_userinfo(p)))
                .unwrap_or_default()
        )];
        self.holder_lines(&mut out);
        if let Some(e) = &self.error {
            out.push(format!("The coordinator could not be asked: {e}"));
        }
        let who = self.id.as_deref().unwrap_or("this node");
        out.push(format!(
            "This node ({who}) {}.",
            if self.holds_slot {
                "holds a slot"
            } else {
                "holds no slot"
            }
        ));
        if let Some(p) = &self.pending_release {
            out.push(format!("{}.", p.line()));
        }
        if let Some(a) = &self.crash_loop_attempt {
            out.push(a.line());
        }
        out.extend(self.queued.as_ref().map(QueuedSummary::line));
        out.join("\n")
    }

    /// `backend = "none"`: no coordinator, perhaps a slot still to give back.
    fn text_without_coordinator(&self) -> String {
        let mut out = vec![
            "Fleet coordination: none (backend = \"none\"): this node decides alone.".to_string(),
        ];
        if let Some(p) = &self.pending_release {
            out.push(format!(
                "Release pending: the slot of group {:?} ({}); set [fleet] back to give it back.",
                p.group, p.id
            ));
        }
        out.join("\n")
    }

    /// The slots held and by whom, or why they cannot be listed.
    fn holder_lines(&self, out: &mut Vec<String>) {
        match (&self.holders, self.slots) {
            (Some(h), Some(slots)) => {
                out.push(format!("Slots: {} of {slots} held.", h.len()));
                // Ids and host names other nodes wrote: escaped.
                for h in h {
                    let mut line = format!("  {}", escaped(&h.id));
                    if let Some(host) = &h.host {
                        line.push_str(&format!(" on {}", escaped(host)));
                    }
                    if let Some(since) = &h.since {
                        line.push_str(&format!(" since {since}"));
                    }
                    out.push(line);
                }
            }
            _ if self.error.is_none() => out.push(
                "Holders: the FleetLock protocol cannot list them; ask the server's operator."
                    .into(),
            ),
            _ => {}
        }
    }
}
