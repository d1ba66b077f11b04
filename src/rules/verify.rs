//! After `umm off`: did every service come back? A pure comparison of what
//! ran before maintenance (or, after an unplanned maintenance, what is
//! enabled to start) with what runs now.

use crate::model::verify::{ActiveState, Service, VerifyResult};

/// umm's own units (umm-after.service may be running this very check):
/// their state is umm's business, not a service of the node coming back.
fn is_umms_own(name: &str) -> bool {
    name.starts_with("umm-") || name == "umm.target"
}

/// A login's own units (`user@UID.service`, its runtime directory): active
/// before maintenance because someone was logged in, back when they log in
/// again, never a service of the node. Seen on real boots (lab `rolling`):
/// root's `user@0.service` from the ssh session that queued the request
/// made every leave "not clean" and halted the roll.
fn is_per_login(name: &str) -> bool {
    name.starts_with("user@") || name.starts_with("user-runtime-dir@")
}

/// Compares the expected services with the services now. With a list of
/// services that were active before (a planned maintenance), each of them
/// must be active again, or ready to start on demand; with the enabled
/// services instead (a crash loop), each must be active, ready on demand,
/// or have finished successfully.
pub fn compare(
    active_before: Option<&[String]>,
    enabled: &[String],
    now: &[Service],
) -> VerifyResult {
    let state = |name: &str| now.iter().find(|s| s.name == name);
    let running = |s: &Service| s.active.is(ActiveState::Active) || s.on_demand;
    let (compared_with, not_back) = match active_before {
        Some(before) => (
            "active before maintenance",
            before
                .iter()
                .filter(|n| !is_umms_own(n) && !is_per_login(n))
                .filter(|n| state(n).is_none_or(|s| !running(s)))
                .cloned()
                .collect(),
        ),
        None => (
            "enabled services",
            enabled
                .iter()
                .filter(|n| !n.contains('@') && !is_umms_own(n))
                .filter(|n| state(n).is_none_or(|s| !running(s) && !s.finished_ok))
                .cloned()
                .collect::<Vec<_>>(),
        ),
    };
    let mut failed: Vec<String> = now
        .iter()
        .filter(|s| s.active.is(ActiveState::Failed))
        .map(|s| s.name.clone())
        .collect();
    failed.sort();
    VerifyResult {
        compared_with: compared_with.into(),
        not_back,
        failed,
        extra: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::open::Open;
    use rstest::rstest;

    fn svc(name: &str, active: &str, finished_ok: bool) -> Service {
        Service {
            name: name.into(),
            active: Open::parse(active),
            finished_ok,
            on_demand: false,
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[rstest]
    #[case::all_back(&["cron.service", "ssh.service"], &[("cron.service", "active"), ("ssh.service", "active")], &[], &[])]
    #[case::one_missing(&["cron.service", "nova.service"], &[("cron.service", "active")], &["nova.service"], &[])]
    #[case::one_failed(&["nova.service"], &[("nova.service", "failed")], &["nova.service"], &["nova.service"])]
    #[case::failed_elsewhere(&[], &[("other.service", "failed")], &[], &["other.service"])]
    #[case::still_starting(&["slow.service"], &[("slow.service", "activating")], &["slow.service"], &[])]
    fn against_what_ran_before(
        #[case] before: &[&str],
        #[case] now: &[(&str, &str)],
        #[case] not_back: &[&str],
        #[case] failed: &[&str],
    ) {
        let now: Vec<_> = now.iter().map(|(n, a)| svc(n, a, false)).collect();
        let r = compare(Some(&names(before)), &[], &now);
        assert_eq!(r.not_back, names(not_back));
        assert_eq!(r.failed, names(failed));
        assert_eq!(r.ok(), not_back.is_empty() && failed.is_empty());
    }

    #[test]
    fn against_enabled_services_after_a_crash_loop() {
        let enabled = names(&[
            "cron.service",
            "setup-once.service",
            "getty@.service",
            "broken.service",
        ]);
        let now = vec![
            svc("cron.service", "active", false),
            svc("setup-once.service", "inactive", true),
            svc("broken.service", "inactive", false),
        ];
        let r = compare(None, &enabled, &now);
        assert_eq!(r.compared_with, "enabled services");
        assert_eq!(r.not_back, ["broken.service"]);
    }

    #[test]
    fn a_logins_user_manager_gone_is_no_service_missing() {
        let before = names(&[
            "cron.service",
            "user@0.service",
            "user-runtime-dir@0.service",
        ]);
        let now = vec![svc("cron.service", "active", false)];
        let r = compare(Some(&before), &[], &now);
        assert!(r.ok(), "{r:?}");
        // A service of the node with an @ in its name still counts.
        let before = names(&["cron.service", "getty@tty1.service"]);
        let r = compare(Some(&before), &[], &now);
        assert_eq!(r.not_back, ["getty@tty1.service"]);
    }

    /// Seen on real boots: systemd-fsckd (started by its socket at boot,
    /// gone once idle) was active at `umm on` and reported "not running
    /// again" after `umm off`; umm-after.service, still queued behind the
    /// normal target, was reported among the enabled services not back.
    #[test]
    fn on_demand_services_and_umms_own_units_are_not_missing() {
        let fsckd = Service {
            on_demand: true,
            ..svc("systemd-fsckd.service", "inactive", false)
        };
        let now = vec![fsckd, svc("umm-after.service", "inactive", false)];
        let before = names(&["systemd-fsckd.service", "umm-maintenance.service"]);
        let r = compare(Some(&before), &[], &now);
        assert!(r.ok(), "{r:?}");
        let enabled = names(&["systemd-fsckd.service", "umm-after.service"]);
        let r = compare(None, &enabled, &now);
        assert!(r.ok(), "{r:?}");
        // Not on demand, not umm's: still missing.
        let gone = vec![svc("systemd-fsckd.service", "inactive", false)];
        let r = compare(Some(&before), &[], &gone);
        assert_eq!(r.not_back, ["systemd-fsckd.service"]);
    }
}
