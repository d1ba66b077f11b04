//! A hook's output as it comes: logged line by line (bounded), its end
//! kept for `umm status` and in the hook's `.last-output`.

use std::collections::VecDeque;
use std::path::Path;

use crate::model::hook::HookPhase;
use crate::model::limits;
use crate::model::open::Named;
use crate::sys::run;

const TAIL_LINES: usize = limits::TAIL_LINES;

/// Lines of one hook run logged, at most: a hook that prints without end
/// must not flood the log (the rest is counted, and its end kept).
const MAX_LOGGED_LINES: usize = 1000;

/// What `.last-output` keeps: the end of the output.
const LAST_OUTPUT_MAX: usize = 64 * 1024;

/// A hook's output as it comes: logged line by line, its end kept for
/// `umm status` (the last `TAIL_LINES`) and `.last-output`. Bytes that are
/// not UTF-8 are shown as U+FFFD, never dropped with the rest.
pub(super) struct Output {
    prefix: String,
    logged: usize,
    /// The end of the output, whole lines, at most `LAST_OUTPUT_MAX` bytes.
    end: VecDeque<String>,
    end_bytes: usize,
}

impl Output {
    pub(super) fn new(phase: HookPhase, name: &str) -> Output {
        Output {
            prefix: format!("hook {}/{name}", phase.name()),
            logged: 0,
            end: Default::default(),
            end_bytes: 0,
        }
    }

    pub(super) fn line(&mut self, bytes: &[u8], cut: bool) {
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
    pub(super) fn finish(self, last_output: &Path) -> Vec<String> {
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
