//! `xtask`: umm's build chores in Rust; each Makefile target calls one of
//! these commands (`cargo run -q -p xtask -- COMMAND`).
//!
//!   build        the static release binary (target/TARGET/release/umm)
//!   size-check   the binary, then: static, and within the 4.5 MiB budget
//!   gen          man page, completions (umm-gen) and the copyright file
//!   deb          the .deb (debhelper, packaging/debian) in target/debian
//!   lintian      lintian on the built .deb
//!   install-check  tests/install-check.sh against the built .deb
//!   rpm          the .rpm (rpmbuild over a `make install` tree) in target/rpm
//!   test         what CI runs (`make test`): builds and checks, then the VM
//!                lab beside cargo test, lintian and the install checks
//!
//! Installing (`make install`, `make uninstall`) stays in the Makefile: it
//! is the DESTDIR/PREFIX convention that debian/rules and the install
//! checks call, and `make deps` stays shell since it installs the linker
//! this crate is built with.

mod build;
mod package;
mod pipeline;
mod run;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "xtask", about = "umm's build chores (see the Makefile)")]
struct Cli {
    #[command(subcommand)]
    command: Chore,
}

#[derive(Subcommand)]
enum Chore {
    /// The static release binary.
    Build,
    /// Builds, then fails unless the binary is static and within the budget.
    SizeCheck,
    /// Man page, completions and the copyright file into target/gen.
    Gen,
    /// The .deb in target/debian (builds and generates first).
    Deb,
    /// lintian on the built .deb (`make lintian` builds it first): errors
    /// and warnings fail.
    Lintian,
    /// tests/install-check.sh against the built .deb (`make install-check`
    /// builds it first).
    InstallCheck,
    /// The .rpm in target/rpm.
    Rpm,
    /// The make test pipeline. UMM_TEST_LAB=COMMAND stands in for the lab
    /// binary (for checking the pipeline without booting VMs); LAB_ARGS are
    /// passed to the lab.
    Test,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = std::env::set_current_dir(run::repo_root()) {
        eprintln!("xtask: cannot enter the repository: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Chore::Build => build::build(),
        Chore::SizeCheck => build::build().and_then(|()| build::size_check()),
        Chore::Gen => package::gen(),
        Chore::Deb => package::deb(),
        Chore::Lintian => package::lintian(),
        Chore::InstallCheck => package::install_check(),
        Chore::Rpm => package::rpm(),
        Chore::Test => pipeline::test(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
