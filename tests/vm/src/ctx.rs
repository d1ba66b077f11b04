//! What a scenario works with: its overlays, its VM, the .deb under test.

use anyhow::{Context, Result};
use std::path::PathBuf;

use crate::image::{self, BaseImage, Ready};
use crate::vm::{BootMethod, Machine, Stats, Vm, BOOT_TIMEOUT};

/// What a scenario works with: its overlays, its VM, the .deb under test.
pub struct Ctx {
    base: BaseImage,
    ready: Option<Ready>,
    /// target/vm-run/<scenario>: overlays, serial log, qemu log.
    work: PathBuf,
    /// The machine last started (its disks are this scenario's overlays).
    machine: Option<Machine>,
    vm: Option<Vm>,
    deb: PathBuf,
    /// Boots and ssh commands of the VMs this scenario has finished with.
    stats: Stats,
}

impl Ctx {
    /// A scenario's context: nothing booted yet; `work` (its directory on
    /// the host) exists and is empty.
    pub fn new(base: BaseImage, ready: Option<Ready>, work: PathBuf, deb: PathBuf) -> Ctx {
        Ctx {
            base,
            ready,
            work,
            machine: None,
            vm: None,
            deb,
            stats: Stats::default(),
        }
    }

    fn replace_vm(&mut self, vm: Option<Vm>) {
        if let Some(old) = self.vm.take() {
            self.stats.add(&old.stats());
        }
        self.vm = vm;
    }

    /// Resumes the variant's ready state (the .deb installed, a full boot of
    /// the installed system, settled) on fresh overlays: about a second.
    pub fn resume_installed(&mut self) -> Result<&mut Vm> {
        self.replace_vm(None);
        let ready = self
            .ready
            .clone()
            .context("this scenario has no ready state (it is declared .bare())")?;
        let disks = image::overlays_over(&ready.disks, &self.work)?;
        let machine = Machine {
            disks,
            boot: ready.boot.clone(),
            incoming: Some(ready.state.clone()),
        };
        let mut vm = Vm::start(&self.work, &machine, &self.base.key)?;
        vm.wait_ssh(BOOT_TIMEOUT)?;
        self.machine = Some(Machine {
            incoming: None,
            ..machine
        });
        self.replace_vm(Some(vm));
        self.vm()
    }

    /// A second guest resumed from the same ready state, on its own
    /// overlays (under `label/`), for scenarios about several nodes. Hand
    /// it back with [`Ctx::absorb`] so that its boots are counted.
    pub fn resume_another(&mut self, label: &str) -> Result<Vm> {
        let ready = self
            .ready
            .clone()
            .context("this scenario has no ready state (it is declared .bare())")?;
        let work = self.work.join(label);
        let machine = Machine {
            disks: image::overlays_over(&ready.disks, &work)?,
            boot: ready.boot.clone(),
            incoming: Some(ready.state.clone()),
        };
        let mut vm = Vm::start(&work, &machine, &self.base.key)?;
        vm.wait_ssh(BOOT_TIMEOUT)?;
        Ok(vm)
    }

    /// Counts the boots and commands of a guest from [`Ctx::resume_another`]
    /// (and stops it).
    pub fn absorb(&mut self, vm: Vm) {
        self.stats.add(&vm.stats());
    }

    /// Boots fresh overlays of the bare base image, its installed kernel
    /// loaded directly, and waits for ssh: for scenarios that need the
    /// image without umm (GRUB's menu is tested from the ready state, see
    /// [`Ctx::boot_via_grub`]).
    pub fn boot_fresh_direct(&mut self) -> Result<&mut Vm> {
        self.replace_vm(None);
        let machine = Machine {
            disks: image::create_overlays(&self.base, &self.work)?,
            boot: self.base.direct_boot(),
            incoming: None,
        };
        self.machine = Some(machine);
        self.boot()
    }

    /// Powers the running guest off cleanly and boots its disks again
    /// through the BIOS and the GRUB on them: for a scenario that resumed
    /// the ready state (booted directly) and tests GRUB's menu, which the
    /// package's postinst generated when the ready state was made.
    pub fn boot_via_grub(&mut self) -> Result<&mut Vm> {
        self.vm()?.poweroff()?;
        let machine = self.machine.as_mut().context("no disks yet")?;
        machine.boot = BootMethod::Grub;
        self.boot()
    }

    /// Boots the scenario's disks again (if it was powered off) and waits
    /// for ssh. A VM still running is killed first.
    pub fn boot(&mut self) -> Result<&mut Vm> {
        self.replace_vm(None);
        let machine = self.machine.clone().context("no disks yet")?;
        let mut vm = Vm::start(&self.work, &machine, &self.base.key)?;
        vm.wait_ssh(BOOT_TIMEOUT)?;
        self.replace_vm(Some(vm));
        self.vm()
    }

    /// The VM booted by [`Ctx::boot`].
    pub fn vm(&mut self) -> Result<&mut Vm> {
        self.vm.as_mut().context("no VM booted")
    }

    /// The scenario's own directory on the host (overlays, logs, scratch).
    pub fn work_dir(&self) -> PathBuf {
        self.work.clone()
    }

    /// The .deb under test.
    pub fn deb(&self) -> Result<PathBuf> {
        Ok(self.deb.clone())
    }

    /// The VM booted last, if any (for its logs when the scenario failed).
    pub fn last_vm(&mut self) -> Option<&mut Vm> {
        self.vm.as_mut()
    }

    /// Hands the VM over (`--keep`): it is no longer this context's.
    pub fn take_vm(&mut self) -> Option<Vm> {
        self.vm.take()
    }

    /// Boots, restores and ssh commands of every VM of this scenario.
    pub fn stats(&self) -> Stats {
        let mut all = self.stats;
        if let Some(vm) = &self.vm {
            all.add(&vm.stats());
        }
        all
    }
}
