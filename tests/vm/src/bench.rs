//! `make bench` (`umm-lab --bench`): what umm costs and how fast it is, as
//! ratios measured in one run on one VM (absolute times under emulation
//! vary between machines and runs; a ratio of two things measured side by
//! side does much less). Each figure is the median of several boots, with
//! the range. Not a test: nothing here passes or fails; the targets are
//! printed beside the figures.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::image::{self, BaseImage, Ready};
use crate::vm::{BootMethod, Machine, Vm, BOOT_TIMEOUT};

/// Boots per figure (the issue asks for at least 5).
const ROUNDS: usize = 5;

/// Median and range of some measurements.
#[derive(Clone, Debug)]
struct Sample(Vec<f64>);

impl Sample {
    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }

    fn show(&self, unit: &str) -> String {
        format!(
            "{:.3} {unit} ({:.3}–{:.3}, n={})",
            self.median(),
            self.min(),
            self.max(),
            self.0.len()
        )
    }
}

/// One row of the results table.
struct Figure {
    name: &'static str,
    value: String,
    target: &'static str,
    verdict: String,
    how: String,
}

fn verdict(ok: bool) -> String {
    if ok { "meets it" } else { "MISSES it" }.to_string()
}

/// "Startup finished in 6.5s (kernel) + 13.7s (userspace) = 20.3s": the
/// userspace part, in seconds.
pub fn parse_userspace(text: &str) -> Option<f64> {
    let before = text.split("(userspace)").next()?;
    let part = before.rsplit('+').next()?.trim();
    parse_span(part)
}

/// systemd-analyze's spans: "13.724s", "873ms", "1min 2.345s".
fn parse_span(text: &str) -> Option<f64> {
    let mut total = 0.0;
    for word in text.split_whitespace() {
        let (number, factor) = if let Some(n) = word.strip_suffix("ms") {
            (n, 0.001)
        } else if let Some(n) = word.strip_suffix("min") {
            (n, 60.0)
        } else if let Some(n) = word.strip_suffix("us") {
            (n, 0.000_001)
        } else if let Some(n) = word.strip_suffix('s') {
            (n, 1.0)
        } else {
            return None;
        };
        total += number.parse::<f64>().ok()? * factor;
    }
    Some(total)
}

/// The sum of umm's units' own times ("+873ms") in `systemd-analyze
/// critical-chain`'s output.
pub fn umm_on_critical_chain(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.contains("umm"))
        .filter_map(|l| l.split_once('+').map(|(_, t)| t.trim()))
        .filter_map(parse_span)
        // Not .sum(): a float sum of nothing is -0.0, printed "-0.000".
        .fold(0.0, |total, t| total + t)
}

/// Userspace boot time of the running boot, once it has finished.
fn userspace(vm: &Vm) -> Result<f64> {
    vm.ssh_timeout(
        "systemctl is-system-running --wait",
        Duration::from_secs(300),
    )?;
    let text = vm.ssh_ok("systemd-analyze")?;
    parse_userspace(&text).with_context(|| format!("cannot read systemd-analyze: {text}"))
}

/// Runs `cmd` (which reboots the guest) and returns the seconds until the
/// new boot's sshd answers.
fn reboot_to_ssh(vm: &mut Vm, cmd: &str) -> Result<f64> {
    let old = vm.boot_id()?;
    let started = Instant::now();
    // Detached: the reboot cuts the ssh session, whose exit status then
    // says nothing (seen: 255 with no message). A command that does not
    // reboot shows as no new boot within the bound.
    vm.detached(cmd)?;
    vm.wait_new_boot(&old, BOOT_TIMEOUT)
        .with_context(|| format!("no new boot after `{cmd}`"))?;
    Ok(started.elapsed().as_secs_f64())
}

