//! Bounds applied to a state as it is loaded (`model::limits`): lists are
//! cut (keeping the newest) and strings shortened, each with a note;
//! nothing is rejected for being long, except a scheduled command, which
//! is dropped rather than cut.

use super::hook::HookRecord;
use super::limits;
use super::open::Open;
use super::rolling::Queued;
use super::state::{
    BootRecord, Episode, FleetSlot, FleetState, Maintenance, Requester, ScheduledCommand, State,
};

/// Lines of what a queued request waits for (one per thing in the way).
const QUEUE_WAITS: usize = 16;

/// Shortens `s` to at most `max` bytes (at a character boundary); true if cut.
fn cut(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str("...");
    true
}

/// Keeps the last `max` items; true if any were dropped.
fn keep_last<T>(v: &mut Vec<T>, max: usize) -> bool {
    let excess = v.len().saturating_sub(max);
    v.drain(..excess);
    excess > 0
}

/// Counts what had to be cut while bounding one state.
#[derive(Default)]
struct Cuts {
    lists: Vec<String>,
    strings: usize,
}

impl Cuts {
    fn list<T>(&mut self, what: &str, v: &mut Vec<T>, max: usize) {
        let len = v.len();
        if keep_last(v, max) {
            self.lists
                .push(format!("{what}: kept the last {max} of {len}"));
        }
    }

    fn string(&mut self, s: &mut String, max: usize) {
        if cut(s, max) {
            self.strings += 1;
        }
    }

    /// A value of an open set that this umm does not know.
    fn open<T>(&mut self, v: &mut Open<T>) {
        if let Open::Other(text) = v {
            self.string(text, limits::STRING);
        }
    }

    fn strings(&mut self, v: &mut [String], max: usize) {
        for s in v {
            self.string(s, max);
        }
    }

    fn boots(&mut self, what: &str, v: &mut Vec<BootRecord>) {
        self.list(what, v, limits::BOOT_RECORDS);
        for b in v {
            self.string(&mut b.boot_id, limits::STRING);
        }
    }

    fn hooks(&mut self, what: &str, v: &mut Vec<HookRecord>) {
        self.list(what, v, limits::HOOKS);
        for h in v {
            self.open(&mut h.phase);
            self.string(&mut h.name, limits::STRING);
            self.string(&mut h.result, limits::STRING);
            self.list("a hook's output", &mut h.output_tail, limits::TAIL_LINES);
            self.strings(&mut h.output_tail, limits::TAIL_LINE);
        }
    }

    fn requester(&mut self, r: &mut Option<Requester>) {
        if let Some(r) = r {
            self.string(&mut r.user, limits::STRING);
            if let Some(from) = &mut r.from {
                self.string(from, limits::STRING);
            }
        }
    }

    /// A scheduled command too long to keep whole is dropped, never cut:
    /// a shortened argv would run something the operator did not ask for.
    fn command(&mut self, c: &mut Option<ScheduledCommand>) {
        let too_long = c.as_ref().is_some_and(|c| {
            c.argv.len() > limits::ARGS || c.argv.iter().any(|a| a.len() > limits::ARG)
        });
        if too_long {
            self.lists.push(format!(
                "the scheduled command is longer than {} arguments of {} bytes: dropped, it will not run",
                limits::ARGS,
                limits::ARG
            ));
            *c = None;
        }
        if let Some(run) = c.as_mut().and_then(|c| c.run.as_mut()) {
            self.string(&mut run.output, limits::ARG);
        }
    }

    /// A queued request whose command is too long to keep whole is
    /// dropped whole: it must not enter without its command.
    fn queued(&mut self, q: &mut Option<Queued>) {
        let too_long = q
            .as_ref()
            .and_then(|q| q.argv.as_ref())
            .is_some_and(|argv| {
                argv.len() > limits::ARGS || argv.iter().any(|a| a.len() > limits::ARG)
            });
        if too_long {
            self.lists.push(format!(
                "the queued request's command is longer than {} arguments of {} bytes: the request is dropped",
                limits::ARGS,
                limits::ARG
            ));
            *q = None;
        }
        if let Some(q) = q.as_mut() {
            self.list(
                "what the queued request waits for",
                &mut q.waiting_for,
                QUEUE_WAITS,
            );
            self.strings(&mut q.waiting_for, limits::STRING);
        }
    }

