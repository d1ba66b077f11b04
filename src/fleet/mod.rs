//! Fleet coordination: at most N nodes of a group in maintenance at once.
//!
//! A node takes a slot of its group before it goes into maintenance and
//! gives it back once it is operational again. Two back-ends, behind one
//! small trait (`Coordinator`):
//!
//! - `etcd`: a counting semaphore stored in etcd v3 (through its JSON
//!   gateway) exactly as the airlock server stores it, so that umm nodes and
//!   Fedora CoreOS nodes behind airlock can share a group (`etcd.rs`);
//! - `fleetlock`: a client of the FleetLock protocol (airlock, fleetlock on
//!   Kubernetes), which keeps the semaphore itself (`fleetlock.rs`).
//!
//! Every call is bounded by one deadline (`FleetSettings::timeout`), across
//! endpoints and retries; nothing from a server or a peer can make umm
//! panic; every error is one line that says what failed, where, and what
//! to do. The settings are checked by `FleetSettings::validate` and files
//! are read (TLS material, the machine id) only by `from_settings` and
//! `FleetSettings::node_id`: no call here touches umm's own state.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::sys::fsread;
use crate::sys::paths::Root;

pub mod etcd;
pub mod fleetlock;
pub mod gate;
mod http;
mod select;

use crate::model::fleet::is_https;
pub use crate::model::fleet::{
    check_name, escaped, hide_userinfo, Backend, FleetSettings, SettingsError, DEFAULT_GROUP,
    DEFAULT_SLOTS, DEFAULT_TIMEOUT, MACHINE_ID, MAX_NAME,
};
pub use select::from_settings;

/// This node's id: `fleet.id` when set, else /etc/machine-id (under `root`).
pub fn node_id(settings: &FleetSettings, root: &Root) -> Result<String, FleetError> {
    if let Some(id) = &settings.id {
        check_name(id).map_err(|e| FleetError::Settings(format!("fleet.id: {e}")))?;
        return Ok(id.clone());
    }
    machine_id(&root.path(MACHINE_ID))
}

/// Reads a machine id file: 32 lowercase hexadecimal digits.
pub fn machine_id(path: &Path) -> Result<String, FleetError> {
    let text = fsread::read_string(path, fsread::SMALL_MAX).map_err(|e| {
        FleetError::Settings(format!(
            "{e}; the fleet needs this node's id: set id under [fleet] in umm.toml, or run systemd-machine-id-setup"
        ))
    })?;
    let id = text.trim();
    if id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(id.to_string())
    } else {
        Err(FleetError::Settings(format!(
            "{} does not hold a machine id (32 hexadecimal digits); run systemd-machine-id-setup, or set id under [fleet] in umm.toml",
            path.display()
        )))
    }
}

/// The outcome of a take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "taken", rename_all = "kebab-case")]
pub enum Taken {
    /// A slot was free and is now this node's.
    Granted,
    /// This node held a slot already (etcd only: FleetLock cannot tell).
    AlreadyHeld,
    /// No slot: the node must not go into maintenance now.
    Refused(Refusal),
}

impl Taken {
    /// The node holds a slot now.
    pub fn is_held(&self) -> bool {
        matches!(self, Taken::Granted | Taken::AlreadyHeld)
    }
}

/// Why a take was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum Refusal {
    /// etcd: every slot is held.
    Full {
        total_slots: u64,
        holders: Vec<String>,
    },
    /// FleetLock: the server's answer (anything but 200).
    Server {
        status: u16,
        kind: String,
        value: String,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Full {
                total_slots,
                holders,
            } => {
                write!(
                    f,
                    "all {total_slots} slot{} held",
                    if *total_slots == 1 { " is" } else { "s are" }
                )?;
                if !holders.is_empty() {
                    write!(f, " (by {})", list_ids(holders, 5))?;
                }
                Ok(())
            }
            Refusal::Server {
                status,
                kind,
                value,
            } => {
                write!(f, "the server answered HTTP {status}")?;
                let (kind, value) = (escaped(kind), escaped(value));
                match (kind.is_empty(), value.is_empty()) {
                    (false, _) => write!(f, ", {kind}: {value}"),
                    (true, false) => write!(f, ": {value}"),
                    (true, true) => Ok(()),
                }
            }
        }
    }
}

