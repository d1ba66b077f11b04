//! The FleetLock back-end: a client of the protocol that Fedora CoreOS's
//! Zincati speaks to airlock (on etcd) and fleetlock (on Kubernetes).
//!
//! - take: `POST <url>/v1/pre-reboot`; release: `POST <url>/v1/steady-state`;
//! - header `fleet-lock-protocol: true`, body
//!   `{"client_params":{"id":"<id>","group":"<group>"}}`;
//! - 200 is yes; anything else is no, with the server's error as
//!   `{"kind":"...","value":"..."}` when it gives one.
//!
//! Both calls are idempotent on the server, and the client keeps no lock
//! state: the protocol has no way to ask who holds a slot, so `status` says
//! only what this client heard in this process. A server that cannot be
//! reached is tried again within the deadline.
//!
//! A call that fails after its request was written (no answer before the
//! deadline, a cut connection, a garbled answer) may have been carried out:
//! its error says so (`FleetError::may_have_applied`). A 5xx answer is not
//! such a failure: the protocol makes every answer but 200 a "no", and a
//! server answers only once it has decided, so a take answered 5xx is a
//! refusal and leaves nothing to give back (as Zincati reads it too).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::http::{Client, Failed, Failure};
use super::{
    check_name, jitter, now_unix, one_line, Backend, Coordinator, Deadline, FleetError,
    FleetSettings, GroupStatus, Known, Listing, Refusal, Released, Taken,
};

/// The largest answer read from the server.
const ANSWER_MAX: u64 = 64 * 1024;

/// A FleetLock server's group.
pub struct FleetLock {
    client: Client,
    base: String,
    group: String,
    timeout: Duration,
    /// Per id: what the server last said to this client, and when.
    known: Mutex<BTreeMap<String, (&'static str, i64)>>,
}

/// The server's error body.
#[derive(Deserialize)]
struct ServerError {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    value: String,
}

/// kind and value from an answer that is not 200: the server's JSON, or
/// the start of whatever it sent.
fn server_error(body: &[u8]) -> (String, String) {
    match serde_json::from_slice::<ServerError>(body) {
        Ok(e) => (one_line(&e.kind, 100), one_line(&e.value, 300)),
        Err(_) => (String::new(), one_line(&String::from_utf8_lossy(body), 300)),
    }
}

impl FleetLock {
    /// A client for `settings` (reads the TLS files; no network traffic).
    pub fn new(settings: &FleetSettings) -> Result<FleetLock, FleetError> {
        let base = settings
            .url
            .as_deref()
            .ok_or_else(|| {
                FleetError::Settings(
                    "fleet.url is missing: give the FleetLock server's base URL".into(),
                )
            })?
            .trim_end_matches('/')
            .to_string();
        Ok(FleetLock {
            client: Client::new(settings, &[&base])?,
            base,
            group: settings.group.clone(),
            timeout: settings.timeout,
            known: Mutex::new(BTreeMap::new()),
        })
    }

    /// POSTs the client parameters to `<url>/v1/<step>`; retries a server
    /// that cannot be reached until the deadline. The error is marked
    /// `MayHaveApplied` when any try wrote its request.
    fn call(&self, step: &str, id: &str) -> Result<(u16, Vec<u8>), FleetError> {
        check_name(id)
            .map_err(|e| FleetError::Settings(format!("the node id {e}; set fleet.id")))?;
        let url = format!("{}/v1/{step}", self.base);
        let body = json!({ "client_params": { "id": id, "group": self.group } })
            .to_string()
            .into_bytes();
        let headers = [("fleet-lock-protocol", "true")];
        let deadline = Deadline::after(self.timeout);
        let mut pause = Duration::from_millis(100);
        let mut why = String::from("not tried before the deadline");
        let mut sent = false;
        while let Some(left) = deadline.remaining() {
            match self.client.post(&url, &headers, &body, left, ANSWER_MAX) {
                Ok(reply) => return Ok((reply.status, reply.body)),
                Err(Failed {
                    why: Failure::Tls { detail, hint },
                    sent: was_sent,
                }) => {
                    return Err(FleetError::Tls {
                        endpoint: url,
                        detail,
                        hint,
                    }
                    .sent_if(sent || was_sent))
                }
                Err(f) => {
                    sent |= f.sent;
                    why = f.why.describe();
                }
            }
            if !deadline.sleep(pause + jitter(pause)) {
                break;
            }
            pause = (pause * 2).min(Duration::from_secs(1));
        }
        Err(FleetError::Unreachable {
            backend: Backend::FleetLock,
            tried: vec![(url, why)],
            deadline: self.timeout,
        }
        .sent_if(sent))
    }

