//! One qemu guest: start it, talk to it over ssh and QMP, crash or reboot it,
//! collect its logs, and make sure it dies with us.
//!
//! Every external command runs under [`run_with_deadline`], so no wait in the
//! lab is unbounded. Only processes we spawned are ever signalled, by PID.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// Default bound for one ssh command.
pub const SSH_TIMEOUT: Duration = Duration::from_secs(120);
/// Bound for a guest to (re)boot until ssh answers. A TCG boot takes ~30 s.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound for a guest to power off and qemu to exit.
pub const POWEROFF_TIMEOUT: Duration = Duration::from_secs(180);
/// Bound for a booted guest's start-up to finish once sshd answers.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);

const SIGTERM: i32 = 15;
const SIGKILL: i32 = 9;

extern "C" {
    // libc's kill(2); std links libc anyway and offers no SIGTERM.
    fn kill(pid: i32, sig: i32) -> i32;
}

/// With UMM_LAB_TRACE set, print `msg` to stderr with the seconds since start.
pub fn trace(msg: &str) {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    if std::env::var_os("UMM_LAB_TRACE").is_some() {
        let thread = thread::current();
        let name = thread.name().unwrap_or("lab");
        eprintln!("[{:7.1} s {name}] {msg}", start.elapsed().as_secs_f64());
    }
}

/// Send `sig` to exactly `pid`. Returns false if the process does not exist.
pub fn signal(pid: u32, sig: i32) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions; pid > 0 targets one process.
    pid > 0 && unsafe { kill(pid as i32, sig) } == 0
}

/// Run `cmd` (stdin closed, stdout/stderr captured). If it has not exited
/// after `timeout`, it is killed by its PID and an error is returned.
pub fn run_with_deadline(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let desc = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("spawning {desc}"))?;
    // Drain both pipes on threads: a child blocked on a full pipe would
    // otherwise never exit and always hit the deadline.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let Some(status) = wait_or_kill(&mut child, timeout, Duration::ZERO)? else {
        bail!("timed out after {} s: {desc}", timeout.as_secs());
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Wait up to `timeout` for `child` to exit. If it does not, send SIGTERM,
/// allow `grace`, then SIGKILL, always to the child's own PID; returns None
/// in that case.
pub fn wait_or_kill(
    child: &mut Child,
    timeout: Duration,
    grace: Duration,
) -> Result<Option<ExitStatus>> {
    let poll = |child: &mut Child, until: Instant| -> Result<Option<ExitStatus>> {
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= until {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(50));
        }
    };
    if let Some(status) = poll(child, Instant::now() + timeout)? {
        return Ok(Some(status));
    }
    if !grace.is_zero() {
        signal(child.id(), SIGTERM);
        if poll(child, Instant::now() + grace)?.is_some() {
            return Ok(None);
        }
    }
    signal(child.id(), SIGKILL);
    child.wait()?;
    Ok(None)
}

/// How qemu starts the guest's kernel.
#[derive(Clone, Debug)]
pub enum BootMethod {
    /// Through the BIOS and the GRUB installed on the disk: the path a real
    /// machine takes (and the only one where GRUB's menu is under test).
    Grub,
    /// qemu loads the installed kernel and initramfs itself (copied out of
    /// the image when it was built) and passes `append` as the command line.
    /// Skips the BIOS loading 40 MB through int13 under TCG (about 10 s per
    /// boot, measured); the kernel, initramfs and everything after are the
    /// installed system's own.
    Direct {
        kernel: PathBuf,
        initrd: PathBuf,
        append: String,
    },
}

/// vCPUs per guest: the host's cores shared among the guests that run at
/// once, at most 2 (the lab's guest as it always was). Two 2-vCPU guests on
/// a 2-core host booted in 36-41 s, two 1-vCPU guests in 28-31 s (a vCPU
/// thread waits for the core its peer holds); one guest alone boots in
/// 21 s with 2 vCPUs, 27 s with 1.
static VCPUS: AtomicUsize = AtomicUsize::new(2);

/// Sets [`vcpus`] for `guests` running at once.
pub fn share_cores(guests: usize) {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    VCPUS.store((cores / guests.max(1)).clamp(1, 2), Ordering::Relaxed);
}

/// vCPUs of every guest started from now on (see [`share_cores`]).
pub fn vcpus() -> usize {
    VCPUS.load(Ordering::Relaxed)
}