fn list_ids(ids: &[String], at_most: usize) -> String {
    // Written by other nodes: shown escaped.
    let mut shown: Vec<String> = ids.iter().take(at_most).map(|id| escaped(id)).collect();
    let more = ids.len().saturating_sub(at_most);
    if more > 0 {
        shown.push(format!("{more} more"));
    }
    shown.join(", ")
}

/// The outcome of a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Released {
    /// The node held a slot and does no more (etcd).
    Freed,
    /// The node held none: nothing to do (etcd).
    NotHeld,
    /// The server said yes (FleetLock: it does not say whether a slot was held).
    Acknowledged,
}

/// A holder of a slot, as `status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub id: String,
    /// The host name it recorded when it took the slot (umm nodes on etcd:
    /// airlock's clients record none).
    pub host: Option<String>,
    /// Since when, seconds since the epoch (likewise).
    pub since: Option<i64>,
}

/// What `status` can say about the group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "listing", rename_all = "kebab-case")]
pub enum Listing {
    /// etcd: the semaphore as stored.
    Stored {
        total_slots: u64,
        holders: Vec<Holder>,
    },
    /// etcd: the group's key does not exist yet; the first take creates it
    /// with this many slots.
    NotCreated { slots: u64 },
    /// FleetLock: the protocol has no way to list holders; what this client
    /// did in this process, per id.
    Unlisted { known: Vec<Known> },
}

/// FleetLock: what this client last heard for an id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Known {
    pub id: String,
    /// `granted`, `refused` or `released`.
    pub last: &'static str,
    /// When, seconds since the epoch.
    pub at: i64,
}

/// `status` of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupStatus {
    pub backend: Backend,
    pub group: String,
    /// Where: the endpoints or the URL.
    pub place: String,
    #[serde(flatten)]
    pub listing: Listing,
}

