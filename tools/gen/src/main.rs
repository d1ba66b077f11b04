//! umm-gen: writes umm's man page and shell completions from the clap
//! definition in `umm::cli::Cli`, so that `umm --help`, umm(8) and the
//! completions cannot drift apart.
//!
//!   umm-gen OUT_DIR
//!
//! writes OUT_DIR/umm.8 and OUT_DIR/completions/{umm.bash,_umm,umm.fish}.
//! Set SOURCE_DATE_EPOCH for a reproducible date in the man page header.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;

/// The source of the counting rules, quoted verbatim into the man page.
const RULES_RS: &str = include_str!("../../../src/rules/boot.rs");

/// One key of umm.toml, as the man page and packaging/umm.toml document it.
pub struct Key {
    /// TOML table (`""` for the top level).
    pub table: &'static str,
    pub name: &'static str,
    /// The default, written as TOML.
    pub default: &'static str,
    pub about: &'static str,
}

/// Every key of umm.toml. A test checks the defaults against
/// `umm::model::settings::Settings::default()` and against packaging/umm.toml.
pub const KEYS: &[Key] = &[
    Key {
        table: "",
        name: "enabled",
        default: "true",
        about: "The site's policy: false turns umm off (nothing is counted or enforced, \
                boots are never delayed, `umm on` is refused), and `umm enable` \
                cannot override it; `umm enable` and `umm disable` are the \
                operator's switch while this is true.",
    },
    Key {
        table: "",
        name: "reboot_count",
        default: "2",
        about: "Unclean boots in a row that are tolerated: the boot that finds the \
                counter greater than this stops in maintenance (reason crash-loop).",
    },
    Key {
        table: "",
        name: "counter_reset_time",
        default: "\"10min\"",
        about: "Uptime after which a boot counts as good and the counter goes back to 0 \
                (seconds, or a span such as \"90s\", \"10min\", \"2h\").",
    },
    Key {
        table: "",
        name: "keep_units",
        default: "[]",
        about: "Extra units a maintenance boot starts, added to the built-in set \
                (networking, sshd, console logins, logind, dbus), \
                e.g. [\"zabbix-agent.service\"].",
    },
    Key {
        table: "",
        name: "command_timeout",
        default: "\"6h\"",
        about: "Bound on the command given to `umm on`; when it runs longer, its \
                process group is killed.",
    },
    Key {
        table: "hooks",
        name: "timeout",
        default: "\"5min\"",
        about: "Bound on each hook run, for every phase that does not set its own.",
    },
    Key {
        table: "hooks",
        name: "check_timeout",
        default: "\"5min\"",
        about: "Bound on each hook in /etc/umm/check.d.",
    },
    Key {
        table: "hooks",
        name: "pre_on_timeout",
        default: "\"5min\"",
        about: "Bound on each hook in /etc/umm/pre-on.d.",
    },
    Key {
        table: "hooks",
        name: "on_timeout",
        default: "\"5min\"",
        about: "Bound on each hook in /etc/umm/on.d.",
    },
    Key {
        table: "hooks",
        name: "pre_off_timeout",
        default: "\"5min\"",
        about: "Bound on each hook in /etc/umm/pre-off.d.",
    },
    Key {
        table: "hooks",
        name: "off_timeout",
        default: "\"5min\"",
        about: "Bound on each hook in /etc/umm/off.d.",
    },
    Key {
        table: "grub",
        name: "entries_when_disabled",
        default: "false",
        about: "Keep the GRUB menu entries for maintenance mode while umm is disabled.",
    },
    Key {
        table: "metrics",
        name: "textfile_dir",
        default: "\"/var/lib/prometheus/node-exporter\"",
        about: "node_exporter's textfile collector directory: umm writes umm.prom there \
                at every state change and at boot (see MONITORING), only while the \
                directory exists; \"\" turns the metrics off.",
    },
    Key {
        table: "fleet",
        name: "backend",
        default: "\"none\"",
        about: "Fleet coordination: \"none\" (this node decides alone, nothing is ever \
                sent), \"etcd\" (a semaphore in etcd v3, stored as airlock stores it) \
                or \"fleetlock\" (a FleetLock server such as airlock). With a back-end, \
                `umm on` takes a slot of the group before the request is saved, and the \
                node gives it back once it is back in service (normal target reached, \
                every service back). A take whose answer is lost after its request \
                reached the coordinator is given back at once (one that never reached \
                it, as when the connection is refused, changed nothing and owes nothing); \
                when that fails too, umm on is refused saying so and the release is \
                recorded pending and retried like any other (umm status shows it).",
    },
    Key {
        table: "fleet",
        name: "group",
        default: "\"default\"",
        about: "The group: at most its number of slots of its nodes are in maintenance at once.",
    },
    Key {
        table: "fleet",
        name: "endpoints",
        default: "[]",
        about: "etcd: the members' client URLs, e.g. [\"https://10.0.0.1:2379\"], tried in turn.",
    },
    Key {
        table: "fleet",
        name: "slots",
        default: "1",
        about: "etcd: the group's size when its key does not exist yet (an existing key keeps its own).",
    },
    Key {
        table: "fleet",
        name: "timeout",
        default: "\"10s\"",
        about: "Bound on one call to the coordinator, across endpoints and retries.",
    },
];