/// Median milliseconds of `argv` run `n` times, and the largest peak RSS
/// (KiB) of those runs, each child's own (wait4), not the lab's other
/// children (qemu, debootstrap) that RUSAGE_CHILDREN would include.
fn time_command(argv: &[&str], root: &Path, n: usize) -> Result<(Sample, Option<i64>)> {
    let mut times = Vec::new();
    let mut peak = None;
    for _ in 0..n {
        let started = Instant::now();
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .env("UMM_ROOT", root)
            .env("UMM_INIT", "record")
            .stdout(std::process::Stdio::null())
            .spawn()?;
        let (status, rss) = wait_with_rss(child)?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if status != 0 {
            bail!("{argv:?} failed: wait status {status}");
        }
        peak = peak.max(Some(rss));
    }
    Ok((Sample(times), peak))
}

#[repr(C)]
struct Rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    maxrss: i64,
    rest: [i64; 13],
}

extern "C" {
    fn wait4(pid: i32, status: *mut i32, options: i32, usage: *mut Rusage) -> i32;
}

/// Reaps `child` with wait4(2): its raw wait status and its own peak RSS
/// in KiB. The Child is forgotten afterwards (it has been reaped).
fn wait_with_rss(child: std::process::Child) -> Result<(i32, i64)> {
    let pid = i32::try_from(child.id()).context("pid out of range")?;
    let mut status = 0;
    let mut u = Rusage {
        utime: [0; 2],
        stime: [0; 2],
        maxrss: 0,
        rest: [0; 13],
    };
    // SAFETY: wait4 writes one int and one struct rusage (18 longs on
    // x86_64) into the two pointers, which live for the call; pid is our
    // own child, not waited for by anything else.
    let r = unsafe { wait4(pid, &mut status, 0, &mut u) };
    std::mem::forget(child);
    if r != pid {
        bail!("wait4({pid}) failed: {}", std::io::Error::last_os_error());
    }
    Ok((status, u.maxrss))
}

/// The static release binary that the .deb ships.
fn release_binary() -> std::path::PathBuf {
    image::target_dir().join("x86_64-unknown-linux-gnu/release/umm")
}

/// `umm status` on the host, in a temporary root holding a node in
/// maintenance with a scheduled command and history, against /bin/true.
fn status_on_host() -> Result<(Sample, Sample, Option<i64>)> {
    let umm = release_binary();
    let dir = std::env::temp_dir().join(format!("umm-bench-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    for (path, text) in [
        ("proc/sys/kernel/random/boot_id", "bench-boot\n"),
        ("proc/uptime", "120.00 200.00\n"),
        ("proc/cmdline", "root=/dev/vda1 ro quiet\n"),
    ] {
        let p = dir.join(path);
        fs::create_dir_all(p.parent().context("path has a parent")?)?;
        fs::write(p, text)?;
    }
    let run = |args: &[&str]| -> Result<()> {
        let ok = Command::new(&umm)
            .args(args)
            .env("UMM_ROOT", &dir)
            .env("UMM_INIT", "record")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()?
            .success();
        if !ok {
            bail!("umm {args:?} failed in the bench root");
        }
        Ok(())
    };
    run(&["on", "--", "sh", "-c", "echo hello"])?;
    let umm_s = umm.to_string_lossy().into_owned();
    // Warm the page cache, then measure.
    let _ = time_command(&[umm_s.as_str(), "status"], &dir, 5)?;
    let (status, rss) = time_command(&[umm_s.as_str(), "status"], &dir, 200)?;
    let (truth, _) = time_command(&["/bin/true"], &dir, 200)?;
    let _ = fs::remove_dir_all(&dir);
    Ok((status, truth, rss))
}

/// Every generator of the guest run by hand, `ROUNDS` times each: umm's
/// median time over the sum of all generators' medians.
fn generators(vm: &Vm) -> Result<(Sample, Sample)> {
    let script = format!(
        r#"cd /tmp; for g in $(realpath /lib/systemd/system-generators/* /usr/lib/systemd/system-generators/* 2>/dev/null | sort -u); do
  for i in $(seq {ROUNDS}); do d=$(mktemp -d); s=$(date +%s%N); "$g" $d/n $d/e $d/l >/dev/null 2>&1; e=$(date +%s%N); rm -rf $d; echo "$(basename $g) $(( (e - s) / 1000 ))"; done
done"#
    );
    let out = vm.ssh_ok(&script)?;
    let mut per: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for line in out.lines() {
        if let Some((name, us)) = line.split_once(' ') {
            if let Ok(us) = us.trim().parse::<f64>() {
                per.entry(name.to_string()).or_default().push(us / 1000.0);
            }
        }
    }
    let umm = Sample(per.get("umm-generator").cloned().unwrap_or_default());
    let mut all = Vec::new();
    for i in 0..ROUNDS {
        all.push(per.values().filter_map(|v| v.get(i)).sum());
    }
    Ok((umm, Sample(all)))
}

/// Rounds of the paired comparison: more than `ROUNDS`, since each
/// figure is a ratio within a round and its spread is stated.
const PAIRED_ROUNDS: usize = 7;

/// One way to get from a running normal system to a boot that answers ssh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    /// `systemctl reboot`: through the firmware, into a normal boot.
    Clean,
    /// `umm on --kexec`: into maintenance, no firmware pass.
    Kexec,
    /// `umm on --firmware`: into maintenance through the firmware.
    Firmware,
}