    fn note(&self, id: &str, last: &'static str) {
        if let Ok(mut known) = self.known.lock() {
            known.insert(id.to_string(), (last, now_unix()));
        }
    }
}

impl Coordinator for FleetLock {
    fn backend(&self) -> Backend {
        Backend::FleetLock
    }

    fn group(&self) -> &str {
        &self.group
    }

    fn place(&self) -> String {
        super::hide_userinfo(&self.base)
    }

    fn take(&self, id: &str) -> Result<Taken, FleetError> {
        let (status, body) = self.call("pre-reboot", id)?;
        if status == 200 {
            self.note(id, "granted");
            return Ok(Taken::Granted);
        }
        self.note(id, "refused");
        let (kind, value) = server_error(&body);
        Ok(Taken::Refused(Refusal::Server {
            status,
            kind,
            value,
        }))
    }

    fn release(&self, id: &str) -> Result<Released, FleetError> {
        let (status, body) = self.call("steady-state", id)?;
        if status == 200 {
            self.note(id, "released");
            return Ok(Released::Acknowledged);
        }
        let (kind, value) = server_error(&body);
        Err(FleetError::Server {
            backend: Backend::FleetLock,
            endpoint: format!("{}/v1/steady-state", self.base),
            status,
            kind,
            value,
        })
    }

    fn status(&self) -> Result<GroupStatus, FleetError> {
        let known = self
            .known
            .lock()
            .map(|k| {
                k.iter()
                    .map(|(id, (last, at))| Known {
                        id: id.clone(),
                        last,
                        at: *at,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(GroupStatus {
            backend: Backend::FleetLock,
            group: self.group.clone(),
            place: self.base.clone(),
            listing: Listing::Unlisted { known },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::scripted::{self, Act};

    fn fleetlock_at(port: u16) -> FleetLock {
        let settings = FleetSettings {
            backend: crate::model::fleet::Backend::FleetLock,
            url: Some(format!("http://127.0.0.1:{port}")),
            timeout: Duration::from_millis(1500),
            ..FleetSettings::default()
        };
        FleetLock::new(&settings).unwrap()
    }

    #[test]
    fn a_take_may_have_applied_once_its_post_was_sent() {
        let e = fleetlock_at(scripted::refused()).take("n").unwrap_err();
        assert!(!e.may_have_applied(), "{e}");
        for act in [
            |_: &str| Act::Cut,
            |_: &str| Act::Silent,
            |_: &str| Act::Garble,
        ] {
            let e = fleetlock_at(scripted::serve(act)).take("n").unwrap_err();
            assert!(e.may_have_applied(), "{e}");
        }
        // 5xx is the server's "no": a refusal, not an error.
        let taken = fleetlock_at(scripted::serve(|_| Act::Answer(500, "{}")))
            .take("n")
            .unwrap();
        assert!(matches!(taken, Taken::Refused(_)), "{taken:?}");
    }

    #[test]
    fn server_errors_are_read_leniently() {
        assert_eq!(
            server_error(br#"{"kind":"failed_lock","value":"all 1 slots locked"}"#),
            ("failed_lock".into(), "all 1 slots locked".into())
        );
        assert_eq!(
            server_error(b"<html>\n502 Bad Gateway\n</html>"),
            (String::new(), "<html> 502 Bad Gateway </html>".into())
        );
        assert_eq!(server_error(b""), (String::new(), String::new()));
    }
}