/// The fields of `umm status --json`, for the man page (README: Commands).
/// A test checks that `StatusView` has each.
pub const STATUS_FIELDS: &[(&str, &str)] = &[
    ("state", "operational, pending, maintenance or resuming."),
    ("enabled", "umm acts: umm.toml's enabled and the operator's switch are both on."),
    ("enabled_by_config", "umm.toml's enabled."),
    ("switch", "The operator's switch (umm enable, umm disable): on or off."),
    ("reason", "Why maintenance is pending or in force: manual, crash-loop or cmdline; null when operational."),
    ("since", "When maintenance was reached, or requested while pending."),
    ("requested_at", "When maintenance was requested or decided, or null."),
    ("requested_by", "Who asked (user) and from where (from) (root only)."),
    ("unclean_boots", "Unclean boots in a row."),
    ("reboot_count", "The setting in force: more unclean boots in a row than this stop the node in maintenance."),
    ("counter_reset_time", "The setting in force, in seconds."),
    ("unclean_boot_records", "The unclean boots counted (boot_id, started)."),
    ("crash_boots", "The unclean boots behind a crash loop (boot_id, started)."),
    ("command", "The scheduled command (root only): argv, started, ended, exit_code, signal, pid while it runs, output; null when none."),
    ("leaving", "While resuming: action (resume or reboot), started, last_try, tries, boot_id, finisher (boot_id, pid, since); else null."),
    ("this_boot", "This boot's decision: boot_id, mode, reason, decided_by, skipped_by_cmdline, resumed."),
    ("init", "The init system umm drives: systemd, sysvinit or upstart."),
    ("boot_menu", "umm's boot-menu entries (entries: title, kind, id) and this_boot_cmdline."),
    ("config", "files, legacy, error, in_use (loaded, last-good or counting-only), last_good_recorded."),
    ("hooks", "The hook runs of the current episode: phase, name, ok, result, output_tail (root only)."),
    ("last_episode", "The last finished episode, as in umm history --json, or null."),
    ("after_resume_pending", "Work left by an umm before 0.2 after umm off is still to run."),
    ("state_problem", "What was wrong with the state file (set aside, unreadable), or null."),
    ("history_entries", "Episodes in umm history."),
    ("fleet", "Fleet coordination, when a back-end is configured or a slot is remembered: backend, group, id, holds_slot, held_since, pending_release (due, tries, last_error), crash_loop_attempt; umm fleet status --json shows the group."),
    ("restricted", "Present, and true, when the caller is not root: the root-only keys are then omitted, not null."),
];

/// The fields of each episode in `umm history --json` (an array, oldest
/// first). A test checks that `EpisodeView` has each.
pub const HISTORY_FIELDS: &[(&str, &str)] = &[
    ("reason", "manual, crash-loop or cmdline."),
    ("requested_at", "When it was requested or decided."),
    ("since", "When maintenance was reached, or null (a request cancelled before)."),
    ("ended", "When it ended."),
    ("end", "How: resumed, rebooted, cancelled or interrupted."),
    ("requested_by", "Who asked, and from where (root only)."),
    ("command", "The scheduled command and its result, as in umm status --json (root only)."),
    ("hooks", "Its hook runs (root only)."),
    ("hook_failures", "phase/name of each hook that failed (root only)."),
    ("verify", "The check after leaving (root only): compared_with, not_back (services not running again), failed; null until checked."),
];

