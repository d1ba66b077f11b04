//! The etcd v3 back-end: a counting semaphore stored the way the airlock
//! server stores it, through etcd's JSON gateway (`/v3/kv/range`,
//! `/v3/kv/txn`; keys and values in base64), so that umm nodes and
//! airlock's clients can share a group.
//!
//! - The key: `com.coreos.airlock/groups/<group>/v1/semaphore`, the group
//!   escaped as Go's `url.QueryEscape` does (`query_escape`).
//! - The value: `{"total_slots":N,"holders":["id",...]}`, holders sorted,
//!   written byte for byte as Go's `encoding/json` writes it.
//! - It is created only when absent (a transaction comparing its version
//!   with 0); every change reads it (value, version, mod revision) and
//!   writes it back in a transaction that compares both with what was read.
//!   A transaction that loses the race gets the key's new value in the same
//!   answer and the change is tried again on that, a bounded number of
//!   times with a small random pause.
//! - Beside it, for `status` only, each umm holder's host name and since
//!   when: `com.coreos.airlock/groups/<group>/v1/umm-holders/<id>`, written
//!   and deleted in the same transaction as the semaphore (airlock never
//!   reads it).
//!
//! Endpoints are tried in turn, starting with the last one that answered;
//! one that cannot be reached, does not answer within its share of the
//! deadline, or answers 5xx, passes the call to the next. TLS failures and
//! refused credentials stop the call at once.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};

use super::http::{Client, Failed, Failure};
use super::{
    check_name, jitter, now_unix, one_line, Backend, Coordinator, Deadline, FleetError,
    FleetSettings, GroupStatus, Halt, Holder, Listing, Refusal, Released, Taken,
};

/// airlock's prefix for every group.
pub const KEY_PREFIX: &str = "com.coreos.airlock/groups/";
/// How many times a take is tried against a semaphore that keeps
/// changing, within the deadline.
pub const MAX_ATTEMPTS: u32 = 64;
/// The same for a release: it is tried again at once (without the pause a
/// take makes), and more often, so that a slot is given back before others
/// are taken.
pub const MAX_RELEASE_ATTEMPTS: u32 = 4 * MAX_ATTEMPTS;
/// The largest answer read from etcd.
const ANSWER_MAX: u64 = 4 * 1024 * 1024;
/// The longest random pause between two attempts of a change.
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// `s` escaped as Go's `url.QueryEscape` does: letters, digits and `-_.~`
/// stay, a space becomes `+`, every other byte `%XX` (upper case).
pub fn query_escape(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                let hex = |n: u8| HEX.get(usize::from(n)).map_or('0', |&h| char::from(h));
                out.push('%');
                out.push(hex(b >> 4));
                out.push(hex(b & 15));
            }
        }
    }
    out
}

/// The semaphore's key for `group`.
pub fn semaphore_key(group: &str) -> String {
    format!("{KEY_PREFIX}{}/v1/semaphore", query_escape(group))
}

/// The prefix of umm's holder records of `group`.
pub fn holders_prefix(group: &str) -> String {
    format!("{KEY_PREFIX}{}/v1/umm-holders/", query_escape(group))
}

/// umm's record of `id` holding a slot of `group`.
pub fn holder_key(group: &str, id: &str) -> String {
    format!("{}{}", holders_prefix(group), query_escape(id))
}

/// Where a node that halted `group`'s roll says so (`umm on --then`).
pub fn halt_key(group: &str) -> String {
    format!("{KEY_PREFIX}{}/v1/umm-halted", query_escape(group))
}

/// The value stored at the semaphore's key (airlock's `Semaphore`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Semaphore {
    pub total_slots: u64,
    /// Sorted. Go writes `null` for a nil list: read as empty.
    #[serde(deserialize_with = "null_as_empty")]
    pub holders: Vec<String>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

impl Semaphore {
    /// Parses a stored value.
    pub fn parse(bytes: &[u8]) -> Result<Semaphore, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// The value as Go's `json.Marshal` writes airlock's struct: no spaces,
    /// `<`, `>`, `&`, U+2028 and U+2029 escaped.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
        // Writing strings and numbers to a Vec cannot fail.
        if self.serialize(&mut ser).is_err() {
            out.clear();
        }
        out
    }
}

