//! The HTTP client both back-ends use: ureq (blocking) over rustls with
//! the ring provider, one bound per request, no proxy from the environment,
//! no redirects, answers read up to a cap. TLS material is read here, from
//! files that must be root's (a private key: root's only).

use std::cell::Cell;
use std::io::Read;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use ureq::tls::{ClientCert, PemItem, RootCerts, TlsConfig, TlsProvider};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, DefaultConnector, NextTimeout, Transport,
};

use super::{one_line, FleetError, FleetSettings};
use crate::sys::fsread;

/// CA bundles of the distributions, for https without `ca_file`.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
];
/// The longest TLS probe after a dropped connection.
const PROBE_MAX: Duration = Duration::from_secs(3);
/// TLS files: a system bundle is a few hundred KiB.
const TLS_FILE_MAX: u64 = fsread::STATE_MAX;

/// An answer: its status and body.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a request got no answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No connection: another endpoint may do.
    Network(String),
    /// The connection was lost during the exchange (reset, broken pipe,
    /// early end): over TLS, possibly a refused client certificate.
    Dropped(String),
    /// The bound for this request ran out.
    Timeout,
    /// TLS failed, or the credentials are refused: stop there.
    Tls { detail: String, hint: String },
    /// Something that is not an HTTP answer, or one too big.
    Other(String),
}

/// A request without an answer: why, and whether any of the request was
/// written to a connection (past the TLS handshake), so that the server
/// may have carried it out. Not written: the name did not resolve, the
/// connection was refused or timed out, TLS failed (a server that refuses
/// the handshake or the certificate processes no request).
#[derive(Debug)]
pub(crate) struct Failed {
    pub why: Failure,
    pub sent: bool,
}

thread_local! {
    /// Set by `Marked` when request bytes go out on a connection. ureq's
    /// blocking calls write on the caller's thread, so `post` reads it for
    /// its own request: a per-request flag, with pooled connections too.
    static WROTE: Cell<bool> = const { Cell::new(false) };
}

/// The last link of the connector chain (after TCP and TLS): marks the
/// connections it hands out, so that a write of the request is seen.
#[derive(Debug)]
struct MarkWrites;

impl Connector<Box<dyn Transport>> for MarkWrites {
    type Out = Marked;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<Box<dyn Transport>>,
    ) -> Result<Option<Marked>, ureq::Error> {
        Ok(chained.map(Marked))
    }
}

/// A connection that notes (in `WROTE`) that request bytes were written.
#[derive(Debug)]
struct Marked(Box<dyn Transport>);

impl Transport for Marked {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.0.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if amount > 0 {
            // Before the write: a write that fails half-way may still
            // have carried the request.
            WROTE.with(|w| w.set(true));
        }
        self.0.transmit_output(amount, timeout)
    }

    fn maybe_await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.0.maybe_await_input(timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.0.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.0.is_open()
    }

    fn is_tls(&self) -> bool {
        self.0.is_tls()
    }
}

impl Failure {
    /// For `FleetError::Unreachable`'s list.
    pub(crate) fn describe(&self) -> String {
        match self {
            Failure::Network(why) | Failure::Dropped(why) | Failure::Other(why) => why.clone(),
            Failure::Timeout => "no answer in time".into(),
            Failure::Tls { detail, .. } => detail.clone(),
        }
    }
}

pub(crate) struct Client {
    agent: ureq::Agent,
    /// Where the CA certificates come from, for hints.
    trust: String,
    /// A client certificate is configured.
    client_cert: bool,
    /// The same TLS settings for rustls itself, for `probe`.
    probe_config: Option<Arc<rustls::ClientConfig>>,
}

impl Client {
    /// A client for `settings` (the TLS files are read when one of `urls`
    /// is https).
    pub(crate) fn new(settings: &FleetSettings, urls: &[&str]) -> Result<Client, FleetError> {
        let https = urls.iter().any(|u| super::is_https(u));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(provider.clone())
            .root_certs(RootCerts::Specific(Arc::new(Vec::new())));
        let mut trust = String::from("no CA (no https endpoint)");
        let mut client_cert = false;
        let mut probe_config = None;
        if https {
            let (roots, store, from) = load_roots(settings.ca_file.as_deref())?;
            trust = from;
            tls = tls.root_certs(RootCerts::Specific(Arc::new(roots)));
            let builder = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| FleetError::Settings(format!("TLS cannot be set up: {e}")))?
                .with_root_certificates(store);
            let config = match (&settings.cert_file, &settings.key_file) {
                (Some(cert_file), Some(key_file)) => {
                    let (cert, chain, key) = load_client_cert(cert_file, key_file)?;
                    // ureq would panic on a key that does not go with the
                    // certificate: rustls checks them here first.
                    let config = builder.with_client_auth_cert(chain, key).map_err(|e| {
                        credentials(
                            key_file,
                            format!(
                                "cannot be used with {} ({}); give the key that goes with the certificate",
                                cert_file.display(),
                                one_line(&e.to_string(), 100)
                            ),
                        )
                    })?;
                    tls = tls.client_cert(Some(cert));
                    client_cert = true;
                    config
                }
                _ => builder.with_no_client_auth(),
            };
            probe_config = Some(Arc::new(config));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(format!("umm/{}", env!("CARGO_PKG_VERSION")))
            .timeout_global(Some(settings.timeout))
            .max_idle_connections_per_host(2)
            .tls_config(tls.build())
            .build();
        let connector = DefaultConnector::new().chain(MarkWrites);
        Ok(Client {
            agent: ureq::Agent::with_parts(config, connector, DefaultResolver::default()),
            trust,
            client_cert,
            probe_config,
        })
    }

