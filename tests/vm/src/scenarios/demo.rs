//! `make demo`: the main job, narrated. Not in a full run (it repeats
//! crash-loop's proof).

use anyhow::Result;

use super::common::{assert_nothing_else_started, expect_state, installed, is_active, status};
use super::Scenario;
use crate::ctx::Ctx;
use crate::vm::Vm;

pub const SCENARIOS: &[Scenario] = &[Scenario::new("demo", "systemd", demo)
    .about("make demo: crash loop -> maintenance -> umm off, narrated")];

/// `make demo`: the main job, narrated.
fn demo(ctx: &mut Ctx) -> Result<()> {
    say("booting a throwaway Debian 12 VM and installing umm from its .deb, as a user would");
    let vm = installed(ctx)?;
    say("umm's defaults: maintenance after more than 2 unclean boots in a row (reboot_count = 2)");
    for i in 1..=3 {
        say(&format!(
            "crash {i}: hard reset of the VM (QMP system_reset), no clean shutdown"
        ));
        vm.crash()?;
        let s = status(vm)?;
        say(&format!(
            "   booted again: state {}, unclean boots in a row: {}",
            s["state"], s["unclean_boots"]
        ));
    }
    say("the third unclean boot stopped in maintenance mode; `umm status` over ssh:");
    show(vm, "umm status")?;
    say(&format!(
        "cron (an ordinary service) is {}: nothing outside networking, sshd and consoles started",
        is_active(vm, "cron")?
    ));
    assert_nothing_else_started(vm)?;
    say("the operator fixes the node, then leaves maintenance with `umm off`:");
    show(vm, "umm off")?;
    say(&format!(
        "back to normal without a reboot: cron is {}; `umm status`:",
        is_active(vm, "cron")?
    ));
    show(vm, "umm status")?;
    expect_state(vm, "operational", None)?;
    say("done");
    Ok(())
}

fn say(step: &str) {
    println!("demo: {step}");
}

fn show(vm: &Vm, cmd: &str) -> Result<()> {
    let out = vm.ssh(cmd)?;
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
    {
        println!("      | {line}");
    }
    Ok(())
}
