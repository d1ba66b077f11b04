//! Every state change is one line in the system log, and a line must not
//! vanish because the usual log is not there (a sysvinit maintenance boot
//! stops before rsyslog, a runlevel-2 service, starts). Where a line goes,
//! in order (as systemd's own `auto` log target does):
//!
//! 1. the journal, by its native protocol, when its socket
//!    (`/run/systemd/journal/socket`) answers: records with fields
//!    (`SYSLOG_IDENTIFIER=umm`, the priority, and a state change's
//!    `MESSAGE_ID` and `UMM_*` fields: `journal`), through the
//!    `systemd-journal-logger` crate;
//! 2. syslog on `/dev/log`, datagram or stream socket (the `syslog` crate);
//! 3. the kernel log, `/dev/kmsg`, which the journal or syslog read later.
//!
//! A line the chosen sink refuses (rsyslog stopped since) goes to the next
//! one. Boot-time entry points also print to stderr unless stderr is the
//! journal itself (`JOURNAL_STREAM` names stderr's device and inode, which
//! is checked, not trusted), so a console shows them once. The generator,
//! which runs before any log daemon, writes to /dev/kmsg. Under a test root
//! the lines go to `<root>/run/umm/log` instead, so tests can read them and
//! the host's log stays clean; the fields of a state change go to
//! `<root>/run/umm/journal.log` then, one JSON object a line, as
//! `journalctl -o json` would show them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};
use syslog::{Facility, Formatter3164, LoggerBackend};

use super::paths::{self, Root};

type Syslog = syslog::Logger<LoggerBackend, Formatter3164>;

/// Where lines can go, in the order they are tried.
pub struct Paths {
    /// Try the journal's native protocol (its socket path is fixed).
    pub journal: bool,
    pub devlog: PathBuf,
    pub kmsg: PathBuf,
}

impl Paths {
    pub fn system() -> Paths {
        Paths {
            journal: Path::new("/run/systemd/journal/socket").exists(),
            devlog: "/dev/log".into(),
            kmsg: "/dev/kmsg".into(),
        }
    }
}

/// The sink chosen for a process, named for tests and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkKind {
    Journal,
    Syslog,
    Kmsg,
    File,
    Nowhere,
}

enum Sink {
    Journal(systemd_journal_logger::JournalLog),
    Syslog(Syslog),
    /// /dev/kmsg: one record per write, tagged.
    Kmsg(File),
    File(File),
    Nowhere,
}

impl Sink {
    fn kind(&self) -> SinkKind {
        match self {
            Sink::Journal(_) => SinkKind::Journal,
            Sink::Syslog(_) => SinkKind::Syslog,
            Sink::Kmsg(_) => SinkKind::Kmsg,
            Sink::File(_) => SinkKind::File,
            Sink::Nowhere => SinkKind::Nowhere,
        }
    }
}

fn syslog_at(path: &Path) -> Option<Syslog> {
    let formatter = Formatter3164 {
        facility: Facility::LOG_DAEMON,
        hostname: None,
        process: "umm".into(),
        pid: std::process::id(),
    };
    syslog::unix_custom(formatter, path).ok()
}

fn kmsg_at(path: &Path) -> Option<File> {
    OpenOptions::new().write(true).open(path).ok()
}

/// The first sink of `paths` that can be opened.
fn open_first(paths: &Paths) -> Sink {
    if paths.journal {
        if let Ok(journal) = systemd_journal_logger::JournalLog::new() {
            return Sink::Journal(journal.with_syslog_identifier("umm".into()));
        }
    }
    if let Some(s) = syslog_at(&paths.devlog) {
        return Sink::Syslog(s);
    }
    kmsg_at(&paths.kmsg).map_or(Sink::Nowhere, Sink::Kmsg)
}

struct Sinks {
    paths: Paths,
    primary: Sink,
    /// Opened when the primary sink first fails.
    fallback: Option<Sink>,
    /// The tag of kmsg lines ("umm", "umm-generator").
    tag: &'static str,
    /// Under a test root: the fields of records that have some.
    fields: Option<File>,
}

