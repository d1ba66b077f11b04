//! The documented contract of `umm status --json`, for root and for
//! others, and that the text says what the JSON says.

use super::*;
use crate::bootmenu::Kind;
use crate::model::hook::HookPhase;
use crate::model::state::{
    BootRecord, Claim, CommandRun, Episode, EpisodeEnd, Leaving, Maintenance, Requester,
    ScheduledCommand,
};
use crate::model::verify::VerifyResult;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A node resuming from a crash loop, with everything status can show.
fn busy_state() -> State {
    let hook = HookRecord {
        phase: HookPhase::PreOff.into(),
        name: "10-x".into(),
        ok: false,
        result: "exited 1".into(),
        output_tail: vec!["no".into()],
        extra: Default::default(),
    };
    let boot = BootRecord {
        boot_id: "b1".into(),
        started: 10,
        extra: Default::default(),
    };
    let command = ScheduledCommand {
        argv: vec!["true".into()],
        run: Some(CommandRun {
            started: 20,
            pid: Some(42),
            ended: Some(30),
            exit_code: Some(0),
            signal: None,
            output: "/var/lib/umm/command.log".into(),
            extra: Default::default(),
        }),
        extra: Default::default(),
    };
    let requester = Requester {
        user: "alice".into(),
        from: Some("192.0.2.7".into()),
        extra: Default::default(),
    };
    let mut state = State {
        unclean_boots: 1,
        unclean_records: vec![boot.clone()],
        ..State::default()
    };
    state.maintenance = Some(Maintenance {
        id: 2,
        phase: Phase::Resuming,
        reason: Reason::CrashLoop,
        requested: 5,
        since: Some(6),
        requested_by: Some(requester.clone()),
        command: Some(command.clone()),
        crash_boots: vec![boot],
        services_before: None,
        hooks: vec![hook.clone()],
        leaving: Some(Leaving {
            action: OffAction::Resume,
            started: 40,
            last_try: 41,
            tries: 2,
            boot_id: "b2".into(),
            finisher: Some(Claim {
                boot_id: "b2".into(),
                pid: 7,
                pid_start: Some(1),
                since: 42,
                extra: Default::default(),
            }),
            extra: Default::default(),
        }),
        fleet: None,
        then: Default::default(),
        extra: Default::default(),
    });
    state.history.push(Episode {
        id: 1,
        reason: Reason::Manual,
        requested: 1,
        since: Some(2),
        ended: 3,
        requested_by: Some(requester),
        command: Some(command),
        end: EpisodeEnd::Resumed.into(),
        hooks: vec![hook],
        verify: Some(VerifyResult {
            compared_with: "enabled services".into(),
            not_back: vec![],
            failed: vec!["x.service".into()],
            extra: Default::default(),
        }),
        fleet: None,
        extra: Default::default(),
    });
    state
}

fn view_json(restricted: bool) -> Value {
    view_json_of(busy_state(), restricted)
}

