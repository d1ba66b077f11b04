use super::*;

type Split<'a> = Option<(&'a str, Option<Counter>)>;

#[test]
fn file_names_split_as_systemd_boot_parses_its_counter() {
    let c = |left, done| Some(Counter { left, done });
    let cases: &[(&str, Split)] = &[
        ("a-6.1.conf", Some(("a-6.1", None))),
        ("a-6.1+3.conf", Some(("a-6.1", c(3, 0)))),
        ("a-6.1+2-1.conf", Some(("a-6.1", c(2, 1)))),
        ("a-6.1+0-3.conf", Some(("a-6.1", c(0, 3)))),
        // The last `+`; a counter in the middle of the name is no counter.
        ("a+b-6.1+1-2.conf", Some(("a+b-6.1", c(1, 2)))),
        ("a-6.1+3x.conf", Some(("a-6.1+3x", None))),
        ("a-6.1+.conf", Some(("a-6.1+", None))),
        ("a-6.1+3-.conf", Some(("a-6.1+3-", None))),
        ("a-6.1+99999999999.conf", Some(("a-6.1+99999999999", None))),
        ("a-6.1+3.efi", None),
    ];
    for (name, expected) in cases {
        assert_eq!(split_name(name), *expected, "{name}");
    }
    assert_eq!(counted_name("a-6.1", Some(3)), "a-6.1+3.conf");
    assert_eq!(counted_name("a-6.1", None), "a-6.1.conf");
}

#[test]
fn versions_compare_as_strverscmp_improved() {
    // The order in the comment of strverscmp_improved, oldest first, and
    // the fallback's `~umm` between two kernels.
    let ascending = [
        "122.1",
        "123~rc1-1",
        "123",
        "123-a",
        "123-a.1",
        "123-1",
        "123-1.1",
        "123^post1",
        "123.a-1",
        "123.1-1",
        "123a-1",
        "124-1",
    ];
    for pair in ascending.windows(2) {
        assert_eq!(verscmp(pair[0], pair[1]), Ordering::Less, "{pair:?}");
        assert_eq!(verscmp(pair[1], pair[0]), Ordering::Greater, "{pair:?}");
    }
    let kernels = [
        "6.1.0-2-amd64",
        "6.1.0-3-amd64~umm",
        "6.1.0-3-amd64",
        "6.1.0-10-amd64",
    ];
    for pair in kernels.windows(2) {
        assert_eq!(verscmp(pair[0], pair[1]), Ordering::Less, "{pair:?}");
    }
    assert_eq!(verscmp("6.1.0-3", "6.1.0-3"), Ordering::Equal);
    assert_eq!(verscmp("", ""), Ordering::Equal);
    assert_eq!(verscmp("007", "7"), Ordering::Equal);
    assert_eq!(verscmp("123_a", "123a"), Ordering::Equal);
    assert_eq!(verscmp("", "~"), Ordering::Greater);
    // umm's variants sort below their entry, above the next kernel's.
    assert_eq!(
        verscmp("k-6.1.0-3~umm_on.conf", "k-6.1.0-3.conf"),
        Ordering::Less
    );
    assert_eq!(
        verscmp("k-6.1.0-3~umm_fallback.conf", "k-6.1.0-3~umm_off.conf"),
        Ordering::Less
    );
    assert_eq!(
        verscmp("k-6.1.0-3~umm_fallback.conf", "k-6.1.0-2.conf"),
        Ordering::Greater
    );
}

fn entry(name: &str, sort_key: Option<&str>, version: &str) -> Entry {
    Entry {
        name: name.to_string(),
        sort_key: sort_key.map(String::from),
        machine_id: Some("abc".into()),
        version: Some(version.to_string()),
    }
}

fn order(entries: &[Entry]) -> Vec<&str> {
    menu_order(entries)
        .iter()
        .map(|e| e.name.as_str())
        .collect()
}

/// Debian's entries (kernel-install: sort-key, version) with or without a
/// sort-key, through every state of a new kernel's count.
#[test]
fn the_menu_order_in_every_state_of_the_count() {
    for key in [Some("debian"), None] {
        let with = |name: &str, v: &str| entry(name, key, v);
        let old = || {
            vec![
                with("abc-6.1.0-2.conf", "6.1.0-2"),
                with("abc-6.1.0-2~umm_on.conf", "6.1.0-2"),
                with("abc-6.1.0-2~umm_off.conf", "6.1.0-2"),
            ]
        };
        let fallback = with("abc-6.1.0-3~umm_fallback.conf", "6.1.0-3~umm");
        let at = |counter: &str| {
            let mut v = old();
            v.push(with(&format!("abc-6.1.0-3{counter}.conf"), "6.1.0-3"));
            v.push(fallback.clone());
            v
        };
        // Counting down: the new kernel first, the fallback second.
        for counter in ["+3", "+2-1", "+1-2"] {
            let entries = at(counter);
            let got = order(&entries);
            assert_eq!(
                got[0],
                format!("abc-6.1.0-3{counter}.conf"),
                "{key:?} {got:?}"
            );
            assert_eq!(got[1], fallback.name, "{key:?} {got:?}");
        }
        // Bad: the fallback is the default, the bad entry last.
        let entries = at("+0-3");
        let got = order(&entries);
        assert_eq!(got[0], fallback.name, "{key:?} {got:?}");
        assert_eq!(got[4], "abc-6.1.0-3+0-3.conf", "{key:?} {got:?}");
        // Blessed (good): the new kernel and its variants, then the fallback.
        let mut entries = at("");
        entries.push(with("abc-6.1.0-3~umm_on.conf", "6.1.0-3"));
        let got = order(&entries);
        assert_eq!(
            &got[..3],
            [
                "abc-6.1.0-3.conf",
                "abc-6.1.0-3~umm_on.conf",
                fallback.name.as_str()
            ],
            "{key:?}"
        );
        assert_eq!(got[3], "abc-6.1.0-2.conf", "{key:?} {got:?}");
    }
}