/// `[fleet]` keys with no default value to show.
const FLEET_MORE: &str = "Also under [fleet], with no default: id, this node's id in the \
    group (default: the content of /etc/machine-id); url, the FleetLock server's base URL; \
    ca_file, cert_file and key_file, for https: the CA certificates the server must chain \
    to (default: the system's), and a client certificate and its key (PEM). The key file \
    must be root's and readable by nobody else, the others root's and writable by nobody \
    else: otherwise the call is refused with a line saying so. A slot that could not be \
    given back (the coordinator down or unreachable) stays pending in the state, and \
    umm status shows it (umm_fleet_release_pending is 1): it is retried every 10 minutes \
    by umm-fleet-retry.timer (where systemd does not run, by /etc/cron.d/umm-fleet-retry), \
    at every boot and by every umm command run as root, until it lands; each try is one \
    call bounded by timeout (at most 4 minutes). A node with none pending never talks to \
    the coordinator on its own. The [fleet] settings are part of the last configuration \
    that loaded: with umm.toml broken, a pending release still goes to the same \
    coordinator. One umm run at a time talks to the coordinator \
    (/var/lib/umm/fleet.lock, held from a take until its request is saved and from a \
    release until its outcome is saved), so the node holds a slot exactly when the \
    coordinator lists it.";

/// What the fleet tests prove through the commands (README, "Fleet
/// coordination", has the figures of each run).
const FLEET_TESTED: &str = "Tested through the commands (tests/fleet_cmd.rs: nodes are \
    temporary roots running umm, against a real etcd 3.4 and a FleetLock server on \
    loopback): 20 nodes racing umm on for 2 slots, 200 rounds, never more than 2 held \
    (0 over-admissions, every release landed); etcd killed with SIGKILL and restarted \
    while 20 nodes loop umm on and umm off, and exactly between the read and the \
    transaction of a take and of a release: never more than 2 held, every umm on that \
    failed exited 1 with one line naming etcd's endpoint, every release left owed landed \
    on a later umm run as root; FleetLock: a grant, a refusal naming the server's \
    answer (the state unchanged), a failing and a slow server, the release after umm \
    off, and a release owed while the server was down; a root run giving back an owed \
    slot, stopped inside its release, and umm on taking the same slot again: umm on \
    waits, then holds the slot etcd lists.";

/// (path, description) for the FILES section.
const FILES: &[(&str, &str)] = &[
    (
        "/usr/bin/umm",
        "The program; `umm status` and `umm history` work for any user.",
    ),
    (
        "/usr/sbin/umm",
        "A link to /usr/bin/umm, the path earlier packages installed it at, for the scripts, units and sudo rules that still name it.",
    ),
    (
        "/etc/umm/umm.toml",
        "The configuration; see CONFIGURATION. Every key is optional.",
    ),
    (
        "/etc/umm/umm.toml.d/*.toml",
        "Drop-ins, applied in lexical order over umm.toml; a key set in a later file wins.",
    ),
    (
        "/etc/umm.conf",
        "The original tool's configuration file, read only when /etc/umm/umm.toml does not exist.",
    ),
    (
        "/etc/umm/check.d/",
        "Checks run by `umm on` and `umm check`; one that fails vetoes maintenance, unless --force is given.",
    ),
    (
        "/etc/umm/pre-on.d/",
        "Hooks run after the checks, before the reboot into maintenance; one that fails vetoes it, unless --force is given.",
    ),
    (
        "/etc/umm/on.d/",
        "Hooks run once maintenance is reached, before the scheduled command.",
    ),
    (
        "/etc/umm/pre-off.d/",
        "Hooks run before leaving maintenance; one that fails vetoes `umm off`, unless --force is given.",
    ),
    (
        "/etc/umm/off.d/",
        "Hooks run once the normal target is reached after maintenance (umm-after.service).",
    ),
    (
        "/var/lib/umm/state.json",
        "The state: mode, reason, unclean-boot counter, pending request, history.",
    ),
    (
        "/var/lib/umm/hooks/",
        "One state directory per hook name, kept across phases (UMM_STATE_DIR).",
    ),
    (
        "/var/lib/umm/command.log",
        "Output of the command given to `umm on`.",
    ),
    (
        "/etc/umm/early-state.json",
        "A copy of the state on the root filesystem, for the generator, which runs before /var is mounted.",
    ),
    ("/run/umm/boot.json", "This boot's decision."),
    (
        "/usr/lib/systemd/system/umm.target",
        "The maintenance boot's target.",
    ),
    (
        "/usr/lib/systemd/system/umm-*.service, umm-uptime.timer, umm-fleet-retry.timer",
        "The units that count boots, record clean shutdowns, run maintenance and retry a pending fleet release.",
    ),
    (
        "/etc/cron.d/umm-fleet-retry",
        "Without systemd (sysvinit, upstart): retries a pending fleet release every 10 minutes; does nothing under systemd.",
    ),
    (
        "/usr/lib/systemd/system-generators/umm-generator",
        "Points default.target at umm.target when a boot is a maintenance boot.",
    ),
    (
        "/etc/grub.d/42_umm",
        "Adds maintenance-mode entries to the GRUB menu.",
    ),
    (
        "/var/lib/prometheus/node-exporter/umm.prom",
        "The metrics, for node_exporter's textfile collector (see MONITORING).",
    ),
    (
        "/usr/lib/systemd/catalog/umm.catalog",
        "The journal catalog: what each of umm's journal messages means and what to do (journalctl -x).",
    ),
    (
        "/usr/share/umm/examples/",
        "Example hooks, and example Prometheus alerting rules (umm-alerts.yml) with their tests.",
    ),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out] = args.as_slice() else {
        eprintln!("usage: umm-gen OUT_DIR");
        return ExitCode::from(2);
    };
    match generate(Path::new(out)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("umm-gen: {e}");
            ExitCode::from(1)
        }
    }
}