/// serde_json's compact output, with Go's HTML-safe escapes in strings.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(fragment.get(start..i).unwrap_or_default().as_bytes())?;
            writer.write_all(escaped.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(fragment.get(start..).unwrap_or_default().as_bytes())
    }
}

/// umm's record beside the semaphore, for `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderRecord {
    pub id: String,
    pub host: String,
    /// RFC 3339, for people reading the key with etcdctl.
    pub since: String,
    pub since_unix: i64,
}

/// A key as the gateway returns it.
#[derive(Deserialize)]
struct KeyValue {
    #[serde(default)]
    value: String,
    #[serde(default, deserialize_with = "int64")]
    version: i64,
    #[serde(default, deserialize_with = "int64")]
    mod_revision: i64,
}

#[derive(Deserialize)]
struct RangeResponse {
    #[serde(default)]
    kvs: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct ResponseOp {
    response_range: Option<RangeResponse>,
}

#[derive(Deserialize)]
struct TxnResponse {
    /// Omitted when false.
    #[serde(default)]
    succeeded: bool,
    #[serde(default)]
    responses: Vec<ResponseOp>,
}

/// The gateway writes 64-bit numbers as strings.
fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Text(String),
        Plain(i64),
    }
    match Number::deserialize(d)? {
        Number::Text(s) => s.parse().map_err(serde::de::Error::custom),
        Number::Plain(n) => Ok(n),
    }
}

/// The semaphore as read, with what the next change compares.
#[derive(Clone, Debug)]
struct Stored {
    semaphore: Semaphore,
    version: i64,
    mod_revision: i64,
}

enum Cas {
    Done,
    /// Someone changed it first: here is what is there now.
    Changed(Option<Stored>),
}

/// A group's semaphore in etcd.
pub struct Etcd {
    client: Client,
    endpoints: Vec<String>,
    group: String,
    key: String,
    slots: u64,
    timeout: Duration,
    host: String,
    /// The endpoint that answered last: tried first.
    preferred: AtomicUsize,
    /// Transactions that lost a race, over this client's life.
    conflicts: AtomicU64,
}

impl Etcd {
    /// A client for `settings` (reads the TLS files; no network traffic).
    pub fn new(settings: &FleetSettings) -> Result<Etcd, FleetError> {
        let endpoints: Vec<String> = settings
            .endpoints
            .iter()
            .map(|e| e.trim_end_matches('/').to_string())
            .collect();
        if endpoints.is_empty() {
            return Err(FleetError::Settings(
                "fleet.endpoints is empty: give the etcd members' client URLs".into(),
            ));
        }
        let urls: Vec<&str> = endpoints.iter().map(String::as_str).collect();
        Ok(Etcd {
            client: Client::new(settings, &urls)?,
            group: settings.group.clone(),
            key: semaphore_key(&settings.group),
            slots: settings.slots,
            timeout: settings.timeout,
            host: super::host_name(),
            preferred: AtomicUsize::new(0),
            conflicts: AtomicU64::new(0),
            endpoints,
        })
    }

    /// The host name recorded for `status` (default: this host's).
    pub fn with_host(mut self, host: &str) -> Etcd {
        self.host = host.to_string();
        self
    }

    /// The semaphore's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// How many transactions of this client lost a race and were tried
    /// again (for measurements).
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    /// POSTs to the gateway, endpoint after endpoint, until one answers or
    /// the deadline passes.
    fn call(&self, path: &str, body: &Value, deadline: &Deadline) -> Result<Vec<u8>, FleetError> {
        self.call_noting(path, body, deadline, &mut false)
    }

