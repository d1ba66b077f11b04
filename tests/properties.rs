//! Property tests of what umm reads from outside (issue #11): the
//! configuration parsers, the state reader, time spans and the kernel
//! command line never panic, and either accept their input or say what is
//! wrong in one line that names the file. Seeded, so every run tries the
//! same inputs (a failure is reproducible); each test prints how many
//! cases it ran.

mod common;

use std::path::Path;

use common::Tree;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

/// A reproducible runner: fixed seed, no files written next to the tests.
fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(0x756d_6d11),
        failure_persistence: None,
        ..Config::default()
    })
}

fn run<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let started = std::time::Instant::now();
    let mut runner = runner(cases);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{name}: {e}");
    }
    println!("{name}: {cases} cases in {:?}", started.elapsed());
}

/// Text made of the pieces a configuration is made of, and of anything.
fn config_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(vec![
            "enabled", "reboot_count", "counter_reset_time", "keep_units",
            "command_timeout", "[hooks]", "[grub]", "timeout", "check_timeout",
            "off_timeout", "entries_when_disabled", "UMM", "REBOOT_COUNT",
            "COUNTER_RESET_TIME", "export ", "reboot_cuont",
        ]).prop_map(String::from),
        4 => prop::sample::select(vec![
            "true", "false", "yes", "no", "0", "1", "-1", "2", "4294967296",
            "99999999999999999999", "\"10min\"", "\"1h 30min\"", "\"90s\"", "\"\"",
            "\"10 parsecs\"", "[\"zabbix-agent.service\"]", "[\"a b\"]", "[1, 2]", "{}",
            "{ timeout = 5 }", "3.5", "1979-05-27T07:32:00Z", "0x10", "'lit'",
            "\"\"\"multi\nline\"\"\"", "inf", "nan",
        ]).prop_map(String::from),
        6 => prop::sample::select(vec![
            " = ", "=", "\n", " ", "[", "]", "\"", "#", ",", "{", "}", ".", "\r\n", "\t", "'",
        ]).prop_map(String::from),
        1 => any::<String>(),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

fn one_line_naming(e: &impl std::fmt::Display, file: &str) -> Result<(), TestCaseError> {
    let shown = e.to_string();
    prop_assert!(!shown.contains('\n'), "more than one line: {shown:?}");
    prop_assert!(shown.contains(file), "does not name {file}: {shown:?}");
    Ok(())
}

#[test]
fn the_configuration_parsers_never_panic_and_name_the_file() {
    let file = Path::new("/etc/umm/umm.toml.d/50-fuzz.toml");
    run(
        "umm.toml",
        3000,
        config_text(),
        |text| match umm::sys::config::parse_toml(file, &text) {
            Ok(settings) => {
                prop_assert!(settings.counter_reset_time.as_secs() >= 1);
                Ok(())
            }
            Err(e) => one_line_naming(&e, "50-fuzz.toml"),
        },
    );
    let legacy = Path::new("/etc/umm.conf");
    run(
        "umm.conf",
        2000,
        config_text(),
        |text| match umm::sys::config::parse_legacy(legacy, &text) {
            Ok(_) => Ok(()),
            Err(e) => one_line_naming(&e, "umm.conf"),
        },
    );
}

/// A state as umm writes it, to be damaged.
fn valid_state() -> Vec<u8> {
    let text = r#"{
  "version": 1, "switch_on": true, "unclean_boots": 3,
  "unclean_records": [{"boot_id": "b1", "started": 10}, {"boot_id": "b2", "started": 20}],
  "last_boot": {"boot_id": "b3", "started": 30, "mode": "maintenance",
                "clean_shutdown": false, "reset_reached": false},
  "maintenance": {"phase": "active", "reason": "crash-loop", "requested": 30, "since": 30,
                  "requested_by": {"user": "root", "from": "192.0.2.1"},
                  "command": {"argv": ["sh", "-c", "true"], "run": null},
                  "crash_boots": [{"boot_id": "b1", "started": 10}],
                  "services_before": ["ssh.service"],
                  "hooks": [{"phase": "on", "name": "10-x", "ok": true, "result": "exited 0",
                             "output_tail": ["ok"]}]},
  "history": [{"reason": "manual", "requested": 1, "since": 2, "ended": 3,
               "requested_by": null, "command": null, "end": "resumed", "hooks": [],
               "verify": {"compared_with": "enabled services", "not_back": [], "failed": []}}],
  "after_resume": null
}"#;
    text.as_bytes().to_vec()
}