/// The order of round `i`: each way goes first, second and third in turn,
/// so that a drift over the run (page cache, the host's load) falls on
/// each alike.
pub fn order(i: usize) -> [usize; 3] {
    [i % 3, (i + 1) % 3, (i + 2) % 3]
}

/// One round's seconds to ssh, each way, and the resume after the kexec
/// entry.
#[derive(Clone, Debug)]
struct Round {
    clean: f64,
    kexec: f64,
    firmware: f64,
    resume: f64,
}

/// From a maintenance boot: wait for its target, then `umm off`; the
/// seconds `umm off` took.
fn leave(vm: &Vm) -> Result<f64> {
    vm.ssh_timeout(
        "systemctl is-system-running --wait",
        Duration::from_secs(300),
    )?;
    let started = Instant::now();
    vm.ssh_ok("umm off")?;
    Ok(started.elapsed().as_secs_f64())
}

/// A whole reboot (`systemctl reboot` → ssh: shutdown, BIOS, GRUB with its
/// count of attempts, kernel, userspace) with umm ÷ without it.
fn whole_reboot_figure(with_umm: Vec<f64>, without: Vec<f64>) -> Figure {
    let (with_umm, without) = (Sample(with_umm), Sample(without));
    let ratio = with_umm.median() / without.median();
    Figure {
        name: "umm's cost to a whole reboot (GRUB's count included)",
        value: format!("{ratio:.3}×"),
        target: "",
        verdict: String::new(),
        how: format!(
            "`systemctl reboot` → ssh with umm (GRUB writes its block once per boot) {} ÷ without (package removed: no counting code in grub.cfg) {}",
            with_umm.show("s"),
            without.show("s")
        ),
    }
}

/// `PAIRED_ROUNDS` rounds on one VM, each timing a clean reboot, `umm on`
/// by kexec and `umm on` by the firmware, in a rotating order.
fn paired(vm: &mut Vm) -> Result<Vec<Round>> {
    let ways = [Way::Clean, Way::Kexec, Way::Firmware];
    let mut rounds = Vec::new();
    for i in 0..PAIRED_ROUNDS {
        let mut round = Round {
            clean: f64::NAN,
            kexec: f64::NAN,
            firmware: f64::NAN,
            resume: f64::NAN,
        };
        for w in order(i).map(|k| ways[k]) {
            match w {
                Way::Clean => round.clean = reboot_to_ssh(vm, "systemctl reboot")?,
                Way::Kexec => {
                    round.kexec = reboot_to_ssh(vm, "umm on --kexec")?;
                    let text = vm.ssh_ok("cat /proc/cmdline")?;
                    if !text.split_whitespace().any(|w| w == "umm=on") {
                        bail!("`umm on --kexec` did not boot by kexec (/proc/cmdline: {text})");
                    }
                    round.resume = leave(vm)?;
                }
                Way::Firmware => {
                    round.firmware = reboot_to_ssh(vm, "umm on --firmware")?;
                    leave(vm)?;
                }
            }
        }
        rounds.push(round);
    }
    Ok(rounds)
}