impl fmt::Display for GroupStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "group {:?} on {} ({})",
            self.group,
            self.backend.name(),
            hide_userinfo(&self.place)
        )?;
        match &self.listing {
            Listing::Stored {
                total_slots,
                holders,
            } => {
                write!(f, ": {} of {total_slots} slots held", holders.len())?;
                // Ids and host names other nodes wrote: escaped.
                for h in holders {
                    write!(f, "\n  {}", escaped(&h.id))?;
                    if let Some(host) = &h.host {
                        write!(f, " on {}", escaped(host))?;
                    }
                    if let Some(since) = h.since {
                        write!(f, " since {}", crate::model::timefmt::rfc3339(since))?;
                    }
                }
                Ok(())
            }
            Listing::NotCreated { slots } => write!(
                f,
                ": no node has taken a slot yet (the first take creates the group with {slots} slots)"
            ),
            Listing::Unlisted { known } => {
                write!(
                    f,
                    ": the FleetLock protocol cannot list who holds a slot; ask the server's operator"
                )?;
                for k in known {
                    write!(
                        f,
                        "\n  {}: {} at {}",
                        escaped(&k.id),
                        k.last,
                        crate::model::timefmt::rfc3339(k.at)
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// Why a call failed. Each is one line: what, where, what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FleetError {
    /// The settings, or a file they name, cannot be used (the whole line).
    Settings(String),
    /// A TLS file is unsafe or unusable.
    Credentials { file: PathBuf, problem: String },
    /// No endpoint answered before the deadline.
    Unreachable {
        backend: Backend,
        /// Each endpoint tried, with its last failure.
        tried: Vec<(String, String)>,
        deadline: Duration,
    },
    /// The TLS handshake failed, or the server refused the credentials.
    Tls {
        endpoint: String,
        detail: String,
        hint: String,
    },
    /// The server answered with an error.
    Server {
        backend: Backend,
        endpoint: String,
        status: u16,
        kind: String,
        value: String,
    },
    /// etcd: the semaphore kept changing under us until the attempts or
    /// the deadline ran out. Nothing was changed.
    Conflict {
        endpoint: String,
        key: String,
        attempts: u32,
        elapsed: Duration,
    },
    /// An answer that is not what the protocol says (or a key that holds
    /// something else).
    Protocol { endpoint: String, detail: String },
    /// The error inside, after the request that changes the group (etcd:
    /// the transaction; FleetLock: the POST) was written to the server:
    /// it may have been carried out with its answer lost. Any other error
    /// means the coordinator changed nothing.
    MayHaveApplied(Box<FleetError>),
}

impl FleetError {
    /// Worth trying again later (the pending-release retry): the network,
    /// a busy or failing server, conflicts. Not: settings, credentials,
    /// TLS, a protocol error.
    pub fn is_transient(&self) -> bool {
        match self {
            FleetError::Unreachable { .. } | FleetError::Conflict { .. } => true,
            FleetError::Server { status, .. } => *status >= 500,
            FleetError::MayHaveApplied(inner) => inner.is_transient(),
            _ => false,
        }
    }

    /// The change asked for may have been carried out although the call
    /// failed (its request reached the server; the answer was lost, cut,
    /// late or garbled). False: the coordinator is as it was.
    pub fn may_have_applied(&self) -> bool {
        matches!(self, FleetError::MayHaveApplied(_))
    }

    /// This error, marked as one whose request may have been carried out
    /// when `sent` (once: the mark is not nested).
    pub(crate) fn sent_if(self, sent: bool) -> FleetError {
        match self {
            e @ FleetError::MayHaveApplied(_) => e,
            e if sent => FleetError::MayHaveApplied(Box::new(e)),
            e => e,
        }
    }
}

/// Every error text leaves as one line with no URL's user information in
/// it: the settings' URLs may carry a password (hidden), and a server's
/// answer or a peer's id is not umm's text (escaped).
impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = RawError(self).to_string();
        f.write_str(&escaped(&hide_userinfo(&raw)))
    }
}

/// A `FleetError` as composed, before it is made safe to show.
struct RawError<'a>(&'a FleetError);

impl fmt::Display for RawError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            FleetError::Settings(line) => write!(f, "{line}"),
            FleetError::Credentials { file, problem } => {
                write!(f, "{} {problem}", file.display())
            }
            FleetError::Unreachable {
                backend,
                tried,
                deadline,
            } => unreachable_text(f, *backend, tried, *deadline),
            FleetError::Tls {
                endpoint,
                detail,
                hint,
            } => write!(f, "TLS with {endpoint} failed: {detail}; {hint}"),
            FleetError::Server {
                backend,
                endpoint,
                status,
                kind,
                value,
            } => server_text(
                f,
                *backend,
                endpoint,
                *status,
                (kind.as_str(), value.as_str()),
            ),
            FleetError::Conflict {
                endpoint,
                key,
                attempts,
                elapsed,
            } => write!(
                f,
                "etcd at {endpoint}: {key} changed under each of {attempts} attempts in {}s \
                 (too many nodes at once, or a [fleet] timeout too short for the load)",
                crate::model::timefmt::seconds_tenths(*elapsed)
            ),
            FleetError::Protocol { endpoint, detail } => write!(f, "{endpoint}: {detail}"),
            // The same line: whether it may have landed is for the caller
            // to say (it knows what it does about it).
            FleetError::MayHaveApplied(inner) => write!(f, "{}", RawError(inner)),
        }
    }
}

/// `FleetError::Unreachable`'s line: each endpoint tried, and why.
fn unreachable_text(
    f: &mut fmt::Formatter<'_>,
    backend: Backend,
    tried: &[(String, String)],
    deadline: std::time::Duration,
) -> fmt::Result {
    write!(
        f,
        "no {} endpoint answered within {}: ",
        backend.name(),
        crate::model::timefmt::seconds_tenths(deadline) + "s"
    )?;
    let each: Vec<String> = tried.iter().map(|(e, why)| format!("{e}: {why}")).collect();
    write!(
        f,
        "{}; check that the server is up and reachable from this node, or raise fleet.timeout",
        each.join("; ")
    )
}

