//! The durable state file: `/var/lib/umm/state.json`.
//!
//! - Every write is atomic: a temporary file in the same directory, fsync,
//!   rename over the old file, fsync the directory. After a power cut the file
//!   is the old state or the new one, never a mix.
//! - Writers are serialised by an exclusive lock on `/var/lib/umm/lock`.
//! - A file that cannot be parsed is renamed aside (never overwritten in
//!   place) and reported; umm then starts from the default state.
//! - Each write also refreshes a copy on the root filesystem
//!   (`/etc/umm/early-state.json`) that the systemd generator reads before
//!   /var is mounted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::fsread;
use crate::paths::{self, Root};
use crate::state::{Mode, Reason, State, STATE_VERSION};

/// How long a writer waits for another one to finish.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// A state file as read: the state, or why it could not be used.
#[derive(Debug)]
pub struct Loaded {
    pub state: State,
    /// Set when the file was corrupt or unreadable (the state is then the default).
    pub problem: Option<String>,
}

/// Parses a state file's bytes; `Err` says what is wrong with it.
pub fn parse_state(bytes: &[u8]) -> std::result::Result<State, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let state: State = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if state.version != STATE_VERSION {
        return Err(format!("unsupported format version {}", state.version));
    }
    Ok(state)
}

/// Reads a state file without changing anything (for `umm status`, any user).
pub fn read(path: &Path) -> Loaded {
    match fsread::read(path, fsread::STATE_MAX) {
        Ok(bytes) => match parse_state(&bytes) {
            Ok(state) => Loaded {
                state,
                problem: None,
            },
            Err(e) => Loaded {
                state: State::default(),
                problem: Some(format!("{} is corrupt ({e})", path.display())),
            },
        },
        Err(e) if e.is_absent() => Loaded {
            state: State::default(),
            problem: None,
        },
        Err(e) => Loaded {
            state: State::default(),
            problem: Some(e.to_string()),
        },
    }
}

/// The state under an exclusive lock: load, change, `save`.
pub struct Locked {
    root: Root,
    _lock: Flock<File>,
    pub state: State,
    pub problem: Option<String>,
}

/// Takes the writers' lock (waiting at most `LOCK_WAIT`) and loads the
/// state, setting a corrupt file aside.
pub fn lock(root: &Root) -> Result<Locked> {
    let dir = root.path(paths::STATE_DIR);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lock_path = root.path(paths::LOCK);
    // Read-write and non-blocking: opening a FIFO put there returns at once
    // (and is then refused), it never waits for a writer.
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY | nix::libc::O_CLOEXEC)
        .open(&lock_path)
        .with_context(|| format!("cannot open the lock file {}", lock_path.display()))?;
    let kind = file
        .metadata()
        .with_context(|| format!("cannot examine the lock file {}", lock_path.display()))?
        .file_type();
    if !kind.is_file() {
        bail!(
            "{} is {}, not a regular file; remove it and run umm again",
            lock_path.display(),
            fsread::kind_name(kind)
        );
    }
    let deadline = Instant::now() + LOCK_WAIT;
    let lock = loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => break lock,
            Err((f, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                file = f;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err((_, e)) => {
                return Err(anyhow!(
                    "another umm holds {} ({e}); wait for it to finish and try again",
                    lock_path.display()
                ))
            }
        }
    };
    remove_stale_temp_files(&dir);
    let path = root.path(paths::STATE);
    let loaded = read(&path);
    let problem = match loaded.problem {
        None => None,
        Some(_) if !path.exists() => loaded.problem,
        Some(problem) => Some(set_aside(&path, &problem)),
    };
    Ok(Locked {
        root: root.clone(),
        _lock: lock,
        state: loaded.state,
        problem,
    })
}

/// Renames a corrupt file to `<name>.corrupt-<unix time>` and says so.
fn set_aside(path: &Path, problem: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let aside = PathBuf::from(format!("{}.corrupt-{now}", path.display()));
    let message = match fs::rename(path, &aside) {
        Ok(()) => format!(
            "{problem}; it was set aside as {} and umm started again from the default state",
            aside.display()
        ),
        Err(e) => format!("{problem}; setting it aside failed: {e}"),
    };
    log::error!("{message}");
    message
}

/// Temporary files left by a writer that was killed mid-write; only
/// called with the lock held, so no live writer owns them.
fn remove_stale_temp_files(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

impl Locked {
    /// Writes `state` durably, then refreshes the early copy.
    pub fn save(&mut self, state: State) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(&state)?;
        let path = self.root.path(paths::STATE);
        atomic_write(&path, &bytes, 0o644)
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.state = state;
        let early = self.root.path(paths::EARLY_STATE);
        if let Err(e) = early
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| atomic_write(&early, &bytes, 0o644))
        {
            // The real state is safe; only the generator's early view is stale.
            log::warn!("cannot refresh {}: {e}", early.display());
        }
        Ok(())
    }
}