/// The paired figures: each a ratio within a round, then the median and
/// range of the rounds' ratios.
fn paired_figures(rounds: &[Round]) -> Vec<Figure> {
    let ratio = |f: fn(&Round) -> f64| Sample(rounds.iter().map(f).collect());
    let secs = |f: fn(&Round) -> f64| Sample(rounds.iter().map(f).collect()).show("s");
    let by_kexec = ratio(|r| r.kexec / r.clean);
    let by_firmware = ratio(|r| r.firmware / r.clean);
    let kexec_vs_firmware = ratio(|r| r.kexec / r.firmware);
    vec![
        Figure {
            name: "maintenance entry by kexec",
            value: format!("{:.3}× a clean reboot", by_kexec.median()),
            target: "≤ 0.8×",
            verdict: verdict(by_kexec.median() <= 0.8),
            how: format!(
                "per round, `umm on --kexec` → ssh ÷ `systemctl reboot` → ssh: {} (paired, rotating order); `umm on --kexec` {}, clean reboot {}",
                by_kexec.show("×"),
                secs(|r| r.kexec),
                secs(|r| r.clean)
            ),
        },
        Figure {
            name: "maintenance entry by the firmware",
            value: format!("{:.3}× a clean reboot", by_firmware.median()),
            target: "",
            verdict: String::new(),
            how: format!(
                "per round, `umm on --firmware` → ssh ÷ `systemctl reboot` → ssh: {}; `umm on --firmware` {}",
                by_firmware.show("×"),
                secs(|r| r.firmware)
            ),
        },
        Figure {
            name: "kexec ÷ firmware",
            value: format!("{:.3}×", kexec_vs_firmware.median()),
            target: "",
            verdict: String::new(),
            how: format!("per round, the two entries: {}", kexec_vs_firmware.show("×")),
        },
    ]
}

/// umm's units' CPU time against the whole system's, this boot, from
/// systemd's accounting (`CPUUsageNSec`; the root slice is everything).
fn cpu_share(vm: &Vm) -> Result<(f64, f64)> {
    let umm = vm.ssh_ok(
        "systemctl show -P CPUUsageNSec umm-boot.service umm-after.service umm-uptime.service umm-fleet-retry.service 2>/dev/null || true",
    )?;
    let all = vm.ssh_ok("systemctl show -P CPUUsageNSec -- -.slice")?;
    Ok((sum_nsec(&umm), sum_nsec(&all)))
}

/// The sum of the numbers in `systemctl show -P CPUUsageNSec`'s lines, in
/// milliseconds ("[not set]" and empty lines are skipped).
pub fn sum_nsec(text: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .fold(0.0, |total, n| total + n as f64 / 1e6)
}

fn cpu_figure(cpu: &[(f64, f64)]) -> Option<Figure> {
    let (umm, all): (Vec<f64>, Vec<f64>) = cpu.iter().copied().unzip();
    let share = Sample(cpu.iter().map(|(u, a)| u / a).collect());
    if all.iter().all(|a| *a <= 0.0) {
        return None;
    }
    Some(Figure {
        name: "umm's units' CPU time",
        value: format!("{:.4}× the whole boot's", share.median()),
        target: "",
        verdict: String::new(),
        how: format!(
            "CPUUsageNSec of umm's units {} ÷ of the root slice {}; per boot {}",
            Sample(umm).show("ms"),
            Sample(all).show("ms"),
            share.show("×")
        ),
    })
}