    /// `call`, setting `sent` when a try may have reached etcd: its
    /// request was written, or it was answered 5xx (etcd's "request timed
    /// out" is such an answer: the write may still be committed).
    fn call_noting(
        &self,
        path: &str,
        body: &Value,
        deadline: &Deadline,
        sent: &mut bool,
    ) -> Result<Vec<u8>, FleetError> {
        let body = body.to_string().into_bytes();
        let n = self.endpoints.len();
        let mut last: Vec<Option<String>> = vec![None; n];
        let mut pause = Duration::from_millis(50);
        'rounds: loop {
            let first = self.preferred.load(Ordering::Relaxed) % n;
            for k in 0..n {
                let i = (first + k) % n;
                let Some(endpoint) = self.endpoints.get(i) else {
                    continue;
                };
                let Some(left) = deadline.remaining() else {
                    break 'rounds;
                };
                // Its share of the time left, so that one that hangs leaves
                // time for the others.
                let share = u32::try_from(n - k).unwrap_or(1).max(1);
                let url = format!("{endpoint}{path}");
                match self.try_endpoint(endpoint, &url, &body, left / share, sent)? {
                    Ok(answer) => {
                        self.preferred.store(i, Ordering::Relaxed);
                        return Ok(answer);
                    }
                    Err(why) => {
                        if let Some(slot) = last.get_mut(i) {
                            *slot = Some(why);
                        }
                    }
                }
            }
            if !deadline.sleep(pause + jitter(pause)) {
                break;
            }
            pause = (pause * 2).min(Duration::from_secs(1));
        }
        Err(self.unreachable(last))
    }

    /// One POST to one endpoint: `Ok(Ok(body))` answered, `Ok(Err(why))`
    /// worth trying elsewhere or again, `Err` final (credentials, TLS, a
    /// 4xx answer).
    fn try_endpoint(
        &self,
        endpoint: &str,
        url: &str,
        body: &[u8],
        within: Duration,
        sent: &mut bool,
    ) -> Result<Result<Vec<u8>, String>, FleetError> {
        match self.client.post(url, &[], body, within, ANSWER_MAX) {
            Ok(reply) if reply.status == 200 => Ok(Ok(reply.body)),
            Ok(reply) => {
                let message = gateway_error(&reply.body);
                match reply.status {
                    401 | 403 => Err(FleetError::Tls {
                        endpoint: endpoint.to_string(),
                        detail: format!(
                            "etcd refused this node's credentials (HTTP {}: {message})",
                            reply.status
                        ),
                        hint: "give fleet.cert_file a certificate whose name etcd grants read and write on com.coreos.airlock/".into(),
                    }),
                    s if s >= 500 => {
                        *sent = true;
                        Ok(Err(format!("HTTP {s}: {message}")))
                    }
                    s => Err(FleetError::Server {
                        backend: Backend::Etcd,
                        endpoint: endpoint.to_string(),
                        status: s,
                        kind: String::new(),
                        value: message,
                    }),
                }
            }
            Err(Failed {
                why: Failure::Tls { detail, hint },
                ..
            }) => Err(FleetError::Tls {
                endpoint: endpoint.to_string(),
                detail,
                hint,
            }),
            Err(f) => {
                *sent |= f.sent;
                Ok(Err(f.why.describe()))
            }
        }
    }

    /// No endpoint answered before the deadline: each with its last
    /// failure.
    fn unreachable(&self, last: Vec<Option<String>>) -> FleetError {
        let tried = self
            .endpoints
            .iter()
            .zip(last)
            .map(|(e, why)| {
                (
                    e.clone(),
                    why.unwrap_or_else(|| "not tried before the deadline".into()),
                )
            })
            .collect();
        FleetError::Unreachable {
            backend: Backend::Etcd,
            tried,
            deadline: self.timeout,
        }
    }

    fn protocol(&self, detail: String) -> FleetError {
        let at = self
            .endpoints
            .get(self.preferred.load(Ordering::Relaxed))
            .cloned()
            .unwrap_or_default();
        FleetError::Protocol {
            endpoint: format!("etcd at {at}"),
            detail,
        }
    }

    fn parse<'a, T: Deserialize<'a>>(&self, bytes: &'a [u8], what: &str) -> Result<T, FleetError> {
        serde_json::from_slice(bytes).map_err(|e| {
            self.protocol(format!(
                "the answer to {what} is not etcd's JSON ({}); is this an etcd v3 client URL?",
                one_line(&e.to_string(), 100)
            ))
        })
    }

    /// The semaphore from a key the gateway returned.
    fn stored(&self, kv: &KeyValue) -> Result<Stored, FleetError> {
        let bad = |why: String| {
            self.protocol(format!(
                "{} holds something that is not airlock's semaphore ({why}); look at it with `etcdctl get {}`, then fix or delete it",
                self.key, self.key
            ))
        };
        let bytes = B64
            .decode(kv.value.as_bytes())
            .map_err(|e| bad(format!("not base64: {e}")))?;
        let semaphore = Semaphore::parse(&bytes).map_err(|e| bad(one_line(&e, 100)))?;
        Ok(Stored {
            semaphore,
            version: kv.version,
            mod_revision: kv.mod_revision,
        })
    }

    /// Reads the semaphore; `None` when the key does not exist.
    fn read(&self, deadline: &Deadline) -> Result<Option<Stored>, FleetError> {
        let body = json!({ "key": B64.encode(&self.key) });
        let answer = self.call("/v3/kv/range", &body, deadline)?;
        let range: RangeResponse = self.parse(&answer, "a range")?;
        range.kvs.first().map(|kv| self.stored(kv)).transpose()
    }

    /// Writes `next` if the key is still as `read` (absent when `None`),
    /// with `also` in the same transaction.
    fn compare_and_swap(
        &self,
        read: Option<&Stored>,
        next: &Semaphore,
        also: Value,
        deadline: &Deadline,
    ) -> Result<Cas, FleetError> {
        let key = B64.encode(&self.key);
        let compare = match read {
            None => json!([
                { "key": key, "result": "EQUAL", "target": "VERSION", "version": "0" }
            ]),
            Some(s) => json!([
                { "key": key, "result": "EQUAL", "target": "VERSION",
                  "version": s.version.to_string() },
                { "key": key, "result": "EQUAL", "target": "MOD",
                  "mod_revision": s.mod_revision.to_string() }
            ]),
        };
        let body = json!({
            "compare": compare,
            "success": [
                { "request_put": { "key": key, "value": B64.encode(next.to_json()) } },
                also
            ],
            "failure": [ { "request_range": { "key": key } } ]
        });
        // Once the transaction may have reached etcd, a failure to hear
        // or read its answer leaves it unknown whether it was committed.
        let mut sent = false;
        let answer = self
            .call_noting("/v3/kv/txn", &body, deadline, &mut sent)
            .map_err(|e| e.sent_if(sent))?;
        let txn: TxnResponse = self
            .parse(&answer, "a transaction")
            .map_err(|e| e.sent_if(true))?;
        if txn.succeeded {
            return Ok(Cas::Done);
        }
        // Not succeeded: the failure branch's range must be there. An
        // answer without it (`{}`) says nothing of what etcd did.
        let Some(range) = txn
            .responses
            .first()
            .and_then(|r| r.response_range.as_ref())
        else {
            return Err(self
                .protocol(
                    "a transaction answered neither succeeded nor with the key's range".into(),
                )
                .sent_if(true));
        };
        let fresh = range.kvs.first().map(|kv| self.stored(kv)).transpose()?;
        Ok(Cas::Changed(fresh))
    }

    /// After a lost race: counts it, and for a take pauses a little,
    /// unless the attempts or the deadline are used up.
    fn lost_race(
        &self,
        attempts: u32,
        release: bool,
        deadline: &Deadline,
    ) -> Result<(), FleetError> {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
        let (most, pause) = match release {
            true => (MAX_RELEASE_ATTEMPTS, Duration::ZERO),
            false => (
                MAX_ATTEMPTS,
                Duration::from_millis(2)
                    .saturating_mul(1 << attempts.min(6))
                    .min(MAX_PAUSE),
            ),
        };
        if attempts >= most || !deadline.sleep(jitter(pause)) {
            return Err(FleetError::Conflict {
                endpoint: self.place(),
                key: self.key.clone(),
                attempts,
                elapsed: deadline.elapsed(),
            });
        }
        Ok(())
    }

    /// A fail point between a read and its transaction (tests only:
    /// nothing without the `failpoints` feature).
    fn step(&self, name: &str) -> Result<(), FleetError> {
        crate::sys::failpoint::failpoint(name).map_err(|e| self.protocol(e.to_string()))
    }

    fn record(&self, id: &str) -> Value {
        let since = now_unix();
        let record = HolderRecord {
            id: id.to_string(),
            host: self.host.clone(),
            since: crate::model::timefmt::rfc3339(since),
            since_unix: since,
        };
        let text = serde_json::to_vec(&record).unwrap_or_default();
        json!({ "request_put": {
            "key": B64.encode(holder_key(&self.group, id)),
            "value": B64.encode(text)
        }})
    }
}

