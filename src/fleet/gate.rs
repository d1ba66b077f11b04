//! Asking Prometheus for rolling maintenance's health gate: one instant
//! query (`/api/v1/query`), bounded, over the fleet's HTTP client (the same
//! TLS settings as `[fleet]`: `ca_file`, `cert_file`, `key_file`). What the
//! answer means is `rules::gate`'s.

use std::time::Duration;

use super::http::Client;
use crate::model::fleet::FleetSettings;

/// An answer larger than this is not read (the gate then stays closed).
const ANSWER_MAX: u64 = 1024 * 1024;

/// Runs `promql` at the Prometheus server `base` (`http://host:9090`),
/// within `timeout`: the answer's body (an error answer too: Prometheus
/// says what is wrong in JSON), or why there is none.
pub fn query(
    tls: &FleetSettings,
    base: &str,
    promql: &str,
    timeout: Duration,
) -> Result<String, String> {
    // The query in the URL of a POST: Prometheus reads form values from
    // either, and the client's body is JSON-typed.
    let url = format!(
        "{}/api/v1/query?query={}",
        base.trim_end_matches('/'),
        percent_encode(promql)
    );
    let settings = FleetSettings {
        timeout,
        ..tls.clone()
    };
    let client = Client::new(&settings, &[base]).map_err(|e| e.to_string())?;
    let reply = client
        .post(&url, &[], &[], timeout, ANSWER_MAX)
        .map_err(|f| format!("{base}: {}", f.why.describe()))?;
    String::from_utf8(reply.body)
        .map_err(|_| format!("{base}: HTTP {}: the answer is not text", reply.status))
}

/// `text` as a URL query value: every byte but the unreserved ones
/// (RFC 3986) percent-encoded.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_percent_encoded() {
        // (PromQL, encoded)
        let cases = [
            ("up", "up"),
            (
                "ALERTS{alertstate=\"firing\"}",
                "ALERTS%7Balertstate%3D%22firing%22%7D",
            ),
            ("a b&c=d+é", "a%20b%26c%3Dd%2B%C3%A9"),
        ];
        for (promql, want) in cases {
            assert_eq!(percent_encode(promql), want);
        }
    }

    #[test]
    fn no_server_is_an_error_within_the_timeout() {
        // A port nothing listens on: refused at once.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let base = format!("http://127.0.0.1:{port}");
        let e = query(
            &FleetSettings::default(),
            &base,
            "up",
            Duration::from_secs(2),
        )
        .unwrap_err();
        assert!(e.starts_with(&base), "{e}");
    }
}
