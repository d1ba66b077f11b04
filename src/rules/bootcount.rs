//! Boot-loader counting (GRUB): what `umm-boot` writes to the GRUB
//! environment block each boot that reaches userspace, and what the block
//! says about a boot failure. GRUB's side is the script `grub.d/42_umm`
//! emits (docs/boot-flow.md, "Boots that never reach userspace"):
//! - before booting, GRUB appends an `x` to `umm_tries` (its script has no
//!   arithmetic) and saves it;
//! - when `umm_tries` has reached `umm_max_tries` (`reboot_count + 1` `x`s:
//!   that many attempts in a row never reached userspace), GRUB records the
//!   default entry's kernel in `umm_failed` and boots umm's maintenance
//!   entry of `umm_good`, the kernel last seen reaching userspace;
//! - while `umm_failed` is the default entry's kernel, GRUB boots
//!   `umm_good`'s normal entry instead (no new loop after `umm off`);
//! - nothing of this while `umm_enabled` is not `1`.
//!
//! Here, a boot that reached userspace: clears `umm_tries`, records its
//! kernel in `umm_good` (and clears `umm_failed` when it is that kernel:
//! it works after all), and writes `umm_enabled` and `umm_max_tries` from
//! the settings in force.

use crate::model::grubenv::GrubEnv;

pub const ENABLED: &str = "umm_enabled";
pub const TRIES: &str = "umm_tries";
pub const MAX_TRIES: &str = "umm_max_tries";
pub const GOOD: &str = "umm_good";
pub const FAILED: &str = "umm_failed";
/// When umm-boot first saw `umm_failed` (seconds since the epoch): GRUB
/// has no clock.
pub const FAILED_SINCE: &str = "umm_failed_since";

/// `umm_max_tries` is at most this many `x`s, so that the variables always
/// fit in a 1 KiB block next to GRUB's own.
pub const MAX_TRIES_CAP: u32 = 64;

/// What a boot that reached userspace knows.
#[derive(Clone, Copy, Debug)]
pub struct Reached<'a> {
    /// umm is enabled (policy and switch).
    pub enabled: bool,
    pub reboot_count: u32,
    /// This boot's kernel (`uname -r`); empty when it could not be read.
    pub kernel: &'a str,
    /// Wall-clock time, for `umm_failed_since` only.
    pub now: i64,
}

/// The variables to set in the block, in order; empty when it already says
/// all of it (no write).
pub fn reached_userspace(env: &GrubEnv, input: &Reached) -> Vec<(&'static str, String)> {
    let tries = input.reboot_count.saturating_add(1).min(MAX_TRIES_CAP);
    let mut wanted: Vec<(&'static str, String)> = vec![
        (ENABLED, if input.enabled { "1" } else { "0" }.to_string()),
        (TRIES, String::new()),
        (MAX_TRIES, "x".repeat(tries as usize)),
    ];
    let failed = env.get(FAILED).unwrap_or("");
    if !input.kernel.is_empty() {
        wanted.push((GOOD, input.kernel.to_string()));
        if failed == input.kernel {
            wanted.push((FAILED, String::new()));
        }
    }
    let failure_stays = !failed.is_empty() && failed != input.kernel;
    let since = env.get(FAILED_SINCE).unwrap_or("");
    if failure_stays && since.is_empty() {
        wanted.push((FAILED_SINCE, input.now.to_string()));
    } else if !failure_stays && !since.is_empty() {
        wanted.push((FAILED_SINCE, String::new()));
    }
    wanted
        .into_iter()
        .filter(|(name, value)| env.get(name).unwrap_or("") != value)
        .collect()
}

/// A kernel that reached userspace for the first time (a kernel upgrade):
/// it becomes the last good one. Said once, in the boot where it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewGood {
    /// Attempts GRUB counted for this boot (1 when it came up at once).
    pub attempts: usize,
    /// The last good kernel before it, if the block had one.
    pub previous: Option<String>,
}