impl Sinks {
    fn write(&mut self, record: &Record, msg: &str) {
        if let Some(f) = self.fields.as_mut() {
            write_fields(f, record, msg);
        }
        if send(&mut self.primary, record, msg, self.tag).is_ok() {
            return;
        }
        // The daemon went away (rsyslog stopped): reconnect once.
        if let Sink::Syslog(_) = self.primary {
            if let Some(s) = syslog_at(&self.paths.devlog) {
                self.primary = Sink::Syslog(s);
                if send(&mut self.primary, record, msg, self.tag).is_ok() {
                    return;
                }
            }
        }
        let fallback = self
            .fallback
            .get_or_insert_with(|| kmsg_at(&self.paths.kmsg).map_or(Sink::Nowhere, Sink::Kmsg));
        let _ = send(fallback, record, msg, self.tag);
    }
}

fn send(sink: &mut Sink, record: &Record, msg: &str, tag: &str) -> std::io::Result<()> {
    match sink {
        Sink::Journal(j) => j.journal_send(record),
        Sink::Syslog(s) => match record.level() {
            Level::Error => s.err(msg),
            Level::Warn => s.warning(msg),
            _ => s.info(msg),
        }
        .map_err(|e| std::io::Error::other(e.to_string())),
        Sink::Kmsg(f) => {
            f.write_all(format!("{}{tag}: {msg}\n", kmsg_priority(record.level())).as_bytes())
        }
        Sink::File(f) => writeln!(f, "{}{msg}", kmsg_priority(record.level())),
        Sink::Nowhere => Err(std::io::Error::other("no log")),
    }
}

/// A record's key-values and its message as one JSON line (test roots).
fn write_fields(f: &mut File, record: &Record, msg: &str) {
    struct Collect(serde_json::Map<String, serde_json::Value>);
    impl<'kvs> log::kv::VisitSource<'kvs> for Collect {
        fn visit_pair(
            &mut self,
            key: log::kv::Key<'kvs>,
            value: log::kv::Value<'kvs>,
        ) -> Result<(), log::kv::Error> {
            self.0.insert(key.to_string(), value.to_string().into());
            Ok(())
        }
    }
    let mut fields = Collect(serde_json::Map::new());
    if record.key_values().visit(&mut fields).is_err() || fields.0.is_empty() {
        return;
    }
    fields.0.insert("MESSAGE".into(), msg.into());
    let _ = writeln!(f, "{}", serde_json::Value::Object(fields.0));
}

struct Logger {
    sinks: Mutex<Sinks>,
    /// Also print to stderr (boot-time entry points on a console).
    stderr: bool,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= Level::Info
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let msg = record.args().to_string();
        if self.stderr {
            // stderr is a sink here, like the others: a write error (the
            // console gone) is ignored, never raised.
            let _ = writeln!(std::io::stderr().lock(), "umm: {msg}");
        }
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        sinks.write(record, &msg);
    }

    fn flush(&self) {}
}

/// The `<N>` priority prefix that kmsg understands.
fn kmsg_priority(level: Level) -> &'static str {
    match level {
        Level::Error => "<3>",
        Level::Warn => "<4>",
        Level::Info => "<6>",
        _ => "<7>",
    }
}

pub enum Target {
    /// An interactive command: the log only (the command prints its own output).
    Command,
    /// A boot or shutdown entry point run by the init system: the log, and
    /// stderr when stderr is not the journal already.
    Service,
    /// The systemd generator: /dev/kmsg.
    Kmsg,
}

/// Chooses and opens the sinks for `target`; returns what was chosen.
fn sinks_for(root: &Root, target: &Target, paths: Paths) -> Sinks {
    let mut fields = None;
    let (primary, tag) = if !root.is_system() {
        let _ = std::fs::create_dir_all(root.path(paths::RUN_DIR));
        fields = OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.path("/run/umm/journal.log"))
            .ok();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.path("/run/umm/log"))
            .map_or(Sink::Nowhere, Sink::File);
        (file, "umm")
    } else {
        match target {
            Target::Kmsg => (
                kmsg_at(&paths.kmsg).map_or(Sink::Nowhere, Sink::Kmsg),
                "umm-generator",
            ),
            Target::Command | Target::Service => (open_first(&paths), "umm"),
        }
    };
    Sinks {
        paths,
        primary,
        fallback: None,
        tag,
        fields,
    }
}

