//! The D-Bus client against a real dbus-daemon and against fake peers
//! that answer as systemd does, or badly.

use super::conn::connect_by;
use super::wire::{
    RawHeader, ERROR, FIELD_ERROR_NAME, FIELD_REPLY_SERIAL, FIELD_SIGNATURE, METHOD_RETURN,
};
use super::*;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use zbus::zvariant::serialized::Context as WireContext;
use zbus::zvariant::{Signature, Value, LE};

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
fn fake_peer(answers: Vec<Answer>) -> (tempfile::TempDir, PathBuf, std::thread::JoinHandle<usize>) {
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
                    Answer::Garbage => b"\xde\xad\xbe\xef not D-Bus at all, not at all".to_vec(),
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