    fn slot(&mut self, s: &mut FleetSlot) {
        self.string(&mut s.backend, limits::STRING);
        self.string(&mut s.group, limits::STRING);
        self.string(&mut s.id, limits::STRING);
    }

    fn services(&mut self, v: &mut Option<Vec<String>>) {
        if let Some(v) = v {
            self.list("services before maintenance", v, limits::SERVICES);
            self.strings(v, limits::STRING);
        }
    }
}

impl State {
    /// Applies `limits` in place; returns one note per kind of cut.
    pub fn bound(&mut self) -> Vec<String> {
        let mut c = Cuts::default();
        c.boots("unclean boot records", &mut self.unclean_records);
        if let Some(b) = &mut self.last_boot {
            c.string(&mut b.boot_id, limits::STRING);
        }
        if let Some(m) = &mut self.maintenance {
            c.maintenance(m);
        }
        c.list("history", &mut self.history, limits::HISTORY);
        for e in &mut self.history {
            c.episode(e);
        }
        if let Some(a) = &mut self.after_resume {
            c.services(&mut a.services_before);
        }
        c.queued(&mut self.queued);
        c.fleet(&mut self.fleet);
        c.notes()
    }
}

/// The steps of `State::bound`, one per part of the state.
impl Cuts {
    fn maintenance(&mut self, m: &mut Maintenance) {
        self.boots("crash-loop boots", &mut m.crash_boots);
        self.requester(&mut m.requested_by);
        self.command(&mut m.command);
        self.services(&mut m.services_before);
        self.hooks("hook results of the maintenance", &mut m.hooks);
        if let Some(l) = &mut m.leaving {
            self.string(&mut l.boot_id, limits::STRING);
            if let Some(f) = &mut l.finisher {
                self.string(&mut f.boot_id, limits::STRING);
            }
        }
        if let Some(n) = &mut m.fleet {
            self.string(&mut n.detail, limits::STRING);
        }
    }

    /// One episode of the history (the history itself is cut before).
    fn episode(&mut self, e: &mut Episode) {
        self.requester(&mut e.requested_by);
        self.command(&mut e.command);
        self.open(&mut e.end);
        self.hooks("hook results of an episode", &mut e.hooks);
        if let Some(v) = &mut e.verify {
            self.list("services not back", &mut v.not_back, limits::SERVICES);
            self.list("failed services", &mut v.failed, limits::SERVICES);
            self.strings(&mut v.not_back, limits::STRING);
            self.strings(&mut v.failed, limits::STRING);
            self.string(&mut v.compared_with, limits::STRING);
        }
        if let Some(n) = &mut e.fleet {
            self.string(&mut n.detail, limits::STRING);
        }
    }

    fn fleet(&mut self, f: &mut FleetState) {
        if let Some(slot) = &mut f.held {
            self.slot(slot);
        }
        if let Some(slot) = &mut f.taking {
            self.slot(slot);
        }
        if let Some(p) = &mut f.pending_release {
            self.slot(&mut p.slot);
            if let Some(e) = &mut p.last_error {
                self.string(e, limits::STRING);
            }
        }
        if let Some(a) = &mut f.last_attempt {
            self.string(&mut a.result, limits::STRING);
            self.string(&mut a.detail, limits::STRING);
        }
        if let Some(h) = &mut f.halt {
            self.string(&mut h.why, limits::STRING);
        }
        if let Some(h) = &mut f.halt_sending {
            for s in [&mut h.backend, &mut h.group, &mut h.node, &mut h.why] {
                self.string(s, limits::STRING);
            }
            if let Some(e) = &mut h.last_error {
                self.string(e, limits::STRING);
            }
        }
    }

    /// One note per list cut (the same cut noted once), then one for
    /// all the strings shortened.
    fn notes(self) -> Vec<String> {
        let mut notes = self.lists;
        notes.dedup();
        if self.strings > 0 {
            notes.push(format!(
                "{} strings longer than umm keeps were shortened",
                self.strings
            ));
        }
        notes
    }
}