/// Test hook: in debug builds, `UMM_FAILPOINT=<step>` aborts the process at
/// that step (a writer killed mid-write), `<step>:error` makes it fail.
fn failpoint(step: &str) -> io::Result<()> {
    if cfg!(debug_assertions) {
        if let Ok(spec) = std::env::var("UMM_FAILPOINT") {
            if spec == step {
                std::process::abort();
            }
            if spec.strip_suffix(":error") == Some(step) {
                return Err(io::Error::other(format!("failpoint {step}")));
            }
        }
    }
    Ok(())
}

/// The write steps, in order, for failure-injection tests.
pub const WRITE_STEPS: &[&str] = &[
    "before-write",
    "mid-write",
    "before-fsync",
    "before-rename",
    "before-dir-fsync",
];

/// Atomically replaces `path` with `data`: temp file in the same directory,
/// fsync, rename, fsync the directory.
pub fn atomic_write(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    failpoint("before-write")?;
    let half = data.len() / 2;
    tmp.write_all(&data[..half])?;
    failpoint("mid-write")?;
    tmp.write_all(&data[half..])?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    failpoint("before-fsync")?;
    tmp.as_file().sync_all()?;
    failpoint("before-rename")?;
    tmp.persist(path).map_err(|e| e.error)?;
    failpoint("before-dir-fsync")?;
    File::open(dir)?.sync_all()
}

/// This boot's decision, in /run (volatile).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BootDecision {
    pub boot_id: String,
    pub mode: Mode,
    pub reason: Option<Reason>,
    /// Who decided: "generator" (systemd, before /var) or "boot" (the boot unit).
    pub decided_by: String,
    /// `umm=off` on the kernel command line skipped a maintenance.
    pub skipped_by_cmdline: bool,
    /// `umm off` resumed the normal target in this boot.
    pub resumed: bool,
}

/// This boot's decision, if one was recorded; anything unreadable there is
/// logged and counts as no decision (it is rewritten by the next decision).
pub fn read_boot_decision(root: &Root, boot_id: &str) -> Option<BootDecision> {
    let path = root.path(paths::BOOT_DECISION);
    let bytes = match fsread::read(&path, fsread::SMALL_MAX) {
        Ok(bytes) => bytes,
        Err(e) if e.is_absent() => return None,
        Err(e) => {
            log::error!("{e}; this boot's decision is taken again");
            return None;
        }
    };
    serde_json::from_slice::<BootDecision>(&bytes)
        .ok()
        .filter(|d| d.boot_id == boot_id)
}

pub fn write_boot_decision(root: &Root, decision: &BootDecision) -> Result<()> {
    let path = root.path(paths::BOOT_DECISION);
    fs::create_dir_all(root.path(paths::RUN_DIR))?;
    atomic_write(&path, &serde_json::to_vec_pretty(decision)?, 0o644)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_lock_reads_it_back_and_refreshes_the_early_copy() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let mut locked = lock(&root).unwrap();
        assert!(locked.problem.is_none());
        let state = State {
            unclean_boots: 2,
            ..State::default()
        };
        locked.save(state.clone()).unwrap();
        drop(locked);
        assert_eq!(lock(&root).unwrap().state, state);
        assert_eq!(read(&root.path(paths::EARLY_STATE)).state, state);
    }

    #[test]
    fn corrupt_file_is_set_aside_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        fs::create_dir_all(root.path(paths::STATE_DIR)).unwrap();
        fs::write(
            root.path(paths::STATE),
            b"{\"version\": 1, \"switch_on\": tr",
        )
        .unwrap();
        let locked = lock(&root).unwrap();
        let problem = locked.problem.clone().unwrap();
        assert!(problem.contains("set aside as"), "{problem}");
        assert_eq!(locked.state, State::default());
        let aside: Vec<_> = fs::read_dir(root.path(paths::STATE_DIR))
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("state.json.corrupt-")
            })
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(
            fs::read(aside[0].path()).unwrap(),
            b"{\"version\": 1, \"switch_on\": tr"
        );
    }

    #[test]
    fn a_second_writer_waits_for_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let first = lock(&root).unwrap();
        let root2 = root.clone();
        let started = Instant::now();
        let waiter = std::thread::spawn(move || lock(&root2).map(|_| started.elapsed()));
        std::thread::sleep(Duration::from_millis(300));
        drop(first);
        let waited = waiter.join().unwrap().unwrap();
        assert!(
            waited >= Duration::from_millis(250),
            "waited only {waited:?}"
        );
    }
}
