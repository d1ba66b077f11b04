//! umm(8), section by section: the command line from the clap definition
//! (`umm::cli::Cli`, what `umm --help` says), the reference tables from
//! the code's lists (keys, metrics, journal events, counting rules), and
//! the rest from the docs' regions marked for the man page
//! (`markdown::man_region`).

use clap::CommandFactory;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;
use umm::output::metrics::METRICS;
use umm::sys::config::keys::{tables, KeyDefault, KEYS};
use umm::sys::journal::Kind;

use crate::markdown::{inline, man_region, to_roff};
use crate::tables::counting_rules;

/// The sections whose text comes from the docs (`<!-- man: NAME -->`).
pub const FROM_DOCS: &[&str] = &[
    "CONFIGURATION",
    "FLEET COORDINATION",
    "HOOKS",
    "JSON OUTPUT",
    "MONITORING",
    "JOURNAL",
    "FILES",
    "EXIT STATUS",
];

/// The sections the docs must give text for: a missing one is an error,
/// not a page without it.
pub fn check_regions() -> std::io::Result<()> {
    for name in FROM_DOCS {
        if !matches!(man_region(name), Some(text) if !text.trim().is_empty()) {
            let e = format!("no doc marks the man page's {name} (<!-- man: {name} -->)");
            return Err(std::io::Error::other(e));
        }
    }
    Ok(())
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
    page += &section(|r| {
        synopsis(r, &cmd);
        description(r, &cmd);
    });
    page += &piece(|w| man.render_options_section(w));
    page += &section(|r| {
        commands(r, &cmd);
        configuration(r);
        from_docs(r, "FLEET COORDINATION");
        from_docs(r, "HOOKS");
        rules(r);
        from_docs(r, "JSON OUTPUT");
        monitoring(r);
        from_docs(r, "FILES");
        from_docs(r, "EXIT STATUS");
        see_also(r);
    });
    page += &piece(|w| man.render_version_section(w));
    page
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

/// Sections written here, without the preamble.
fn section(write: impl FnOnce(&mut Roff)) -> String {
    let mut r = Roff::new();
    write(&mut r);
    r.render().replacen(&Roff::new().render(), "", 1)
}

/// A section whose text is the docs' region of the same name.
fn from_docs(r: &mut Roff, name: &str) {
    r.control("SH", [name]);
    to_roff(r, man_region(name).unwrap_or_default());
}

/// The subcommands a person may run (not `umm internal`).
fn visible(cmd: &clap::Command) -> Vec<&clap::Command> {
    cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect()
}

/// The arguments a subcommand shows (not --help, --version, hidden ones).
fn shown_args(cmd: &clap::Command) -> impl Iterator<Item = &clap::Arg> {
    cmd.get_arguments()
        .filter(|a| !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version"))
}

/// SYNOPSIS: one line per visible command.
fn synopsis(r: &mut Roff, cmd: &clap::Command) {
    r.control("SH", ["SYNOPSIS"]);
    for (i, sub) in visible(cmd).iter().enumerate() {
        if i > 0 {
            r.control("br", []);
        }
        let mut line = vec![bold("umm "), bold(sub.get_name())];
        for arg in shown_args(sub) {
            line.push(roman(" "));
            line.push(roman(synopsis_word(arg)));
        }
        r.text(line);
    }
    r.control("br", []);
    r.text([bold("umm"), roman(" --help | --version")]);
}

/// DESCRIPTION: the --help epilogue (the about text is the NAME line).
fn description(r: &mut Roff, cmd: &clap::Command) {
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
}

/// Each command as a person types it: a command with subcommands of its
/// own (`umm fleet`) as each of them (`umm fleet status`, ...).
pub fn command_lines(cmd: &clap::Command) -> Vec<(String, clap::Command)> {
    let mut shown = Vec::new();
    for sub in visible(cmd) {
        let nested: Vec<_> = visible(sub)
            .into_iter()
            .filter(|c| c.get_name() != "help")
            .collect();
        if nested.is_empty() {
            shown.push((format!("umm {}", sub.get_name()), sub.clone()));
        }
        for n in nested {
            shown.push((
                format!("umm {} {}", sub.get_name(), n.get_name()),
                n.clone(),
            ));
        }
    }
    shown
}

/// COMMANDS: each visible command, with its own options.
fn commands(r: &mut Roff, cmd: &clap::Command) {
    r.control("SH", ["COMMANDS"]);
    for (name, sub) in command_lines(cmd) {
        let mut head = name;
        for arg in shown_args(&sub) {
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
        for arg in shown_args(&sub) {
            r.control("TP", []);
            r.text(arg_head(arg));
            r.text(arg_body(arg));
        }
    }
}

/// CONFIGURATION: the docs' text, then every key, table by table.
fn configuration(r: &mut Roff) {
    from_docs(r, "CONFIGURATION");
    for table in tables() {
        if !table.is_empty() {
            r.control("SS", [format!("[{table}]").as_str()]);
        }
        for key in KEYS.iter().filter(|k| k.table == table) {
            r.control("TP", []);
            let mut about = inline(key.about);
            match key.default {
                KeyDefault::Value(v) => {
                    r.text([bold(key.name), roman(" = "), roman(v)]);
                }
                KeyDefault::Unset { means, .. } => {
                    r.text([bold(key.name)]);
                    about.push(roman(" Default: "));
                    about.extend(inline(means));
                    about.push(roman("."));
                }
            }
            r.text(about);
        }
    }
}

/// COUNTING RULES, quoted from src/rules/boot.rs.
fn rules(r: &mut Roff) {
    r.control("SH", ["COUNTING RULES"]);
    for rule in counting_rules() {
        r.control("IP", ["\\(bu", "2"]);
        r.text(inline(&rule));
    }
}

/// MONITORING: the metrics, then the journal's events.
fn monitoring(r: &mut Roff) {
    from_docs(r, "MONITORING");
    for m in METRICS {
        r.control("TP", []);
        let labels = if m.labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", m.labels.join(","))
        };
        r.text([
            bold(format!("{}{labels}", m.name)),
            roman(format!(" ({})", m.kind)),
        ]);
        r.text([roman(m.help)]);
    }
    r.control("SS", ["Journal"]);
    to_roff(r, man_region("JOURNAL").unwrap_or_default());
    for kind in Kind::ALL {
        r.control("TP", []);
        r.text([bold(kind.name()), roman(" "), roman(kind.message_id())]);
        let mut about = inline(kind.about());
        if !kind.documented_fields().is_empty() {
            about.push(roman(format!("; {}", kind.documented_fields().join(", "))));
        }
        about.push(roman("."));
        r.text(about);
    }
}

fn see_also(r: &mut Roff) {
    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("systemctl"),
        roman("(1), "),
        bold("systemd.special"),
        roman("(7), "),
        bold("systemd.generator"),
        roman("(7), "),
        bold("journalctl"),
        roman("(1), "),
        bold("update-grub"),
        roman("(8); /usr/share/doc/umm/README.md and the other documents there."),
    ]);
}

