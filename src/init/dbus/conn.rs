//! One authenticated stream to a bus or peer: connecting by a deadline,
//! SASL EXTERNAL, one call at a time, whole messages read back.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
use serde::de::DeserializeOwned;
use serde::Serialize;
use zbus::message::Message;
use zbus::zvariant::{DynamicType, Type};

use super::address::{Endpoint, Socket};
use super::wire::{message_length, Received, ERROR, METHOD_RETURN};

/// The authentication answer is one short line.
const MAX_AUTH_LINE: usize = 512;

/// One authenticated stream.
pub(super) struct Conn {
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
pub(super) fn connect_by(socket: &Socket, deadline: Instant) -> Result<UnixStream> {
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
    pub(super) fn open(endpoint: &Endpoint, deadline: Instant) -> Result<Conn> {
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
    pub(super) fn call<B, R>(
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
