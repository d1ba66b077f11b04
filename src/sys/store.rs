//! The durable state file: `/var/lib/umm/state.json`.
//!
//! - Every write is atomic: a temporary file in the same directory, fsync,
//!   rename over the old file, fsync the directory. After a power cut the file
//!   is the old state or the new one, never a mix.
//! - Writers are serialised by an exclusive lock on `/var/lib/umm/lock`.
//! - A file whose content cannot be parsed (or is larger than any state umm
//!   writes) is renamed aside to `state.json.corrupt-<time>-<n>` (a name
//!   that never replaces an existing file) and reported; umm then starts
//!   from the default state.
//! - A file that cannot be *read* (an I/O error, permissions, a FIFO or
//!   device put there) is not corruption: it is reported and left alone,
//!   and every writer refuses until it can be read (the boot entry point
//!   then leaves the early decision in force; see `cmd::boot`).
//! - A file from a newer umm is used, its version and unknown fields kept;
//!   lists and strings longer than umm keeps are cut on load, with a note.
//! - state.json and its early copy are root's only (0600): they hold the
//!   scheduled command's argv, who asked and from where, and hook output.
//!   Every write also refreshes `/var/lib/umm/status.json` (0644), the
//!   public part (`State::public`) that `umm status` shows other users.
//! - Each write also refreshes a copy on the root filesystem
//!   (`/etc/umm/early-state.json`) that the systemd generator reads before
//!   /var is mounted.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};

use super::atomic::atomic_write;
use super::config::Sources;
use super::failpoint::failpoint;
use super::fsread;
use super::paths::{self, Root};
use crate::model::settings::{LastGood, Settings};
use crate::model::state::{State, STATE_VERSION};

/// How long a writer waits for another one to finish.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// A state file as read: the state, or why it could not be used.
#[derive(Debug, Default)]
pub struct Loaded {
    pub state: State,
    /// Set when the file was corrupt or unreadable (the state is then the default).
    pub problem: Option<String>,
    /// The file could not be read at all (I/O error, not a regular file):
    /// it is not corrupt and must not be set aside or replaced.
    pub unreadable: bool,
    /// Loaded, with something to say: a newer umm's format, lists cut.
    pub notes: Vec<String>,
}

/// Parses a state file's bytes, bounding what it holds; `Err` says what
/// is wrong with it, `Ok` carries notes about what was cut or kept.
pub fn parse_state(bytes: &[u8]) -> std::result::Result<(State, Vec<String>), String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let mut state: State = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if state.version < 1 {
        return Err(format!("unsupported format version {}", state.version));
    }
    let mut notes = Vec::new();
    if state.version > STATE_VERSION {
        notes.push(format!(
            "written by a newer umm (format version {}, this umm knows {STATE_VERSION}); \
             used as far as this umm understands it, and its other fields are kept",
            state.version
        ));
    }
    notes.extend(state.bound());
    Ok((state, notes))
}

/// Reads a state file without changing anything (for `umm status`, any user).
pub fn read(path: &Path) -> Loaded {
    loaded_from(path, fsread::read(path, fsread::STATE_MAX))
}

fn loaded_from(path: &Path, read: std::result::Result<Vec<u8>, fsread::ReadError>) -> Loaded {
    match read {
        Ok(bytes) => match parse_state(&bytes) {
            Ok((state, notes)) => Loaded {
                state,
                notes: notes
                    .into_iter()
                    .map(|n| format!("{}: {n}", path.display()))
                    .collect(),
                ..Loaded::default()
            },
            Err(e) => Loaded {
                problem: Some(format!("{} is corrupt ({e})", path.display())),
                ..Loaded::default()
            },
        },
        Err(e) if e.is_absent() => Loaded::default(),
        // Content umm cannot have written: set aside like corrupt content.
        Err(e) if e.is_too_big() => Loaded {
            problem: Some(format!("{} is corrupt ({})", path.display(), e.what())),
            ..Loaded::default()
        },
        Err(e) => Loaded {
            problem: Some(format!(
                "{e}; umm changes nothing until it can be read{}",
                e.io_error().map(hint).unwrap_or_default()
            )),
            unreadable: true,
            ..Loaded::default()
        },
    }
}