impl Etcd {
    /// The group's halt and its key's revision; a value that is not a
    /// halt is an error (a reader fails closed on it).
    fn read_halt_key(&self) -> Result<Option<(Halt, i64)>, FleetError> {
        let key = halt_key(&self.group);
        let body = json!({ "key": B64.encode(&key) });
        let answer = self.call("/v3/kv/range", &body, &Deadline::after(self.timeout))?;
        let range: RangeResponse = self.parse(&answer, "a range")?;
        let Some(kv) = range.kvs.first() else {
            return Ok(None);
        };
        let halt = B64
            .decode(kv.value.as_bytes())
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Halt>(&bytes).ok())
            .ok_or_else(|| {
                self.protocol(format!(
                    "{key} holds something that is not umm's halt; look at it with `etcdctl get {key}`, then fix or delete it"
                ))
            })?;
        Ok(Some((halt, kv.mod_revision)))
    }
}

/// The message of a gateway error (`{"error":..,"message":..,"code":..}`).
fn gateway_error(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct GatewayError {
        #[serde(default)]
        message: String,
        #[serde(default)]
        error: String,
    }
    match serde_json::from_slice::<GatewayError>(body) {
        Ok(e) if !e.message.is_empty() => one_line(&e.message, 200),
        Ok(e) => one_line(&e.error, 200),
        Err(_) => one_line(&String::from_utf8_lossy(body), 200),
    }
}