fn generate(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let completions = out.join("completions");
    fs::create_dir_all(&completions)?;
    let mut written = Vec::new();

    let man = out.join("umm.8");
    fs::write(&man, man_page(&man_date()))?;
    written.push(man);

    for (shell, name) in [
        (Shell::Bash, "umm.bash"),
        (Shell::Zsh, "_umm"),
        (Shell::Fish, "umm.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut visible_command(), "umm", &mut buf);
        let path = completions.join(name);
        fs::write(&path, buf)?;
        written.push(path);
    }
    Ok(written)
}

/// The CLI without hidden subcommands: `umm internal` is for the init
/// system and must not be offered by completions (clap_complete lists hidden
/// subcommands too). clap cannot remove a subcommand, so this rebuilds the
/// top level with the same arguments and only the visible subcommands.
fn visible_command() -> clap::Command {
    let cmd = umm::cli::Cli::command();
    let mut visible = clap::Command::new("umm")
        .version(umm::cli::VERSION)
        .subcommand_required(cmd.is_subcommand_required_set())
        .disable_help_subcommand(true);
    if let Some(a) = cmd.get_about() {
        visible = visible.about(a.clone());
    }
    visible = visible.args(cmd.get_arguments().cloned());
    visible.subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// `YYYY-MM-DD` for the man page header: SOURCE_DATE_EPOCH when set (for
/// reproducible builds), else today.
fn man_date() -> String {
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    umm::model::timefmt::rfc3339(epoch)[..10].to_string()
}

/// Text with `code` spans set in bold.
fn inline(text: &str) -> Vec<Inline> {
    text.split('`')
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .map(|(i, s)| if i % 2 == 1 { bold(s) } else { roman(s) })
        .collect()
}

/// Paragraphs of a help text (blank-line separated), each joined into one line.
fn paragraphs(text: &str) -> Vec<String> {
    text.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect()
}

/// The counting rules, from the doc comment at the top of src/rules/boot.rs.
pub fn counting_rules() -> Vec<String> {
    let mut rules: Vec<String> = Vec::new();
    let mut inside = false;
    for line in RULES_RS.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            break;
        };
        let doc = doc.trim();
        if !inside {
            inside = doc.starts_with("The counting rules");
            continue;
        }
        if let Some(rule) = doc.strip_prefix("- ") {
            rules.push(rule.to_string());
        } else if doc.is_empty() {
            break;
        } else if let Some(last) = rules.last_mut() {
            last.push(' ');
            last.push_str(doc);
        }
    }
    rules
}

/// Renders one piece of the page through clap_mangen, without the preamble
/// that every clap_mangen/roff render starts with.
fn piece(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let preamble = Roff::new().render();
    let mut buf = Vec::new();
    render(&mut buf).expect("rendering to memory");
    let text = String::from_utf8(buf).expect("roff output is UTF-8");
    text.strip_prefix(&preamble).unwrap_or(&text).to_string()
}

fn is_help_or_version(arg: &clap::Arg) -> bool {
    matches!(arg.get_id().as_str(), "help" | "version")
}

