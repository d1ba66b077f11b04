//! `[fleet]` of umm.toml, as data: which coordinator a node asks for a
//! slot of its group before it goes into maintenance, and how
//! (`FleetSettings`), checked without touching a file or the network
//! (`FleetSettings::validate`). Read from umm.toml by `sys::config`; the
//! back-ends that use it are `fleet`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::open::Named;

/// Where a node's default id comes from.
pub const MACHINE_ID: &str = "/etc/machine-id";
/// The group when none is configured (airlock's default too).
pub const DEFAULT_GROUP: &str = "default";
/// The bound on one call (take, release, status) when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// etcd: the size of a group whose key does not exist yet.
pub const DEFAULT_SLOTS: u64 = 1;
/// The longest group name or node id accepted (bytes).
pub const MAX_NAME: usize = 253;

/// Which coordinator, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// No fleet coordination: a node decides alone.
    None,
    /// A semaphore in etcd v3, airlock's layout.
    Etcd,
    /// A FleetLock server (airlock, fleetlock).
    #[serde(rename = "fleetlock")]
    FleetLock,
}

impl Backend {
    /// The name used in umm.toml and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::None => "none",
            Backend::Etcd => "etcd",
            Backend::FleetLock => "fleetlock",
        }
    }

    /// Parses the name used in umm.toml.
    pub fn parse(text: &str) -> Result<Backend, String> {
        match text {
            "none" => Ok(Backend::None),
            "etcd" => Ok(Backend::Etcd),
            "fleetlock" => Ok(Backend::FleetLock),
            other => Err(format!(
                "unknown back-end {other:?} (use \"none\", \"etcd\" or \"fleetlock\")"
            )),
        }
    }
}

/// `[fleet]` in umm.toml, once parsed: what `validate` checks and
/// `from_settings` uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetSettings {
    pub backend: Backend,
    /// The group this node belongs to.
    pub group: String,
    /// This node's id in the group; `None`: /etc/machine-id.
    pub id: Option<String>,
    /// etcd: client URLs of the cluster's members, tried in turn.
    pub endpoints: Vec<String>,
    /// FleetLock: the server's base URL (`/v1/pre-reboot` is added).
    pub url: Option<String>,
    /// etcd: the group's size when its key does not exist yet (an existing
    /// key keeps the size stored in it, as with airlock).
    pub slots: u64,
    /// The CA certificates that https servers must chain to (PEM); `None`:
    /// the system's bundle.
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM), with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM): root's only (0600).
    pub key_file: Option<PathBuf>,
    /// The bound on one call, across endpoints and retries.
    pub timeout: Duration,
}

impl Default for FleetSettings {
    fn default() -> Self {
        FleetSettings {
            backend: Backend::None,
            group: DEFAULT_GROUP.into(),
            id: None,
            endpoints: Vec::new(),
            url: None,
            slots: DEFAULT_SLOTS,
            ca_file: None,
            cert_file: None,
            key_file: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A setting that is wrong: which key (under `[fleet]`) and why, for the
/// configuration loader to place at the key's line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsError {
    /// The key under `[fleet]`, e.g. `endpoints`.
    pub key: &'static str,
    pub message: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fleet.{}: {}", self.key, self.message)
    }
}

impl std::error::Error for SettingsError {}

impl FleetSettings {
    /// Checks the settings without touching a file or the network.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.backend == Backend::None {
            return Ok(());
        }
        self.check_names()?;
        if self.timeout < Duration::from_secs(1) {
            return fail("timeout", "is shorter than 1s".into());
        }
        let urls = self.backend_urls()?;
        let key = match self.backend {
            Backend::Etcd => "endpoints",
            _ => "url",
        };
        for url in &urls {
            check_url(url).or_else(|e| fail(key, e))?;
        }
        self.check_tls_files(&urls, key)
    }

    /// The group name and the node id, when one is set.
    fn check_names(&self) -> Result<(), SettingsError> {
        check_name(&self.group).or_else(|e| fail("group", e))?;
        match &self.id {
            Some(id) => check_name(id).or_else(|e| fail("id", e)),
            None => Ok(()),
        }
    }

    /// The coordinator's URLs, from the key that the back-end reads; the
    /// other back-end's key set by mistake is refused.
    fn backend_urls(&self) -> Result<Vec<&str>, SettingsError> {
        match self.backend {
            Backend::Etcd => {
                if self.url.is_some() {
                    return fail(
                        "url",
                        "is for the fleetlock back-end; give etcd's client URLs in endpoints"
                            .into(),
                    );
                }
                if self.endpoints.is_empty() {
                    return fail(
                        "endpoints",
                        "is empty: give the etcd members' client URLs, e.g. [\"https://10.0.0.1:2379\"]"
                            .into(),
                    );
                }
                if self.slots == 0 {
                    return fail("slots", "is 0: a group needs at least 1 slot".into());
                }
                Ok(self.endpoints.iter().map(String::as_str).collect())
            }
            Backend::FleetLock => {
                if !self.endpoints.is_empty() {
                    return fail(
                        "endpoints",
                        "is for the etcd back-end; give the FleetLock server's base URL in url"
                            .into(),
                    );
                }
                match &self.url {
                    Some(url) => Ok(vec![url.as_str()]),
                    None => fail(
                        "url",
                        "is missing: give the FleetLock server's base URL, e.g. \"https://airlock.example:3333\""
                            .into(),
                    ),
                }
            }
            Backend::None => Ok(Vec::new()),
        }
    }

    /// A client certificate needs its key, and TLS files need an https URL
    /// (else they would be silently unused).
    fn check_tls_files(&self, urls: &[&str], key: &str) -> Result<(), SettingsError> {
        if self.cert_file.is_some() != self.key_file.is_some() {
            let missing = if self.cert_file.is_some() {
                "key_file"
            } else {
                "cert_file"
            };
            return fail(
                missing,
                "is missing: a client certificate needs both cert_file and key_file".into(),
            );
        }
        let tls_files = self.ca_file.is_some() || self.cert_file.is_some();
        if tls_files && !urls.iter().any(|u| is_https(u)) {
            let which = if self.ca_file.is_some() {
                "ca_file"
            } else {
                "cert_file"
            };
            return fail(
                which,
                format!("is set but no {key} URL uses https: the file would not be used"),
            );
        }
        Ok(())
    }
}