fn check_id(id: &str) -> Result<(), FleetError> {
    check_name(id).map_err(|e| FleetError::Settings(format!("the node id {e}; set fleet.id")))
}

impl Coordinator for Etcd {
    fn backend(&self) -> Backend {
        Backend::Etcd
    }

    fn group(&self) -> &str {
        &self.group
    }

    fn place(&self) -> String {
        super::hide_userinfo(&self.endpoints.join(", "))
    }

    fn take(&self, id: &str) -> Result<Taken, FleetError> {
        check_id(id)?;
        let deadline = Deadline::after(self.timeout);
        let mut current = self.read(&deadline)?;
        let mut attempts = 0;
        loop {
            let next = match &current {
                Some(s) if s.semaphore.holders.iter().any(|h| h == id) => {
                    return Ok(Taken::AlreadyHeld)
                }
                Some(s) if s.semaphore.holders.len() as u64 >= s.semaphore.total_slots => {
                    return Ok(Taken::Refused(Refusal::Full {
                        total_slots: s.semaphore.total_slots,
                        holders: s.semaphore.holders.clone(),
                    }))
                }
                Some(s) => {
                    let mut next = s.semaphore.clone();
                    next.holders.push(id.to_string());
                    next.holders.sort();
                    next
                }
                None => Semaphore {
                    total_slots: self.slots,
                    holders: vec![id.to_string()],
                },
            };
            attempts += 1;
            self.step("etcd-take-cas")?;
            match self.compare_and_swap(current.as_ref(), &next, self.record(id), &deadline)? {
                Cas::Done => return Ok(Taken::Granted),
                Cas::Changed(fresh) => {
                    self.lost_race(attempts, false, &deadline)?;
                    current = fresh;
                }
            }
        }
    }

    fn release(&self, id: &str) -> Result<Released, FleetError> {
        check_id(id)?;
        let deadline = Deadline::after(self.timeout);
        let mut current = self.read(&deadline)?;
        let mut attempts = 0;
        loop {
            let Some(stored) = current.as_ref() else {
                return Ok(Released::NotHeld);
            };
            if !stored.semaphore.holders.iter().any(|h| h == id) {
                return Ok(Released::NotHeld);
            }
            let mut next = stored.semaphore.clone();
            next.holders.retain(|h| h != id);
            let forget = json!({ "request_delete_range": {
                "key": B64.encode(holder_key(&self.group, id))
            }});
            attempts += 1;
            self.step("etcd-release-cas")?;
            match self.compare_and_swap(Some(stored), &next, forget, &deadline)? {
                Cas::Done => return Ok(Released::Freed),
                Cas::Changed(fresh) => {
                    self.lost_race(attempts, true, &deadline)?;
                    current = fresh;
                }
            }
        }
    }

    fn record_halt(&self, halt: &Halt) -> Result<bool, FleetError> {
        let deadline = Deadline::after(self.timeout);
        let value = serde_json::to_vec(halt).unwrap_or_default();
        let body = json!({
            "key": B64.encode(halt_key(&self.group)),
            "value": B64.encode(value),
        });
        self.call("/v3/kv/put", &body, &deadline)?;
        Ok(true)
    }