/// What to do about an I/O error, as a "; ..." suffix (or nothing).
pub fn hint(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(nix::libc::ENOSPC) => "; free space on that filesystem and run umm again".into(),
        Some(nix::libc::EROFS) => {
            "; the filesystem is read-only: remount it read-write (mount -o remount,rw) and run umm again".into()
        }
        Some(nix::libc::EIO) => "; the disk reported an I/O error: check dmesg".into(),
        Some(nix::libc::EACCES) | Some(nix::libc::EPERM) => {
            "; run umm as root, and check the file's owner and mode".into()
        }
        _ => String::new(),
    }
}

/// The state under an exclusive lock: load, change, `save`.
pub struct Locked {
    root: Root,
    _lock: Flock<File>,
    pub state: State,
    pub problem: Option<String>,
    /// What was kept or cut on load (a newer umm's format, long lists).
    pub notes: Vec<String>,
}

/// The directories umm writes temporary files in, swept under the lock.
const TEMP_DIRS: &[&str] = &[paths::STATE_DIR, paths::HOOKS_DIR];

/// Takes the writers' lock (waiting at most `LOCK_WAIT`) and loads the
/// state, setting a corrupt file aside.
pub fn lock(root: &Root) -> Result<Locked> {
    let lock = take_lock(root)?;
    for dir in TEMP_DIRS {
        remove_stale_temp_files(&root.path(dir));
    }
    let path = root.path(paths::STATE);
    let loaded = match failpoint("read-state") {
        Ok(()) => read(&path),
        Err(e) => loaded_from(&path, Err(fsread::ReadError::Io(path.clone(), e))),
    };
    for note in &loaded.notes {
        log::warn!("{note}");
    }
    let problem = match loaded.problem {
        None => None,
        Some(problem) if loaded.unreadable => {
            log::error!("{problem}");
            bail!("{problem}");
        }
        Some(problem) => Some(set_aside(&path, &problem)),
    };
    Ok(Locked {
        root: root.clone(),
        _lock: lock,
        state: loaded.state,
        problem,
        notes: loaded.notes,
    })
}

/// The writers' exclusive lock on `/var/lib/umm/lock`, waiting at most
/// `LOCK_WAIT` for another writer.
fn take_lock(root: &Root) -> Result<Flock<File>> {
    let lock_path = root.path(paths::LOCK);
    let mut file = open_lock_file(&lock_path)?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
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
    }
}

/// An exclusive lock on `rel` (under the state directory) if no other
/// process holds it, without waiting: `None` when another does. For runs
/// that must not overlap but need not queue (`umm internal fleet-retry`).
pub fn try_lock(root: &Root, rel: &str) -> Result<Option<Flock<File>>> {
    let path = root.path(rel);
    let file = open_lock_file(&path)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(anyhow!("cannot lock {} ({e})", path.display())),
    }
}