/// What one qemu process runs: its disks, how it boots, and optionally a
/// saved VM state to resume instead of booting.
#[derive(Clone, Debug)]
pub struct Machine {
    pub disks: Vec<PathBuf>,
    pub boot: BootMethod,
    /// A state written by [`Vm::save_state`] on a machine with the same
    /// devices, resumed with `-incoming`; `disks` must be copy-on-write
    /// overlays of the disks it was saved with.
    pub incoming: Option<PathBuf>,
}

/// Where the lab's time goes, per scenario: boots (qemu starts, crashes and
/// reboots waited for) and ssh commands.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub boots: u32,
    pub boot_wait: Duration,
    pub restores: u32,
    pub ssh_commands: u32,
    pub ssh_time: Duration,
}

impl Stats {
    pub fn add(&mut self, other: &Stats) {
        self.boots += other.boots;
        self.boot_wait += other.boot_wait;
        self.restores += other.restores;
        self.ssh_commands += other.ssh_commands;
        self.ssh_time += other.ssh_time;
    }
}

/// The ssh master connection of one boot (OpenSSH connection sharing):
/// each command then costs a channel, not a key exchange with a guest
/// whose sshd runs under emulation (about 1 s per connection, measured).
struct Master {
    child: Child,
    socket: PathBuf,
}

/// A running qemu-system-x86_64 guest with ssh forwarded to 127.0.0.1:port.
pub struct Vm {
    /// None once qemu has been reaped or handed over by [`Vm::detach`].
    child: Option<Child>,
    pid: u32,
    port: u16,
    key: PathBuf,
    qmp_sock: PathBuf,
    serial_log: PathBuf,
    master: RefCell<Option<Master>>,
    stats: Cell<Stats>,
}