#[test]
fn entries_with_a_sort_key_come_first_and_equal_ids_by_tries() {
    let entries = [
        entry("z-9.conf", None, "9"),
        entry("a-1.conf", Some("debian"), "1"),
        entry("b-5+1-2.conf", None, "5"),
        entry("b-5+2-1.conf", None, "5"),
    ];
    // (Equal ids need the same name: the ids here differ by their counter.)
    assert_eq!(
        order(&entries),
        ["a-1.conf", "z-9.conf", "b-5+2-1.conf", "b-5+1-2.conf"]
    );
}

fn record(good: &str) -> Record {
    Record {
        good: Some(good.into()),
        ..Record::default()
    }
}

fn input(kernel: Option<&str>) -> PlanInput<'_> {
    PlanInput {
        enabled: true,
        tries: 3,
        kernel,
        failure_seen: false,
        now: 1000,
    }
}

#[test]
fn a_new_kernel_gets_its_tries_and_the_fallback_goes_below_it() {
    let key = Some("debian");
    let entries = [
        entry("abc-6.1.0-2.conf", key, "6.1.0-2"),
        entry("abc-6.1.0-3.conf", key, "6.1.0-3"),
    ];
    let p = plan(&entries, &record("6.1.0-2"), &input(None));
    assert_eq!(
        p.renames,
        [(
            "abc-6.1.0-3.conf".to_string(),
            "abc-6.1.0-3+3.conf".to_string()
        )]
    );
    assert_eq!(p.record.counted, ["abc-6.1.0-3"]);
    let f = p.fallback.unwrap();
    assert_eq!(f.name, "abc-6.1.0-3~umm_fallback.conf");
    assert_eq!(f.from, "abc-6.1.0-2.conf");
    assert!(f.armed);
    assert_eq!(f.version.as_deref(), Some("6.1.0-3~umm"));
    assert_eq!(f.sort_key.as_deref(), Some("debian"));
    assert!(p.remove.is_empty());
}

#[test]
fn an_admins_counter_and_older_kernels_are_left_alone() {
    let entries = [
        entry("abc-6.1.0-1.conf", None, "6.1.0-1"),
        entry("abc-6.1.0-2.conf", None, "6.1.0-2"),
        entry("abc-6.1.0-3+5.conf", None, "6.1.0-3"),
    ];
    let p = plan(&entries, &record("6.1.0-2"), &input(Some("6.1.0-2")));
    assert!(p.renames.is_empty(), "{:?}", p.renames);
    assert!(p.record.counted.is_empty());
    // Not even blessed when it boots: systemd-bless-boot's job.
    let p = plan(&entries, &record("6.1.0-2"), &input(Some("6.1.0-3")));
    assert!(p.renames.is_empty(), "{:?}", p.renames);
    assert_eq!(p.record.good.as_deref(), Some("6.1.0-3"));
    // No last good kernel yet: nothing is counted.
    let p = plan(&entries, &Record::default(), &input(None));
    assert!(p.renames.is_empty() && p.fallback.is_none());
}

#[test]
fn a_boot_that_reached_userspace_blesses_its_entry_and_moves_the_fallback() {
    let entries = [
        entry("abc-6.1.0-2.conf", None, "6.1.0-2"),
        entry("abc-6.1.0-3+2-1.conf", None, "6.1.0-3"),
        entry("abc-6.1.0-3~umm_fallback.conf", None, "6.1.0-3~umm"),
    ];
    let mut rec = record("6.1.0-2");
    rec.counted = vec!["abc-6.1.0-3".into()];
    let p = plan(&entries, &rec, &input(Some("6.1.0-3")));
    assert_eq!(
        p.renames,
        [(
            "abc-6.1.0-3+2-1.conf".to_string(),
            "abc-6.1.0-3.conf".to_string()
        )]
    );
    assert!(p.record.counted.is_empty());
    assert_eq!(p.record.good.as_deref(), Some("6.1.0-3"));
    let f = p.fallback.unwrap();
    assert_eq!(
        (f.name.as_str(), f.from.as_str()),
        ("abc-6.1.0-3~umm_fallback.conf", "abc-6.1.0-3.conf")
    );
    assert!(p.remove.is_empty());
    // A newer kernel installed: counted, and the fallback follows it.
    let entries = [
        entry("abc-6.1.0-3.conf", None, "6.1.0-3"),
        entry("abc-6.1.0-3~umm_fallback.conf", None, "6.1.0-3~umm"),
        entry("abc-6.1.0-4.conf", None, "6.1.0-4"),
    ];
    let p = plan(&entries, &p.record, &input(None));
    assert_eq!(
        p.renames,
        [(
            "abc-6.1.0-4.conf".to_string(),
            "abc-6.1.0-4+3.conf".to_string()
        )]
    );
    assert_eq!(p.fallback.unwrap().name, "abc-6.1.0-4~umm_fallback.conf");
    assert_eq!(p.remove, ["abc-6.1.0-3~umm_fallback.conf"]);
}