    /// POSTs a JSON `body` to `url`, bounded by `budget`; reads at most
    /// `cap` bytes of the answer. Without an answer, says whether the
    /// request may have reached the server (`Failed::sent`).
    pub(crate) fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        budget: Duration,
        cap: u64,
    ) -> Result<Reply, Failed> {
        WROTE.with(|w| w.set(false));
        let result = self.answer(url, headers, body, budget, cap);
        let sent = WROTE.with(|w| w.replace(false));
        result.map_err(|why| {
            // TLS failed: the server refused the session, whatever the
            // client had written (TLS 1.3 sends the refusal of a client
            // certificate after the client's first write).
            let sent = sent && !matches!(why, Failure::Tls { .. });
            Failed { why, sent }
        })
    }

    fn answer(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        budget: Duration,
        cap: u64,
    ) -> Result<Reply, Failure> {
        let started = Instant::now();
        self.exchange(url, headers, body, budget, cap)
            .map_err(|failure| match failure {
                // TLS 1.3: a server that refuses the client certificate
                // says so after the client's side of the handshake, and
                // the request being written may meet the closed
                // connection before the alert is read. Ask again, without
                // a request, to hear what the server says.
                Failure::Dropped(why) if super::is_https(url) => {
                    let left = budget.saturating_sub(started.elapsed());
                    self.probe(url, left.min(PROBE_MAX))
                        .unwrap_or(Failure::Dropped(why))
                }
                other => other,
            })
    }

    fn exchange(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        budget: Duration,
        cap: u64,
    ) -> Result<Reply, Failure> {
        let mut request = self
            .agent
            .post(url)
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request
            .config()
            .timeout_global(Some(budget))
            .build()
            .send(body)
            .map_err(|e| self.classify(e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(cap)
            .read_to_vec()
            .map_err(|e| self.classify(e))?;
        Ok(Reply { status, body })
    }

    /// A TLS handshake with `url`'s server and nothing else, bounded by
    /// `budget`: the TLS failure it ends with, if any.
    fn probe(&self, url: &str, budget: Duration) -> Option<Failure> {
        let config = self.probe_config.clone()?;
        let uri: ureq::http::Uri = url.parse().ok()?;
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(443);
        let name = rustls::pki_types::ServerName::try_from(host.to_string()).ok()?;
        let deadline = Instant::now() + budget;
        let addr = resolve(host, port, budget)?;
        let left = deadline.checked_duration_since(Instant::now())?;
        let mut socket = TcpStream::connect_timeout(&addr, left).ok()?;
        let left = deadline.checked_duration_since(Instant::now())?;
        socket.set_read_timeout(Some(left)).ok()?;
        socket.set_write_timeout(Some(left)).ok()?;
        let mut connection = rustls::ClientConnection::new(config, name).ok()?;
        let mut stream = rustls::Stream::new(&mut connection, &mut socket);
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Err(e) => e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .map(|t| self.tls_failure(t)),
            // The server said something, or closed quietly: no TLS failure.
            Ok(0..) => None,
        }
    }

    fn classify(&self, e: ureq::Error) -> Failure {
        match e {
            ureq::Error::Timeout(_) => Failure::Timeout,
            ureq::Error::Io(io) => {
                let tls = io
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>());
                match tls {
                    Some(t) => self.tls_failure(t),
                    None => match io.kind() {
                        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                            Failure::Timeout
                        }
                        std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::UnexpectedEof => Failure::Dropped(io_text(&io)),
                        _ => Failure::Network(io_text(&io)),
                    },
                }
            }
            ureq::Error::Rustls(t) => self.tls_failure(&t),
            ureq::Error::Tls(text) => Failure::Tls {
                detail: text.into(),
                hint: self.tls_hint(),
            },
            ureq::Error::HostNotFound => Failure::Network("host name not found".into()),
            ureq::Error::ConnectionFailed => Failure::Network("connection failed".into()),
            ureq::Error::Protocol(p) => Failure::Other(format!(
                "not an HTTP answer ({}); is the port right, and is it http or https as the server expects?",
                one_line(&p.to_string(), 200)
            )),
            ureq::Error::BodyExceedsLimit(cap) => {
                Failure::Other(format!("an answer larger than {cap} bytes"))
            }
            other => Failure::Other(one_line(&other.to_string(), 200)),
        }
    }

    fn tls_hint(&self) -> String {
        format!(
            "check the endpoint and fleet.ca_file, cert_file and key_file (CA in use: {})",
            self.trust
        )
    }

    fn tls_failure(&self, e: &rustls::Error) -> Failure {
        use rustls::{AlertDescription as A, CertificateError as C, Error as E};
        let (detail, hint) = match e {
            E::InvalidCertificate(C::UnknownIssuer | C::BadSignature)
            | E::InvalidCertificate(C::Other(_)) => (
                "the server's certificate is not signed by a trusted CA".to_string(),
                format!(
                    "fleet.ca_file must hold the CA that signed the server's certificate (in use: {})",
                    self.trust
                ),
            ),
            E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => (
                "the server's certificate is not issued for this host name or address".into(),
                "use the name or address the certificate names (its subjectAltName)".into(),
            ),
            E::InvalidCertificate(
                C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
            ) => (
                "the server's certificate has expired or is not valid yet".into(),
                "renew the server's certificate, or check this node's clock".into(),
            ),
            // The server refused the handshake over the client's
            // certificate: missing, or one it does not accept.
            E::AlertReceived(
                A::BadCertificate
                | A::UnknownCA
                | A::CertificateRequired
                | A::CertificateUnknown
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::AccessDenied
                | A::HandshakeFailure,
            ) => match self.client_cert {
                false => (
                    format!(
                        "the server wants a client certificate and none is configured ({})",
                        one_line(&e.to_string(), 100)
                    ),
                    "set fleet.cert_file and key_file to a certificate signed by a CA the server trusts"
                        .into(),
                ),
                true => (
                    format!(
                        "the server refused this node's client certificate ({})",
                        one_line(&e.to_string(), 100)
                    ),
                    "fleet.cert_file and key_file must hold a certificate signed by a CA the server trusts"
                        .into(),
                ),
            },
            E::InvalidMessage(_) => (
                "the server does not speak TLS".into(),
                "use an http:// URL for it, or check the port".into(),
            ),
            other => (one_line(&other.to_string(), 200), self.tls_hint()),
        };
        Failure::Tls { detail, hint }
    }
}

fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    // "Connection refused (os error 111)" → "connection refused"
    let text = match text.find(" (os error") {
        Some(i) => text.get(..i).unwrap_or(&text).to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => "I/O error".into(),
    }
}

fn credentials(file: &Path, problem: String) -> FleetError {
    FleetError::Credentials {
        file: file.to_path_buf(),
        problem,
    }
}

/// Reads a TLS file that must be root's (or this user's): not writable by
/// group or others; a `secret` (private key) not readable by them either.
pub(crate) fn read_tls_file(path: &Path, secret: bool) -> Result<Vec<u8>, FleetError> {
    let file = fsread::open_regular(path).map_err(|e| credentials(path, e.what()))?;
    let meta = file
        .metadata()
        .map_err(|e| credentials(path, format!("cannot be read: {e}")))?;
    let mode = meta.mode() & 0o7777;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != me {
        return Err(credentials(
            path,
            format!(
                "belongs to uid {}, not root: a TLS file must be root's; run chown root: {}",
                meta.uid(),
                path.display()
            ),
        ));
    }
    if secret && mode & 0o077 != 0 {
        return Err(credentials(
            path,
            format!(
                "can be read by group or others (mode {mode:04o}): a private key must be root's only; run chmod 600 {}",
                path.display()
            ),
        ));
    }
    if !secret && mode & 0o022 != 0 {
        return Err(credentials(
            path,
            format!(
                "can be written by group or others (mode {mode:04o}): whoever can change it chooses whom umm trusts; run chmod 644 {}",
                path.display()
            ),
        ));
    }
    let mut bytes = Vec::new();
    file.take(TLS_FILE_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| credentials(path, format!("cannot be read: {e}")))?;
    if bytes.len() as u64 > TLS_FILE_MAX {
        return Err(credentials(
            path,
            format!("is larger than {} KiB: not a TLS file", TLS_FILE_MAX / 1024),
        ));
    }
    Ok(bytes)
}