/// Whether this boot's kernel is a new last good kernel.
pub fn new_good(env: &GrubEnv, kernel: &str) -> Option<NewGood> {
    let previous = env.get(GOOD).unwrap_or("");
    if kernel.is_empty() || previous == kernel {
        return None;
    }
    Some(NewGood {
        attempts: env.get(TRIES).map_or(0, str::len),
        previous: (!previous.is_empty()).then(|| previous.to_string()),
    })
}

/// A kernel that did not reach userspace, as the block records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootFailure {
    pub kernel: String,
    /// Attempts in a row that never reached userspace (`umm_max_tries`).
    pub attempts: usize,
    /// The kernel booted instead, if known.
    pub good: Option<String>,
    /// When umm-boot first saw it, if it has.
    pub since: Option<i64>,
}

/// The boot failure the block records, if any.
pub fn boot_failure(env: &GrubEnv) -> Option<BootFailure> {
    let kernel = env.get(FAILED).filter(|k| !k.is_empty())?;
    let nonempty = |name| env.get(name).filter(|v| !v.is_empty());
    Some(BootFailure {
        kernel: kernel.to_string(),
        attempts: env.get(MAX_TRIES).map_or(0, str::len),
        good: nonempty(GOOD).map(str::to_string),
        since: nonempty(FAILED_SINCE).and_then(|s| s.parse().ok()),
    })
}