#[test]
fn the_failure_seen_through_the_fallback_disarms_it_and_is_recorded() {
    let entries = [
        entry("abc-6.1.0-2.conf", None, "6.1.0-2"),
        entry("abc-6.1.0-3+0-3.conf", None, "6.1.0-3"),
        entry("abc-6.1.0-3~umm_fallback.conf", None, "6.1.0-3~umm"),
    ];
    let mut rec = record("6.1.0-2");
    rec.counted = vec!["abc-6.1.0-3".into()];
    let mut i = input(Some("6.1.0-2"));
    i.failure_seen = true;
    let p = plan(&entries, &rec, &i);
    assert!(p.renames.is_empty(), "{:?}", p.renames);
    assert_eq!(p.record.failed.as_deref(), Some("6.1.0-3"));
    assert_eq!(
        (p.record.failed_attempts, p.record.failed_since),
        (3, Some(1000))
    );
    assert!(!p.fallback.as_ref().unwrap().armed);
    // Later boots keep the time it was first seen.
    let mut later = i;
    later.now = 2000;
    assert_eq!(
        plan(&entries, &p.record, &later).record.failed_since,
        Some(1000)
    );
    // A newer kernel: counted, the fallback armed below it, the failure over.
    let mut newer = entries.to_vec();
    newer.push(entry("abc-6.1.0-4.conf", None, "6.1.0-4"));
    let p = plan(&newer, &p.record, &input(None));
    assert_eq!(p.record.failed, None);
    let f = p.fallback.unwrap();
    assert!(f.armed);
    assert_eq!(f.name, "abc-6.1.0-4~umm_fallback.conf");
}

#[test]
fn disabled_removes_umms_counters_and_the_fallback() {
    let entries = [
        entry("abc-6.1.0-2.conf", None, "6.1.0-2"),
        entry("abc-6.1.0-3+1-2.conf", None, "6.1.0-3"),
        entry("abc-6.1.0-4+5.conf", None, "6.1.0-4"),
        entry("abc-6.1.0-4~umm_fallback.conf", None, "6.1.0-4~umm"),
    ];
    let mut rec = record("6.1.0-2");
    rec.counted = vec!["abc-6.1.0-3".into(), "gone".into()];
    let mut i = input(None);
    i.enabled = false;
    let p = plan(&entries, &rec, &i);
    // The admin's counter on 6.1.0-4 stays.
    assert_eq!(
        p.renames,
        [(
            "abc-6.1.0-3+1-2.conf".to_string(),
            "abc-6.1.0-3.conf".to_string()
        )]
    );
    assert_eq!(p.remove, ["abc-6.1.0-4~umm_fallback.conf"]);
    assert!(p.fallback.is_none() && p.record.counted.is_empty());
}

#[test]
fn the_fallback_text_boots_the_good_kernel_into_maintenance_and_orders_below_the_newest() {
    let good = "title Debian GNU/Linux 12\nversion 6.1.0-2\nmachine-id abc\nsort-key debian\noptions root=/dev/vda1 ro umm=off\nlinux /abc/6.1.0-2/linux\ninitrd /abc/6.1.0-2/initrd.img\n";
    let mut f = Fallback {
        name: "abc-6.1.0-3~umm_fallback.conf".into(),
        from: "abc-6.1.0-2.conf".into(),
        armed: true,
        sort_key: Some("debian".into()),
        machine_id: Some("abc".into()),
        version: Some("6.1.0-3~umm".into()),
    };
    let text = fallback_text(good, &f);
    assert_eq!(
        text,
        "# Written by umm from abc-6.1.0-2.conf: its fallback after a boot failure; changes are overwritten.\n\
         title Debian GNU/Linux 12, maintenance after a boot failure (umm)\n\
         options root=/dev/vda1 ro umm=on umm.why=boot-failure\n\
         linux /abc/6.1.0-2/linux\n\
         initrd /abc/6.1.0-2/initrd.img\n\
         sort-key debian\nmachine-id abc\nversion 6.1.0-3~umm\n"
    );
    let parsed = Entry::parse(&f.name, &text);
    assert_eq!(parsed.version.as_deref(), Some("6.1.0-3~umm"));
    f.armed = false;
    let text = fallback_text(good, &f);
    assert!(text.contains("options root=/dev/vda1 ro\n"), "{text}");
    assert!(text.contains(", last good kernel (umm)\n"), "{text}");
}