pub fn init(root: &Root, target: Target) {
    let sinks = sinks_for(root, &target, Paths::system());
    // On a console (sysvinit) a service's lines are shown; when stderr is
    // the journal they are there already, with their fields.
    let stderr =
        matches!(target, Target::Service) && !systemd_journal_logger::connected_to_journal();
    let logger = Logger {
        sinks: Mutex::new(sinks),
        stderr,
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

/// For tests: which sink a process would use with these paths.
pub fn chosen(root: &Root, target: Target, paths: Paths) -> SinkKind {
    sinks_for(root, &target, paths).primary.kind()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::{UnixDatagram, UnixListener};

    fn record(level: Level, msg: &str, f: impl FnOnce(&Record)) {
        f(&Record::builder()
            .args(format_args!("{msg}"))
            .level(level)
            .build());
    }

    fn paths(dir: &Path) -> Paths {
        Paths {
            journal: false,
            devlog: dir.join("log"),
            kmsg: dir.join("kmsg"),
        }
    }

    #[test]
    fn without_dev_log_a_state_change_goes_to_the_kernel_log() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kmsg"), "").unwrap();
        let system = Root::new("/");
        assert_eq!(
            chosen(&system, Target::Service, paths(dir.path())),
            SinkKind::Kmsg
        );
        let mut sinks = sinks_for(&system, &Target::Service, paths(dir.path()));
        record(
            Level::Warn,
            "entering maintenance mode (reason crash-loop)",
            |r| sinks.write(r, "entering maintenance mode (reason crash-loop)"),
        );
        let kmsg = std::fs::read_to_string(dir.path().join("kmsg")).unwrap();
        assert_eq!(
            kmsg,
            "<4>umm: entering maintenance mode (reason crash-loop)\n"
        );
    }

    #[test]
    fn a_datagram_dev_log_gets_rfc3164_lines() {
        let dir = tempfile::tempdir().unwrap();
        let server = UnixDatagram::bind(dir.path().join("log")).unwrap();
        let mut sinks = sinks_for(&Root::new("/"), &Target::Command, paths(dir.path()));
        assert_eq!(sinks.primary.kind(), SinkKind::Syslog);
        record(Level::Error, "counted", |r| sinks.write(r, "counted"));
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let line = String::from_utf8_lossy(&buf[..n]);
        // daemon (3) * 8 + err (3)
        assert!(line.starts_with("<27>"), "{line}");
        assert!(
            line.ends_with(&format!("umm[{}]: counted", std::process::id())),
            "{line}"
        );
    }

    #[test]
    fn a_stream_dev_log_works_too() {
        let dir = tempfile::tempdir().unwrap();
        let server = UnixListener::bind(dir.path().join("log")).unwrap();
        let mut sinks = sinks_for(&Root::new("/"), &Target::Command, paths(dir.path()));
        assert_eq!(sinks.primary.kind(), SinkKind::Syslog);
        let (mut conn, _) = server.accept().unwrap();
        record(Level::Info, "reset", |r| sinks.write(r, "reset"));
        drop(sinks);
        let mut got = String::new();
        conn.read_to_string(&mut got).unwrap();
        assert!(got.starts_with("<30>"), "{got:?}");
        assert!(got.contains("umm["), "{got:?}");
        assert!(got.ends_with("]: reset\0"), "{got:?}");
    }

    #[test]
    fn a_syslog_that_went_away_falls_back_to_the_kernel_log() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kmsg"), "").unwrap();
        let server = UnixDatagram::bind(dir.path().join("log")).unwrap();
        let mut sinks = sinks_for(&Root::new("/"), &Target::Command, paths(dir.path()));
        assert_eq!(sinks.primary.kind(), SinkKind::Syslog);
        drop(server);
        std::fs::remove_file(dir.path().join("log")).unwrap();
        record(Level::Warn, "entered", |r| sinks.write(r, "entered"));
        let kmsg = std::fs::read_to_string(dir.path().join("kmsg")).unwrap();
        assert_eq!(kmsg, "<4>umm: entered\n");
    }

    #[test]
    fn the_generator_writes_to_the_kernel_log() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kmsg"), "").unwrap();
        UnixDatagram::bind(dir.path().join("log")).unwrap();
        assert_eq!(
            chosen(&Root::new("/"), Target::Kmsg, paths(dir.path())),
            SinkKind::Kmsg
        );
    }
}