/// `umm boot retry`: the variables that let the failed kernel boot again
/// (with a fresh count); empty when no failure is recorded.
pub fn retry(env: &GrubEnv) -> Vec<(&'static str, String)> {
    if boot_failure(env).is_none() {
        return Vec::new();
    }
    vec![
        (FAILED, String::new()),
        (FAILED_SINCE, String::new()),
        (TRIES, String::new()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> GrubEnv {
        let mut e = GrubEnv::default();
        for (n, v) in vars {
            e.set(n, v);
        }
        e
    }

    fn reached(enabled: bool, reboot_count: u32, kernel: &str) -> Reached<'_> {
        Reached {
            enabled,
            reboot_count,
            kernel,
            now: 1000,
        }
    }

    type Case<'a> = (
        &'a [(&'a str, &'a str)],
        Reached<'a>,
        &'a [(&'a str, &'a str)],
    );

    #[test]
    fn a_kernel_is_a_new_last_good_one_only_the_first_time() {
        let upgraded = env(&[(TRIES, "x"), (GOOD, "6.1.0-2")]);
        assert_eq!(
            new_good(&upgraded, "6.1.0-3"),
            Some(NewGood {
                attempts: 1,
                previous: Some("6.1.0-2".into())
            })
        );
        assert_eq!(new_good(&upgraded, "6.1.0-2"), None);
        assert_eq!(new_good(&upgraded, ""), None);
        let fresh = env(&[(TRIES, "xx")]);
        assert_eq!(
            new_good(&fresh, "a"),
            Some(NewGood {
                attempts: 2,
                previous: None
            })
        );
    }

    #[test]
    fn what_a_boot_that_reached_userspace_writes() {
        let cases: &[Case] = &[
            // A fresh block: everything.
            (
                &[],
                reached(true, 2, "6.1.0-2"),
                &[(ENABLED, "1"), (MAX_TRIES, "xxx"), (GOOD, "6.1.0-2")],
            ),
            // The usual boot: only the count GRUB added is cleared.
            (
                &[
                    (ENABLED, "1"),
                    (TRIES, "x"),
                    (MAX_TRIES, "xxx"),
                    (GOOD, "6.1.0-2"),
                ],
                reached(true, 2, "6.1.0-2"),
                &[(TRIES, "")],
            ),
            // Nothing to change: no write.
            (
                &[(ENABLED, "1"), (MAX_TRIES, "x"), (GOOD, "6.1.0-2")],
                reached(true, 0, "6.1.0-2"),
                &[],
            ),
            // Disabled: GRUB must stop counting and redirecting.
            (
                &[
                    (ENABLED, "1"),
                    (TRIES, "xx"),
                    (MAX_TRIES, "xxx"),
                    (GOOD, "a"),
                ],
                reached(false, 2, "a"),
                &[(ENABLED, "0"), (TRIES, "")],
            ),
            // reboot_count changed.
            (
                &[(ENABLED, "1"), (MAX_TRIES, "xxx"), (GOOD, "a")],
                reached(true, 4, "a"),
                &[(MAX_TRIES, "xxxxx")],
            ),
            // A huge reboot_count is capped.
            (
                &[(ENABLED, "1"), (GOOD, "a")],
                reached(true, u32::MAX, "a"),
                &[(MAX_TRIES, &"x".repeat(64))],
            ),
            // The kernel cannot be read: the last good one stays.
            (
                &[(ENABLED, "1"), (TRIES, "x"), (MAX_TRIES, "x"), (GOOD, "a")],
                reached(true, 0, ""),
                &[(TRIES, "")],
            ),
            // After a redirect: the failure stays, and its time is recorded once.
            (
                &[
                    (ENABLED, "1"),
                    (TRIES, "xxx"),
                    (MAX_TRIES, "xxx"),
                    (GOOD, "old"),
                    (FAILED, "new"),
                ],
                reached(true, 2, "old"),
                &[(TRIES, ""), (FAILED_SINCE, "1000")],
            ),
            (
                &[
                    (ENABLED, "1"),
                    (MAX_TRIES, "xxx"),
                    (GOOD, "old"),
                    (FAILED, "new"),
                    (FAILED_SINCE, "900"),
                ],
                reached(true, 2, "old"),
                &[],
            ),
            // The failed kernel reached userspace after all: no failure.
            (
                &[
                    (ENABLED, "1"),
                    (TRIES, "x"),
                    (MAX_TRIES, "xxx"),
                    (GOOD, "old"),
                    (FAILED, "new"),
                    (FAILED_SINCE, "900"),
                ],
                reached(true, 2, "new"),
                &[(TRIES, ""), (GOOD, "new"), (FAILED, ""), (FAILED_SINCE, "")],
            ),
        ];
        for (i, (vars, input, expected)) in cases.iter().enumerate() {
            let got = reached_userspace(&env(vars), input);
            let expected: Vec<(&str, String)> =
                expected.iter().map(|(n, v)| (*n, v.to_string())).collect();
            assert_eq!(got, expected, "case {i}");
        }
    }

    #[test]
    fn a_boot_failure_is_read_from_the_block() {
        assert_eq!(boot_failure(&env(&[])), None);
        assert_eq!(boot_failure(&env(&[(FAILED, "")])), None);
        assert_eq!(
            boot_failure(&env(&[
                (FAILED, "new"),
                (MAX_TRIES, "xxx"),
                (GOOD, "old"),
                (FAILED_SINCE, "900")
            ])),
            Some(BootFailure {
                kernel: "new".into(),
                attempts: 3,
                good: Some("old".into()),
                since: Some(900),
            })
        );
        assert_eq!(
            boot_failure(&env(&[(FAILED, "new"), (FAILED_SINCE, "junk")])),
            Some(BootFailure {
                kernel: "new".into(),
                attempts: 0,
                good: None,
                since: None,
            })
        );
    }

    #[test]
    fn retry_clears_the_failure_and_the_count() {
        assert!(retry(&env(&[(GOOD, "old")])).is_empty());
        let got = retry(&env(&[(FAILED, "new"), (TRIES, "xxx")]));
        assert_eq!(
            got,
            vec![
                (FAILED, String::new()),
                (FAILED_SINCE, String::new()),
                (TRIES, String::new())
            ]
        );
    }
}
