//! Operators' hooks: directories of executables run in lexical order at
//! five points around maintenance. Each hook runs bounded (its process
//! group is killed at the phase's timeout), with `UMM_PHASE`, `UMM_REASON`
//! and `UMM_STATE_DIR` (a directory per hook name, shared across phases, to
//! keep data between them) in its environment. Its output goes to the log.
//! A hook or directory not owned by root, or writable by group or others,
//! is refused and never run.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::HookTimeouts;
use crate::paths::{self, Root};
use crate::run::run_capturing;
use crate::state::{Extra, Reason};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookPhase {
    /// Before `umm on`: a failure vetoes entering (unless --force).
    Check,
    /// After the checks, before the reboot into maintenance.
    PreOn,
    /// Once maintenance is reached, before the scheduled command.
    On,
    /// Before resuming: a failure vetoes `umm off` (unless --force).
    PreOff,
    /// After the normal target is reached.
    Off,
}

impl HookPhase {
    pub fn name(self) -> &'static str {
        match self {
            HookPhase::Check => "check",
            HookPhase::PreOn => "pre-on",
            HookPhase::On => "on",
            HookPhase::PreOff => "pre-off",
            HookPhase::Off => "off",
        }
    }

    fn timeout(self, t: &HookTimeouts) -> Duration {
        match self {
            HookPhase::Check => t.check,
            HookPhase::PreOn => t.pre_on,
            HookPhase::On => t.on,
            HookPhase::PreOff => t.pre_off,
            HookPhase::Off => t.off,
        }
    }

    /// The hook directory, as a system path (`/etc/umm/check.d`).
    pub fn dir(self) -> PathBuf {
        Path::new(paths::HOOKS_DIR).join(format!("{}.d", self.name()))
    }
}

/// What one hook did; kept in the state for `umm status` and the history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HookRecord {
    pub phase: String,
    pub name: String,
    pub ok: bool,
    /// "exited 0", "exited 3", "killed after its timeout of 5m", "refused: …".
    pub result: String,
    /// The last lines of its output.
    pub output_tail: Vec<String>,
    /// Fields of a newer umm's format, kept.
    #[serde(flatten, default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

const TAIL_LINES: usize = crate::state::limits::TAIL_LINES;

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

/// Why a file or directory may not be trusted to run as root, if it may not.
fn untrusted(path: &Path, shown: &Path) -> Option<String> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("{} cannot be read: {e}", shown.display())),
    };
    if meta.uid() != 0 {
        return Some(format!(
            "{} is not owned by root; chown root it",
            shown.display()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "{} is writable by group or others; chmod go-w it",
            shown.display()
        ));
    }
    None
}

fn refused(phase: HookPhase, name: &str, why: String) -> HookRecord {
    log::error!("hook {}/{name} refused: {why}", phase.name());
    HookRecord {
        phase: phase.name().into(),
        name: name.into(),
        ok: false,
        result: format!("refused: {why}"),
        output_tail: Vec::new(),
        extra: Extra::new(),
    }
}

/// Runs every hook of `phase`, in lexical order, and says what each did.
/// A missing directory means no hooks.
pub fn run_phase(
    root: &Root,
    phase: HookPhase,
    reason: Option<Reason>,
    timeouts: &HookTimeouts,
) -> Vec<HookRecord> {
    let shown_dir = phase.dir();
    let dir = root.join(&shown_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            return vec![refused(
                phase,
                "*",
                format!("{} cannot be read: {e}", shown_dir.display()),
            )]
        }
    };
    if let Some(why) = untrusted(&dir, &shown_dir) {
        return vec![refused(phase, "*", why)];
    }
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !skipped_name(n))
        .collect();
    names.sort();
    let mut records = Vec::new();
    for name in names {
        let path = dir.join(&name);
        let shown = shown_dir.join(&name);
        if path.is_dir() {
            continue;
        }
        if let Some(why) = untrusted(&path, &shown) {
            records.push(refused(phase, &name, why));
            continue;
        }
        let executable = fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
        if !executable {
            log::info!("hook {}/{name} skipped: not executable", phase.name());
            continue;
        }
        records.push(run_one(
            root,
            phase,
            &name,
            &path,
            reason,
            phase.timeout(timeouts),
        ));
    }
    records
}

fn run_one(
    root: &Root,
    phase: HookPhase,
    name: &str,
    path: &Path,
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
    let mut cmd = Command::new(path);
    cmd.env("UMM_PHASE", phase.name())
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
        phase: phase.name().into(),
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
        let written = crate::run::create_private(last_output)
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
        .map(|r| format!("{}/{}", r.phase, r.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::chown;

    fn hook(root: &Root, phase: HookPhase, name: &str, body: &str, mode: u32) -> PathBuf {
        let dir = root.join(&phase.dir());
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
        let dir = root.join(&HookPhase::Check.dir());
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