impl Vm {
    /// Start qemu for `machine` and return at once (see [`Vm::wait_ssh`]);
    /// with a saved state, returns once it is loaded and the guest runs.
    /// The serial console is appended to `run_dir/serial.log`, so several
    /// boots of the same disks end up in one log.
    pub fn start(run_dir: &Path, machine: &Machine, key: &Path) -> Result<Vm> {
        fs::create_dir_all(run_dir)?;
        // The port is free when we look; qemu might lose a race for it, so retry.
        let mut last_err = anyhow!("not started");
        for _ in 0..3 {
            match Self::try_start(run_dir, machine, key) {
                Ok(vm) => return Ok(vm),
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    fn try_start(run_dir: &Path, machine: &Machine, key: &Path) -> Result<Vm> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let serial_log = run_dir.join("serial.log");
        let qemu_log = run_dir.join("qemu.log");
        // Unix socket paths are limited to 108 bytes: keep it short, in /tmp.
        let qmp_sock =
            std::env::temp_dir().join(format!("umm-lab-{}-{port}.qmp", std::process::id()));
        let _ = fs::remove_file(&qmp_sock);

        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-accel", "tcg", "-m", "1024", "-smp"])
            .arg(vcpus().to_string())
            .args(["-display", "none", "-monitor", "none"])
            .arg("-chardev")
            .arg(format!(
                "null,id=ser0,logfile={},logappend=on",
                serial_log.display()
            ))
            .args(["-serial", "chardev:ser0"])
            .arg("-netdev")
            .arg(format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22"))
            .args(["-device", "virtio-net-pci,netdev=n0"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp_sock.display()));
        for disk in &machine.disks {
            let format = if disk.extension().is_some_and(|e| e == "qcow2") {
                "qcow2"
            } else {
                "raw"
            };
            cmd.arg("-drive")
                .arg(format!("file={},format={format},if=virtio", disk.display()));
        }
        if let BootMethod::Direct {
            kernel,
            initrd,
            append,
        } = &machine.boot
        {
            cmd.arg("-kernel")
                .arg(kernel)
                .arg("-initrd")
                .arg(initrd)
                .arg("-append")
                .arg(append);
        }
        if let Some(state) = &machine.incoming {
            // qemu 7.2 (Debian 12) has no file: migration URI.
            cmd.arg("-incoming")
                .arg(format!("exec:cat {}", state.display()));
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&qemu_log)?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd.spawn().context("starting qemu-system-x86_64")?;
        trace(&format!(
            "qemu started, pid {}, ssh port {port}{}",
            child.id(),
            if machine.incoming.is_some() {
                " (resuming a saved state)"
            } else {
                ""
            }
        ));
        let mut vm = Vm {
            pid: child.id(),
            child: Some(child),
            port,
            key: key.to_path_buf(),
            qmp_sock,
            serial_log,
            master: RefCell::new(None),
            stats: Cell::new(Stats::default()),
        };
        // qemu creates the QMP socket once it is set up; it exits at once on
        // bad arguments or a taken port.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !vm.qmp_sock.exists() {
            if !vm.is_running() || Instant::now() >= deadline {
                let log = fs::read_to_string(&qemu_log).unwrap_or_default();
                bail!("qemu did not start (log {}):\n{log}", qemu_log.display());
            }
            thread::sleep(Duration::from_millis(50));
        }
        if machine.incoming.is_some() {
            vm.wait_incoming(&qemu_log)?;
        }
        Ok(vm)
    }

    /// Waits (bounded) until an incoming saved state is loaded and the
    /// guest runs again.
    fn wait_incoming(&mut self, qemu_log: &Path) -> Result<()> {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(120);
        loop {
            let status = self.qmp("query-status", Value::Null).ok();
            let state = status
                .as_ref()
                .and_then(|s| s["status"].as_str())
                .unwrap_or("")
                .to_string();
            match state.as_str() {
                "running" => break,
                // Loaded, but not started: the source was paused.
                "paused" | "postmigrate" | "prelaunch" => {
                    self.qmp("cont", Value::Null)?;
                }
                _ => {}
            }
            if !self.is_running() || Instant::now() >= deadline {
                let log = fs::read_to_string(qemu_log).unwrap_or_default();
                bail!(
                    "the saved state did not load (qemu status {state:?}; log {}):\n{log}",
                    qemu_log.display()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
        self.count(|s| s.restores += 1);
        trace(&format!(
            "saved state loaded in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    /// Saves the running guest's whole state (memory, devices) to `file`
    /// and stops qemu, leaving the disks as they were at that instant. A
    /// machine with the same devices, on overlays of those disks, resumes
    /// it with [`Machine::incoming`].
    pub fn save_state(&mut self, file: &Path) -> Result<()> {
        // The guest must not keep a session whose other end will be gone.
        self.drop_master();
        let tmp = file.with_extension("tmp");
        let _ = fs::remove_file(&tmp);
        self.qmp(
            "migrate",
            json!({ "uri": format!("exec:cat > {}", tmp.display()) }),
        )?;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let r = self.qmp("query-migrate", Value::Null)?;
            match r["status"].as_str() {
                Some("completed") => break,
                Some("failed") | Some("cancelled") => bail!("saving the VM state failed: {r}"),
                _ if Instant::now() >= deadline => bail!("saving the VM state timed out: {r}"),
                _ => thread::sleep(Duration::from_millis(200)),
            }
        }
        // The guest is paused now; stop qemu before anything touches the disks.
        let _ = self.qmp("quit", Value::Null);
        if let Some(mut child) = self.child.take() {
            wait_or_kill(&mut child, Duration::from_secs(30), Duration::from_secs(5))?;
        }
        let _ = fs::remove_file(&self.qmp_sock);
        fs::rename(&tmp, file)?;
        Ok(())
    }

    pub fn serial_log(&self) -> &Path {
        &self.serial_log
    }

    pub fn stats(&self) -> Stats {
        self.stats.get()
    }

    fn count(&self, f: impl FnOnce(&mut Stats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// True while the qemu process is alive (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// The ssh command line a person can paste to reach this guest.
    pub fn ssh_command(&self) -> String {
        format!(
            "ssh -i {} -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1",
            self.key.display(),
            self.port
        )
    }

    fn ssh_opts(&self, cmd: &mut Command) {
        cmd.arg("-i").arg(&self.key);
        for opt in [
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "BatchMode=yes",
            "IdentitiesOnly=yes",
            "ConnectTimeout=5",
            "ServerAliveInterval=5",
            "ServerAliveCountMax=3",
            "LogLevel=ERROR",
        ] {
            cmd.args(["-o", opt]);
        }
    }

    /// The master connection's socket, starting the master if there is
    /// none (None: it could not be started; commands then connect alone).
    fn master_socket(&self) -> Option<PathBuf> {
        let mut slot = self.master.borrow_mut();
        if let Some(m) = slot.as_mut() {
            if matches!(m.child.try_wait(), Ok(None)) && m.socket.exists() {
                return Some(m.socket.clone());
            }
        }
        if let Some(mut old) = slot.take() {
            stop_master(&mut old);
        }
        let socket =
            std::env::temp_dir().join(format!("umm-lab-{}-{}.ssh", std::process::id(), self.port));
        let _ = fs::remove_file(&socket);
        let mut c = Command::new("ssh");
        self.ssh_opts(&mut c);
        c.args(["-M", "-N", "-o", "ControlPersist=no"])
            .arg("-o")
            .arg(format!("ControlPath={}", socket.display()))
            .arg("-p")
            .arg(self.port.to_string())
            .arg("root@127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().ok()?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while !socket.exists() {
            if !matches!(child.try_wait(), Ok(None)) || Instant::now() >= deadline {
                let mut m = Master { child, socket };
                stop_master(&mut m);
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
        trace("ssh master connection up");
        *slot = Some(Master {
            child,
            socket: socket.clone(),
        });
        Some(socket)
    }

    /// Ends the master connection (by its PID): the guest is going down,
    /// and a master to a dead guest would make the next command wait for
    /// its keep-alive timeout.
    pub fn drop_master(&self) {
        if let Some(mut m) = self.master.borrow_mut().take() {
            stop_master(&mut m);
        }
    }

    /// Run `cmd` in the guest as root (via the remote shell) with the default timeout.
    pub fn ssh(&self, cmd: &str) -> Result<Output> {
        self.ssh_timeout(cmd, SSH_TIMEOUT)
    }

    /// Like [`Vm::ssh`] with an explicit bound.
    pub fn ssh_timeout(&self, cmd: &str, timeout: Duration) -> Result<Output> {
        self.ssh_as("root", cmd, timeout)
    }

    /// Run `cmd` in the guest as `user` (a login with the lab's key).
    pub fn ssh_as(&self, user: &str, cmd: &str, timeout: Duration) -> Result<Output> {
        let started = Instant::now();
        let mut c = Command::new("ssh");
        self.ssh_opts(&mut c);
        if user == "root" {
            if let Some(socket) = self.master_socket() {
                c.args(["-o", "ControlMaster=no"])
                    .arg("-o")
                    .arg(format!("ControlPath={}", socket.display()));
            }
        }
        c.arg("-p")
            .arg(self.port.to_string())
            .arg(format!("{user}@127.0.0.1"))
            .arg(cmd);
        let result = run_with_deadline(&mut c, timeout);
        self.count(|s| {
            s.ssh_commands += 1;
            s.ssh_time += started.elapsed();
        });
        trace(&format!(
            "ssh {user} {cmd:?} -> {} ({:.1} s)",
            match &result {
                Ok(o) => o.status.to_string(),
                Err(e) => format!("{e:#}"),
            },
            started.elapsed().as_secs_f64()
        ));
        result
    }

    /// Run `cmd`, fail unless it exits 0; returns stdout without the trailing newline.
    pub fn ssh_ok(&self, cmd: &str) -> Result<String> {
        let out = self.ssh(cmd)?;
        if !out.status.success() {
            bail!(
                "`{cmd}` in guest failed ({}); stderr: {}; stdout: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    /// Copy a local file to `remote` (a path in the guest).
    pub fn scp_to(&self, local: &Path, remote: &str) -> Result<()> {
        let mut c = Command::new("scp");
        self.ssh_opts(&mut c);
        if let Some(socket) = self.master_socket() {
            c.args(["-o", "ControlMaster=no"])
                .arg("-o")
                .arg(format!("ControlPath={}", socket.display()));
        }
        c.arg("-P")
            .arg(self.port.to_string())
            .arg(local)
            .arg(format!("root@127.0.0.1:{remote}"));
        let out = run_with_deadline(&mut c, Duration::from_secs(300))?;
        if !out.status.success() {
            bail!(
                "scp {} -> {remote} failed: {}",
                local.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Does the guest's sshd answer with its banner? A cheap probe: with
    /// qemu's user network the host port always accepts, and closes at once
    /// while nothing listens in the guest.
    fn sshd_answers(&self) -> bool {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            return false;
        };
        // A listening sshd under emulation may take seconds to send its
        // banner; giving up sooner would leave it a connection to finish
        // while the next probe opens another (sshd's MaxStartups then
        // drops connections, seen in the lab).
        let _ = s.set_read_timeout(Some(Duration::from_secs(15)));
        let mut banner = [0u8; 4];
        s.read_exact(&mut banner).is_ok() && &banner == b"SSH-"
    }

    /// Wait until ssh answers, failing early if qemu exits.
    pub fn wait_ssh(&mut self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            if !self.is_running() {
                bail!("qemu exited while waiting for ssh; {}", self.serial_tail());
            }
            if self.sshd_answers() {
                if let Ok(out) = self.ssh_timeout("true", Duration::from_secs(20)) {
                    if out.status.success() {
                        self.count(|s| {
                            s.boots += 1;
                            s.boot_wait += started.elapsed();
                        });
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "no ssh after {} s; {}",
                    timeout.as_secs(),
                    self.serial_tail()
                );
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// The kernel's boot id: changes on every boot, clean or not.
    pub fn boot_id(&self) -> Result<String> {
        self.ssh_ok("cat /proc/sys/kernel/random/boot_id")
    }

    /// Wait until the guest answers over ssh with a boot id other than `old`;
    /// returns the new one.
    pub fn wait_new_boot(&mut self, old: &str, timeout: Duration) -> Result<String> {
        self.drop_master();
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            if !self.is_running() {
                bail!(
                    "qemu exited while waiting for a new boot; {}",
                    self.serial_tail()
                );
            }
            if self.sshd_answers() {
                if let Ok(out) = self.ssh_timeout(
                    "cat /proc/sys/kernel/random/boot_id",
                    Duration::from_secs(20),
                ) {
                    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
                    if out.status.success() && !id.is_empty() && id != old {
                        self.count(|s| {
                            s.boots += 1;
                            s.boot_wait += started.elapsed();
                        });
                        return Ok(id);
                    }
                    // Still the old boot, shutting down: its master must go.
                    self.drop_master();
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "guest did not come back with a new boot id within {} s; {}",
                    timeout.as_secs(),
                    self.serial_tail()
                );
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// Unclean reboot: QMP `system_reset` (like pressing the reset button),
    /// then wait for the next boot. Returns the new boot id. Needs ssh to
    /// work before (to read the old boot id); for a hung guest use
    /// `qmp("system_reset", Value::Null)` and `wait_ssh` instead.
    pub fn crash(&mut self) -> Result<String> {
        let old = self.boot_id()?;
        self.drop_master();
        trace("QMP system_reset");
        self.qmp("system_reset", Value::Null)?;
        self.wait_new_boot(&old, BOOT_TIMEOUT)
    }

    /// Clean reboot through the init system; returns the new boot id.
    pub fn reboot_clean(&mut self) -> Result<String> {
        let old = self.boot_id()?;
        self.detached("if [ -d /run/systemd/system ]; then systemctl reboot; else reboot; fi")?;
        self.wait_new_boot(&old, BOOT_TIMEOUT)
    }

    /// Waits (bounded) until the boot's start-up is over: systemd reached
    /// its target, or sysvinit's rc script exited. sshd answers before
    /// that, and what runs last (umm-after, which finishes an episode left
    /// `resuming` by `umm off reboot`) may not have run yet. Only for a
    /// normal boot: a maintenance boot never finishes starting. Returns
    /// what the init system says (`running`, `degraded`; the runlevel).
    pub fn settle(&self) -> Result<String> {
        let out = self.ssh_timeout(
            "if [ -d /run/systemd/system ]; then systemctl is-system-running --wait; \
             else while pgrep -f '^/bin/sh /etc/init.d/rc' >/dev/null; do sleep 0.5; done; runlevel; fi",
            SETTLE_TIMEOUT,
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Clean power-off; waits for qemu to exit.
    pub fn poweroff(&mut self) -> Result<()> {
        self.detached("if [ -d /run/systemd/system ]; then systemctl poweroff; else poweroff; fi")?;
        self.drop_master();
        let deadline = Instant::now() + POWEROFF_TIMEOUT;
        while self.is_running() {
            if Instant::now() >= deadline {
                bail!(
                    "guest did not power off within {} s; {}",
                    POWEROFF_TIMEOUT.as_secs(),
                    self.serial_tail()
                );
            }
            thread::sleep(Duration::from_millis(250));
        }
        Ok(())
    }

    /// Start `script` in the guest detached from the ssh session, so the
    /// session closes cleanly before the guest goes down.
    pub fn detached(&self, script: &str) -> Result<()> {
        let cmd = format!("nohup sh -c 'sleep 1; {script}' >/dev/null 2>&1 &");
        let out = self.ssh_timeout(&cmd, Duration::from_secs(30))?;
        if !out.status.success() {
            bail!(
                "`{script}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Run one QMP command (`arguments` may be Null) and return its "return" value.
    pub fn qmp(&self, execute: &str, arguments: Value) -> Result<Value> {
        let stream = UnixStream::connect(&self.qmp_sock)
            .with_context(|| format!("connecting to QMP {}", self.qmp_sock.display()))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        let mut writer = stream.try_clone()?;
        let mut reader = BufReader::new(stream);

        // Read lines until a reply (skipping asynchronous events).
        let mut reply = |what: &str| -> Result<Value> {
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 {
                    bail!("QMP closed while waiting for {what}");
                }
                let v: Value = serde_json::from_str(&line)
                    .with_context(|| format!("bad QMP line {line:?}"))?;
                if v.get("QMP").is_some() || v.get("event").is_some() {
                    continue;
                }
                if let Some(err) = v.get("error") {
                    bail!("QMP {what} failed: {err}");
                }
                if let Some(ret) = v.get("return") {
                    return Ok(ret.clone());
                }
            }
        };
        writeln!(writer, "{}", json!({"execute": "qmp_capabilities"}))?;
        reply("qmp_capabilities")?;
        let mut msg = json!({ "execute": execute });
        if !arguments.is_null() {
            msg["arguments"] = arguments;
        }
        writeln!(writer, "{msg}")?;
        reply(execute)
    }

    /// Copy the serial log and, when ssh works, the journal of every boot
    /// (or dmesg without systemd) into `dir`. Returns the files written.
    pub fn save_logs(&mut self, dir: &Path) -> Result<Vec<PathBuf>> {
        fs::create_dir_all(dir)?;
        let mut saved = Vec::new();
        let serial = dir.join("serial.log");
        if fs::copy(&self.serial_log, &serial).is_ok() {
            saved.push(serial);
        }
        let reachable = self.is_running()
            && self
                .ssh_timeout("true", Duration::from_secs(15))
                .is_ok_and(|o| o.status.success());
        if !reachable {
            return Ok(saved);
        }
        let mut save = |name: &str, cmd: &str| -> Result<()> {
            let out = self.ssh(cmd)?;
            let path = dir.join(name);
            fs::write(&path, &out.stdout)?;
            saved.push(path);
            Ok(())
        };
        match self.ssh_ok("journalctl --list-boots --no-pager") {
            Ok(list) => {
                for idx in parse_boot_indexes(&list) {
                    save(
                        &format!("journal-boot{idx}.txt"),
                        &format!("journalctl --no-pager -b {idx}"),
                    )?;
                }
            }
            Err(_) => save("dmesg.txt", "dmesg")?,
        }
        Ok(saved)
    }

    /// Last lines of the serial console, for error messages.
    fn serial_tail(&self) -> String {
        let text = fs::read_to_string(&self.serial_log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        format!(
            "serial log {} ends with:\n{tail}",
            self.serial_log.display()
        )
    }

    /// Give up ownership of the qemu process: it keeps running after this
    /// Vm is dropped. Returns its PID.
    pub fn detach(mut self) -> u32 {
        self.drop_master();
        self.child = None;
        self.pid
    }
}

fn stop_master(m: &mut Master) {
    let _ = wait_or_kill(&mut m.child, Duration::ZERO, Duration::from_secs(2));
    let _ = fs::remove_file(&m.socket);
}

/// Boot offsets (0 = current, -1 = previous, ...) from `journalctl --list-boots`.
pub fn parse_boot_indexes(list: &str) -> Vec<i64> {
    list.lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

impl Drop for Vm {
    /// Kill our qemu (SIGTERM, bounded wait, SIGKILL), by PID, even on panic.
    fn drop(&mut self) {
        self.drop_master();
        if let Some(mut child) = self.child.take() {
            let _ = wait_or_kill(&mut child, Duration::ZERO, Duration::from_secs(10));
            let _ = fs::remove_file(&self.qmp_sock);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_indexes() {
        let list = "IDX BOOT ID                          FIRST ENTRY LAST ENTRY\n \
                     -1 0a1b2c Mon 2025-01-01 00:00:00 UTC Mon 2025-01-01 00:01:00 UTC\n  \
                     0 3d4e5f Mon 2025-01-01 00:02:00 UTC Mon 2025-01-01 00:03:00 UTC\n";
        assert_eq!(parse_boot_indexes(list), vec![-1, 0]);
    }

    #[test]
    fn deadline_kills() {
        let start = Instant::now();
        let r = run_with_deadline(Command::new("sleep").arg("30"), Duration::from_millis(300));
        assert!(r.is_err());
        assert!(start.elapsed() < Duration::from_secs(5));
        let out =
            run_with_deadline(Command::new("echo").arg("hi"), Duration::from_secs(5)).unwrap();
        assert_eq!(out.stdout, b"hi\n");
    }
}
