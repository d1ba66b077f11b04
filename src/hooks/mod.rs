//! Operators' hooks: directories of executables run in lexical order at
//! five points around maintenance. Each hook runs bounded (its process
//! group is killed at the phase's timeout), with `UMM_PHASE`, `UMM_REASON`
//! and `UMM_STATE_DIR` (a directory per hook name, shared across phases, to
//! keep data between them) in its environment. Its output goes to the log.
//! A hook or directory not owned by root, or writable by group or others,
//! is refused and never run; so is a hook reached through a symbolic link,
//! or in a directory any of whose parents up to `/` could be changed by
//! someone other than root. What is checked is what runs: every directory
//! and the hook are opened without following links, checked with `fstat`,
//! and the opened file is executed (see `run_one`).

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::fcntl::{fcntl, openat, FcntlArg, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};
use std::time::Duration;

use crate::model::extra::Extra;
use crate::model::hook::{HookPhase, HookRecord};
use crate::model::limits;
use crate::model::open::Named;
use crate::model::settings::HookTimeouts;
use crate::model::state::Reason;
use crate::sys::paths::{self, Root};
use crate::sys::run::{self, run_capturing};

/// A phase's hook directory, as a system path (`/etc/umm/check.d`).
pub fn dir(phase: HookPhase) -> PathBuf {
    Path::new(paths::HOOKS_DIR).join(format!("{}.d", phase.name()))
}

const TAIL_LINES: usize = limits::TAIL_LINES;

