//! Every state change is one line in the system log (syslog, so the journal
//! on systemd), sent as an RFC 3164 datagram to /dev/log (`<PRI>umm[PID]:
//! message`; syslog daemons and journald add the time and host). The
//! `syslog` crate did the same but brought a date library along (24 KiB of
//! a 2 MiB budget). Under a test root the lines go to `<root>/run/umm/log`
//! instead, so tests can read them and the host's log stays clean. The
//! generator, which runs before syslog exists, writes to /dev/kmsg.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::paths::Root;

enum Sink {
    Syslog(std::os::unix::net::UnixDatagram),
    File(std::fs::File),
    /// /dev/kmsg: one record per write, tagged.
    Kmsg(std::fs::File),
    Nowhere,
}

struct Logger {
    sink: Mutex<Sink>,
    /// Also print to stderr (boot-time entry points, whose stderr the
    /// journal captures; there it replaces syslog to avoid doubled lines).
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
            // The journal reads the `<N>` priority prefix; a console shows it.
            if std::env::var_os("JOURNAL_STREAM").is_some() {
                eprintln!("{}{msg}", kmsg_priority(record.level()));
            } else {
                eprintln!("umm: {msg}");
            }
        }
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *sink {
            Sink::Syslog(socket) => {
                // Facility daemon (3): priority 24 + severity.
                let severity = match record.level() {
                    Level::Error => 3,
                    Level::Warn => 4,
                    _ => 6,
                };
                let line = format!("<{}>umm[{}]: {msg}", 24 + severity, std::process::id());
                let _ = socket.send_to(line.as_bytes(), "/dev/log");
            }
            Sink::File(f) => {
                let _ = writeln!(f, "{}{msg}", kmsg_priority(record.level()));
            }
            Sink::Kmsg(f) => {
                let _ = f.write_all(
                    format!("{}umm-generator: {msg}\n", kmsg_priority(record.level())).as_bytes(),
                );
            }
            Sink::Nowhere => {}
        }
    }

    fn flush(&self) {}
}

/// The `<N>` priority prefix that kmsg and the journal's stderr reader understand.
fn kmsg_priority(level: Level) -> &'static str {
    match level {
        Level::Error => "<3>",
        Level::Warn => "<4>",
        Level::Info => "<6>",
        _ => "<7>",
    }
}

pub enum Target {
    /// An interactive command: syslog only (the command prints its own output).
    Command,
    /// A boot or shutdown entry point run by the init system: stderr (journal),
    /// and syslog when there is no journal to catch stderr.
    Service,
    /// The systemd generator: /dev/kmsg.
    Kmsg,
}

pub fn init(root: &Root, target: Target) {
    let (sink, stderr) = if !root.is_system() {
        let _ = std::fs::create_dir_all(root.path(crate::paths::RUN_DIR));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.path("/run/umm/log"))
            .map(Sink::File)
            .unwrap_or(Sink::Nowhere);
        (file, matches!(target, Target::Service))
    } else {
        match target {
            Target::Kmsg => (
                OpenOptions::new()
                    .write(true)
                    .open("/dev/kmsg")
                    .map(Sink::Kmsg)
                    .unwrap_or(Sink::Nowhere),
                false,
            ),
            Target::Service if std::env::var_os("JOURNAL_STREAM").is_some() => {
                (Sink::Nowhere, true)
            }
            Target::Command | Target::Service => (syslog_sink(), matches!(target, Target::Service)),
        }
    };
    let logger = Logger {
        sink: Mutex::new(sink),
        stderr,
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

fn syslog_sink() -> Sink {
    std::os::unix::net::UnixDatagram::unbound()
        .map(Sink::Syslog)
        .unwrap_or(Sink::Nowhere)
}
