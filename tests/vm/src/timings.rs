//! Seconds each scenario took in the last run that passed it, in
//! tests/vm/timings.txt (`NAME SECONDS` per line, `#` comments): the
//! scheduler starts the longest first. The lab rewrites the file after each
//! run with the scenarios that passed; committed after a full run, it gives
//! a fresh checkout (CI) the same order.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

const HEADER: &str = "\
# Seconds each scenario took in the last run that passed it (two at a time
# on 2 cores): the lab starts the longest first. Written by the lab after
# every run (tests/vm/src/timings.rs); commit it after a full run.
";

#[derive(Default)]
pub struct Timings(BTreeMap<String, u32>);

pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("timings.txt")
}

impl Timings {
    /// The file's timings; none if it is missing. A line that is not
    /// `NAME SECONDS` is reported and skipped (the order is only a hint).
    pub fn load() -> Self {
        let path = path();
        let Ok(text) = fs::read_to_string(&path) else {
            return Timings::default();
        };
        let (timings, bad) = Self::parse(&text);
        for n in bad {
            eprintln!(
                "{}:{n}: not `NAME SECONDS`, skipped (the lab rewrites the file after a run)",
                path.display()
            );
        }
        timings
    }

    /// The timings, and the numbers of the lines that are not `NAME SECONDS`.
    pub fn parse(text: &str) -> (Self, Vec<usize>) {
        let mut map = BTreeMap::new();
        let mut bad = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            match (
                words.next(),
                words.next().map(str::parse::<u32>),
                words.next(),
            ) {
                (Some(name), Some(Ok(secs)), None) => {
                    map.insert(name.to_owned(), secs);
                }
                _ => bad.push(i + 1),
            }
        }
        (Timings(map), bad)
    }

    pub fn secs(&self, name: &str) -> Option<u32> {
        self.0.get(name).copied()
    }

    pub fn record(&mut self, name: &str, secs: f64) {
        self.0.insert(name.to_owned(), secs.round() as u32);
    }

    fn render(&self) -> String {
        let mut text = HEADER.to_owned();
        for (name, secs) in &self.0 {
            text.push_str(&format!("{name} {secs}\n"));
        }
        text
    }

    /// Written to a temporary file and renamed over the old one.
    pub fn save(&self) -> Result<()> {
        let path = path();
        let tmp = path.with_extension("txt.tmp");
        fs::write(&tmp, self.render()).with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_updates_the_scenarios_it_passed_and_keeps_the_others() {
        let (mut t, bad) = Timings::parse("# comment\ncrash-loop 206\nfleet 222\n");
        assert!(bad.is_empty());
        t.record("fleet", 180.4);
        t.record("sepvar", 99.6);
        let (again, _) = Timings::parse(&t.render());
        assert_eq!(again.secs("crash-loop"), Some(206));
        assert_eq!(again.secs("fleet"), Some(180));
        assert_eq!(again.secs("sepvar"), Some(100));
        assert_eq!(again.secs("demo"), None);
    }

    #[test]
    fn a_line_that_is_not_name_and_seconds_is_skipped_and_named() {
        let (t, bad) = Timings::parse("fleet 222\nfleet\nhooks 8x\ngrub 1 2\n");
        assert_eq!(t.secs("fleet"), Some(222));
        assert_eq!(bad, vec![2, 3, 4]);
    }
}
