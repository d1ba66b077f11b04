//! Time and boot identity, behind a trait so tests can run anywhere.
//! Counting uses only the monotonic boot clock (/proc/uptime); wall-clock
//! time is only recorded for people to read.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::fsread;
use super::paths::{self, Root};

pub trait Clock {
    /// Wall-clock time, seconds since the epoch (for the record only).
    fn now(&self) -> i64;
    /// Time since this boot began (CLOCK_BOOTTIME, as /proc/uptime shows it).
    fn uptime(&self) -> Result<Duration>;
    /// The kernel's id of this boot.
    fn boot_id(&self) -> Result<String>;
}

/// Reads /proc under the root prefix. Under a test root, `UMM_NOW` (seconds
/// since the epoch) fixes the wall clock.
pub struct SystemClock {
    root: Root,
}

impl SystemClock {
    pub fn new(root: &Root) -> SystemClock {
        SystemClock { root: root.clone() }
    }
}

/// The first field of /proc/uptime ("12345.67 ..."), without floating point.
fn parse_uptime(text: &str) -> Option<Duration> {
    let first = text.split_whitespace().next()?;
    let (secs, fraction) = first.split_once('.').unwrap_or((first, "0"));
    let millis: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(3)
        .collect();
    Some(Duration::from_secs(secs.parse().ok()?) + Duration::from_millis(millis.parse().ok()?))
}

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        if !self.root.is_system() {
            if let Some(now) = std::env::var("UMM_NOW").ok().and_then(|v| v.parse().ok()) {
                return now;
            }
        }
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    fn uptime(&self) -> Result<Duration> {
        let path = self.root.path(paths::UPTIME);
        let text = fsread::read_string(&path, fsread::SMALL_MAX)?;
        parse_uptime(&text)
            .with_context(|| format!("{} is not a number of seconds: {text:?}", path.display()))
    }

    fn boot_id(&self) -> Result<String> {
        let path = self.root.path(paths::BOOT_ID);
        let id = fsread::read_string(&path, fsread::SMALL_MAX)?;
        Ok(id.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_uptime() {
        assert_eq!(
            parse_uptime("12.50 20.00\n"),
            Some(Duration::from_millis(12_500))
        );
        assert_eq!(
            parse_uptime("600.07 1.00"),
            Some(Duration::from_millis(600_070))
        );
        assert_eq!(parse_uptime("7 1"), Some(Duration::from_secs(7)));
        assert_eq!(parse_uptime("x 1"), None);
        assert_eq!(parse_uptime(""), None);
    }
}