/// Names run-parts also skips: editor and package-manager leftovers.
fn skipped_name(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || [
            ".dpkg-old",
            ".dpkg-dist",
            ".dpkg-new",
            ".dpkg-tmp",
            ".rpmsave",
            ".rpmnew",
            ".disabled",
        ]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Why an opened file or directory may not be trusted to run as root, if
/// it may not: checked on the open file (`fstat`), so what is checked is
/// what is used.
fn untrusted(fd: &OwnedFd, shown: &Path) -> Option<String> {
    let st = match fstat(fd.as_raw_fd()) {
        Ok(st) => st,
        Err(e) => return Some(format!("{} cannot be examined: {e}", shown.display())),
    };
    if st.st_uid != 0 {
        return Some(format!(
            "{} is not owned by root; chown root it",
            shown.display()
        ));
    }
    if st.st_mode & 0o022 != 0 {
        return Some(format!(
            "{} is writable by group or others; chmod go-w it",
            shown.display()
        ));
    }
    None
}

/// Opens `name` in `dir` without following a symbolic link, and without
/// blocking (a FIFO put there).
fn open_at(dir: &OwnedFd, name: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    let fd = openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK,
        Mode::empty(),
    )?;
    // SAFETY: openat just returned this descriptor, owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The opened hook directory, each directory from `/` down to it checked
/// (owned by root, not writable by group or others, not a symbolic link):
/// whoever may change one of them may change the hooks. `None` when it
/// does not exist: no hooks. Under a test root the walk starts at the root
/// prefix (the system's /tmp above it is world-writable).
fn open_hook_dir(root: &Root, dir: &Path) -> Result<Option<OwnedFd>, String> {
    let top = root.path("/");
    let mut fd = match nix::fcntl::open(
        &top,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        // SAFETY: open just returned this descriptor, owned by no one else.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(e) => return Err(format!("/ cannot be opened: {e}")),
    };
    if let Some(why) = untrusted(&fd, Path::new("/")) {
        return Err(why);
    }
    let mut shown = PathBuf::from("/");
    for part in dir.components().skip(1) {
        let name = part.as_os_str().to_string_lossy().into_owned();
        shown.push(&name);
        fd = match open_at(&fd, &name, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => {
                return Err(format!(
                    "{} is a symbolic link; hooks run only from the real directory",
                    shown.display()
                ))
            }
            // O_DIRECTORY | O_NOFOLLOW on a link says ENOTDIR: tell which.
            Err(Errno::ENOTDIR) => {
                let link = nix::sys::stat::fstatat(
                    Some(fd.as_raw_fd()),
                    name.as_str(),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .is_ok_and(|st| st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits());
                return Err(if link {
                    format!(
                        "{} is a symbolic link; hooks run only from the real directory",
                        shown.display()
                    )
                } else {
                    format!("{} is not a directory", shown.display())
                });
            }
            Err(e) => return Err(format!("{} cannot be opened: {e}", shown.display())),
        };
        if let Some(why) = untrusted(&fd, &shown) {
            return Err(why);
        }
    }
    Ok(Some(fd))
}

/// The names in an opened directory, without `.` and `..`.
fn names_in(dir: &OwnedFd) -> nix::Result<Vec<String>> {
    let mut listing = nix::dir::Dir::openat(
        Some(dir.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    Ok(names)
}

fn refused(phase: HookPhase, name: &str, why: String) -> HookRecord {
    log::error!("hook {}/{name} refused: {why}", phase.name());
    HookRecord {
        phase: phase.into(),
        name: name.into(),
        ok: false,
        result: format!("refused: {why}"),
        output_tail: Vec::new(),
        extra: Extra::new(),
    }
}

/// The record of a hook directory that cannot be used: it fails the phase
/// (a check that cannot run is not a check that passed).
pub const WHOLE_DIR: &str = "*";

/// Runs every hook of `phase`, in lexical order, and says what each did.
/// A missing directory means no hooks; a directory or hook that cannot be
/// trusted or read is a failed record, never "no hooks".
pub fn run_phase(
    root: &Root,
    phase: HookPhase,
    reason: Option<Reason>,
    timeouts: &HookTimeouts,
) -> Vec<HookRecord> {
    let shown_dir = dir(phase);
    let dir = match open_hook_dir(root, &shown_dir) {
        Ok(Some(dir)) => dir,
        Ok(None) => return Vec::new(),
        Err(why) => return vec![refused(phase, WHOLE_DIR, why)],
    };
    let mut names: Vec<String> = match names_in(&dir) {
        Ok(names) => names.into_iter().filter(|n| !skipped_name(n)).collect(),
        Err(e) => {
            return vec![refused(
                phase,
                WHOLE_DIR,
                format!("{} cannot be read: {e}", shown_dir.display()),
            )]
        }
    };
    names.sort();
    let mut records = Vec::new();
    for name in names {
        let shown = shown_dir.join(&name);
        let file = match open_at(&dir, &name, OFlag::O_RDONLY) {
            Ok(file) => file,
            Err(Errno::ELOOP) => {
                records.push(refused(
                    phase,
                    &name,
                    format!(
                        "{} is a symbolic link; install the hook itself there, not a link",
                        shown.display()
                    ),
                ));
                continue;
            }
            // Renamed away since the listing.
            Err(Errno::ENOENT) => continue,
            Err(e) => {
                records.push(refused(
                    phase,
                    &name,
                    format!("{} cannot be opened: {e}", shown.display()),
                ));
                continue;
            }
        };
        let st = match fstat(file.as_raw_fd()) {
            Ok(st) => st,
            Err(e) => {
                records.push(refused(
                    phase,
                    &name,
                    format!("{} cannot be examined: {e}", shown.display()),
                ));
                continue;
            }
        };
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        if kind == SFlag::S_IFDIR {
            continue;
        }
        if kind != SFlag::S_IFREG {
            records.push(refused(
                phase,
                &name,
                format!("{} is not a regular file", shown.display()),
            ));
            continue;
        }
        if let Some(why) = untrusted(&file, &shown) {
            records.push(refused(phase, &name, why));
            continue;
        }
        if st.st_mode & 0o111 == 0 {
            log::info!("hook {}/{name} skipped: not executable", phase.name());
            continue;
        }
        records.push(run_one(
            root,
            phase,
            &name,
            file,
            reason,
            timeouts.of(phase),
        ));
    }
    records
}

/// Runs the hook `file`, opened and checked by the caller: the very file
/// that was checked runs, whatever happens to its name meanwhile. It is
/// executed through /proc/self/fd/N, with N left open across exec (only in
/// the child) so that a `#!` interpreter can open the script by that path.
fn run_one(
    root: &Root,
    phase: HookPhase,
    name: &str,
    file: OwnedFd,
    reason: Option<Reason>,
    timeout: Duration,
) -> HookRecord {
    let state_dir = root.path(paths::HOOK_STATE_DIR).join(name);
    if let Err(e) = prepare(&state_dir) {
        return refused(
            phase,
            name,
            format!("cannot prepare {}: {e}", state_dir.display()),
        );
    }
    // Above 2, where the child's stdin, stdout and stderr go.
    let file = match fcntl(file.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(3)) {
        // SAFETY: fcntl just returned this descriptor, owned by no one else.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(e) => return refused(phase, name, format!("cannot keep it open: {e}")),
    };
    let fd = file.as_raw_fd();
    let mut cmd = Command::new(format!("/proc/self/fd/{fd}"));
    // SAFETY: fcntl is async-signal-safe; it only touches the descriptor.
    unsafe {
        cmd.pre_exec(move || {
            if nix::libc::fcntl(fd, nix::libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.arg0(dir(phase).join(name))
        .env("UMM_PHASE", phase.name())
        .env("UMM_HOOK", dir(phase).join(name))
        .env("UMM_REASON", reason.map_or("", Reason::as_str))
        .env("UMM_STATE_DIR", Path::new(paths::HOOK_STATE_DIR).join(name))
        .stdin(Stdio::null())
        .current_dir("/");
    if !root.is_system() {
        // Under a test root the hook sees the real path of its state directory.
        cmd.env("UMM_STATE_DIR", &state_dir);
    }
    let mut output = Output::new(phase, name);
    let result = run_capturing(cmd, timeout, &mut |line, cut| output.line(line, cut));
    drop(file);
    let output_tail = output.finish(&state_dir.join(".last-output"));
    let (ok, result) = match result {
        Ok(f) => (f.success(), f.describe()),
        Err(e) => (false, format!("could not run: {e}")),
    };
    let say = format!("hook {}/{name} {result}", phase.name());
    if ok {
        log::info!("{say}");
    } else {
        log::warn!("{say}");
    }
    HookRecord {
        phase: phase.into(),
        name: name.into(),
        ok,
        result,
        output_tail,
        extra: Extra::new(),
    }
}

/// Lines of one hook run logged, at most: a hook that prints without end
/// must not flood the log (the rest is counted, and its end kept).
const MAX_LOGGED_LINES: usize = 1000;
/// What `.last-output` keeps: the end of the output.
const LAST_OUTPUT_MAX: usize = 64 * 1024;

/// A hook's output as it comes: logged line by line, its end kept for
/// `umm status` (the last `TAIL_LINES`) and `.last-output`. Bytes that are
/// not UTF-8 are shown as U+FFFD, never dropped with the rest.
struct Output {
    prefix: String,
    logged: usize,
    /// The end of the output, whole lines, at most `LAST_OUTPUT_MAX` bytes.
    end: std::collections::VecDeque<String>,
    end_bytes: usize,
}

impl Output {
    fn new(phase: HookPhase, name: &str) -> Output {
        Output {
            prefix: format!("hook {}/{name}", phase.name()),
            logged: 0,
            end: Default::default(),
            end_bytes: 0,
        }
    }

    fn line(&mut self, bytes: &[u8], cut: bool) {
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        if cut {
            text.push_str(" [line cut]");
        }
        if self.logged < MAX_LOGGED_LINES {
            log::info!("{}: {text}", self.prefix);
        } else if self.logged == MAX_LOGGED_LINES {
            log::info!(
                "{}: more output than {MAX_LOGGED_LINES} lines: not logged, its end is kept in .last-output",
                self.prefix
            );
        }
        self.logged += 1;
        self.end_bytes += text.len() + 1;
        self.end.push_back(text);
        while self.end_bytes > LAST_OUTPUT_MAX {
            match self.end.pop_front() {
                Some(old) => self.end_bytes -= old.len() + 1,
                None => break,
            }
        }
    }

    /// Writes `.last-output` (root's only) and returns the last lines.
    fn finish(self, last_output: &Path) -> Vec<String> {
        if self.logged > MAX_LOGGED_LINES {
            log::info!("{}: {} lines of output in all", self.prefix, self.logged);
        }
        let mut text = String::with_capacity(self.end_bytes);
        for l in &self.end {
            text.push_str(l);
            text.push('\n');
        }
        let written = run::create_private(last_output)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
        if let Err(e) = written {
            log::warn!("cannot write {}: {e}", last_output.display());
        }
        let skip = self.end.len().saturating_sub(TAIL_LINES);
        self.end.into_iter().skip(skip).collect()
    }
}

/// The hook's state directory, private to root.
fn prepare(state_dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(state_dir)?;
    fs::set_permissions(state_dir, fs::Permissions::from_mode(0o700))
}

/// The hooks that failed, by name, for messages.
pub fn failed_names(records: &[HookRecord]) -> Vec<String> {
    records
        .iter()
        .filter(|r| !r.ok)
        .map(|r| match r.name.as_str() {
            WHOLE_DIR => format!("{}.d", r.phase),
            name => format!("{}/{name}", r.phase),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::chown;

    fn hook(root: &Root, phase: HookPhase, name: &str, body: &str, mode: u32) -> PathBuf {
        let dir = root.join(&dir(phase));
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let p = dir.join(name);
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn timeouts(secs: u64) -> HookTimeouts {
        let d = Duration::from_secs(secs);
        HookTimeouts {
            check: d,
            pre_on: d,
            on: d,
            pre_off: d,
            off: d,
        }
    }

    fn setup() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        (dir, root)
    }

    #[test]
    fn run_in_lexical_order_with_the_environment() {
        let (_d, root) = setup();
        let trace = root.path("/trace");
        let t = trace.display();
        hook(
            &root,
            HookPhase::PreOn,
            "20-b",
            &format!("echo b $UMM_PHASE $UMM_REASON >> {t}"),
            0o755,
        );
        hook(
            &root,
            HookPhase::PreOn,
            "10-a",
            &format!("echo a >> {t}; echo kept > $UMM_STATE_DIR/data"),
            0o755,
        );
        hook(
            &root,
            HookPhase::PreOn,
            "05-c.dpkg-old",
            &format!("echo old >> {t}"),
            0o755,
        );
        hook(
            &root,
            HookPhase::PreOn,
            "30-notexec",
            &format!("echo x >> {t}"),
            0o644,
        );
        let records = run_phase(&root, HookPhase::PreOn, Some(Reason::Manual), &timeouts(5));
        assert_eq!(fs::read_to_string(&trace).unwrap(), "a\nb pre-on manual\n");
        let names: Vec<_> = records.iter().map(|r| (r.name.as_str(), r.ok)).collect();
        assert_eq!(names, [("10-a", true), ("20-b", true)]);
        // Same hook name in a later phase sees the data.
        hook(
            &root,
            HookPhase::Off,
            "10-a",
            &format!("cat $UMM_STATE_DIR/data >> {t}"),
            0o755,
        );
        run_phase(&root, HookPhase::Off, None, &timeouts(5));
        assert!(fs::read_to_string(&trace).unwrap().ends_with("kept\n"));
    }

    #[test]
    fn failure_and_output_are_reported() {
        let (_d, root) = setup();
        hook(
            &root,
            HookPhase::Check,
            "10-quorum",
            "echo 'only 1 of 3 controllers up'; exit 4",
            0o755,
        );
        let records = run_phase(&root, HookPhase::Check, None, &timeouts(5));
        assert!(!records[0].ok);
        assert_eq!(records[0].result, "exited 4");
        assert_eq!(records[0].output_tail, ["only 1 of 3 controllers up"]);
        assert_eq!(failed_names(&records), ["check/10-quorum"]);
    }

    #[test]
    fn a_hung_hook_is_killed_at_its_timeout() {
        let (_d, root) = setup();
        hook(&root, HookPhase::On, "10-hang", "sleep 60", 0o755);
        let started = std::time::Instant::now();
        let records = run_phase(&root, HookPhase::On, None, &timeouts(1));
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(!records[0].ok);
        assert!(
            records[0].result.contains("timeout"),
            "{}",
            records[0].result
        );
    }

    #[test]
    fn untrusted_hooks_are_refused_never_run() {
        let (_d, root) = setup();
        let trace = root.path("/trace");
        let t = trace.display();
        hook(
            &root,
            HookPhase::Check,
            "10-writable",
            &format!("echo ran >> {t}"),
            0o777,
        );
        let foreign = hook(
            &root,
            HookPhase::Check,
            "20-foreign",
            &format!("echo ran >> {t}"),
            0o755,
        );
        chown(&foreign, Some(65534), None).unwrap();
        let records = run_phase(&root, HookPhase::Check, None, &timeouts(5));
        assert!(!trace.exists(), "an untrusted hook ran");
        assert!(
            records[0].result.contains("writable by group or others"),
            "{:?}",
            records[0]
        );
        assert!(
            records[1].result.contains("not owned by root"),
            "{:?}",
            records[1]
        );
        // A writable directory refuses all of its hooks.
        let dir = root.join(&dir(HookPhase::Check));
        fs::remove_file(dir.join("10-writable")).unwrap();
        fs::remove_file(dir.join("20-foreign")).unwrap();
        hook(
            &root,
            HookPhase::Check,
            "30-fine",
            &format!("echo ran >> {t}"),
            0o755,
        );
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let records = run_phase(&root, HookPhase::Check, None, &timeouts(5));
        assert_eq!(records.len(), 1);
        assert!(!records[0].ok && records[0].result.contains("check.d is writable"));
        assert!(!trace.exists());
    }

    #[test]
    fn no_directory_no_hooks() {
        let (_d, root) = setup();
        assert!(run_phase(&root, HookPhase::PreOff, None, &timeouts(1)).is_empty());
    }
}
