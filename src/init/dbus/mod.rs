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

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use zbus::zvariant::{DynamicType, OwnedValue, Type};

mod address;
mod conn;
mod wire;

pub use address::{
    parse_address, system_endpoints, Endpoint, Socket, ADDRESS_ENV, SYSTEMD_PRIVATE, SYSTEM_BUS,
};
pub use wire::{message_length, Received, MAX_MESSAGE};

use conn::Conn;

/// Bound on one call, connecting included (daemon-reload on a big system
/// takes seconds).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(90);

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

#[cfg(test)]
mod tests;
