//! Where a bus is: D-Bus address strings, and the system bus's endpoints
//! in the order umm tries them.

use std::path::PathBuf;

pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

/// systemd's private socket: the same API without dbus-daemon (root only).
pub const SYSTEMD_PRIVATE: &str = "/run/systemd/private";

/// Where libdbus and sd-bus look for another system bus address.
pub const ADDRESS_ENV: &str = "DBUS_SYSTEM_BUS_ADDRESS";

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
    pub(super) fn socket(&self) -> &Socket {
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
