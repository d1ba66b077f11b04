//! A real etcd on loopback for the fleet tests: Debian's `etcd-server`
//! (3.4), started from a temporary directory (on tmpfs when there is one)
//! on free ports of 127.0.0.1, one member or a cluster, killed by PID when
//! dropped; and reads and writes of its keys by hand, through the JSON
//! gateway, not through umm's code.
//!
//! When etcd is not installed, `etcd_binary` prints a SKIPPED line to the
//! terminal and the test passes, unless `UMM_FLEET_REQUIRE_ETCD=1` (as CI
//! sets it), when it fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use umm::fleet::etcd::{self, Etcd};
use umm::fleet::{Backend, Coordinator, FleetSettings};

/// The etcd binary, or `None` (after a SKIPPED line) when it is missing
/// and not required (UMM_FLEET_REQUIRE_ETCD).
pub fn etcd_binary(test: &str) -> Option<PathBuf> {
    super::require_tool(test, "etcd", "etcd-server", "UMM_FLEET_REQUIRE_ETCD")
}

/// Free ports on 127.0.0.1 (held together while chosen, so all differ).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// TLS files of an etcd member that requires client certificates.
#[derive(Clone)]
pub struct ServerTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// etcd members on loopback, killed by PID on drop.
pub struct Etcds {
    binary: PathBuf,
    pub dir: tempfile::TempDir,
    pub client_ports: Vec<u16>,
    peer_ports: Vec<u16>,
    pub children: Vec<Option<Child>>,
    tls: Option<ServerTls>,
}

/// One etcd member started for `test`, or `None` (after a SKIPPED line)
/// when etcd is missing and not required: what most tests start with.
pub fn one_etcd(test: &str) -> Option<Etcds> {
    etcd_binary(test).map(|bin| Etcds::start(bin, 1, None))
}

/// A free port on 127.0.0.1 (nothing listens on it once returned).
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

