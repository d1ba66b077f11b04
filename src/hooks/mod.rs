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
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg};

use crate::model::extra::Extra;
use crate::model::hook::{HookPhase, HookRecord};
use crate::model::open::Named;
use crate::model::settings::HookTimeouts;
use crate::model::state::Reason;
use crate::sys::journal;
use crate::sys::paths::{self, Root};
use crate::sys::run::run_capturing;

mod capture;
mod trust;

use capture::Output;
use trust::{names_in, open_hook, open_hook_dir, skipped_name, Opened};

/// A phase's hook directory, as a system path (`/etc/umm/check.d`).
pub fn dir(phase: HookPhase) -> PathBuf {
    Path::new(paths::HOOKS_DIR).join(format!("{}.d", phase.name()))
}

/// The record of a hook directory that cannot be used: it fails the phase
/// (a check that cannot run is not a check that passed).
pub const WHOLE_DIR: &str = "*";

fn refused(phase: HookPhase, name: &str, why: String) -> HookRecord {
    journal::log(
        log::Level::Error,
        &journal::Change::HookFailed {
            phase: phase.name(),
            hook: name,
            result: &format!("refused: {why}"),
        },
        format_args!("hook {}/{name} refused: {why}", phase.name()),
    );
    HookRecord {
        phase: phase.into(),
        name: name.into(),
        ok: false,
        result: format!("refused: {why}"),
        output_tail: Vec::new(),
        extra: Extra::new(),
    }
}

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
            let why = format!("{} cannot be read: {e}", shown_dir.display());
            return vec![refused(phase, WHOLE_DIR, why)];
        }
    };
    names.sort();
    let mut records = Vec::new();
    for name in names {
        match open_hook(&dir, &name, &shown_dir.join(&name)) {
            Opened::Run(file) => {
                let timeout = timeouts.of(phase);
                records.push(run_one(root, phase, &name, file, reason, timeout));
            }
            Opened::Refused(why) => records.push(refused(phase, &name, why)),
            Opened::NotExecutable => {
                log::info!("hook {}/{name} skipped: not executable", phase.name())
            }
            Opened::Nothing => {}
        }
    }
    records
}

/// Runs the hook `file`, opened and checked by the caller: the very file
/// that was checked runs, whatever happens to its name meanwhile.
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
        let why = format!("cannot prepare {}: {e}", state_dir.display());
        return refused(phase, name, why);
    }
    // Above 2, where the child's stdin, stdout and stderr go.
    let file = match fcntl(file.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(3)) {
        // SAFETY: fcntl just returned this descriptor, owned by no one else.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(e) => return refused(phase, name, format!("cannot keep it open: {e}")),
    };
    let mut cmd = hook_command(&file, phase, name, reason);
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
    let said = format!("hook {}/{name} {result}", phase.name());
    if ok {
        log::info!("{said}");
    } else {
        journal::log(
            log::Level::Warn,
            &journal::Change::HookFailed {
                phase: phase.name(),
                hook: name,
                result: &result,
            },
            format_args!("{said}"),
        );
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

/// The hook's command: the open `file`, executed through /proc/self/fd/N,
/// with N left open across exec (only in the child) so that a `#!`
/// interpreter can open the script by that path; `$0` and `UMM_HOOK` name
/// the hook, and its environment says the phase, the reason and its
/// state directory.
fn hook_command(file: &OwnedFd, phase: HookPhase, name: &str, reason: Option<Reason>) -> Command {
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
    cmd
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
