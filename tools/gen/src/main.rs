//! umm-gen: writes what is generated from umm's sources, so that
//! `umm --help`, umm(8), the completions and the docs cannot drift apart.
//!
//!   umm-gen OUT_DIR          OUT_DIR/umm.8 and OUT_DIR/completions/{umm.bash,_umm,umm.fish}
//!   umm-gen --docs [REPO]    the generated tables in README.md and docs/*.md, and
//!                            packaging/umm.toml, in the tree (REPO: the repository's root)
//!
//! The man page (`man`) comes from the clap definition in `umm::cli::Cli`,
//! the code's reference lists (`tables`) and the docs' regions marked for
//! it (`markdown`). Set SOURCE_DATE_EPOCH for a reproducible date in the
//! man page header.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

mod man;
mod markdown;
mod tables;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [docs] if docs == "--docs" => tables::write_docs(&repo_root()).map(paths),
        [docs, root] if docs == "--docs" => tables::write_docs(Path::new(root)).map(paths),
        [out] if !out.starts_with('-') => generate(Path::new(out)),
        _ => {
            eprintln!("usage: umm-gen OUT_DIR | umm-gen --docs [REPO]");
            return ExitCode::from(2);
        }
    };
    match result {
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

/// The repository this tool was built from.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn paths(names: Vec<String>) -> Vec<PathBuf> {
    names.into_iter().map(PathBuf::from).collect()
}

/// The man page and the completions, into `out`.
fn generate(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let completions = out.join("completions");
    fs::create_dir_all(&completions)?;
    let mut written = Vec::new();

    man::check_regions()?;
    let man = out.join("umm.8");
    fs::write(&man, man::man_page(&man_date()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// `umm --help`'s commands and options are the ones the docs describe:
    /// each command in the README's table and in docs/commands.md, each
    /// option in docs/commands.md.
    #[test]
    fn every_command_and_option_is_in_the_docs() {
        let readme = fs::read_to_string(repo_root().join("README.md")).unwrap();
        let commands = fs::read_to_string(repo_root().join("docs/commands.md")).unwrap();
        for (name, sub) in man::command_lines(&umm::cli::Cli::command()) {
            let shown = format!("`{name}");
            assert!(
                readme
                    .lines()
                    .any(|l| l.starts_with('|') && l.contains(&shown)),
                "README.md's table lacks {name}"
            );
            let rows: Vec<&str> = commands.lines().filter(|l| l.contains(&name)).collect();
            assert!(!rows.is_empty(), "docs/commands.md lacks {name}");
            for arg in sub.get_arguments() {
                let Some(long) = arg.get_long().filter(|l| !["help", "version"].contains(l)) else {
                    continue;
                };
                let flag = format!("--{long}");
                assert!(
                    rows.iter().any(|r| r.contains(&flag)),
                    "docs/commands.md does not say what `{name} {flag}` does"
                );
            }
        }
    }

    /// The epilogue of `umm --help` names files and exit codes: the man
    /// page's FILES and EXIT STATUS (from the docs) have each.
    #[test]
    fn the_help_epilogue_agrees_with_the_docs() {
        let cmd = umm::cli::Cli::command();
        let after = cmd.get_after_help().unwrap().to_string();
        let files = markdown::man_region("FILES").unwrap();
        let line = after.lines().find(|l| l.starts_with("Files:")).unwrap();
        for path in line
            .trim_start_matches("Files:")
            .trim_end_matches('.')
            .split(", ")
        {
            assert!(
                files.contains(&format!("`{}`", path.trim())),
                "FILES lacks {path}"
            );
        }
        let exit = markdown::man_region("EXIT STATUS").unwrap();
        let line = after
            .lines()
            .find(|l| l.starts_with("Exit status:"))
            .unwrap();
        for said in line.trim_start_matches("Exit status:").split(", ") {
            let code = said.split_whitespace().next().unwrap();
            assert!(
                exit.contains(&format!("| `{code}` |")),
                "EXIT STATUS lacks {code}"
            );
        }
    }
}