fn view_json_of(full: State, restricted: bool) -> Value {
    let state = if restricted { full.public() } else { full };
    let decision = BootDecision {
        boot_id: "b2".into(),
        mode: Mode::Maintenance,
        reason: Some(Reason::CrashLoop),
        decided_by: DecidedBy::Generator.into(),
        skipped_by_cmdline: false,
        resumed: true,
    };
    let menu = [MenuEntry {
        title: "Debian, maintenance mode (umm)".into(),
        kind: Kind::On,
        id: "umm-on-x".into(),
    }];
    let sources = Sources {
        files: vec!["/etc/umm/umm.toml".into()],
        ..Sources::default()
    };
    let failure = crate::rules::bootcount::BootFailure {
        kernel: "6.1.0-3-amd64".into(),
        attempts: 3,
        good: Some("6.1.0-2-amd64".into()),
        since: Some(1_795_290_000),
    };
    let inputs = Inputs {
        counting: &crate::bootmenu::Counting::On,
        boot_failure: Some(&failure),
        running_kernel: "6.1.0-2-amd64",
        state: &state,
        state_problem: None,
        settings: &Settings::default(),
        sources: &sources,
        config_error: Some("/etc/umm/umm.toml.d/x.toml:1: x: bad".into()),
        config_in_use: &InUse::LastGood(50),
        this_boot: Some(&decision),
        init: "systemd",
        menu: &menu,
        cmdline_arg: Some("umm=on"),
        restricted,
    };
    let text = crate::output::json::pretty(&StatusView::new(&inputs)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The documented contract of `umm status --json` (docs/commands.md): each
/// field's JSON type, where tools and the VM lab read it.
const CONTRACT: &[(&str, &str)] = &[
    ("/state", "string"),
    ("/enabled", "bool"),
    ("/enabled_by_config", "bool"),
    ("/switch", "string"),
    ("/reason", "string"),
    ("/since", "string"),
    ("/requested_at", "string"),
    ("/requested_by/user", "string"),
    ("/requested_by/from", "string"),
    ("/unclean_boots", "number"),
    ("/reboot_count", "number"),
    ("/counter_reset_time", "number"),
    ("/unclean_boot_records/0/boot_id", "string"),
    ("/unclean_boot_records/0/started", "string"),
    ("/crash_boots/0/boot_id", "string"),
    ("/crash_boots/0/started", "string"),
    ("/command/argv/0", "string"),
    ("/command/exit_code", "number"),
    ("/command/signal", "null"),
    ("/command/started", "string"),
    ("/command/ended", "string"),
    ("/command/pid", "number"),
    ("/command/output", "string"),
    ("/leaving/action", "string"),
    ("/leaving/started", "string"),
    ("/leaving/last_try", "string"),
    ("/leaving/tries", "number"),
    ("/leaving/boot_id", "string"),
    ("/leaving/finisher/boot_id", "string"),
    ("/leaving/finisher/pid", "number"),
    ("/leaving/finisher/since", "string"),
    ("/this_boot/boot_id", "string"),
    ("/this_boot/mode", "string"),
    ("/this_boot/reason", "string"),
    ("/this_boot/decided_by", "string"),
    ("/this_boot/skipped_by_cmdline", "bool"),
    ("/this_boot/resumed", "bool"),
    ("/init", "string"),
    ("/boot_menu/entries/0/title", "string"),
    ("/boot_menu/entries/0/kind", "string"),
    ("/boot_menu/entries/0/id", "string"),
    ("/boot_menu/this_boot_cmdline", "string"),
    ("/boot_menu/counting/on", "bool"),
    ("/boot_menu/counting/detail", "null"),
    ("/boot_menu/boot_failure/kernel", "string"),
    ("/boot_menu/boot_failure/attempts", "number"),
    ("/boot_menu/boot_failure/good_kernel", "string"),
    ("/boot_menu/boot_failure/running_kernel", "string"),
    ("/boot_menu/boot_failure/since", "string"),
    ("/config/files/0", "string"),
    ("/config/legacy", "bool"),
    ("/config/error", "string"),
    ("/config/in_use", "string"),
    ("/config/last_good_recorded", "string"),
    ("/hooks/0/phase", "string"),
    ("/hooks/0/name", "string"),
    ("/hooks/0/ok", "bool"),
    ("/hooks/0/result", "string"),
    ("/hooks/0/output_tail/0", "string"),
    ("/last_episode/reason", "string"),
    ("/last_episode/requested_at", "string"),
    ("/last_episode/requested_by/user", "string"),
    ("/last_episode/since", "string"),
    ("/last_episode/ended", "string"),
    ("/last_episode/end", "string"),
    ("/last_episode/command/exit_code", "number"),
    ("/last_episode/hooks/0/name", "string"),
    ("/last_episode/hook_failures/0", "string"),
    ("/last_episode/verify/failed/0", "string"),
    ("/last_episode/verify/not_back", "array"),
    ("/last_episode/verify/compared_with", "string"),
    ("/after_resume_pending", "bool"),
    ("/state_problem", "null"),
    ("/history_entries", "number"),
];

const ROOT_ONLY: &[&str] = &["/requested_by", "/command", "/hooks"];
const ROOT_ONLY_IN_EPISODES: &[&str] = &[
    "requested_by",
    "command",
    "hooks",
    "hook_failures",
    "verify",
];

#[test]
fn json_for_root_has_the_documented_fields_and_types() {
    let v = view_json(false);
    for (pointer, expected) in CONTRACT {
        let got = v.pointer(pointer).map(kind);
        assert_eq!(got, Some(*expected), "{pointer} in {v:#}");
    }
    assert_eq!(v["state"], "resuming");
    assert_eq!(v["reason"], "crash-loop");
    assert_eq!(v["leaving"]["action"], "resume");
    assert_eq!(v["this_boot"]["decided_by"], "generator");
    assert_eq!(v["boot_menu"]["entries"][0]["kind"], "umm=on");
    assert_eq!(v["config"]["in_use"], "last-good");
    assert_eq!(v["hooks"][0]["phase"], "pre-off");
    assert_eq!(v["last_episode"]["end"], "resumed");
    assert!(v.get("restricted").is_none(), "{v:#}");
}

#[test]
fn json_for_others_omits_what_is_root_only_and_says_so() {
    let root = view_json(false);
    let v = view_json(true);
    assert_eq!(v["restricted"], true);
    for (pointer, expected) in CONTRACT {
        let hidden = ROOT_ONLY.iter().any(|p| pointer.starts_with(p))
            || ROOT_ONLY_IN_EPISODES
                .iter()
                .any(|f| pointer.starts_with(&format!("/last_episode/{f}")));
        if hidden {
            assert!(v.pointer(pointer).is_none(), "{pointer} given to a user");
        } else {
            assert_eq!(v.pointer(pointer).map(kind), Some(*expected), "{pointer}");
        }
    }
    // Omitted, not null; and every other key is there.
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    let mut expected = keys(&root);
    expected.retain(|k| !ROOT_ONLY.contains(&format!("/{k}").as_str()));
    expected.push("restricted".into());
    expected.sort();
    assert_eq!(keys(&v), expected);
    let mut episode = keys(&root["last_episode"]);
    episode.retain(|k| !ROOT_ONLY_IN_EPISODES.contains(&k.as_str()));
    assert_eq!(keys(&v["last_episode"]), episode);
}

#[test]
fn text_and_json_show_the_same_facts() {
    let full = busy_state();
    let v = view_json(false);
    let sources = Sources::default();
    let inputs = Inputs {
        counting: &crate::bootmenu::Counting::On,
        boot_failure: None,
        running_kernel: "",
        state: &full,
        state_problem: None,
        settings: &Settings::default(),
        sources: &sources,
        config_error: None,
        config_in_use: &InUse::Loaded,
        this_boot: None,
        init: "systemd",
        menu: &[],
        cmdline_arg: None,
        restricted: false,
    };
    let text = StatusView::new(&inputs).text();
    for fact in [
        v["since"].as_str().unwrap(),
        v["leaving"]["started"].as_str().unwrap(),
        v["requested_by"]["from"].as_str().unwrap(),
        v["crash_boots"][0]["boot_id"].as_str().unwrap(),
        v["command"]["output"].as_str().unwrap(),
    ] {
        assert!(text.contains(fact), "{fact} not in:\n{text}");
    }
    assert!(text.starts_with("State:        RESUMING"), "{text}");
}

/// The keys of the table after `heading` in docs/commands.md (its first
/// column), each with whether its row says it is root only.
fn documented(heading: &str) -> BTreeMap<String, bool> {
    let doc = include_str!("../../../docs/commands.md");
    let (_, after) = doc.split_once(heading).unwrap();
    let rows = after
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2);
    rows.map(|row| {
        let key = row.split('|').nth(1).unwrap().trim().trim_matches('`');
        (key.to_string(), row.contains("(root only)"))
    })
    .collect()
}

/// docs/commands.md documents every key `umm status --json` and `umm
/// history --json` print, and no other, and which are root only (the man
/// page's JSON OUTPUT is that text).
#[test]
fn the_documented_json_keys_are_the_printed_ones() {
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    let root = view_json(false);
    let user = view_json(true);
    let mut with_slot = busy_state();
    with_slot.fleet.held = Some(crate::model::state::FleetSlot {
        backend: "etcd".into(),
        group: "g".into(),
        id: "node-a".into(),
        since: 1,
        extra: Default::default(),
    });
    with_slot.queued = Some(crate::model::rolling::Queued {
        since: 1,
        expires: 2,
        then: crate::model::rolling::Then::Off,
        argv: Some(vec!["true".into()]),
        tries: 0,
        next_try: 1,
        waiting_for: vec![],
        by: None,
        from: None,
        extra: Default::default(),
    });
    let mut printed = keys(&root);
    printed.extend(keys(&user));
    printed.extend(keys(&view_json_of(with_slot, false)));
    let status = documented("### umm status --json");
    assert_eq!(printed, status.keys().cloned().collect::<BTreeSet<_>>());
    let root_only: BTreeSet<String> = keys(&root).difference(&keys(&user)).cloned().collect();
    let said: BTreeSet<String> = status
        .iter()
        .filter(|(_, r)| **r)
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(
        root_only, said,
        "root only, as printed (left) and documented (right)"
    );

    let episode = &root["last_episode"];
    let history = documented("### umm history --json");
    assert_eq!(
        keys(episode),
        history.keys().cloned().collect::<BTreeSet<_>>()
    );
    let root_only: BTreeSet<String> = keys(episode)
        .difference(&keys(&user["last_episode"]))
        .cloned()
        .collect();
    let said: BTreeSet<String> = history
        .iter()
        .filter(|(_, r)| **r)
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(
        root_only, said,
        "episodes: root only, as printed and documented"
    );
}
