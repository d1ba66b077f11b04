//! A small blocking D-Bus client: zbus builds the method calls; this
//! module moves them over a Unix socket with the EXTERNAL authentication,
//! one call at a time, and reads the replies itself. zbus's own connection
//! brings an async runtime, an object server and TCP transports that would
//! double the binary's size (measured: 1.1 MiB of a 2 MiB budget) for what
//! umm needs: a few method calls to systemd.
//!
//! Rules that keep a peer from hanging or aborting umm:
//! - every call has one deadline, connecting included;
//! - a connection that failed or timed out is dropped, never reused: the
//!   next call connects afresh (a late reply could otherwise be read as the
//!   answer to the next call);
//! - a received message is parsed here, with zvariant, as plain values:
//!   never through `zbus::Message::header()`. systemd sends every message on
//!   its private socket with the sender `org.freedesktop.systemd1`, which is
//!   not a unique name; zbus 5.19 accepts it when parsing but panics when
//!   the header is read ("Invalid field reconstruction", zbus issue 1497,
//!   z-galaxy/zbus, open). The body is deserialized with the same zvariant
//!   call `zbus::message::Body::deserialize` makes.
//! - a message longer than `MAX_MESSAGE` is refused from its fixed header,
//!   before anything is allocated for it.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
use serde::de::DeserializeOwned;
use serde::Serialize;
use zbus::message::Message;
use zbus::zvariant::serialized::{Context as WireContext, Data};
use zbus::zvariant::{DynamicType, OwnedValue, Signature, Type, Value, BE, LE};

pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
/// systemd's private socket: the same API without dbus-daemon (root only).
pub const SYSTEMD_PRIVATE: &str = "/run/systemd/private";
/// Where libdbus and sd-bus look for another system bus address.
pub const ADDRESS_ENV: &str = "DBUS_SYSTEM_BUS_ADDRESS";

/// Bound on one call, connecting included (daemon-reload on a big system
/// takes seconds).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(90);

/// The largest message umm accepts. The specification allows 128 MiB; the
/// largest answer umm asks for (ListUnits on a big host) is a few MiB.
pub const MAX_MESSAGE: usize = 32 << 20;

/// The authentication answer is one short line.
const MAX_AUTH_LINE: usize = 512;

/// Message types (D-Bus specification, "Message Format").
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;
/// Header field codes.
const FIELD_ERROR_NAME: u8 = 4;
const FIELD_REPLY_SERIAL: u8 = 5;
const FIELD_SIGNATURE: u8 = 8;

/// A socket address from a D-Bus address string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Socket {
    Path(PathBuf),
    /// Linux abstract namespace (`unix:abstract=`).
    Abstract(Vec<u8>),
}

impl std::fmt::Display for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Socket::Path(p) => write!(f, "{}", p.display()),
            Socket::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
        }
    }
}

/// Where a bus may be reached, tried in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A bus daemon: authenticate, then `Hello`.
    Bus(Socket),
    /// A peer such as systemd's private socket: no `Hello`.
    Peer(Socket),
}

impl Endpoint {
    fn socket(&self) -> &Socket {
        match self {
            Endpoint::Bus(s) | Endpoint::Peer(s) => s,
        }
    }
}

/// Reads a D-Bus server address (`unix:path=/run/dbus/system_bus_socket`,
/// several separated by `;`): the Unix sockets it names, and one line for
/// each entry umm cannot use (other transports such as tcp: need a
/// network client umm does not carry).
pub fn parse_address(address: &str) -> (Vec<Socket>, Vec<String>) {
    let mut sockets = Vec::new();
    let mut problems = Vec::new();
    for entry in address.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((transport, params)) = entry.split_once(':') else {
            problems.push(format!(
                "{entry:?} is not a D-Bus address (transport:key=value)"
            ));
            continue;
        };
        if transport != "unix" {
            problems.push(format!(
                "{entry:?}: the {transport}: transport is not supported (only unix:path= and unix:abstract=)"
            ));
            continue;
        }
        let found = params.split(',').find_map(|kv| match kv.split_once('=') {
            Some(("path", v)) => Some(unescape(v).map(|b| {
                use std::os::unix::ffi::OsStringExt;
                Socket::Path(PathBuf::from(std::ffi::OsString::from_vec(b)))
            })),
            Some(("abstract", v)) => Some(unescape(v).map(Socket::Abstract)),
            _ => None,
        });
        match found {
            Some(Ok(socket)) => sockets.push(socket),
            Some(Err(e)) => problems.push(format!("{entry:?}: {e}")),
            None => problems.push(format!(
                "{entry:?}: no path= or abstract= (unix:tmpdir= and unix:runtime= are for servers)"
            )),
        }
    }
    (sockets, problems)
}