/// Paragraphs of a help text (blank-line separated), each joined into one line.
fn paragraphs(text: &str) -> Vec<String> {
    text.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect()
}

/// An argument's value names (`SPAN`), or its id in capitals.
fn value_names(arg: &clap::Arg) -> String {
    arg.get_value_names()
        .map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap_or_else(|| vec![arg.get_id().as_str().to_uppercase()])
        .join(" ")
}

fn takes_value(arg: &clap::Arg) -> bool {
    arg.get_num_args().map(|n| n.takes_values()).unwrap_or(true)
}

fn takes_many(arg: &clap::Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.max_values() > 1)
}

/// `--timeout <TIMEOUT>`, `--long`, `-s`.
fn flag(arg: &clap::Arg) -> String {
    match (arg.get_short(), arg.get_long()) {
        (_, Some(long)) => format!("--{long}"),
        (Some(short), None) => format!("-{short}"),
        (None, None) => String::new(),
    }
}

/// `[--timeout <TIMEOUT>]`, `[ACTION]`, `[COMMAND]...`
fn synopsis_word(arg: &clap::Arg) -> String {
    let names = value_names(arg);
    let mut word = if arg.is_positional() {
        names
    } else {
        let optional_value = arg.get_num_args().is_some_and(|n| n.min_values() == 0);
        match (takes_value(arg), optional_value) {
            (true, true) => format!("{} [<{names}>]", flag(arg)),
            (true, false) => format!("{} <{names}>", flag(arg)),
            (false, _) => flag(arg),
        }
    };
    if !arg.is_required_set() {
        word = format!("[{word}]");
    }
    if takes_many(arg) {
        word.push_str("...");
    }
    word
}