/// `FleetError::Server`'s line: the status, the server's own words, and
/// what to do.
fn server_text(
    f: &mut fmt::Formatter<'_>,
    backend: Backend,
    endpoint: &str,
    status: u16,
    (kind, value): (&str, &str),
) -> fmt::Result {
    write!(f, "{} at {endpoint} answered HTTP {status}", backend.name())?;
    match (kind.is_empty(), value.is_empty()) {
        (false, _) => write!(f, " ({kind}: {value})")?,
        (true, false) => write!(f, " ({value})")?,
        (true, true) => {}
    }
    if status >= 500 {
        write!(f, "; the server is failing: check its logs, then try again")
    } else {
        write!(f, "; check the fleet settings against the server's")
    }
}

impl std::error::Error for FleetError {}

/// How long a run waits for this node's fleet lock (`sys::store::fleet_lock`):
/// another run holds it for one call to the coordinator (bounded by the
/// timeout) and a save.
pub fn lock_wait(settings: &FleetSettings) -> Duration {
    settings.timeout.saturating_mul(2) + Duration::from_secs(5)
}

/// A coordinator of one group.
///
/// Every call is bounded by the configured timeout and safe to repeat:
/// `take` by a holder is a success, `release` by a non-holder too. A call
/// that fails may still have been carried out (the answer was lost): after
/// an error from `take`, call `release` until it succeeds before giving
/// up, so that a slot is never left held by a node that is not in
/// maintenance.
pub trait Coordinator: Send + Sync {
    /// Which back-end.
    fn backend(&self) -> Backend;
    /// The group.
    fn group(&self) -> &str;
    /// Where, for messages: the endpoints or the URL.
    fn place(&self) -> String;
    /// Takes a slot for `id`.
    fn take(&self, id: &str) -> Result<Taken, FleetError>;
    /// Gives back `id`'s slot.
    fn release(&self, id: &str) -> Result<Released, FleetError>;
    /// The group as far as the back-end can tell.
    fn status(&self) -> Result<GroupStatus, FleetError>;
    /// Records that `halt.node` halted the group's roll. `Ok(false)`: the
    /// back-end has no key store (FleetLock): the slot it keeps is the halt.
    fn record_halt(&self, _halt: &Halt) -> Result<bool, FleetError> {
        Ok(false)
    }
    /// The group's halt, if one is recorded.
    fn read_halt(&self) -> Result<Option<Halt>, FleetError> {
        Ok(None)
    }
    /// Clears the group's halt if `node` recorded it: whether it did.
    fn clear_halt(&self, _node: &str) -> Result<bool, FleetError> {
        Ok(false)
    }
}

/// A group's roll halted by a node whose maintenance work failed (`umm on
/// --then`): stored as JSON beside the semaphore (etcd).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halt {
    pub node: String,
    pub why: String,
    /// RFC 3339, for people reading the key with etcdctl.
    pub since: String,
    pub since_unix: i64,
}

/// One deadline for a whole call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    start: Instant,
    end: Instant,
}

impl Deadline {
    pub(crate) fn after(d: Duration) -> Deadline {
        let start = Instant::now();
        Deadline {
            start,
            end: start + d,
        }
    }

    /// Time left, `None` once it has passed.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.end
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Sleeps for `d`, or until the deadline if that comes first; false
    /// when the deadline has passed.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        match self.remaining() {
            Some(left) => {
                std::thread::sleep(d.min(left));
                self.remaining().is_some()
            }
            None => false,
        }
    }
}

/// A random duration in [0, max): jitter for retries, so that nodes that
/// collided do not collide again in step.
pub(crate) fn jitter(max: Duration) -> Duration {
    match u64::try_from(max.as_nanos()).unwrap_or(u64::MAX) {
        0 => Duration::ZERO,
        nanos => Duration::from_nanos(fastrand::u64(..nanos)),
    }
}