/// `[--timeout <TIMEOUT>]`, `[ACTION]`, `[COMMAND]...`
fn synopsis_word(arg: &clap::Arg) -> String {
    let names: Vec<String> = arg
        .get_value_names()
        .map(|v| v.iter().map(|s| s.to_string()).collect())
        .unwrap_or_else(|| vec![arg.get_id().as_str().to_uppercase()]);
    let takes_value = arg.get_num_args().map(|n| n.takes_values()).unwrap_or(true);
    let multiple = arg
        .get_num_args()
        .map(|n| n.max_values() > 1)
        .unwrap_or(false);
    let mut word = if arg.is_positional() {
        names.join(" ")
    } else {
        let flag = match (arg.get_short(), arg.get_long()) {
            (_, Some(long)) => format!("--{long}"),
            (Some(short), None) => format!("-{short}"),
            (None, None) => String::new(),
        };
        let optional_value = arg.get_num_args().is_some_and(|n| n.min_values() == 0);
        if takes_value && optional_value {
            format!("{flag} [<{}>]", names.join(" "))
        } else if takes_value {
            format!("{flag} <{}>", names.join(" "))
        } else {
            flag
        }
    };
    if !arg.is_required_set() {
        word = format!("[{word}]");
    }
    if multiple {
        word.push_str("...");
    }
    word
}

fn render_arg(roff: &mut Roff, arg: &clap::Arg) {
    roff.control("TP", []);
    let mut head = Vec::new();
    if arg.is_positional() {
        let names: Vec<String> = arg
            .get_value_names()
            .map(|v| v.iter().map(|s| s.to_string()).collect())
            .unwrap_or_else(|| vec![arg.get_id().as_str().to_uppercase()]);
        head.push(italic(names.join(" ")));
        if arg.get_num_args().is_some_and(|n| n.max_values() > 1) {
            head.push(roman("..."));
        }
    } else {
        let takes_value = arg.get_num_args().map(|n| n.takes_values()).unwrap_or(true);
        let mut flags = Vec::new();
        if let Some(s) = arg.get_short() {
            flags.push(format!("-{s}"));
        }
        if let Some(l) = arg.get_long() {
            flags.push(format!("--{l}"));
        }
        head.push(bold(flags.join(", ")));
        if takes_value {
            let names: Vec<String> = arg
                .get_value_names()
                .map(|v| v.iter().map(|s| s.to_string()).collect())
                .unwrap_or_else(|| vec![arg.get_id().as_str().to_uppercase()]);
            head.push(roman(" "));
            head.push(italic(names.join(" ")));
        }
    }
    roff.text(head);
    let help = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let mut body = inline(&paragraphs(&help).join(" "));
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    let takes_value = arg.get_num_args().map(|n| n.takes_values()).unwrap_or(true);
    if takes_value && !defaults.is_empty() && !arg.is_hide_default_value_set() {
        body.push(roman(format!(" (default: {})", defaults.join(", "))));
    }
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|p| !p.is_hide_set())
        .map(|p| p.get_name().to_string())
        .collect();
    if takes_value && !possible.is_empty() {
        body.push(roman(format!(
            " (possible values: {})",
            possible.join(", ")
        )));
    }
    roff.text(body);
}