/// The tag of an argument's entry: `-f, --force`, `--timeout SPAN`, `COMMAND...`.
fn arg_head(arg: &clap::Arg) -> Vec<Inline> {
    if arg.is_positional() {
        let mut head = vec![italic(value_names(arg))];
        if takes_many(arg) {
            head.push(roman("..."));
        }
        return head;
    }
    let mut flags = Vec::new();
    if let Some(s) = arg.get_short() {
        flags.push(format!("-{s}"));
    }
    if let Some(l) = arg.get_long() {
        flags.push(format!("--{l}"));
    }
    let mut head = vec![bold(flags.join(", "))];
    if takes_value(arg) {
        head.push(roman(" "));
        head.push(italic(value_names(arg)));
    }
    head
}

/// An argument's help, with its default and possible values.
fn arg_body(arg: &clap::Arg) -> Vec<Inline> {
    let help = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let mut body = inline(&paragraphs(&help).join(" "));
    if !takes_value(arg) {
        return body;
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() && !arg.is_hide_default_value_set() {
        body.push(roman(format!(" (default: {})", defaults.join(", "))));
    }
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|p| !p.is_hide_set())
        .map(|p| p.get_name().to_string())
        .collect();
    if !possible.is_empty() {
        body.push(roman(format!(
            " (possible values: {})",
            possible.join(", ")
        )));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "\"FLEET COORDINATION\"",
            "HOOKS",
            "\"COUNTING RULES\"",
            "\"JSON OUTPUT\"",
            "MONITORING",
            "FILES",
            "\"EXIT STATUS\"",
            "\"SEE ALSO\"",
        ] {
            assert!(page.contains(&format!("\n.SH {section}\n")), "no {section}");
        }
        for sub in ["status", "on", "off", "enable", "disable", "fleet release"] {
            assert!(
                page.contains(&format!(".SS \"umm {sub}"))
                    || page.contains(&format!(".SS umm {sub}")),
                "no {sub}"
            );
        }
        assert!(!page.contains("internal"), "the hidden subcommand leaked");
        assert!(!page.contains("clean\\-shutdown"));
    }

    /// Every section the page takes from the docs has its text there.
    #[test]
    fn every_section_from_the_docs_is_marked_in_them() {
        check_regions().unwrap();
    }

    /// The reference tables reach the page: each key, metric and event.
    #[test]
    fn man_page_lists_every_key_metric_and_event() {
        let page = man_page("2026-01-01");
        for key in KEYS {
            assert!(
                page.contains(&format!("\\fB{}\\fR", key.name)),
                "{}",
                key.label()
            );
        }
        for m in METRICS {
            assert!(page.contains(m.name), "{}", m.name);
        }
        for kind in Kind::ALL {
            assert!(page.contains(kind.message_id()), "{kind:?}");
        }
        // A markdown table's rows, not its separator, reach the page.
        assert!(!page.contains("|---"), "a table leaked as markdown");
        assert!(page.contains("/var/lib/umm/state.json"), "FILES");
    }
}