/// Seconds since the epoch, now.
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// This host's name, for `status` (the kernel's, as `hostname` prints it).
pub fn host_name() -> String {
    fsread::read_string(Path::new("/proc/sys/kernel/hostname"), fsread::SMALL_MAX)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && check_name(s).is_ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Text from a server, made safe for one line of a message: control
/// characters become spaces, and it is cut at `max` characters.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.trim().chars().count() > max {
        out.push('…');
    }
    out
}

/// A scripted HTTP server on loopback for the back-ends' tests: what it
/// does with each request, by path.
#[cfg(test)]
pub(crate) mod scripted {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// What the server does with a request.
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum Act {
        /// Answers 200 with this body.
        Answer(u16, &'static str),
        /// Reads the request, then closes without a word.
        Cut,
        /// Reads the request, then stays silent (past any test's deadline).
        Silent,
        /// Answers something that is not HTTP.
        Garble,
    }

    /// Serves `script(path)` for every request, from a thread that ends
    /// with the test process. The port.
    pub(crate) fn serve(script: fn(&str) -> Act) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                std::thread::spawn(move || one(conn, script));
            }
        });
        port
    }

    fn one(mut conn: TcpStream, script: fn(&str) -> Act) {
        conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
        loop {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match conn.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => return,
                }
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let path = head.split(' ').nth(1).unwrap_or("").to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            let mut body = vec![0u8; length];
            if conn.read_exact(&mut body).is_err() {
                return;
            }
            match script(&path) {
                Act::Answer(status, text) => {
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                        text.len()
                    );
                    if conn.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
                Act::Cut => return,
                Act::Silent => {
                    std::thread::sleep(Duration::from_secs(30));
                    return;
                }
                Act::Garble => {
                    conn.write_all(b"garbage\r\n\r\n").ok();
                    return;
                }
            }
        }
    }

    /// A port nothing listens on.
    pub(crate) fn refused() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fleet::tests::etcd;

    /// A take that lost every race until its deadline is refused in a line
    /// that says where (like every other fleet error) and what to change;
    /// the hint to try again is the caller's, said once.
    #[test]
    fn a_conflict_names_etcd_its_endpoint_and_the_timeout() {
        let e = FleetError::Conflict {
            endpoint: "http://10.0.0.1:2379".into(),
            key: "com.coreos.airlock/groups/g/v1/semaphore".into(),
            attempts: 2,
            elapsed: Duration::from_millis(1040),
        };
        let line = e.to_string();
        assert_eq!(
            line,
            "etcd at http://10.0.0.1:2379: com.coreos.airlock/groups/g/v1/semaphore changed \
             under each of 2 attempts in 1.0s (too many nodes at once, or a [fleet] timeout \
             too short for the load)"
        );
        assert!(e.is_transient() && !e.may_have_applied());
    }

    #[test]
    fn defaults_are_none_and_valid() {
        let s = FleetSettings::default();
        assert_eq!(s.backend, Backend::None);
        assert_eq!(s.group, "default");
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert!(s.validate().is_ok());
        assert!(from_settings(&s).unwrap().is_none());
    }

    #[test]
    fn the_node_id_comes_from_the_machine_id() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let s = etcd();
        let e = node_id(&s, &root).unwrap_err().to_string();
        assert!(e.contains("/etc/machine-id does not exist"), "{e}");
        assert!(e.contains("set id under [fleet]"), "{e}");
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        let file = dir.path().join("etc/machine-id");
        std::fs::write(&file, "uninitialized\n").unwrap();
        let e = node_id(&s, &root).unwrap_err().to_string();
        assert!(e.contains("does not hold a machine id"), "{e}");
        std::fs::write(&file, "0123456789abcdef0123456789abcdef\n").unwrap();
        assert_eq!(
            node_id(&s, &root).unwrap(),
            "0123456789abcdef0123456789abcdef"
        );
        let named = FleetSettings {
            id: Some("node-7".into()),
            ..etcd()
        };
        assert_eq!(node_id(&named, &root).unwrap(), "node-7");
    }

    #[test]
    fn refusals_and_errors_are_one_line() {
        let full = Refusal::Full {
            total_slots: 2,
            holders: (0..7).map(|i| format!("n{i}")).collect(),
        };
        assert_eq!(
            full.to_string(),
            "all 2 slots are held (by n0, n1, n2, n3, n4, 2 more)"
        );
        let server = Refusal::Server {
            status: 409,
            kind: "failed_lock".into(),
            value: "all 1 semaphore slots currently locked".into(),
        };
        assert_eq!(
            server.to_string(),
            "the server answered HTTP 409, failed_lock: all 1 semaphore slots currently locked"
        );
        let e = FleetError::Unreachable {
            backend: Backend::Etcd,
            tried: vec![
                ("http://a:2379".into(), "connection refused".into()),
                ("http://b:2379".into(), "timed out".into()),
            ],
            deadline: Duration::from_secs(10),
        };
        assert_eq!(
            e.to_string(),
            "no etcd endpoint answered within 10.0s: http://a:2379: connection refused; \
             http://b:2379: timed out; check that the server is up and reachable from this node, \
             or raise fleet.timeout"
        );
        assert!(e.is_transient());
    }

    #[test]
    fn outcomes_and_status_have_a_json_form() {
        let refused = Taken::Refused(Refusal::Full {
            total_slots: 1,
            holders: vec!["a".into()],
        });
        assert_eq!(
            serde_json::to_value(&refused).unwrap(),
            serde_json::json!({"taken": "refused", "by": "full", "total_slots": 1, "holders": ["a"]})
        );
        let status = GroupStatus {
            backend: Backend::Etcd,
            group: "g".into(),
            place: "http://h:2379".into(),
            listing: Listing::Stored {
                total_slots: 2,
                holders: vec![Holder {
                    id: "a".into(),
                    host: Some("web1".into()),
                    since: Some(0),
                }],
            },
        };
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            serde_json::json!({
                "backend": "etcd", "group": "g", "place": "http://h:2379",
                "listing": "stored", "total_slots": 2,
                "holders": [{"id": "a", "host": "web1", "since": 0}]
            })
        );
        assert_eq!(
            status.to_string(),
            "group \"g\" on etcd (http://h:2379): 1 of 2 slots held\n  a on web1 since 1970-01-01T00:00:00Z"
        );
        let unlisted = GroupStatus {
            backend: Backend::FleetLock,
            listing: Listing::Unlisted {
                known: vec![Known {
                    id: "a".into(),
                    last: "granted",
                    at: 0,
                }],
            },
            ..status
        };
        let json = serde_json::to_value(&unlisted).unwrap();
        assert_eq!(json["backend"], "fleetlock");
        assert_eq!(json["listing"], "unlisted");
        assert_eq!(json["known"][0]["last"], "granted");
    }

    #[test]
    fn a_mark_that_it_may_have_applied_keeps_the_line_and_the_kind() {
        let e = FleetError::Unreachable {
            backend: Backend::FleetLock,
            tried: vec![("u".into(), "no answer in time".into())],
            deadline: Duration::from_secs(1),
        };
        assert!(!e.may_have_applied());
        assert_eq!(e.clone().sent_if(false), e);
        let marked = e.clone().sent_if(true);
        assert!(marked.may_have_applied());
        assert!(marked.is_transient());
        assert_eq!(marked.to_string(), e.to_string());
        assert_eq!(marked.clone().sent_if(true), marked);
    }

    #[test]
    fn server_text_is_cut_to_one_line() {
        assert_eq!(one_line(" a\nb\tc ", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }

    #[test]
    fn jitter_stays_below_its_bound() {
        for _ in 0..100 {
            assert!(jitter(Duration::from_millis(5)) < Duration::from_millis(5));
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }
}