/// D-Bus addresses escape bytes as `%XX`.
fn unescape(value: &str) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(value.len());
    let mut bytes = value.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex: Option<u8> = bytes
            .next()
            .zip(bytes.next())
            .and_then(|(h, l)| u8::from_str_radix(std::str::from_utf8(&[h, l]).ok()?, 16).ok());
        out.push(hex.ok_or_else(|| format!("bad %-escape in {value:?}"))?);
    }
    Ok(out)
}

/// The system bus as libdbus finds it (`DBUS_SYSTEM_BUS_ADDRESS`, else the
/// standard socket), then systemd's private socket for a node without
/// dbus-daemon, or while it is stopped or refuses us. The second value lists
/// the address entries that could not be used.
pub fn system_endpoints(address: Option<&str>) -> (Vec<Endpoint>, Vec<String>) {
    let (buses, problems) = match address {
        Some(a) => parse_address(a),
        None => (vec![Socket::Path(PathBuf::from(SYSTEM_BUS))], Vec::new()),
    };
    let mut endpoints: Vec<Endpoint> = buses.into_iter().map(Endpoint::Bus).collect();
    endpoints.push(Endpoint::Peer(Socket::Path(PathBuf::from(SYSTEMD_PRIVATE))));
    (endpoints, problems)
}

/// A client: the endpoints to try, and the connection while it is sound.
pub struct Bus {
    endpoints: Vec<Endpoint>,
    timeout: Duration,
    conn: Option<Conn>,
    /// Why the endpoints before the one in use failed (for the error message).
    problems: Vec<String>,
}

impl Bus {
    /// The system bus; if dbus-daemon is not running, systemd's private socket.
    pub fn system() -> Result<Bus> {
        let address = std::env::var(ADDRESS_ENV).ok().filter(|a| !a.is_empty());
        let (endpoints, problems) = system_endpoints(address.as_deref());
        for p in &problems {
            log::warn!("{ADDRESS_ENV}: {p}; trying systemd's private socket");
        }
        Bus::open(endpoints, CALL_TIMEOUT, problems)
    }

    /// Connects and authenticates to one socket; `hello` for a bus daemon
    /// (not for a peer-to-peer socket such as systemd's private one).
    pub fn connect(socket: &Path, hello: bool) -> Result<Bus> {
        let socket = Socket::Path(socket.to_path_buf());
        let endpoint = if hello {
            Endpoint::Bus(socket)
        } else {
            Endpoint::Peer(socket)
        };
        Bus::open(vec![endpoint], CALL_TIMEOUT, Vec::new())
    }

    /// Connects to the first endpoint that answers, within `timeout`; every
    /// later call is bounded by `timeout` too.
    pub fn open(endpoints: Vec<Endpoint>, timeout: Duration, problems: Vec<String>) -> Result<Bus> {
        let mut bus = Bus {
            endpoints,
            timeout,
            conn: None,
            problems,
        };
        bus.conn = Some(bus.connect_any(Instant::now() + timeout)?);
        Ok(bus)
    }

    fn connect_any(&self, deadline: Instant) -> Result<Conn> {
        let mut failures = self.problems.clone();
        for endpoint in &self.endpoints {
            match Conn::open(endpoint, deadline) {
                Ok(conn) => return Ok(conn),
                Err(e) => failures.push(format!("{}: {e:#}", endpoint.socket())),
            }
        }
        bail!("no D-Bus connection ({})", failures.join("; "))
    }