pub fn run(base: &BaseImage, ready: &Ready, work: &Path) -> Result<String> {
    let mut figures = Vec::new();
    let mut notes = String::new();

    // `umm status` first: getrusage's children figure must be its own.
    let (status, truth, rss) = status_on_host()?;
    let binary = fs::metadata(release_binary())?.len();
    let file = Command::new("file")
        .arg("-b")
        .arg(release_binary())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();

    if work.exists() {
        fs::remove_dir_all(work)?;
    }
    let disks = image::overlays_over(&ready.disks, work)?;
    let machine = Machine {
        disks,
        boot: ready.boot.clone(),
        incoming: Some(ready.state.clone()),
    };
    let mut vm = Vm::start(work, &machine, &base.key)?;
    vm.wait_ssh(BOOT_TIMEOUT)?;
    // The ready state was booted directly; every boot measured goes through
    // the BIOS and GRUB, as a server's does: the firmware a kexec skips, and
    // GRUB's count of attempts (one environment-block write per boot).
    vm.poweroff()?;
    drop(vm);
    let machine = Machine {
        boot: BootMethod::Grub,
        incoming: None,
        ..machine
    };
    let mut vm = Vm::start(work, &machine, &base.key)?;
    vm.wait_ssh(BOOT_TIMEOUT)?;

    // Normal boots with umm installed and enabled.
    let (mut with_umm, mut chain) = (Vec::new(), Vec::new());
    let (mut cpu, mut reboot_with) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        reboot_with.push(reboot_to_ssh(&mut vm, "systemctl reboot")?);
        with_umm.push(userspace(&vm)?);
        chain.push(umm_on_critical_chain(
            &vm.ssh_ok("systemd-analyze critical-chain --no-pager")?,
        ));
        cpu.push(cpu_share(&vm)?);
    }
    let blame = vm.ssh_ok("systemd-analyze blame --no-pager | grep umm || true")?;
    let (gen_umm, gen_all) = generators(&vm)?;

    // Maintenance entries by kexec and by the firmware, paired with a
    // clean reboot in the same round (`paired`).
    let rounds = paired(&mut vm)?;

    // The same VM without umm.
    vm.ssh_ok("DEBIAN_FRONTEND=noninteractive dpkg -r umm >/dev/null")?;
    let (mut without, mut reboot_without) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        reboot_without.push(reboot_to_ssh(&mut vm, "systemctl reboot")?);
        without.push(userspace(&vm)?);
    }
    drop(vm);
    let _ = fs::remove_dir_all(work);

    let (with_umm, without) = (Sample(with_umm), Sample(without));
    let cost = with_umm.median() / without.median();
    figures.push(Figure {
        name: "umm's cost to a normal boot",
        value: format!("{:.3}× userspace time", cost),
        target: "≤ 1.01×",
        verdict: verdict(cost <= 1.01),
        how: format!(
            "userspace with umm {} ÷ without (package removed, same VM) {}",
            with_umm.show("s"),
            without.show("s")
        ),
    });
    figures.push(whole_reboot_figure(reboot_with, reboot_without));
    let chain = Sample(chain);
    figures.push(Figure {
        name: "umm's units on the critical path",
        value: format!("{:.3} s", chain.median()),
        target: "",
        verdict: String::new(),
        how: format!(
            "sum of umm units' own times in `systemd-analyze critical-chain`, {}",
            chain.show("s")
        ),
    });
    figures.extend(cpu_figure(&cpu));
    figures.extend(paired_figures(&rounds));
    let resume = Sample(rounds.iter().map(|r| r.resume).collect());
    let ratio = resume.median() / with_umm.median();
    figures.push(Figure {
        name: "resume",
        value: format!("{ratio:.3}×"),
        target: "≤ 1.0×",
        verdict: verdict(ratio <= 1.0),
        how: format!(
            "`umm off` → normal target reached {} ÷ userspace time of a normal boot {}",
            resume.show("s"),
            with_umm.show("s")
        ),
    });
    let ratio = gen_umm.median() / gen_all.median();
    figures.push(Figure {
        name: "generator",
        value: format!("{ratio:.3}× of the generator phase"),
        target: "",
        verdict: String::new(),
        how: format!(
            "umm-generator {} ÷ all generators run one after the other {}",
            gen_umm.show("ms"),
            gen_all.show("ms")
        ),
    });
    let status_ms = status.median();
    figures.push(Figure {
        name: "`umm status` on the host",
        value: format!(
            "{:.2} ms, {:.1}× /bin/true, peak RSS {}",
            status_ms,
            status_ms / truth.median(),
            rss.map_or("unknown".into(), |k| format!(
                "{:.1} MiB",
                k as f64 / 1024.0
            ))
        ),
        target: "≤ 2 ms",
        verdict: verdict(status_ms <= 2.0),
        how: format!(
            "wall time of 200 runs {} ÷ /bin/true {}",
            status.show("ms"),
            truth.show("ms")
        ),
    });
    figures.push(Figure {
        name: "binary",
        value: format!("{binary} bytes ({:.2} MiB)", binary as f64 / 1048576.0),
        target: "≤ 4.5 MiB, static",
        verdict: verdict(binary <= 9 << 19 && file.contains("statically linked")),
        how: file,
    });
    let _ = writeln!(
        notes,
        "systemd-analyze blame, umm's units (last normal boot): {}",
        blame.split_whitespace().collect::<Vec<_>>().join(" ")
    );

    let mut table = String::new();
    let _ = writeln!(
        table,
        "| figure | value | target | | how (median, range, n) |"
    );
    let _ = writeln!(table, "|---|---|---|---|---|");
    for f in &figures {
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} |",
            f.name, f.value, f.target, f.verdict, f.how
        );
    }
    Ok(format!("{table}\n{notes}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_systemd_analyze() {
        let text = "Startup finished in 6.582s (kernel) + 13.724s (userspace) = 20.306s \ngraphical.target reached after 13.386s in userspace.";
        assert_eq!(parse_userspace(text), Some(13.724));
        let text = "Startup finished in 1.2s (kernel) + 1min 2.5s (userspace) = 1min 3.7s";
        assert_eq!(parse_userspace(text), Some(62.5));
        assert_eq!(parse_span("873ms"), Some(0.873));
    }

    #[test]
    fn sums_umm_on_the_critical_chain() {
        let chain = "graphical.target @13.386s\n└─multi-user.target @13.360s\n  └─ssh.service @12.724s +620ms\n    └─sysinit.target @5.1s\n      └─umm-boot.service @4.9s +108ms\n";
        assert!((umm_on_critical_chain(chain) - 0.108).abs() < 1e-9);
        // No umm unit on the chain: 0, printed "0.000", not "-0.000".
        let none = umm_on_critical_chain("graphical.target @1s\n");
        assert_eq!(format!("{none:.3}"), "0.000");
    }

    #[test]
    fn peak_rss_is_the_childs_own() {
        // A big child first: RUSAGE_CHILDREN would report its RSS after.
        let big = Command::new("sh")
            .args([
                "-c",
                "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo ${#x} >/dev/null",
            ])
            .status()
            .unwrap();
        assert!(big.success());
        let (times, rss) = time_command(&["/bin/true"], Path::new("/"), 3).unwrap();
        assert_eq!(times.0.len(), 3);
        let rss = rss.unwrap();
        assert!(
            rss > 0 && rss < 16 * 1024,
            "peak RSS of /bin/true: {rss} KiB"
        );
    }

    #[test]
    fn each_way_takes_each_place_in_turn() {
        assert_eq!(order(0), [0, 1, 2]);
        assert_eq!(order(1), [1, 2, 0]);
        assert_eq!(order(2), [2, 0, 1]);
        assert_eq!(order(3), order(0));
        let firsts: Vec<usize> = (0..PAIRED_ROUNDS).map(|i| order(i)[0]).collect();
        for way in 0..3 {
            assert!(firsts.iter().filter(|f| **f == way).count() >= 2);
        }
    }

    #[test]
    fn reads_cpu_usage() {
        assert!(
            (sum_nsec(
                "117000000
[not set]

3000000
"
            ) - 120.0)
                .abs()
                < 1e-9
        );
        assert_eq!(
            sum_nsec(
                "[not set]
"
            ),
            0.0
        );
    }

    #[test]
    fn median_and_range() {
        let s = Sample(vec![3.0, 1.0, 2.0, 10.0]);
        assert_eq!(s.median(), 2.5);
        assert_eq!((s.min(), s.max()), (1.0, 10.0));
    }
}