/// Certificates of a PEM file, for ureq, checked by rustls.
fn certificates(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<ureq::tls::Certificate<'static>>, FleetError> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(credentials(
                    path,
                    format!(
                        "is not valid PEM ({}); give a PEM file",
                        one_line(&e.to_string(), 100)
                    ),
                ))
            }
        }
    }
    if certs.is_empty() {
        return Err(credentials(
            path,
            "holds no certificate (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

/// The CA certificates: `ca_file`, or the system's bundle. Each must be
/// one rustls accepts as a trust anchor.
fn load_roots(
    ca_file: Option<&Path>,
) -> Result<
    (
        Vec<ureq::tls::Certificate<'static>>,
        rustls::RootCertStore,
        String,
    ),
    FleetError,
> {
    let path: PathBuf = match ca_file {
        Some(p) => p.to_path_buf(),
        None => SYSTEM_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                FleetError::Settings(format!(
                    "no CA bundle found for https ({}); set fleet.ca_file to the CA that signed the server's certificate",
                    SYSTEM_BUNDLES.join(", ")
                ))
            })?,
    };
    let pem = read_tls_file(&path, false)?;
    let certs = certificates(&path, &pem)?;
    let mut store = rustls::RootCertStore::empty();
    let (added, _ignored) =
        store.add_parsable_certificates(certs.iter().map(|c| CertificateDer::from(c.der())));
    if added == 0 {
        return Err(credentials(
            &path,
            "holds no usable CA certificate; give the PEM certificate of the CA that signed the server's".into(),
        ));
    }
    let from = match ca_file {
        Some(p) => format!("fleet.ca_file {}", p.display()),
        None => format!("the system's bundle {}", path.display()),
    };
    Ok((certs, store, from))
}

/// The client certificate and its key: for ureq, and for rustls.
fn load_client_cert(
    cert_file: &Path,
    key_file: &Path,
) -> Result<
    (
        ClientCert,
        Vec<CertificateDer<'static>>,
        PrivateKeyDer<'static>,
    ),
    FleetError,
> {
    let chain = certificates(cert_file, &read_tls_file(cert_file, false)?)?;
    let key_pem = read_tls_file(key_file, true)?;
    let no_key = || {
        credentials(
            key_file,
            "holds no private key (expected -----BEGIN PRIVATE KEY----- or an RSA or EC key)"
                .into(),
        )
    };
    let key = ureq::tls::parse_pem(&key_pem)
        .find_map(|item| match item {
            Ok(PemItem::PrivateKey(k)) => Some(k),
            _ => None,
        })
        .ok_or_else(no_key)?;
    let der_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| no_key())?;
    let der_chain: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    Ok((ClientCert::new_with_certs(&chain, key), der_chain, der_key))
}

/// Resolves `host` within `budget` (a name server that does not answer
/// must not hold the call).
fn resolve(host: &str, port: u16, budget: Duration) -> Option<SocketAddr> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let name = format!("{host}:{port}");
    std::thread::Builder::new()
        .name("umm-resolve".into())
        .spawn(move || {
            let first = name.to_socket_addrs().ok().and_then(|mut a| a.next());
            let _ = tx.send(first);
        })
        .ok()?;
    rx.recv_timeout(budget).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file_with_mode(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(
            &p,
            "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn a_private_key_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = file_with_mode(dir.path(), "client.key", 0o644);
        let e = read_tls_file(&key, true).unwrap_err().to_string();
        assert!(e.starts_with(&key.display().to_string()), "{e}");
        assert!(e.contains("mode 0644"), "{e}");
        assert!(e.contains(&format!("chmod 600 {}", key.display())), "{e}");
        let ok = file_with_mode(dir.path(), "ok.key", 0o600);
        assert!(read_tls_file(&ok, true).is_ok());
    }

    #[test]
    fn a_ca_file_writable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = file_with_mode(dir.path(), "ca.pem", 0o664);
        let e = read_tls_file(&ca, false).unwrap_err().to_string();
        assert!(e.contains("written by group or others"), "{e}");
        let ok = file_with_mode(dir.path(), "ok.pem", 0o644);
        assert!(read_tls_file(&ok, false).is_ok());
    }

    #[test]
    fn a_file_without_certificates_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.pem");
        std::fs::write(&p, "nothing here\n").unwrap();
        let e = certificates(&p, b"nothing here\n").unwrap_err().to_string();
        assert!(e.contains("empty.pem holds no certificate"), "{e}");
    }

    #[test]
    fn os_error_numbers_are_dropped() {
        let e = std::io::Error::from_raw_os_error(nix::libc::ECONNREFUSED);
        assert_eq!(io_text(&e), "connection refused");
    }
}