    /// Calls a method and returns its reply's body, within the timeout.
    pub fn call<B, R>(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        method: &str,
        body: &B,
    ) -> Result<R>
    where
        B: Serialize + DynamicType,
        R: DeserializeOwned + Type,
    {
        let deadline = Instant::now() + self.timeout;
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.connect_any(deadline)?,
        };
        match conn.call(deadline, destination, path, interface, method, body) {
            Ok(answer) => {
                // The stream is in step (a whole reply was read): keep it,
                // even when the reply was an error.
                self.conn = Some(conn);
                answer
            }
            // Dropped: it may be out of step or dead.
            Err(e) => Err(e.context(format!("no answer to {interface}.{method}"))),
        }
    }

    /// Reads a property (org.freedesktop.DBus.Properties.Get).
    pub fn property<T>(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        name: &str,
    ) -> Result<T>
    where
        T: TryFrom<OwnedValue>,
        <T as TryFrom<OwnedValue>>::Error: Into<zbus::zvariant::Error>,
    {
        let value: OwnedValue = self.call(
            destination,
            path,
            "org.freedesktop.DBus.Properties",
            "Get",
            &(interface, name),
        )?;
        T::try_from(value)
            .map_err(Into::into)
            .with_context(|| format!("property {interface}.{name} has another type"))
    }
}

/// One authenticated stream.
struct Conn {
    stream: UnixStream,
}

fn remaining(deadline: Instant) -> std::io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        ));
    }
    Ok(left)
}