impl Etcds {
    pub fn start(binary: PathBuf, members: usize, tls: Option<ServerTls>) -> Etcds {
        // On tmpfs when there is one: etcd syncs every write.
        let dir = match Path::new("/dev/shm").is_dir() {
            true => tempfile::Builder::new()
                .prefix("umm-etcd")
                .tempdir_in("/dev/shm")
                .unwrap(),
            false => tempfile::tempdir().unwrap(),
        };
        let ports = free_ports(members * 2);
        let mut e = Etcds {
            binary,
            dir,
            client_ports: ports[..members].to_vec(),
            peer_ports: ports[members..].to_vec(),
            children: (0..members).map(|_| None).collect(),
            tls,
        };
        for i in 0..members {
            e.spawn(i);
        }
        e.wait_ready();
        e
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    pub fn endpoint(&self, i: usize) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.client_ports[i])
    }

    pub fn endpoints(&self) -> Vec<String> {
        (0..self.client_ports.len())
            .map(|i| self.endpoint(i))
            .collect()
    }

    /// Starts member `i` (again, after a kill: same data directory, same
    /// ports).
    pub fn spawn(&mut self, i: usize) {
        let cluster: Vec<String> = self
            .peer_ports
            .iter()
            .enumerate()
            .map(|(j, p)| format!("m{j}=http://127.0.0.1:{p}"))
            .collect();
        let client = self.endpoint(i);
        let peer = format!("http://127.0.0.1:{}", self.peer_ports[i]);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("m{i}.log")))
            .unwrap();
        let mut cmd = umm::sys::run::command(&self.binary);
        cmd.arg(format!("--name=m{i}"))
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join(format!("m{i}")).display()
            ))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster={}", cluster.join(",")))
            .arg("--initial-cluster-state=new")
            .arg(format!(
                "--initial-cluster-token=umm-{}",
                self.peer_ports[0]
            ))
            .args(["--heartbeat-interval=50", "--election-timeout=500"])
            .args(["--logger=zap", "--log-level=error", "--log-outputs=stderr"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if let Some(tls) = &self.tls {
            cmd.arg(format!("--cert-file={}", tls.cert.display()))
                .arg(format!("--key-file={}", tls.key.display()))
                .arg(format!("--trusted-ca-file={}", tls.ca.display()))
                .arg("--client-cert-auth");
        }
        self.children[i] = Some(cmd.spawn().expect("etcd starts"));
    }

    /// Member `i` started again (same data directory, same ports), and
    /// answering.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
        self.wait_ready();
    }

    /// Member `i`'s PID, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children[i].as_ref().map(Child::id)
    }

    /// The holders stored in `group`'s key on member 0, read by hand.
    pub fn holders(&self, group: &str) -> Vec<String> {
        raw_holders(&self.endpoint(0), group)
    }

    /// SIGKILL to member `i`, by its PID, and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        (0..self.children.len())
            .map(|i| {
                std::fs::read_to_string(self.dir.path().join(format!("m{i}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits (20 s at most) until a write goes through every running member.
    pub fn wait_ready(&mut self) {
        let started = Instant::now();
        for i in 0..self.children.len() {
            if self.children[i].is_none() {
                continue;
            }
            loop {
                if let Some(Ok(Some(status))) = self.children[i].as_mut().map(|c| c.try_wait()) {
                    panic!("etcd m{i} exited ({status}):\n{}", self.log());
                }
                let settings = FleetSettings {
                    endpoints: vec![self.endpoint(i)],
                    group: "readiness".into(),
                    timeout: Duration::from_secs(2),
                    ..self.settings("unused")
                };
                if let Ok(c) = Etcd::new(&settings) {
                    if c.take("probe").is_ok() && c.release("probe").is_ok() {
                        break;
                    }
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "etcd m{i} not ready after 20 s:\n{}",
                    self.log()
                );
                thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Settings for a client of `group` on every member.
    pub fn settings(&self, group: &str) -> FleetSettings {
        let (ca_file, cert_file, key_file) = match &self.tls {
            Some(t) => (
                Some(t.ca.clone()),
                Some(t.cert.with_file_name("client.crt")),
                Some(t.key.with_file_name("client.key")),
            ),
            None => (None, None, None),
        };
        FleetSettings {
            backend: Backend::Etcd,
            group: group.into(),
            endpoints: self.endpoints(),
            slots: 2,
            ca_file,
            cert_file,
            key_file,
            timeout: Duration::from_secs(10),
            ..FleetSettings::default()
        }
    }

    pub fn client(&self, group: &str) -> Etcd {
        Etcd::new(&self.settings(group)).unwrap()
    }
}

impl Drop for Etcds {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

/// A key's raw value and version, read through the gateway by hand (not
/// through umm's code), on a plain-http member; `Err` when it does not
/// answer within 5 s.
pub fn try_raw_get(endpoint: &str, key: &str) -> Result<Option<(Vec<u8>, i64)>, ureq::Error> {
    let body = format!(r#"{{"key":"{}"}}"#, B64.encode(key));
    // Bounded: a member still starting may take connections and not answer.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut answer = agent
        .post(format!("{endpoint}/v3/kv/range"))
        .send(body.as_bytes())?;
    let json: serde_json::Value =
        serde_json::from_str(&answer.body_mut().read_to_string()?).unwrap();
    let Some(kv) = json["kvs"].get(0) else {
        return Ok(None);
    };
    let value = B64.decode(kv["value"].as_str().unwrap_or("")).unwrap();
    let version = kv["version"].as_str().unwrap().parse().unwrap();
    Ok(Some((value, version)))
}

pub fn raw_get(endpoint: &str, key: &str) -> Option<(Vec<u8>, i64)> {
    try_raw_get(endpoint, key).expect("etcd answers a range")
}

pub fn raw_put(endpoint: &str, key: &str, value: &[u8]) {
    let body = format!(
        r#"{{"key":"{}","value":"{}"}}"#,
        B64.encode(key),
        B64.encode(value)
    );
    let answer = ureq::post(format!("{endpoint}/v3/kv/put"))
        .send(body.as_bytes())
        .expect("etcd answers a put");
    assert_eq!(answer.status(), 200);
}

/// The holders stored in the group's key, read by hand.
pub fn raw_holders(endpoint: &str, group: &str) -> Vec<String> {
    match raw_get(endpoint, &etcd::semaphore_key(group)) {
        Some((value, _)) => {
            let v: serde_json::Value = serde_json::from_slice(&value).unwrap();
            v["holders"]
                .as_array()
                .map(|a| a.iter().map(|h| h.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        }
        None => Vec::new(),
    }
}