/// The fleet lock (`paths::FLEET_LOCK`), waiting at most `wait`; `None`
/// when another run held it all that time. Without it, a root run giving
/// back an owed slot and `umm on` taking the same slot again could each
/// save what the other undid: the node would believe it holds a slot the
/// coordinator no longer lists. Lock order: the fleet lock first, then the
/// writers' lock (`lock`), never the reverse, so two runs cannot wait on
/// each other.
pub fn fleet_lock(root: &Root, wait: Duration) -> Result<Option<Flock<File>>> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(lock) = try_lock(root, paths::FLEET_LOCK)? {
            return Ok(Some(lock));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Opens (creating it, and its directory) a lock file. Read-write and
/// non-blocking: opening a FIFO put there returns at once and is then
/// refused, it never waits for a writer; a device is refused too.
fn open_lock_file(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY | nix::libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    let kind = file
        .metadata()
        .with_context(|| format!("cannot examine the lock file {}", path.display()))?
        .file_type();
    if !kind.is_file() {
        bail!(
            "{} is {}, not a regular file; remove it and run umm again",
            path.display(),
            fsread::kind_name(kind)
        );
    }
    Ok(file)
}

/// Moves a corrupt file aside and says so.
pub fn set_aside(path: &Path, problem: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let message = match set_aside_at(path, now) {
        Ok(aside) => format!(
            "{problem}; it was set aside as {} and umm started again from the default state",
            aside.display()
        ),
        Err(e) => format!("{problem}; setting it aside failed: {e}"),
    };
    log::error!("{message}");
    message
}

/// Gives `path` the first free name `<name>.corrupt-<now>-<n>` and removes
/// the old name. A hard link is created only where nothing exists (EEXIST
/// otherwise), so an earlier file set aside is never replaced, even by two
/// in the same second.
pub fn set_aside_at(path: &Path, now: u64) -> io::Result<PathBuf> {
    for n in 1..1000 {
        let aside = PathBuf::from(format!("{}.corrupt-{now}-{n}", path.display()));
        match fs::hard_link(path, &aside) {
            Ok(()) => {
                fs::remove_file(path)?;
                if let Some(dir) = path.parent() {
                    File::open(dir)?.sync_all()?;
                }
                return Ok(aside);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free name to set the file aside"))
}

/// Temporary files left by a writer that was killed mid-write; only
/// called with the lock held, so no live writer owns them.
fn remove_stale_temp_files(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if is_file && entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

impl Locked {
    /// The root prefix the state is under.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Records settings that just loaded as the last good configuration
    /// (both copies), when they differ from what is recorded; under the
    /// lock, so that no writer sweeps the temporary files of another.
    pub fn record_config(&self, settings: &Settings, sources: &Sources, now: i64) {
        let good = LastGood::new(settings, &sources.files, now);
        for p in [paths::LAST_GOOD_CONFIG, paths::EARLY_LAST_GOOD_CONFIG] {
            let path = self.root.path(p);
            let same = fsread::read(&path, fsread::CONFIG_MAX)
                .ok()
                .and_then(|b| serde_json::from_slice::<LastGood>(&b).ok())
                .is_some_and(|old| {
                    LastGood {
                        recorded: now,
                        ..old
                    } == good
                });
            if same {
                continue;
            }
            let written = serde_json::to_vec_pretty(&good)
                .map_err(io::Error::other)
                .and_then(|bytes| {
                    path.parent().map_or(Ok(()), fs::create_dir_all)?;
                    atomic_write(&path, &bytes, 0o644)
                });
            if let Err(e) = written {
                log::warn!(
                    "cannot record the configuration as the last that loaded in {}: {e}{}",
                    path.display(),
                    hint(&e)
                );
            }
        }
    }

    /// Writes `state` durably, then refreshes the public status and the
    /// early copy. What went wrong with the copies (the state itself is
    /// saved) is logged and returned for the command to say.
    pub fn save(&mut self, state: State) -> Result<Saved> {
        let bytes = serde_json::to_vec_pretty(&state)?;
        let path = self.root.path(paths::STATE);
        atomic_write(&path, &bytes, 0o600)
            .map_err(|e| anyhow!("cannot write {}: {e}{}", path.display(), hint(&e)))?;
        let public = self.root.path(paths::PUBLIC_STATUS);
        if let Err(e) = serde_json::to_vec_pretty(&state.public())
            .map_err(io::Error::other)
            .and_then(|b| atomic_write(&public, &b, 0o644))
        {
            // Only what other users see is stale; say so where they look.
            log::warn!("cannot write {}: {e}{}", public.display(), hint(&e));
        }
        self.state = state;
        let early = self.root.path(paths::EARLY_STATE);
        if let Err(e) = failpoint("early-copy")
            .and_then(|()| early.parent().map_or(Ok(()), fs::create_dir_all))
            .and_then(|()| atomic_write(&early, &bytes, 0o600))
        {
            let message = format!(
                "cannot refresh {} (the copy the next boot decides from before /var is mounted): {e}{}",
                early.display(),
                early_hint(&e)
            );
            log::warn!("{message}");
            return Ok(Saved {
                early_copy_problem: Some(message),
            });
        }
        Ok(Saved::default())
    }
}

/// A state that was saved, and what its operator must hear about now.
#[must_use = "an early copy that could not be refreshed must be said on stderr"]
#[derive(Debug, Default)]
pub struct Saved {
    /// The early copy on the root filesystem could not be refreshed: the
    /// real state is safe, but the next boot may decide late, and the
    /// operator must know now, not only from the log.
    pub early_copy_problem: Option<String>,
}

/// What to do when the early copy on the root filesystem cannot be written.
fn early_hint(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(nix::libc::ENOSPC) => "; free space on / (the root filesystem) and run the command again".into(),
        Some(nix::libc::EROFS) => "; / is read-only: remount it read-write (mount -o remount,rw /) and run the command again".into(),
        _ => hint(e),
    }
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
        let _ = locked.save(state.clone()).unwrap();
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

    #[test]
    fn set_aside_in_the_same_second_takes_the_next_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut asides = Vec::new();
        for text in ["one", "two", "three"] {
            fs::write(&path, text).unwrap();
            asides.push(set_aside_at(&path, 77).unwrap());
        }
        let names: Vec<_> = asides
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "state.json.corrupt-77-1",
                "state.json.corrupt-77-2",
                "state.json.corrupt-77-3"
            ]
        );
        assert_eq!(fs::read_to_string(&asides[0]).unwrap(), "one");
        assert!(!path.exists());
    }

    #[test]
    fn unknown_fields_and_a_newer_version_survive_a_round_trip() {
        let text = br#"{"version": 3, "switch_on": true, "unclean_boots": 0,
            "unclean_records": [{"boot_id": "b", "started": 1, "kernel": "6.1"}],
            "last_boot": null, "maintenance": null, "future": [1, 2]}"#;
        let (state, notes) = parse_state(text).unwrap();
        assert_eq!(state.version, 3);
        assert!(notes[0].contains("newer umm"), "{notes:?}");
        let written: serde_json::Value =
            serde_json::from_slice(&serde_json::to_vec(&state).unwrap()).unwrap();
        assert_eq!(written["future"], serde_json::json!([1, 2]));
        assert_eq!(written["unclean_records"][0]["kernel"], "6.1");
    }

    /// A newer umm may end an episode, or run a hook phase, in a way this
    /// umm does not know: the state is used, not set aside, and written
    /// back as it was.
    #[test]
    fn unknown_episode_ends_and_hook_phases_are_kept() {
        let text = br#"{"version": 1, "switch_on": true, "unclean_boots": 0,
            "unclean_records": [], "last_boot": null, "maintenance": null,
            "history": [{"id": 4, "reason": "manual", "requested": 1, "since": 2,
                "ended": 3, "requested_by": null, "command": null,
                "end": "handed-to-fleet", "verify": null,
                "hooks": [{"phase": "fleet", "name": "10-x", "ok": true,
                    "result": "exited 0", "output_tail": []}]}]}"#;
        let (state, notes) = parse_state(text).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        let written: serde_json::Value =
            serde_json::from_slice(&serde_json::to_vec(&state).unwrap()).unwrap();
        assert_eq!(written["history"][0]["end"], "handed-to-fleet");
        assert_eq!(written["history"][0]["hooks"][0]["phase"], "fleet");
    }
}
