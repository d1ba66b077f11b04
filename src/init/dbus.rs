//! A small blocking D-Bus client: zbus builds and parses the messages
//! (marshalling, headers, signatures); this module only moves them over a
//! Unix socket with the EXTERNAL authentication, one call at a time, with a
//! bound on every read. zbus's own connection brings an async runtime, an
//! object server and TCP transports that would double the binary's size
//! (measured: 1.1 MiB of a 2 MiB budget) for what umm needs: a few method
//! calls to systemd.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use zbus::message::{Message, Type as MessageType};
use zbus::zvariant::serialized::{Context as WireContext, Data};
use zbus::zvariant::{DynamicType, OwnedValue, Type, BE, LE};

pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
/// systemd's private socket: the same API without dbus-daemon (root only).
pub const SYSTEMD_PRIVATE: &str = "/run/systemd/private";

/// Bound on one call (daemon-reload on a big system takes seconds).
const CALL_TIMEOUT: Duration = Duration::from_secs(90);

pub struct Bus {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Bus {
    /// The system bus; if dbus-daemon is not running, systemd's private socket.
    pub fn system() -> Result<Bus> {
        match Bus::connect(Path::new(SYSTEM_BUS), true) {
            Ok(bus) => Ok(bus),
            Err(e) if Path::new(SYSTEMD_PRIVATE).exists() => {
                Bus::connect(Path::new(SYSTEMD_PRIVATE), false).with_context(|| {
                    format!("no system bus ({e:#}), and systemd's private socket failed")
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Connects and authenticates; `hello` for a bus daemon (not for a
    /// peer-to-peer socket such as systemd's private one).
    pub fn connect(socket: &Path, hello: bool) -> Result<Bus> {
        let stream = UnixStream::connect(socket)
            .with_context(|| format!("cannot connect to {}", socket.display()))?;
        stream.set_read_timeout(Some(CALL_TIMEOUT))?;
        stream.set_write_timeout(Some(CALL_TIMEOUT))?;
        let mut bus = Bus {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        bus.authenticate()
            .with_context(|| format!("D-Bus authentication on {} failed", socket.display()))?;
        if hello {
            let _: String = bus.call(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "Hello",
                &(),
            )?;
        }
        Ok(bus)
    }

    /// SASL EXTERNAL: the kernel vouches for our uid.
    fn authenticate(&mut self) -> Result<()> {
        let uid = nix::unistd::geteuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        self.writer
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        if !line.starts_with("OK ") {
            bail!("the bus answered {:?}", line.trim_end());
        }
        self.writer.write_all(b"BEGIN\r\n")?;
        Ok(())
    }

    /// Calls a method and returns its reply's body.
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
        let call = Message::method_call(path, method)?
            .destination(destination)?
            .interface(interface)?
            .build(body)?;
        self.writer.write_all(&call.data()[..])?;
        let serial = call.primary_header().serial_num();
        loop {
            let reply = self
                .read_message()
                .with_context(|| format!("no answer to {interface}.{method}"))?;
            if reply.header().reply_serial() != Some(serial) {
                continue; // a signal, or NameAcquired after Hello
            }
            return match reply.message_type() {
                MessageType::Error => {
                    let name = reply
                        .header()
                        .error_name()
                        .map(|n| n.to_string())
                        .unwrap_or_default();
                    let text: String = reply.body().deserialize().unwrap_or_default();
                    Err(anyhow!("{interface}.{method}: {name}: {text}"))
                }
                _ => reply
                    .body()
                    .deserialize()
                    .with_context(|| format!("unexpected answer to {interface}.{method}")),
            };
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

    /// One whole message: the fixed header says how long the rest is.
    fn read_message(&mut self) -> Result<Message> {
        let mut fixed = [0u8; 16];
        self.reader.read_exact(&mut fixed)?;
        let endian = fixed[0];
        let word = |at: usize| {
            let b = [fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]];
            if endian == b'B' {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let (body_len, fields_len) = (word(4) as usize, word(12) as usize);
        let total = 16 + fields_len.div_ceil(8) * 8 + body_len;
        if total > 128 << 20 {
            bail!("message of {total} bytes is too large");
        }
        let mut bytes = fixed.to_vec();
        bytes.resize(total, 0);
        self.reader.read_exact(&mut bytes[16..])?;
        let context = match endian {
            b'l' => WireContext::new_dbus(LE, 0),
            b'B' => WireContext::new_dbus(BE, 0),
            other => bail!("not a D-Bus message (endianness byte {other:#x})"),
        };
        // SAFETY: no file descriptors are passed on this connection.
        Ok(unsafe { Message::from_bytes(Data::new(bytes, context)) }?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    }

    #[test]
    fn a_silent_peer_is_a_bounded_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silent");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
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
}