/// The valid state with a range replaced by other bytes.
fn damaged_state() -> impl Strategy<Value = Vec<u8>> {
    let len = valid_state().len();
    let fragment = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..8),
        prop::sample::select(vec![
            "null",
            "-1",
            "4294967296",
            "1e999",
            "\"\"",
            "[]",
            "{}",
            "\"x\"",
            "true",
            "\"newer\"",
            "99",
            "\"\\ud800\"",
            ",",
            ":",
            "\"extra\": 1,",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ];
    (0..len, 0..6usize, fragment).prop_map(move |(at, cut, with)| {
        let mut bytes = valid_state();
        let end = (at + cut).min(bytes.len());
        bytes.splice(at..end, with);
        bytes
    })
}

#[test]
fn the_state_reader_never_panics() {
    let check = |bytes: Vec<u8>| -> Result<(), TestCaseError> {
        match umm::sys::store::parse_state(&bytes) {
            Ok((state, notes)) => {
                prop_assert!(state.history.len() <= umm::model::limits::HISTORY);
                for n in notes {
                    prop_assert!(!n.contains('\n'), "{n:?}");
                }
            }
            Err(e) => prop_assert!(!e.contains('\n'), "more than one line: {e:?}"),
        }
        Ok(())
    };
    run(
        "state.json, random bytes",
        2000,
        prop::collection::vec(any::<u8>(), 0..200),
        check,
    );
    run("state.json, damaged", 3000, damaged_state(), check);
    // Through the file, as status reads it: the message names the file.
    let tree = Tree::new();
    let path = tree.path("state.json");
    run("state.json, as a file", 200, damaged_state(), |bytes| {
        std::fs::write(&path, &bytes).unwrap();
        let loaded = umm::sys::store::read(&path);
        if let Some(p) = loaded.problem {
            one_line_naming(&p, "state.json")?;
        }
        Ok(())
    });
}

#[test]
fn time_spans_never_panic_and_round_trip() {
    let span = prop_oneof![
        any::<String>(),
        prop::collection::vec(
            prop::sample::select(vec![
                "1",
                "0",
                "90",
                "99999999999999999999",
                "s",
                "sec",
                "min",
                "m",
                "h",
                "d",
                "w",
                "parsecs",
                " ",
                "-",
                ".",
                "μs",
            ]),
            0..8
        )
        .prop_map(|p| p.concat()),
    ];
    run("time span", 5000, span, |text| {
        match umm::model::timefmt::parse_span(&text) {
            Ok(d) => {
                let shown = umm::model::timefmt::format_span(d);
                prop_assert_eq!(umm::model::timefmt::parse_span(&shown), Ok(d));
            }
            Err(e) => prop_assert!(!e.contains('\n'), "{e:?}"),
        }
        Ok(())
    });
}

#[test]
fn the_kernel_command_line_never_panics() {
    let line = prop_oneof![
        any::<String>(),
        prop::collection::vec(
            prop::sample::select(vec![
                "umm",
                "umm=on",
                "umm=off",
                "umm=",
                "=",
                " ",
                "ro",
                "quiet",
                "BOOT_IMAGE=/vmlinuz",
                "umm=1",
                "umm=no",
                "\0",
                "\u{feff}",
                "\n",
            ]),
            0..10
        )
        .prop_map(|p| p.concat()),
    ];
    run("kernel command line", 5000, line, |text| {
        let request = umm::rules::CmdlineRequest::parse(&text);
        let arg = umm::bootmenu::boot_from_entry(&text);
        if request == umm::rules::CmdlineRequest::None {
            prop_assert!(!text
                .split_ascii_whitespace()
                .any(|w| w == "umm" || w == "umm=on"));
        }
        let _ = arg;
        Ok(())
    });
}