/// A Unix stream connect that gives up at `deadline`: a blocking connect
/// waits as long as the listener's backlog is full (a hung dbus-daemon).
fn connect_by(socket: &Socket, deadline: Instant) -> Result<UnixStream> {
    let addr = match socket {
        Socket::Path(p) => UnixAddr::new(p.as_path()),
        Socket::Abstract(name) => UnixAddr::new_abstract(name),
    }?;
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    loop {
        match socket::connect(fd.as_raw_fd(), &addr) {
            Ok(()) | Err(Errno::EISCONN) => break,
            // A Unix socket's backlog is full: try again until the deadline.
            Err(Errno::EAGAIN | Errno::EINPROGRESS | Errno::EALREADY | Errno::EINTR) => {
                remaining(deadline).context("the listener did not accept in time")?;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

impl Conn {
    fn open(endpoint: &Endpoint, deadline: Instant) -> Result<Conn> {
        let socket = endpoint.socket();
        let stream =
            connect_by(socket, deadline).with_context(|| format!("cannot connect to {socket}"))?;
        let mut conn = Conn { stream };
        conn.authenticate(deadline)
            .with_context(|| format!("D-Bus authentication on {socket} failed"))?;
        if let Endpoint::Bus(_) = endpoint {
            let _: String = conn
                .call(
                    deadline,
                    "org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus",
                    "Hello",
                    &(),
                )
                .and_then(|answer| answer)
                .with_context(|| format!("the bus on {socket} did not accept us"))?;
        }
        Ok(conn)
    }

    /// Writes all of `data` by the deadline.
    fn send(&mut self, data: &[u8], deadline: Instant) -> Result<()> {
        let mut rest = data;
        while !rest.is_empty() {
            self.stream.set_write_timeout(Some(remaining(deadline)?))?;
            match self.stream.write(rest) {
                Ok(0) => bail!("the peer closed the connection"),
                Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Reads exactly `n` more bytes onto `buf` by the deadline; the buffer
    /// grows as bytes arrive, not by what the peer announced.
    fn receive(&mut self, buf: &mut Vec<u8>, n: usize, deadline: Instant) -> Result<()> {
        let want = buf.len().saturating_add(n);
        let mut chunk = [0u8; 16 * 1024];
        while buf.len() < want {
            self.stream.set_read_timeout(Some(remaining(deadline)?))?;
            let room = chunk.len().min(want - buf.len());
            let into = chunk.get_mut(..room).unwrap_or_default();
            match self.stream.read(into) {
                Ok(0) => bail!("the peer closed the connection"),
                Ok(got) => buf.extend_from_slice(into.get(..got).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    bail!("timed out")
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// SASL EXTERNAL: the kernel vouches for our uid.
    ///
    /// BEGIN goes out in the same write as AUTH, as sd-bus's own clients
    /// send it, so the first call always arrives after it. systemd 252's
    /// private socket stalls on a call that reaches it in the same read as
    /// a separately sent BEGIN: the connection is running, the call sits in
    /// its buffer unanswered (seen in the lab: umm's first call after a
    /// boot without dbus-daemon timed out; PID 1's debug log never showed
    /// the message).
    fn authenticate(&mut self, deadline: Instant) -> Result<()> {
        let uid = nix::unistd::geteuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        self.send(
            format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").as_bytes(),
            deadline,
        )?;
        // Byte by byte: nothing after the line may be consumed, and a peer
        // that never ends the line is cut off at MAX_AUTH_LINE.
        let mut line = Vec::new();
        while !line.ends_with(b"\r\n") {
            if line.len() >= MAX_AUTH_LINE {
                bail!("the answer to AUTH is longer than {MAX_AUTH_LINE} bytes");
            }
            self.receive(&mut line, 1, deadline)?;
        }
        let line = String::from_utf8_lossy(&line);
        if !line.starts_with("OK ") {
            bail!("the bus answered {:?}", line.trim_end());
        }
        Ok(())
    }

    /// Sends a call and reads messages until its reply. The outer error is
    /// the connection's (drop it); the inner one is the reply's (an error
    /// message, or a body of another type).
    fn call<B, R>(
        &mut self,
        deadline: Instant,
        destination: &str,
        path: &str,
        interface: &str,
        method: &str,
        body: &B,
    ) -> Result<Result<R>>
    where
        B: Serialize + DynamicType,
        R: DeserializeOwned + Type,
    {
        let call = Message::method_call(path, method)?
            .destination(destination)?
            .interface(interface)?
            .build(body)?;
        self.send(call.data(), deadline)?;
        let serial = call.primary_header().serial_num().get();
        loop {
            let reply = self.read_message(deadline)?;
            if reply.reply_serial != Some(serial) {
                continue; // a signal, or NameAcquired after Hello
            }
            return Ok(match reply.msg_type {
                ERROR => {
                    let text: String = reply.body().unwrap_or_default();
                    let name = reply.error_name.as_deref().unwrap_or("unnamed error");
                    Err(anyhow!("{interface}.{method}: {name}: {text}"))
                }
                METHOD_RETURN => reply
                    .body()
                    .with_context(|| format!("unexpected answer to {interface}.{method}")),
                other => Err(anyhow!(
                    "message type {other} in answer to {interface}.{method}"
                )),
            });
        }
    }

    /// One whole message: the fixed header says how long the rest is.
    fn read_message(&mut self, deadline: Instant) -> Result<Received> {
        let mut bytes = Vec::with_capacity(16);
        self.receive(&mut bytes, 16, deadline)?;
        let total = message_length(&bytes)?;
        self.receive(&mut bytes, total.saturating_sub(16), deadline)?;
        Received::parse(bytes)
    }
}

fn wire_context(endian: u8) -> Result<WireContext> {
    match endian {
        b'l' => Ok(WireContext::new_dbus(LE, 0)),
        b'B' => Ok(WireContext::new_dbus(BE, 0)),
        other => bail!("not a D-Bus message (endianness byte {other:#x})"),
    }
}

/// The whole message's length from its first 16 bytes, refused when it is
/// over `MAX_MESSAGE`.
pub fn message_length(fixed: &[u8]) -> Result<usize> {
    let [endian, _, _, version, b0, b1, b2, b3, _, _, _, _, f0, f1, f2, f3, ..] = *fixed else {
        bail!("a D-Bus message is at least 16 bytes");
    };
    wire_context(endian)?;
    if version != 1 {
        bail!("D-Bus protocol version {version} (expected 1)");
    }
    let word = |b: [u8; 4]| {
        u64::from(if endian == b'B' {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let (body, fields) = (word([b0, b1, b2, b3]), word([f0, f1, f2, f3]));
    // u64: two announced u32 lengths cannot overflow it.
    let total = 16 + fields.div_ceil(8) * 8 + body;
    match usize::try_from(total) {
        Ok(n) if n <= MAX_MESSAGE => Ok(n),
        _ => bail!("a message of {total} bytes is over umm's limit of {MAX_MESSAGE}"),
    }
}

/// A received message, its header read as plain values (no name checks).
#[derive(Debug)]
pub struct Received {
    msg_type: u8,
    reply_serial: Option<u32>,
    error_name: Option<String>,
    signature: Signature,
    bytes: Vec<u8>,
    body_offset: usize,
}

/// The header as the specification lays it out: endianness, type, flags,
/// version, body length, serial, then the `a(yv)` field array.
type RawHeader<'a> = (u8, u8, u8, u8, u32, u32, Vec<(u8, Value<'a>)>);

impl Received {
    pub fn parse(bytes: Vec<u8>) -> Result<Received> {
        let total = message_length(&bytes)?;
        if bytes.len() != total {
            bail!(
                "the message is {} bytes, its header says {total}",
                bytes.len()
            );
        }
        let endian = bytes.first().copied().unwrap_or_default();
        let data = Data::new(bytes.as_slice(), wire_context(endian)?);
        let ((_, msg_type, _, _, body_len, _, fields), header_len): (RawHeader, usize) = data
            .deserialize()
            .context("the message header does not parse")?;
        let mut reply_serial = None;
        let mut error_name = None;
        let mut signature = Signature::Unit;
        for (code, value) in fields {
            match (code, value) {
                (FIELD_REPLY_SERIAL, Value::U32(n)) => reply_serial = Some(n),
                (FIELD_ERROR_NAME, Value::Str(s)) => error_name = Some(s.to_string()),
                (FIELD_SIGNATURE, Value::Signature(s)) => signature = s,
                _ => {}
            }
        }
        let body_offset = header_len.div_ceil(8) * 8;
        if body_offset.checked_add(body_len as usize) != Some(total) {
            bail!("the message's header and body lengths do not add up");
        }
        Ok(Received {
            msg_type,
            reply_serial,
            error_name,
            signature,
            bytes,
            body_offset,
        })
    }

    /// The body, deserialized by its signature as `zbus::message::Body`
    /// does it.
    pub fn body<R: DeserializeOwned + Type>(&self) -> Result<R> {
        let endian = self.bytes.first().copied().unwrap_or_default();
        let data = Data::new(self.bytes.as_slice(), wire_context(endian)?);
        if self.body_offset > self.bytes.len() {
            bail!("the message body is missing");
        }
        let (value, _) = data
            .slice(self.body_offset..)
            .deserialize_for_dynamic_signature(&self.signature)?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::process::{Child, Command, Stdio};

    /// A real dbus-daemon on a private socket, killed by its PID at the end.
    struct Daemon {
        child: Child,
        socket: std::path::PathBuf,
        _dir: tempfile::TempDir,
    }

    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn daemon() -> Option<Daemon> {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("bus");
        let child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address=unix:path={}", socket.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let daemon = Daemon {
            child,
            socket,
            _dir: dir,
        };
        for _ in 0..100 {
            if daemon.socket.exists() {
                return Some(daemon);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    #[test]
    fn talks_to_a_real_dbus_daemon() {
        let Some(d) = daemon() else {
            // .ci/run installs dbus-daemon; a developer machine may not have it.
            eprintln!("SKIPPED talks_to_a_real_dbus_daemon: no dbus-daemon on PATH");
            assert!(std::env::var_os("CI").is_none(), "CI must have dbus-daemon");
            return;
        };
        let mut bus = Bus::connect(&d.socket, true).unwrap();
        let names: Vec<String> = bus
            .call(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "ListNames",
                &(),
            )
            .unwrap();
        assert!(
            names.iter().any(|n| n == "org.freedesktop.DBus"),
            "{names:?}"
        );
        assert!(
            names.iter().any(|n| n.starts_with(':')),
            "our own unique name is missing: {names:?}"
        );
        let features: Vec<String> = bus
            .property(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "Features",
            )
            .unwrap();
        let _ = features;
        let err = bus
            .call::<_, String>(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "NoSuchMethod",
                &(),
            )
            .unwrap_err();
        assert!(err.to_string().contains("UnknownMethod"), "{err}");
        // The error reply left the connection in step: the next call works.
        let owner: String = bus
            .call(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "GetNameOwner",
                &("org.freedesktop.DBus",),
            )
            .unwrap();
        assert_eq!(owner, "org.freedesktop.DBus");
        // Through DBUS_SYSTEM_BUS_ADDRESS's syntax too.
        let address = format!("unix:path={}", d.socket.display());
        let (endpoints, problems) = system_endpoints(Some(&address));
        assert!(problems.is_empty(), "{problems:?}");
        let mut bus = Bus::open(endpoints, Duration::from_secs(10), problems).unwrap();
        let id: String = bus
            .call(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "GetId",
                &(),
            )
            .unwrap();
        assert_eq!(id.len(), 32, "{id}");
    }

    /// How a fake peer answers each call it reads.
    #[derive(Clone, Copy)]
    enum Answer {
        /// A method return with systemd's private-socket sender.
        Systemd,
        /// An error reply, same sender.
        SystemdError,
        Garbage,
        /// The first half of a valid reply, then the connection closes.
        Truncated,
        /// A fixed header announcing a body of 4 GiB.
        Huge,
        /// Nothing at all (the connection stays open).
        Silence,
    }

    /// Builds a message with zvariant, the header written field by field
    /// the way systemd writes it (zbus's builder refuses a well-known sender).
    fn message(msg_type: u8, reply_serial: u32, error: Option<&str>, body: &str) -> Vec<u8> {
        let ctx = WireContext::new_dbus(LE, 0);
        let body = zbus::zvariant::to_bytes(ctx, &body).unwrap().to_vec();
        let mut fields: Vec<(u8, Value)> = vec![
            (FIELD_REPLY_SERIAL, Value::U32(reply_serial)),
            (7, Value::from("org.freedesktop.systemd1")),
            (FIELD_SIGNATURE, Value::Signature(Signature::Str)),
        ];
        if let Some(name) = error {
            fields.push((FIELD_ERROR_NAME, Value::from(name)));
        }
        let header: RawHeader = (b'l', msg_type, 0, 1, body.len() as u32, 4242, fields);
        let mut bytes = zbus::zvariant::to_bytes(ctx, &header).unwrap().to_vec();
        bytes.resize(bytes.len().div_ceil(8) * 8, 0);
        bytes.extend(body);
        bytes
    }

    /// Reads one whole message from a client; returns its serial.
    fn read_call(s: &mut UnixStream) -> Option<u32> {
        let mut fixed = [0u8; 16];
        s.read_exact(&mut fixed).ok()?;
        let total = message_length(&fixed).ok()?;
        let mut rest = vec![0u8; total - 16];
        s.read_exact(&mut rest).ok()?;
        Some(u32::from_le_bytes(fixed[8..12].try_into().unwrap()))
    }

    /// A peer on a Unix socket, in a thread: authenticates each client,
    /// then answers each call as `answers` says, one connection after
    /// another. Returns the socket path and the number of connections seen.
    fn fake_peer(
        answers: Vec<Answer>,
    ) -> (tempfile::TempDir, PathBuf, std::thread::JoinHandle<usize>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let mut connections = 0;
            let mut answers = answers.into_iter().peekable();
            'accept: while let Ok((mut s, _)) = listener.accept() {
                if answers.peek().is_none() {
                    return connections;
                }
                connections += 1;
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut auth = Vec::new();
                let mut byte = [0u8; 1];
                while !auth.ends_with(b"\r\n") {
                    if s.read_exact(&mut byte).is_err() {
                        continue 'accept;
                    }
                    auth.push(byte[0]);
                }
                s.write_all(b"OK 0123456789abcdef0123456789abcdef\r\n")
                    .unwrap();
                let mut begin = [0u8; 7];
                if s.read_exact(&mut begin).is_err() {
                    continue;
                }
                while let Some(serial) = read_call(&mut s) {
                    let Some(answer) = answers.next() else {
                        return connections;
                    };
                    let reply = match answer {
                        Answer::Systemd => message(METHOD_RETURN, serial, None, "hello"),
                        Answer::SystemdError => message(
                            ERROR,
                            serial,
                            Some("org.freedesktop.systemd1.NoSuchUnit"),
                            "Unit nope.service not loaded.",
                        ),
                        Answer::Garbage => {
                            b"\xde\xad\xbe\xef not D-Bus at all, not at all".to_vec()
                        }
                        Answer::Truncated => {
                            let m = message(METHOD_RETURN, serial, None, "hello");
                            m[..m.len() / 2].to_vec()
                        }
                        Answer::Huge => {
                            let mut m = message(METHOD_RETURN, serial, None, "hello");
                            m[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
                            m[..16].to_vec()
                        }
                        Answer::Silence => {
                            // Until the client gives up and closes it.
                            let _ = s.read(&mut [0u8; 1]);
                            continue 'accept;
                        }
                    };
                    let _ = s.write_all(&reply);
                    if answers.peek().is_none() {
                        return connections;
                    }
                    if matches!(answer, Answer::Truncated | Answer::Garbage | Answer::Huge) {
                        continue 'accept;
                    }
                }
            }
            connections
        });
        (dir, path, server)
    }

    fn call(bus: &mut Bus) -> Result<String> {
        bus.call(
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "GetDefaultTarget",
            &(),
        )
    }

    fn peer_bus(path: &Path, timeout: Duration) -> Bus {
        let endpoint = Endpoint::Peer(Socket::Path(path.to_path_buf()));
        Bus::open(vec![endpoint], timeout, Vec::new()).unwrap()
    }

    /// systemd 252's private socket leaves a call unanswered when it
    /// arrives in the same read as a BEGIN sent on its own (seen on real
    /// boots without dbus-daemon). BEGIN must leave with AUTH, before the
    /// server's OK, as sd-bus's clients send it.
    #[test]
    fn begin_is_sent_with_auth_before_any_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            // Give a client that sends more than AUTH time to do so.
            std::thread::sleep(Duration::from_millis(200));
            let mut buf = [0u8; 256];
            let n = s.read(&mut buf).unwrap_or(0);
            let first = String::from_utf8_lossy(&buf[..n]).to_string();
            let _ = s.write_all(b"OK 0123456789abcdef0123456789abcdef\r\n");
            first
        });
        let endpoint = Endpoint::Peer(Socket::Path(path.clone()));
        let mut bus = Bus::open(vec![endpoint], Duration::from_secs(2), Vec::new()).unwrap();
        let _ = call(&mut bus);
        let first = server.join().unwrap();
        assert!(
            first.starts_with("\0AUTH EXTERNAL ") && first.ends_with("\r\nBEGIN\r\n"),
            "the first bytes the server read: {first:?}"
        );
    }

    /// Issue #16 item 1: zbus's `Message::header()` panicked on this reply.
    #[test]
    fn systemds_private_socket_sender_is_read_without_a_panic() {
        let (_dir, path, server) = fake_peer(vec![Answer::Systemd, Answer::SystemdError]);
        let mut bus = peer_bus(&path, Duration::from_secs(10));
        assert_eq!(call(&mut bus).unwrap(), "hello");
        let err = format!("{:#}", call(&mut bus).unwrap_err());
        assert!(
            err.contains("org.freedesktop.systemd1.NoSuchUnit: Unit nope.service not loaded."),
            "{err}"
        );
        drop(bus);
        assert_eq!(server.join().unwrap(), 1, "one connection for both calls");
    }

    #[rstest::rstest]
    #[case::garbage(Answer::Garbage, "not a D-Bus message")]
    #[case::truncated(Answer::Truncated, "closed the connection")]
    #[case::four_gib(Answer::Huge, "over umm's limit")]
    #[case::silence(Answer::Silence, "timed out")]
    fn a_bad_peer_is_a_bounded_error_and_the_next_call_reconnects(
        #[case] bad: Answer,
        #[case] error: &str,
    ) {
        let (_dir, path, server) = fake_peer(vec![bad, Answer::Systemd]);
        let mut bus = peer_bus(&path, Duration::from_secs(1));
        let started = Instant::now();
        let err = format!("{:#}", call(&mut bus).unwrap_err());
        assert!(err.contains(error), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        // Never reused: the next call is answered on a fresh connection.
        assert_eq!(call(&mut bus).unwrap(), "hello");
        drop(bus);
        assert_eq!(server.join().unwrap(), 2);
    }

    #[test]
    fn the_deadline_covers_connecting() {
        // A listener that never accepts: once its backlog is full, a
        // blocking connect would wait for ever.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full");
        let fd = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::empty(),
            None,
        )
        .unwrap();
        socket::bind(fd.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
        socket::listen(&fd, socket::Backlog::new(0).unwrap()).unwrap();
        let mut held = Vec::new();
        for _ in 0..8 {
            if let Ok(s) = connect_by(
                &Socket::Path(path.clone()),
                Instant::now() + Duration::from_millis(100),
            ) {
                held.push(s);
            }
        }
        let started = Instant::now();
        let endpoint = Endpoint::Peer(Socket::Path(path.clone()));
        let err = Bus::open(vec![endpoint], Duration::from_secs(1), Vec::new())
            .err()
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let err = format!("{err:#}");
        assert!(
            err.contains("cannot connect") || err.contains("timed out"),
            "{err}"
        );
    }

    #[test]
    fn an_absent_or_refusing_bus_falls_back_to_the_private_socket() {
        let (_dir, path, server) = fake_peer(vec![Answer::Systemd]);
        let refusing = tempfile::tempdir().unwrap();
        let refusing_path = refusing.path().join("bus");
        let listener = UnixListener::bind(&refusing_path).unwrap();
        let refuser = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf);
            s.write_all(b"REJECTED EXTERNAL\r\n").unwrap();
        });
        let address = format!(
            "tcp:host=localhost,port=1;unix:path=/nonexistent/bus;unix:path={}",
            refusing_path.display()
        );
        let (mut endpoints, problems) = system_endpoints(Some(&address));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("tcp: transport is not supported"),
            "{problems:?}"
        );
        // Stand-in for /run/systemd/private.
        let last = endpoints.len() - 1;
        endpoints[last] = Endpoint::Peer(Socket::Path(path.clone()));
        let mut bus = Bus::open(endpoints, Duration::from_secs(5), problems).unwrap();
        assert_eq!(call(&mut bus).unwrap(), "hello");
        refuser.join().unwrap();
        drop(bus);
        server.join().unwrap();
    }

    #[test]
    fn a_refusing_peer_is_a_bounded_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silent");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf);
            s.write_all(b"REJECTED EXTERNAL\r\n").unwrap();
        });
        let err = Bus::connect(&path, true).err().unwrap();
        assert!(format!("{err:#}").contains("REJECTED"), "{err:#}");
        server.join().unwrap();
    }

    #[rstest::rstest]
    #[case("unix:path=/run/dbus/system_bus_socket", &[Socket::Path("/run/dbus/system_bus_socket".into())], 0)]
    #[case("unix:path=/tmp/a%20b", &[Socket::Path("/tmp/a b".into())], 0)]
    #[case("unix:abstract=/tmp/dbus-x,guid=00", &[Socket::Abstract(b"/tmp/dbus-x".to_vec())], 0)]
    #[case("tcp:host=h,port=1", &[], 1)]
    #[case("unix:tmpdir=/tmp", &[], 1)]
    #[case("nonsense", &[], 1)]
    #[case("unix:path=/x%zz", &[], 1)]
    #[case("unixexec:path=/bin/x;unix:path=/b", &[Socket::Path("/b".into())], 1)]
    fn reads_dbus_addresses(
        #[case] address: &str,
        #[case] sockets: &[Socket],
        #[case] problems: usize,
    ) {
        let (got, bad) = parse_address(address);
        assert_eq!(got, sockets);
        assert_eq!(bad.len(), problems, "{bad:?}");
    }

    #[rstest::rstest]
    #[case::empty(&[][..])]
    #[case::short(&b"l\x02\x00\x01"[..])]
    #[case::bad_endian(&b"x\x02\x00\x01\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"[..])]
    #[case::bad_version(&b"l\x02\x00\x09\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"[..])]
    #[case::string_longer_than_the_fields(&b"l\x02\x00\x01\x00\x00\x00\x00\x01\x00\x00\x00\x08\x00\x00\x00\x04\x01s\x00\xff\xff\x00\x00"[..])]
    #[case::body_missing(&b"l\x02\x00\x01\x04\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"[..])]
    fn garbage_is_an_error_never_a_panic(#[case] bytes: &[u8]) {
        assert!(Received::parse(bytes.to_vec()).is_err());
    }
}