/// The whole of umm(8).
pub fn man_page(date: &str) -> String {
    let mut cmd = umm::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let version = cmd.get_version().unwrap_or_default().to_string();
    let man = Man::new(cmd.clone())
        .title("UMM")
        .section("8")
        .date(date)
        .source(format!("umm {version}"))
        .manual("System Administration");

    let mut page = Roff::new().render(); // the preamble, once
    page += &piece(|w| man.render_title(w));
    page += &piece(|w| man.render_name_section(w));

    // SYNOPSIS: one line per visible command.
    let mut r = Roff::new();
    r.control("SH", ["SYNOPSIS"]);
    let visible: Vec<&clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    for (i, sub) in visible.iter().enumerate() {
        if i > 0 {
            r.control("br", []);
        }
        let mut line = vec![bold("umm "), bold(sub.get_name())];
        for arg in sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !is_help_or_version(a))
        {
            line.push(roman(" "));
            line.push(roman(synopsis_word(arg)));
        }
        r.text(line);
    }
    r.control("br", []);
    r.text([bold("umm"), roman(" --help | --version")]);

    // DESCRIPTION: the --help epilogue (the about text is the NAME line).
    r.control("SH", ["DESCRIPTION"]);
    let after = cmd
        .get_after_help()
        .map(|a| a.to_string())
        .unwrap_or_default();
    for (i, p) in paragraphs(&after).iter().enumerate() {
        // FILES and EXIT STATUS have sections of their own.
        if p.starts_with("Files:") || p.starts_with("Exit status:") {
            continue;
        }
        if i > 0 {
            r.control("PP", []);
        }
        r.text(inline(p));
    }
    page += &r.render().replacen(&Roff::new().render(), "", 1);

    page += &piece(|w| man.render_options_section(w));

    // COMMANDS: each visible subcommand, with its own options.
    let mut r = Roff::new();
    r.control("SH", ["COMMANDS"]);
    // A command with subcommands of its own (`umm fleet`) is shown as
    // each of them (`umm fleet status`, `umm fleet release`).
    let mut shown: Vec<(String, clap::Command)> = Vec::new();
    for sub in &visible {
        let nested: Vec<_> = sub
            .get_subcommands()
            .filter(|c| !c.is_hide_set() && c.get_name() != "help")
            .collect();
        if nested.is_empty() {
            shown.push((format!("umm {}", sub.get_name()), (*sub).clone()));
        } else {
            for n in nested {
                shown.push((
                    format!("umm {} {}", sub.get_name(), n.get_name()),
                    n.clone(),
                ));
            }
        }
    }
    for (name, sub) in &shown {
        let mut head = name.clone();
        for arg in sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !is_help_or_version(a))
        {
            head.push(' ');
            head.push_str(&synopsis_word(arg));
        }
        r.control("SS", [head.as_str()]);
        let about = sub
            .get_long_about()
            .or_else(|| sub.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default();
        for (i, p) in paragraphs(&about).iter().enumerate() {
            if i > 0 {
                r.control("PP", []);
            }
            r.text(inline(&format!("{p}.")));
        }
        for arg in sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !is_help_or_version(a))
        {
            render_arg(&mut r, arg);
        }
    }

    // CONFIGURATION
    r.control("SH", ["CONFIGURATION"]);
    r.text(inline(
        "/etc/umm/umm.toml and the drop-ins in /etc/umm/umm.toml.d are TOML. \
         Every key is optional; the defaults are shown. Time spans are a number \
         of seconds or a string such as \"90s\", \"10min\", \"1h 30min\", from 1s \
         to 30d (the same bounds as --timeout). \
         An unknown key or a bad value is an error that names the file, line and key; \
         at boot, umm then uses the defaults rather than stop the boot.",
    ));
    let mut table = None;
    for key in KEYS {
        if table != Some(key.table) {
            table = Some(key.table);
            if !key.table.is_empty() {
                r.control("SS", [format!("[{}]", key.table).as_str()]);
            }
        }
        r.control("TP", []);
        r.text([bold(key.name), roman(" = "), roman(key.default)]);
        r.text(inline(key.about));
    }
    r.control("PP", []);
    r.text(inline(FLEET_MORE));
    r.control("PP", []);
    r.text(inline(FLEET_TESTED));

    // HOOKS
    r.control("SH", ["HOOKS"]);
    r.text(inline(
        "The executables in /etc/umm/check.d, pre-on.d, on.d, pre-off.d and off.d \
         (see FILES) run in lexical order, each bounded by its phase's timeout \
         (see [hooks] above; then its process group is killed), with UMM_PHASE, \
         UMM_REASON and UMM_STATE_DIR in the environment. Their output goes to the \
         log. A hook or directory that is not owned by root, or is writable by group \
         or others, is refused and never run. Examples are in /usr/share/umm/examples.",
    ));

    // JSON OUTPUT
    r.control("SH", ["JSON OUTPUT"]);
    r.text(inline(
        "umm status --json prints one object, umm history --json an array of \
         episodes; keys come out sorted. Times are RFC 3339; a key that does not \
         apply is null. A caller that is not root gets the keys marked root only \
         omitted, and \"restricted\": true.",
    ));
    r.control("SS", ["umm status --json"]);
    for (key, about) in STATUS_FIELDS {
        r.control("TP", []);
        r.text([bold(*key)]);
        r.text(inline(about));
    }
    r.control("SS", ["umm history --json"]);
    for (key, about) in HISTORY_FIELDS {
        r.control("TP", []);
        r.text([bold(*key)]);
        r.text(inline(about));
    }

    // MONITORING
    r.control("SH", ["MONITORING"]);
    r.text(inline(
        "At every state change and at boot, umm writes umm.prom (Prometheus text \
         format) into node_exporter's textfile collector directory ([metrics] \
         textfile_dir), when that directory exists: umm_state{state,reason}, \
         umm_enabled, umm_unclean_boots, umm_unclean_boots_threshold, \
         umm_maintenance_entered_total{reason}, \
         umm_maintenance_start_timestamp_seconds, \
         umm_maintenance_end_timestamp_seconds, umm_scheduled_command_exit_code, \
         umm_services_not_back, umm_hook_failures_total{phase}, umm_fleet_slot_held \
         and umm_fleet_release_pending. Example alerting \
         rules: /usr/share/umm/examples/umm-alerts.yml.",
    ));
    r.control("PP", []);
    r.text(inline(
        "Every state change umm logs carries a MESSAGE_ID and the fields UMM_EVENT, \
         UMM_STATE, UMM_REASON, UMM_EPISODE and others in the journal; \
         journalctl -x explains them (/usr/lib/systemd/catalog/umm.catalog). \
         Crash-loop entries: journalctl MESSAGE_ID=705a2a9089de48c1a261e47f58e427f8 \
         UMM_REASON=crash-loop. Without the journal the same lines go to syslog.",
    ));

    // COUNTING RULES
    r.control("SH", ["COUNTING RULES"]);
    for rule in counting_rules() {
        r.control("IP", ["\\(bu", "2"]);
        r.text(inline(&rule));
    }

    // FILES
    r.control("SH", ["FILES"]);
    for (path, about) in FILES {
        r.control("TP", []);
        r.text([italic(*path)]);
        r.text(inline(about));
    }

    // EXIT STATUS
    r.control("SH", ["EXIT STATUS"]);
    for (code, about) in [
        ("0", "Done."),
        (
            "1",
            "Refused (for example vetoed by a check, or umm is disabled) or failed.",
        ),
        ("2", "Usage error: unknown command, option or value."),
        (
            "75",
            "Only from umm-fleet-retry.service and the cron entry: a fleet release is still pending; it is tried again.",
        ),
    ] {
        r.control("TP", []);
        r.text([bold(code)]);
        r.text([roman(about)]);
    }

    // SEE ALSO
    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("systemctl"),
        roman("(1), "),
        bold("systemd.special"),
        roman("(7), "),
        bold("systemd.generator"),
        roman("(7), "),
        bold("update-grub"),
        roman("(8), /usr/share/doc/umm/README.md and /usr/share/doc/umm/boot-flow.md."),
    ]);
    page += &r.render().replacen(&Roff::new().render(), "", 1);

    page += &piece(|w| man.render_version_section(w));
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use umm::model::settings::Settings;

    fn span(toml_value: &str) -> Duration {
        umm::model::timefmt::parse_span(toml_value.trim_matches('"')).unwrap()
    }

    #[test]
    fn documented_defaults_are_the_real_defaults() {
        let d = Settings::default();
        let get = |table: &str, name: &str| {
            KEYS.iter()
                .find(|k| k.table == table && k.name == name)
                .unwrap_or_else(|| panic!("{table}.{name} is not documented"))
                .default
        };
        assert_eq!(get("", "enabled"), d.enabled.to_string());
        assert_eq!(get("", "reboot_count"), d.reboot_count.to_string());
        assert_eq!(span(get("", "counter_reset_time")), d.counter_reset_time);
        assert_eq!(get("", "keep_units"), "[]");
        assert!(d.keep_units.is_empty());
        assert_eq!(span(get("", "command_timeout")), d.command_timeout);
        let t = &d.hook_timeouts;
        assert_eq!(span(get("hooks", "check_timeout")), t.check);
        assert_eq!(span(get("hooks", "pre_on_timeout")), t.pre_on);
        assert_eq!(span(get("hooks", "on_timeout")), t.on);
        assert_eq!(span(get("hooks", "pre_off_timeout")), t.pre_off);
        assert_eq!(span(get("hooks", "off_timeout")), t.off);
        assert_eq!(span(get("hooks", "timeout")), t.check);
        assert_eq!(
            get("grub", "entries_when_disabled"),
            d.grub_entries_when_disabled.to_string()
        );
        let f = &d.fleet;
        assert_eq!(get("fleet", "backend"), format!("{:?}", f.backend.name()));
        assert_eq!(get("fleet", "group"), format!("{:?}", f.group));
        assert_eq!(get("fleet", "endpoints"), "[]");
        assert!(f.endpoints.is_empty());
        assert_eq!(get("fleet", "slots"), f.slots.to_string());
        assert_eq!(span(get("fleet", "timeout")), f.timeout);
        assert_eq!(
            Some(std::path::Path::new(
                get("metrics", "textfile_dir").trim_matches('"')
            )),
            d.metrics_dir.as_deref()
        );
    }

    /// The JSON fields the man page documents are the ones umm prints.
    #[test]
    fn documented_json_fields_are_printed() {
        let status = include_str!("../../../src/output/status/mod.rs");
        for (keys, _) in STATUS_FIELDS {
            for key in keys.split(", ") {
                assert!(
                    status.contains(&format!("pub {key}:"))
                        || status.contains(&format!("\"{key}\"")),
                    "umm status --json has no {key}"
                );
            }
        }
        let history = include_str!("../../../src/output/history.rs");
        for (key, _) in HISTORY_FIELDS {
            assert!(
                history.contains(&format!("pub {key}:")) || history.contains(&format!("\"{key}\"")),
                "umm history --json has no {key}"
            );
        }
    }

    /// packaging/umm.toml documents every key, commented out, with its
    /// default; uncommented, it is a valid config equal to the defaults.
    #[test]
    fn example_config_documents_every_key_with_its_default() {
        let example = include_str!("../../../packaging/umm.toml");
        let mut uncommented = String::new();
        for line in example.lines() {
            let body = line.trim_start_matches('#').trim();
            let is_setting = KEYS
                .iter()
                .any(|k| body.starts_with(&format!("{} =", k.name)))
                || (body.starts_with('[') && body.ends_with(']'));
            if is_setting {
                uncommented.push_str(body);
                uncommented.push('\n');
            }
        }
        for key in KEYS {
            let header = format!("[{}]", key.table);
            let table_text = if key.table.is_empty() {
                uncommented.split("\n[").next().unwrap().to_string()
            } else {
                uncommented
                    .split_once(&header)
                    .unwrap_or_else(|| panic!("no {header} in packaging/umm.toml"))
                    .1
                    .split("\n[")
                    .next()
                    .unwrap()
                    .to_string()
            };
            let line = format!("{} = {}", key.name, key.default);
            assert!(
                table_text.lines().any(|l| l.trim() == line),
                "packaging/umm.toml lacks `# {line}` in [{}]",
                key.table
            );
        }
        // Every line of the shipped file is a comment: it changes nothing.
        assert!(example
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')));
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc/umm")).unwrap();
        fs::write(dir.path().join("etc/umm/umm.toml"), &uncommented).unwrap();
        let (settings, _) =
            umm::sys::config::load(&umm::sys::paths::Root::new(dir.path())).unwrap();
        assert_eq!(settings, Settings::default());
    }

    #[test]
    fn counting_rules_are_quoted_from_the_rules() {
        let rules = counting_rules();
        assert_eq!(rules.len(), 4, "{rules:#?}");
        assert!(rules[0].contains("counter_reset_time"));
        assert!(rules[3].contains("umm off"));
    }

    #[test]
    fn man_page_has_its_sections_and_hides_internal() {
        let page = man_page("2026-01-01");
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "COMMANDS",
            "CONFIGURATION",
            "HOOKS",
            "\"COUNTING RULES\"",
            "\"JSON OUTPUT\"",
            "MONITORING",
            "FILES",
            "\"EXIT STATUS\"",
        ] {
            assert!(page.contains(&format!("\n.SH {section}\n")), "no {section}");
        }
        for sub in ["status", "on", "off", "enable", "disable"] {
            assert!(
                page.contains(&format!(".SS \"umm {sub}"))
                    || page.contains(&format!(".SS umm {sub}")),
                "no {sub}"
            );
        }
        assert!(!page.contains("internal"), "the hidden subcommand leaked");
        assert!(!page.contains("clean\\-shutdown"));
    }

    #[test]
    fn completions_offer_no_hidden_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path()).unwrap();
        for name in ["umm.bash", "_umm", "umm.fish"] {
            let text = fs::read_to_string(dir.path().join("completions").join(name)).unwrap();
            assert!(text.contains("status"), "{name}");
            assert!(!text.contains("internal"), "{name} offers `umm internal`");
            assert!(!text.contains("clean-shutdown"), "{name}");
        }
    }
}
