//! A FleetLock server for the fleet tests, written here from the protocol's
//! text (no airlock or fleetlock server is run: neither is packaged here):
//! one group, `workers`, with a number of slots; a thread on 127.0.0.1, a
//! minimal HTTP/1.1 responder that records what it saw, and can be told to
//! fail, to answer slowly, or to go down and come back on the same port
//! with its holders.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use umm::fleet::fleetlock::FleetLock;
use umm::fleet::{Backend, FleetSettings};

/// The only group the server knows.
pub const GROUP: &str = "workers";

#[derive(Clone, Copy)]
pub enum Mode {
    Normal,
    /// Every request: HTTP 500 `generic_error: etcd unavailable`.
    Fail,
    /// Every request answered 200 after this long (or when the server
    /// stops).
    Slow(Duration),
    /// Every request carried out, its answer sent after this long (or when
    /// the server stops): a client with a shorter deadline loses the
    /// answer of a request that was applied.
    AppliedSlow(Duration),
}

/// What the test server saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub protocol: Option<String>,
    pub body: String,
}

pub struct LockState {
    pub slots: usize,
    pub holders: BTreeSet<String>,
    pub mode: Mode,
    pub seen: Vec<Seen>,
}

/// The accept loop while the server is up.
struct Listening {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

/// A FleetLock server of group `workers` with `slots` slots.
pub struct LockServer {
    pub url: String,
    addr: SocketAddr,
    pub state: Arc<Mutex<LockState>>,
    listening: Option<Listening>,
}

impl LockServer {
    pub fn start(slots: usize) -> LockServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(LockState {
            slots,
            holders: BTreeSet::new(),
            mode: Mode::Normal,
            seen: Vec::new(),
        }));
        let mut server = LockServer {
            url: format!("http://{addr}"),
            addr,
            state,
            listening: None,
        };
        server.listen(listener);
        server
    }

    fn listen(&mut self, listener: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (self.state.clone(), stop.clone());
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, st) = (s.clone(), st.clone());
                thread::spawn(move || serve(conn, &s, &st));
            }
        });
        self.listening = Some(Listening { stop, thread });
    }

    /// Down: the port refuses connections (the holders are kept).
    pub fn down(&mut self) {
        if let Some(l) = self.listening.take() {
            l.stop.store(true, Ordering::SeqCst);
            // Wakes the accept loop, which then sees the flag and drops
            // the listener.
            let _ = TcpStream::connect(self.addr);
            let _ = l.thread.join();
        }
    }

    /// Up again on the same port, with the holders it had.
    pub fn up(&mut self) {
        if self.listening.is_none() {
            // std sets SO_REUSEADDR: the port just closed binds again.
            let listener = TcpListener::bind(self.addr).unwrap();
            self.listen(listener);
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    pub fn holders(&self) -> Vec<String> {
        self.state.lock().unwrap().holders.iter().cloned().collect()
    }

    /// The paths of the requests seen so far, in order.
    pub fn paths(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.seen.iter().map(|r| r.path.clone()).collect()
    }

    pub fn client(&self, timeout: Duration) -> FleetLock {
        FleetLock::new(&FleetSettings {
            backend: Backend::FleetLock,
            group: GROUP.into(),
            url: Some(self.url.clone()),
            timeout,
            ..FleetSettings::default()
        })
        .unwrap()
    }
}

impl Drop for LockServer {
    fn drop(&mut self) {
        self.down();
    }
}

fn serve(conn: TcpStream, state: &Mutex<LockState>, stop: &AtomicBool) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let (mut length, mut protocol) = (0usize, None);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "fleet-lock-protocol" => protocol = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let mode = {
        let mut s = state.lock().unwrap();
        s.seen.push(Seen {
            path: path.clone(),
            protocol: protocol.clone(),
            body: body.clone(),
        });
        s.mode
    };
    let (code, answer) = match mode {
        Mode::Fail => (
            500,
            r#"{"kind":"generic_error","value":"etcd unavailable"}"#.to_string(),
        ),
        Mode::Slow(d) => {
            let until = Instant::now() + d;
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(20));
            }
            (200, String::new())
        }
        Mode::Normal => answer(state, &path, protocol.as_deref(), &body),
        Mode::AppliedSlow(d) => {
            let answered = answer(state, &path, protocol.as_deref(), &body);
            let until = Instant::now() + d;
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(20));
            }
            answered
        }
    };
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        409 => "Conflict",
        _ => "Internal Server Error",
    };
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

fn answer(
    state: &Mutex<LockState>,
    path: &str,
    protocol: Option<&str>,
    body: &str,
) -> (u16, String) {
    let bad = |v: &str| (400, format!(r#"{{"kind":"bad_request","value":"{v}"}}"#));
    if protocol != Some("true") {
        return bad("missing fleet-lock-protocol header");
    }
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return bad("body is not JSON");
    };
    let Some(id) = json["client_params"]["id"].as_str() else {
        return bad("no client_params.id");
    };
    if json["client_params"]["group"] != GROUP {
        return (
            400,
            r#"{"kind":"unknown_group","value":"unknown group"}"#.into(),
        );
    }
    let mut s = state.lock().unwrap();
    match path {
        "/v1/pre-reboot" => {
            if s.holders.contains(id) || s.holders.len() < s.slots {
                s.holders.insert(id.to_string());
                (200, String::new())
            } else {
                let v = format!("all {} semaphore slots currently locked", s.slots);
                (409, format!(r#"{{"kind":"failed_lock","value":"{v}"}}"#))
            }
        }
        "/v1/steady-state" => {
            s.holders.remove(id);
            (200, String::new())
        }
        _ => (
            404,
            r#"{"kind":"not_found","value":"no such endpoint"}"#.into(),
        ),
    }
}