/// A [`SettingsError`] for `key`.
fn fail<T>(key: &'static str, message: String) -> Result<T, SettingsError> {
    Err(SettingsError { key, message })
}

/// A group name or node id: 1 to `MAX_NAME` bytes, no spaces or control
/// characters at either end, no control characters at all.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("is longer than {MAX_NAME} bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("{name:?} holds control characters"));
    }
    if name.trim() != name {
        return Err(format!("{name:?} starts or ends with a space"));
    }
    Ok(())
}

pub fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// An http or https URL with a host and nothing after the path.
pub fn check_url(url: &str) -> Result<(), String> {
    let uri: ureq::http::Uri = url.parse().map_err(|_| {
        format!(
            "{:?} is not a URL (like \"https://10.0.0.1:2379\")",
            hide_userinfo(url)
        )
    })?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(format!(
                "{:?}: use an http:// or https:// URL",
                hide_userinfo(url)
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{:?} has no host", hide_userinfo(url)));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(format!(
            "{:?}: a query or fragment is not allowed here",
            hide_userinfo(url)
        ));
    }
    Ok(())
}

/// `text` with the user information of every URL in it (`user:pass@` in
/// `http://user:pass@host:2379`) replaced by `***`: a URL in the settings
/// may carry a password, and a text that names it can reach the terminal,
/// the log and the world-readable status.json.
pub fn hide_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends at the path, the query, the fragment, or
        // where the text around the URL goes on.
        let end = after
            .find(|c: char| "/?#".contains(c) || c.is_whitespace() || "\"',;)]}>".contains(c))
            .unwrap_or(after.len());
        let (authority, tail) = after.split_at(end);
        match authority.rfind('@') {
            Some(i) => {
                out.push_str("***");
                out.push_str(authority.get(i..).unwrap_or_default());
            }
            None => out.push_str(authority),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Text that another node (or a coordinator) wrote, as umm shows it: on
/// one line, with control characters (escape sequences, newlines) and the
/// invisible characters that reorder or split a line written as escapes
/// (`\n`, `\u{1b}`). A holder id must not recolour a terminal nor split a
/// refusal or a log record.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let invisible = matches!(
            c,
            '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
        );
        if c.is_control() || invisible {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl Named for Backend {
    const ALL: &'static [Backend] = &[Backend::None, Backend::Etcd, Backend::FleetLock];

    fn name(self) -> &'static str {
        Backend::name(self)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[rstest::rstest]
    #[case::password("http://u:p@h:2379", "http://***@h:2379")]
    #[case::user_only("https://u@h", "https://***@h")]
    #[case::in_a_sentence(
        "etcd at http://u:p@a:1/v3/kv: refused; https://b:2 ok",
        "etcd at http://***@a:1/v3/kv: refused; https://b:2 ok"
    )]
    #[case::at_in_the_path("http://h/a@b", "http://h/a@b")]
    #[case::two(
        "[\"http://a:x@h\", \"http://b:y@i\"]",
        "[\"http://***@h\", \"http://***@i\"]"
    )]
    #[case::no_url("user@host", "user@host")]
    fn user_information_is_hidden(#[case] text: &str, #[case] shown: &str) {
        assert_eq!(hide_userinfo(text), shown);
    }

    #[rstest::rstest]
    #[case::escape_and_newline("a\u{1b}[31m\nb", r"a\u{1b}[31m\nb")]
    #[case::carriage_return_and_tab("a\r\tb", r"a\r\tb")]
    #[case::line_separator_and_bidi("a\u{2028}b\u{202e}c", r"a\u{2028}b\u{202e}c")]
    #[case::plain("node-1.example é", "node-1.example é")]
    fn peer_text_is_escaped_on_one_line(#[case] text: &str, #[case] shown: &str) {
        assert_eq!(escaped(text), shown);
    }

    /// Valid etcd settings, for tests here and in `fleet`.
    pub(crate) fn etcd() -> FleetSettings {
        FleetSettings {
            backend: Backend::Etcd,
            endpoints: vec!["http://127.0.0.1:2379".into()],
            ..FleetSettings::default()
        }
    }

    #[test]
    fn backend_names_round_trip() {
        for b in [Backend::None, Backend::Etcd, Backend::FleetLock] {
            assert_eq!(Backend::parse(b.name()), Ok(b));
        }
        let e = Backend::parse("zookeeper").unwrap_err();
        assert!(e.contains("\"etcd\""), "{e}");
    }

    #[test]
    fn validate_names_the_key_at_fault() {
        let cases: Vec<(FleetSettings, &str, &str)> = vec![
            (
                FleetSettings {
                    endpoints: vec![],
                    ..etcd()
                },
                "endpoints",
                "is empty",
            ),
            (
                FleetSettings {
                    endpoints: vec!["10.0.0.1:2379".into()],
                    ..etcd()
                },
                "endpoints",
                "http",
            ),
            (
                FleetSettings {
                    endpoints: vec!["ftp://10.0.0.1".into()],
                    ..etcd()
                },
                "endpoints",
                "http",
            ),
            (
                FleetSettings {
                    endpoints: vec!["http://h:1/?a=b".into()],
                    ..etcd()
                },
                "endpoints",
                "query",
            ),
            (
                FleetSettings {
                    url: Some("http://h".into()),
                    ..etcd()
                },
                "url",
                "fleetlock",
            ),
            (FleetSettings { slots: 0, ..etcd() }, "slots", "at least 1"),
            (
                FleetSettings {
                    group: String::new(),
                    ..etcd()
                },
                "group",
                "empty",
            ),
            (
                FleetSettings {
                    group: "a\nb".into(),
                    ..etcd()
                },
                "group",
                "control",
            ),
            (
                FleetSettings {
                    id: Some(" x".into()),
                    ..etcd()
                },
                "id",
                "space",
            ),
            (
                FleetSettings {
                    timeout: Duration::from_millis(500),
                    ..etcd()
                },
                "timeout",
                "1s",
            ),
            (
                FleetSettings {
                    cert_file: Some("/c".into()),
                    endpoints: vec!["https://h:2379".into()],
                    ..etcd()
                },
                "key_file",
                "both",
            ),
            (
                FleetSettings {
                    ca_file: Some("/ca".into()),
                    ..etcd()
                },
                "ca_file",
                "https",
            ),
            (
                FleetSettings {
                    backend: Backend::FleetLock,
                    ..FleetSettings::default()
                },
                "url",
                "missing",
            ),
            (
                FleetSettings {
                    backend: Backend::FleetLock,
                    url: Some("http://h".into()),
                    ..etcd()
                },
                "endpoints",
                "url",
            ),
        ];
        for (s, key, words) in cases {
            let e = s.validate().unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.to_string().contains(words), "{e} lacks {words:?}");
            assert_eq!(e.to_string().lines().count(), 1);
        }
        assert!(etcd().validate().is_ok());
        let https = FleetSettings {
            endpoints: vec!["http://a:2379".into(), "https://b:2379".into()],
            ca_file: Some("/ca".into()),
            cert_file: Some("/c".into()),
            key_file: Some("/k".into()),
            ..etcd()
        };
        assert!(https.validate().is_ok());
    }
}