    fn read_halt(&self) -> Result<Option<Halt>, FleetError> {
        Ok(self.read_halt_key()?.map(|(halt, _)| halt))
    }

    fn clear_halt(&self, node: &str) -> Result<bool, FleetError> {
        let Some((halt, revision)) = self.read_halt_key()? else {
            return Ok(false);
        };
        if halt.node != node {
            return Ok(false);
        }
        // Only the halt as read: a newer one (another node's) stays.
        let key = B64.encode(halt_key(&self.group));
        let body = json!({
            "compare": [{ "key": key, "result": "EQUAL", "target": "MOD",
                          "mod_revision": revision.to_string() }],
            "success": [{ "request_delete_range": { "key": key } }],
        });
        let answer = self.call("/v3/kv/txn", &body, &Deadline::after(self.timeout))?;
        let txn: TxnResponse = self.parse(&answer, "a transaction")?;
        Ok(txn.succeeded)
    }

    fn status(&self) -> Result<GroupStatus, FleetError> {
        let deadline = Deadline::after(self.timeout);
        let prefix = holders_prefix(&self.group);
        // One read-only transaction: the semaphore and the records, as of
        // one revision.
        let body = json!({
            "success": [
                { "request_range": { "key": B64.encode(&self.key) } },
                { "request_range": { "key": B64.encode(&prefix),
                                     "range_end": B64.encode(prefix_end(&prefix)) } }
            ]
        });
        let answer = self.call("/v3/kv/txn", &body, &deadline)?;
        let txn: TxnResponse = self.parse(&answer, "a transaction")?;
        let mut ranges = txn.responses.iter().map(|r| r.response_range.as_ref());
        let semaphore = ranges
            .next()
            .flatten()
            .and_then(|r| r.kvs.first())
            .map(|kv| self.stored(kv))
            .transpose()?;
        let records: Vec<HolderRecord> = ranges
            .next()
            .flatten()
            .map(|r| {
                r.kvs
                    .iter()
                    .filter_map(|kv| B64.decode(kv.value.as_bytes()).ok())
                    .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
                    .collect()
            })
            .unwrap_or_default();
        let listing = match semaphore {
            None => Listing::NotCreated { slots: self.slots },
            Some(s) => Listing::Stored {
                total_slots: s.semaphore.total_slots,
                holders: s
                    .semaphore
                    .holders
                    .iter()
                    .map(|id| {
                        let record = records.iter().find(|r| &r.id == id);
                        Holder {
                            id: id.clone(),
                            host: record.map(|r| r.host.clone()),
                            since: record.map(|r| r.since_unix),
                        }
                    })
                    .collect(),
            },
        };
        Ok(GroupStatus {
            backend: Backend::Etcd,
            group: self.group.clone(),
            place: self.place(),
            listing,
        })
    }
}

