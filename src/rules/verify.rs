//! After `umm off`: did every service come back? A pure comparison of what
//! ran before maintenance (or, after an unplanned maintenance, what is
//! enabled to start) with what runs now.

use crate::model::verify::{ActiveState, Service, VerifyResult};

/// Compares the expected services with the services now. With a list of
/// services that were active before (a planned maintenance), each of them
/// must be active again; with the enabled services instead (a crash loop),
/// each must be active or have finished successfully.
pub fn compare(
    active_before: Option<&[String]>,
    enabled: &[String],
    now: &[Service],
) -> VerifyResult {
    let state = |name: &str| now.iter().find(|s| s.name == name);
    let (compared_with, not_back) = match active_before {
        Some(before) => (
            "active before maintenance",
            before
                .iter()
                .filter(|n| state(n).is_none_or(|s| !s.active.is(ActiveState::Active)))
                .cloned()
                .collect(),
        ),
        None => (
            "enabled services",
            enabled
                .iter()
                .filter(|n| !n.contains('@'))
                .filter(|n| {
                    state(n).is_none_or(|s| !s.active.is(ActiveState::Active) && !s.finished_ok)
                })
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
}