/// The end of a prefix range: the prefix with its last byte raised by one.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte 0xff: to the end of the keyspace.
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::scripted::{self, Act};

    fn etcd_at(port: u16) -> Etcd {
        let settings = FleetSettings {
            endpoints: vec![format!("http://127.0.0.1:{port}")],
            timeout: Duration::from_millis(1500),
            ..crate::model::fleet::tests::etcd()
        };
        Etcd::new(&settings).unwrap()
    }

    #[test]
    fn a_take_may_have_applied_only_once_its_transaction_was_sent() {
        // Refused connections: nothing sent, nothing applied.
        let e = etcd_at(scripted::refused()).take("n").unwrap_err();
        assert!(!e.may_have_applied(), "{e}");
        // The read fails: the transaction is never sent.
        let e = etcd_at(scripted::serve(|_| Act::Cut))
            .take("n")
            .unwrap_err();
        assert!(!e.may_have_applied(), "{e}");
        let read_then = |txn: fn(&str) -> Act| etcd_at(scripted::serve(txn)).take("n").unwrap_err();
        // The read answered (no key), then the transaction: cut, silent,
        // garbled, unparseable, 5xx: it may have been committed.
        for e in [
            read_then(|p| {
                if p.ends_with("range") {
                    Act::Answer(200, "{}")
                } else {
                    Act::Cut
                }
            }),
            read_then(|p| {
                if p.ends_with("range") {
                    Act::Answer(200, "{}")
                } else {
                    Act::Silent
                }
            }),
            read_then(|p| {
                if p.ends_with("range") {
                    Act::Answer(200, "{}")
                } else {
                    Act::Garble
                }
            }),
            read_then(|p| {
                if p.ends_with("range") {
                    Act::Answer(200, "{}")
                } else {
                    Act::Answer(200, "[")
                }
            }),
            read_then(|p| {
                if p.ends_with("range") {
                    Act::Answer(200, "{}")
                } else {
                    Act::Answer(503, "{}")
                }
            }),
        ] {
            assert!(e.may_have_applied(), "{e}");
        }
        // A 4xx answer to the transaction: etcd did not take it.
        let e = read_then(|p| {
            if p.ends_with("range") {
                Act::Answer(200, "{}")
            } else {
                Act::Answer(400, "{}")
            }
        });
        assert!(!e.may_have_applied(), "{e}");
    }

    /// A transaction answered `{}` (neither succeeded nor the failure
    /// branch's range) says nothing of what etcd did: a release so
    /// answered is an error that may have applied, never "not held".
    #[test]
    fn a_transaction_answered_with_nothing_is_not_a_success() {
        let e = etcd_at(scripted::serve(|p| {
            if p.ends_with("range") {
                Act::Answer(
                    200,
                    r#"{"kvs":[{"value":"eyJ0b3RhbF9zbG90cyI6MSwiaG9sZGVycyI6WyJuIl19","version":"1","mod_revision":"5"}]}"#,
                )
            } else {
                Act::Answer(200, "{}")
            }
        }))
        .release("n")
        .unwrap_err();
        assert!(e.may_have_applied(), "{e}");
        assert!(e.to_string().contains("neither succeeded"), "{e}");
    }

    #[test]
    fn groups_are_escaped_as_go_query_escape_does() {
        assert_eq!(query_escape("default"), "default");
        assert_eq!(query_escape("ceph mon/a&b"), "ceph+mon%2Fa%26b");
        assert_eq!(query_escape("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(query_escape("x+y=z?%"), "x%2By%3Dz%3F%25");
        assert_eq!(query_escape("é"), "%C3%A9");
        assert_eq!(
            semaphore_key("ceph mon/a&b"),
            "com.coreos.airlock/groups/ceph+mon%2Fa%26b/v1/semaphore"
        );
        assert_eq!(
            holder_key("g", "node/1"),
            "com.coreos.airlock/groups/g/v1/umm-holders/node%2F1"
        );
    }

    #[test]
    fn the_value_is_written_as_go_writes_it() {
        let s = Semaphore {
            total_slots: 2,
            holders: vec!["a&b".into(), "c<d>".into(), "é\u{2028}".into()],
        };
        assert_eq!(
            String::from_utf8(s.to_json()).unwrap(),
            r#"{"total_slots":2,"holders":["a\u0026b","c\u003cd\u003e","é\u2028"]}"#
        );
        let empty = Semaphore {
            total_slots: 1,
            holders: vec![],
        };
        assert_eq!(empty.to_json(), br#"{"total_slots":1,"holders":[]}"#);
        assert_eq!(Semaphore::parse(&s.to_json()), Ok(s));
    }

    #[test]
    fn values_written_by_go_are_read() {
        let s = Semaphore::parse(br#"{"total_slots":3,"holders":null}"#).unwrap();
        assert_eq!(s.holders, Vec::<String>::new());
        let s = Semaphore::parse(br#"{"holders":["x\u0026y"],"total_slots":1}"#).unwrap();
        assert_eq!(s.holders, ["x&y"]);
        assert!(Semaphore::parse(b"{}").is_err());
        assert!(Semaphore::parse(br#"{"total_slots":-1,"holders":[]}"#).is_err());
        assert!(Semaphore::parse(b"\xff\xfe").is_err());
    }

    #[test]
    fn prefix_ranges_end_past_the_prefix() {
        assert_eq!(prefix_end("a/"), b"a0");
        assert_eq!(prefix_end("a/umm-holders/"), b"a/umm-holders0");
    }

    #[test]
    fn gateway_errors_read_as_one_line() {
        assert_eq!(
            gateway_error(br#"{"error":"x","message":"etcdserver: no leader","code":14}"#),
            "etcdserver: no leader"
        );
        assert_eq!(gateway_error(b"Not Found\n"), "Not Found");
    }
}
