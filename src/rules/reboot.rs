//! Planned reboots (`umm on`, `umm off reboot`): by kexec, or through the
//! firmware and the boot loader. Pure: the facts are gathered by
//! `sys::kexec` and the init system; here is what they mean.
//!
//! kexec skips the firmware's POST (minutes on servers with much memory
//! and RAID controllers) and is still an orderly shutdown: every service
//! stops, umm-shutdown records a clean shutdown, nothing is counted. It is
//! never used where the boot must pass the boot loader (leaving a crash
//! loop: its boots are counted there), where the kernel forbids it, or
//! where the image is not known to be whole. Each fallback is said in one
//! line (`Fallback`'s Display).

pub use crate::model::reboot::{Image, KexecPath, KEXEC_SCRIPT};
use crate::model::settings::RebootMethod;

/// Which planned reboot this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// `umm on`: into maintenance.
    Enter,
    /// `umm off reboot`; `crash_loop`: the episode's reason is a crash loop.
    Leave { crash_loop: bool },
}

/// What umm found out about this node before choosing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// `[reboot] method`.
    pub setting: RebootMethod,
    /// `--kexec` (Kexec) or `--firmware` (Firmware); Auto is never given.
    pub flag: Option<RebootMethod>,
    pub transition: Transition,
    /// How the init system finishes a kexec, if it can.
    pub init_kexec: KexecPath,
    /// The kernel has kexec at all (/sys/kernel/kexec_loaded exists).
    pub kernel_has_kexec: bool,
    /// `kernel.kexec_load_disabled = 1` (it cannot be set back until a reboot).
    pub load_disabled: bool,
    pub image: Image,
    /// MemAvailable, in bytes (None: unknown, not held against kexec).
    pub mem_available: Option<u64>,
    /// The command line to boot with, in bytes (`cmdline`).
    pub cmdline_bytes: usize,
    /// The boot loader has a choice of its own for the next boot (a
    /// one-time entry from `grub-reboot`, or a kernel that failed to boot
    /// and that GRUB now avoids): what it is. kexec would bypass it.
    pub boot_loader_choice: Option<String>,
}

/// Besides the images, what loading them needs (page tables, the copy the
/// kernel makes of the segments): a margin, not a measurement.
pub const MEMORY_MARGIN: u64 = 64 << 20;

/// The longest command line x86's kernel takes (COMMAND_LINE_SIZE 2048,
/// its NUL included).
pub const MAX_CMDLINE: usize = 2047;

/// Why a planned reboot goes through the firmware.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// `--firmware`.
    Flag,
    /// `[reboot] method = "firmware"`.
    Setting,
    CrashLoop,
    /// The init system (named) has no kexec path in umm.
    Init(&'static str),
    /// sysvinit without umm's runlevel-6 script (`KEXEC_SCRIPT`).
    NoKexecScript,
    NoKexec,
    LoadDisabled,
    Image(String),
    Memory {
        available: u64,
        needed: u64,
    },
    CmdlineTooLong(usize),
    /// The boot loader chooses the next boot itself (what it chose).
    BootLoader(String),
    /// Loading was refused: the kernel's answer (`load_failure`).
    Load(LoadFailure),
    /// The init system did not take the kexec (its error).
    Start(String),
}

/// Why `kexec_file_load` refused the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadFailure {
    /// EKEYREJECTED, EBADMSG, or EPERM under lockdown: not signed by a key
    /// the kernel trusts (Secure Boot).
    Signature,
    /// ENOSYS: no CONFIG_KEXEC_FILE.
    NoSyscall,
    /// ENOMEM.
    Memory,
    /// Any other error (its text).
    Other(String),
}

/// How the kernel's error maps to a reason (`errno`: the raw value).
/// `lockdown`: /sys/kernel/security/lockdown names an active mode.
pub fn load_failure(errno: i32, text: &str, lockdown: bool) -> LoadFailure {
    const EPERM: i32 = 1;
    const ENOMEM: i32 = 12;
    const ENOSYS: i32 = 38;
    const EBADMSG: i32 = 74;
    const EKEYREJECTED: i32 = 129;
    match errno {
        EKEYREJECTED | EBADMSG => LoadFailure::Signature,
        EPERM if lockdown => LoadFailure::Signature,
        ENOSYS => LoadFailure::NoSyscall,
        ENOMEM => LoadFailure::Memory,
        _ => LoadFailure::Other(text.to_string()),
    }
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fallback::Flag => f.write_str("--firmware was given"),
            Fallback::Setting => f.write_str("[reboot] method = \"firmware\" in umm.toml"),
            Fallback::CrashLoop => {
                f.write_str("a crash loop is left through the boot loader, where boots are counted")
            }
            Fallback::Init(name) => write!(f, "umm does not kexec under {name}"),
            Fallback::NoKexecScript => write!(
                f,
                "{KEXEC_SCRIPT} is not installed in runlevel 6 (reinstall umm, or run `update-rc.d umm-kexec defaults`)"
            ),
            Fallback::NoKexec => f.write_str("this kernel has no kexec (CONFIG_KEXEC_FILE)"),
            Fallback::LoadDisabled => {
                f.write_str("kernel.kexec_load_disabled = 1 (it stays set until a reboot)")
            }
            Fallback::Image(why) => write!(f, "{why}"),
            Fallback::BootLoader(choice) => write!(
                f,
                "GRUB chooses the next boot itself ({choice}); kexec would bypass it"
            ),
            Fallback::Memory { available, needed } => write!(
                f,
                "too little memory to load the kernel ({} MiB available, {} MiB needed)",
                available >> 20,
                needed >> 20
            ),
            Fallback::CmdlineTooLong(n) => write!(
                f,
                "the kernel command line is {n} bytes, longer than the kernel takes ({MAX_CMDLINE})"
            ),
            Fallback::Load(LoadFailure::Signature) => {
                f.write_str("the kernel refused the image's signature (Secure Boot lockdown)")
            }
            Fallback::Load(LoadFailure::NoSyscall) => {
                f.write_str("this kernel has no kexec_file_load (CONFIG_KEXEC_FILE)")
            }
            Fallback::Load(LoadFailure::Memory) => {
                f.write_str("the kernel had too little memory to load the image")
            }
            Fallback::Load(LoadFailure::Other(e)) => write!(f, "loading the kernel failed: {e}"),
            Fallback::Start(e) => write!(f, "the init system did not start the kexec: {e}"),
        }
    }
}

/// The choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    Kexec,
    /// `loud`: kexec was asked for (setting or flag), so the fallback is a
    /// warning rather than a note.
    Firmware {
        why: Fallback,
        loud: bool,
    },
}

impl Facts {
    /// kexec was asked for explicitly (`--kexec`, or `method = "kexec"`
    /// with no flag).
    pub fn kexec_asked(&self) -> bool {
        match self.flag {
            Some(flag) => flag == RebootMethod::Kexec,
            None => self.setting == RebootMethod::Kexec,
        }
    }

    /// The firmware was asked for: a choice, not a fallback.
    fn firmware_asked(&self) -> Option<Fallback> {
        match (self.flag, self.setting) {
            (Some(RebootMethod::Firmware), _) => Some(Fallback::Flag),
            (None, RebootMethod::Firmware) => Some(Fallback::Setting),
            _ => None,
        }
    }

    /// The first thing that rules kexec out, in the order an operator
    /// would look (what was asked, then the kernel, then the image).
    fn obstacle(&self, init_name: &'static str) -> Option<Fallback> {
        if self.transition == (Transition::Leave { crash_loop: true }) {
            return Some(Fallback::CrashLoop);
        }
        if let Some(asked) = self.firmware_asked() {
            return Some(asked);
        }
        if let Some(choice) = &self.boot_loader_choice {
            return Some(Fallback::BootLoader(choice.clone()));
        }
        match self.init_kexec {
            KexecPath::Native
            | KexecPath::Runlevel6 {
                script_installed: true,
            } => {}
            KexecPath::Runlevel6 {
                script_installed: false,
            } => return Some(Fallback::NoKexecScript),
            KexecPath::Unsupported => return Some(Fallback::Init(init_name)),
        }
        if !self.kernel_has_kexec {
            return Some(Fallback::NoKexec);
        }
        if self.load_disabled {
            return Some(Fallback::LoadDisabled);
        }
        let bytes = match &self.image {
            Image::Found { bytes } => *bytes,
            Image::Missing(why) | Image::Changing(why) => {
                return Some(Fallback::Image(why.clone()))
            }
        };
        let needed = bytes.saturating_add(MEMORY_MARGIN);
        if let Some(available) = self.mem_available.filter(|a| *a < needed) {
            return Some(Fallback::Memory { available, needed });
        }
        if self.cmdline_bytes > MAX_CMDLINE {
            return Some(Fallback::CmdlineTooLong(self.cmdline_bytes));
        }
        None
    }
}

/// kexec, or the firmware and why. `init_name` names the init system in a
/// fallback for it.
pub fn choose(facts: &Facts, init_name: &'static str) -> Choice {
    match facts.obstacle(init_name) {
        None => Choice::Kexec,
        Some(why) => {
            let loud = facts.kexec_asked() && !matches!(why, Fallback::Flag | Fallback::Setting);
            Choice::Firmware { why, loud }
        }
    }
}

/// Splits a kernel command line into its words; a double-quoted part
/// (`x="a b"`) stays in one word, quotes kept, as the kernel reads it.
fn words(cmdline: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                word.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Words the next kernel must not inherit: the boot loader's own
/// (`BOOT_IMAGE=`, `initrd=`: the image and initramfs are given apart) and
/// umm's (`umm`, `umm=...`: this transition says its own).
fn inherited(word: &str) -> bool {
    let key = word.split('=').next().unwrap_or(word);
    !matches!(key, "BOOT_IMAGE" | "initrd" | "umm")
}

/// The command line the kexec'd kernel boots with: the running one's
/// (what the boot loader gave this boot), without the boot loader's and
/// umm's words, and `umm=on` when entering maintenance (the boot stops
/// there even if the early copy of the state were stale), once.
pub fn cmdline(running: &str, transition: Transition) -> String {
    let mut kept: Vec<String> = words(running)
        .into_iter()
        .filter(|w| inherited(w))
        .collect();
    if transition == Transition::Enter {
        kept.push("umm=on".to_string());
    }
    kept.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use KexecPath::{Runlevel6, Unsupported};
    use RebootMethod::{Auto, Firmware, Kexec};

    /// Everything allows kexec: each case changes one fact.
    fn clear() -> Facts {
        Facts {
            setting: Auto,
            flag: None,
            transition: Transition::Enter,
            init_kexec: KexecPath::Native,
            kernel_has_kexec: true,
            load_disabled: false,
            image: Image::Found { bytes: 80 << 20 },
            mem_available: Some(4 << 30),
            cmdline_bytes: 200,
            boot_loader_choice: None,
        }
    }

    fn firmware(why: Fallback, loud: bool) -> Choice {
        Choice::Firmware { why, loud }
    }

    #[rstest]
    #[case::all_clear(clear(), Choice::Kexec)]
    #[case::leaving_by_reboot(Facts { transition: Transition::Leave { crash_loop: false }, ..clear() }, Choice::Kexec)]
    #[case::setting_kexec(Facts { setting: Kexec, ..clear() }, Choice::Kexec)]
    #[case::flag_kexec_over_setting_firmware(Facts { setting: Firmware, flag: Some(Kexec), ..clear() }, Choice::Kexec)]
    #[case::memory_unknown(Facts { mem_available: None, ..clear() }, Choice::Kexec)]
    #[case::cmdline_at_the_limit(Facts { cmdline_bytes: MAX_CMDLINE, ..clear() }, Choice::Kexec)]
    #[case::setting_firmware(Facts { setting: Firmware, ..clear() }, firmware(Fallback::Setting, false))]
    #[case::flag_firmware(Facts { flag: Some(Firmware), ..clear() }, firmware(Fallback::Flag, false))]
    #[case::flag_firmware_over_setting_kexec(Facts { setting: Kexec, flag: Some(Firmware), ..clear() }, firmware(Fallback::Flag, false))]
    #[case::crash_loop(Facts { transition: Transition::Leave { crash_loop: true }, ..clear() }, firmware(Fallback::CrashLoop, false))]
    #[case::crash_loop_even_with_the_flag(Facts { transition: Transition::Leave { crash_loop: true }, flag: Some(Kexec), ..clear() }, firmware(Fallback::CrashLoop, true))]
    #[case::sysvinit_with_its_script(Facts { init_kexec: Runlevel6 { script_installed: true }, ..clear() }, Choice::Kexec)]
    #[case::sysvinit_without_its_script(Facts { init_kexec: Runlevel6 { script_installed: false }, ..clear() }, firmware(Fallback::NoKexecScript, false))]
    #[case::sysvinit_without_its_script_asked_for_kexec(Facts { init_kexec: Runlevel6 { script_installed: false }, setting: Kexec, ..clear() }, firmware(Fallback::NoKexecScript, true))]
    #[case::sysvinit_crash_loop(Facts { init_kexec: Runlevel6 { script_installed: true }, transition: Transition::Leave { crash_loop: true }, ..clear() }, firmware(Fallback::CrashLoop, false))]
    #[case::upstart(Facts { init_kexec: Unsupported, ..clear() }, firmware(Fallback::Init("upstart"), false))]
    #[case::upstart_asked_for_kexec(Facts { init_kexec: Unsupported, setting: Kexec, ..clear() }, firmware(Fallback::Init("upstart"), true))]
    #[case::no_kexec_in_the_kernel(Facts { kernel_has_kexec: false, ..clear() }, firmware(Fallback::NoKexec, false))]
    #[case::load_disabled(Facts { load_disabled: true, ..clear() }, firmware(Fallback::LoadDisabled, false))]
    #[case::load_disabled_with_the_flag(Facts { load_disabled: true, flag: Some(Kexec), ..clear() }, firmware(Fallback::LoadDisabled, true))]
    #[case::image_missing(Facts { image: Image::Missing("no kernel".into()), ..clear() }, firmware(Fallback::Image("no kernel".into()), false))]
    #[case::image_changing(Facts { image: Image::Changing("being written".into()), ..clear() }, firmware(Fallback::Image("being written".into()), false))]
    #[case::too_little_memory(Facts { mem_available: Some(100 << 20), ..clear() }, firmware(Fallback::Memory { available: 100 << 20, needed: (80 << 20) + MEMORY_MARGIN }, false))]
    #[case::grub_reboot_pending(Facts { boot_loader_choice: Some("next_entry=x".into()), ..clear() }, firmware(Fallback::BootLoader("next_entry=x".into()), false))]
    #[case::grub_choice_even_with_the_flag(Facts { boot_loader_choice: Some("next_entry=x".into()), flag: Some(Kexec), ..clear() }, firmware(Fallback::BootLoader("next_entry=x".into()), true))]
    #[case::cmdline_too_long(Facts { cmdline_bytes: MAX_CMDLINE + 1, ..clear() }, firmware(Fallback::CmdlineTooLong(MAX_CMDLINE + 1), false))]
    fn kexec_only_when_every_fact_allows_it(#[case] facts: Facts, #[case] expected: Choice) {
        assert_eq!(choose(&facts, "upstart"), expected);
    }

    /// The order reasons are given in: the crash loop first (it holds even
    /// against --kexec), then what was asked, then the kernel, the image.
    #[test]
    fn the_first_obstacle_is_the_one_said() {
        let everything_wrong = Facts {
            init_kexec: KexecPath::Unsupported,
            kernel_has_kexec: false,
            load_disabled: true,
            image: Image::Missing("gone".into()),
            mem_available: Some(0),
            cmdline_bytes: 99_999,
            ..clear()
        };
        assert_eq!(
            choose(&everything_wrong, "upstart"),
            firmware(Fallback::Init("upstart"), false)
        );
        let kernel_wrong = Facts {
            init_kexec: KexecPath::Runlevel6 {
                script_installed: true,
            },
            ..everything_wrong.clone()
        };
        assert_eq!(
            choose(&kernel_wrong, "x"),
            firmware(Fallback::NoKexec, false)
        );
        let crash = Facts {
            transition: Transition::Leave { crash_loop: true },
            flag: Some(Firmware),
            ..everything_wrong
        };
        assert_eq!(choose(&crash, "x"), firmware(Fallback::CrashLoop, false));
    }

    #[rstest]
    #[case::keyrejected(129, false, LoadFailure::Signature)]
    #[case::badmsg(74, false, LoadFailure::Signature)]
    #[case::eperm_under_lockdown(1, true, LoadFailure::Signature)]
    #[case::eperm_without_lockdown(1, false, LoadFailure::Other("EPERM".into()))]
    #[case::enosys(38, false, LoadFailure::NoSyscall)]
    #[case::enomem(12, true, LoadFailure::Memory)]
    #[case::ebusy(16, false, LoadFailure::Other("EPERM".into()))]
    fn the_kernels_refusal_is_named(
        #[case] errno: i32,
        #[case] lockdown: bool,
        #[case] expected: LoadFailure,
    ) {
        assert_eq!(load_failure(errno, "EPERM", lockdown), expected);
    }

    #[test]
    fn every_fallback_is_one_line() {
        let all = [
            Fallback::Flag,
            Fallback::Setting,
            Fallback::CrashLoop,
            Fallback::Init("upstart"),
            Fallback::NoKexecScript,
            Fallback::NoKexec,
            Fallback::LoadDisabled,
            Fallback::Image("/vmlinuz: not found".into()),
            Fallback::Memory {
                available: 1 << 20,
                needed: 2 << 20,
            },
            Fallback::CmdlineTooLong(3000),
            Fallback::Load(LoadFailure::Signature),
            Fallback::Load(LoadFailure::NoSyscall),
            Fallback::Load(LoadFailure::Memory),
            Fallback::Load(LoadFailure::Other("EINVAL".into())),
            Fallback::Start("refused".into()),
        ];
        for why in all {
            let text = why.to_string();
            assert!(
                !text.is_empty() && !text.contains('\n'),
                "{why:?}: {text:?}"
            );
        }
        assert_eq!(
            Fallback::Memory {
                available: 100 << 20,
                needed: 144 << 20
            }
            .to_string(),
            "too little memory to load the kernel (100 MiB available, 144 MiB needed)"
        );
    }

    const GRUB: &str = "BOOT_IMAGE=/vmlinuz-6.1.0-2-amd64 root=UUID=0e9f ro quiet";

    #[rstest]
    #[case::enter(GRUB, Transition::Enter, "root=UUID=0e9f ro quiet umm=on")]
    #[case::leave(GRUB, Transition::Leave { crash_loop: false }, "root=UUID=0e9f ro quiet")]
    #[case::leave_a_boot_entered_by_the_menu(&format!("{GRUB} umm=on"), Transition::Leave { crash_loop: false }, "root=UUID=0e9f ro quiet")]
    #[case::enter_once(&format!("{GRUB} umm umm=off umm=on"), Transition::Enter, "root=UUID=0e9f ro quiet umm=on")]
    #[case::efi_stub_initrd("initrd=\\initrd.img root=/dev/sda1 console=ttyS0 console=tty0", Transition::Leave { crash_loop: false }, "root=/dev/sda1 console=ttyS0 console=tty0")]
    #[case::quoted_value_kept_whole("root=/dev/vda1 dyndbg=\"file x.c +p\"  quiet\n", Transition::Leave { crash_loop: false }, "root=/dev/vda1 dyndbg=\"file x.c +p\" quiet")]
    #[case::only_umm_not_its_lookalikes("ummx=1 rd.umm=2 umm=off", Transition::Leave { crash_loop: false }, "ummx=1 rd.umm=2")]
    #[case::empty("", Transition::Enter, "umm=on")]
    fn the_command_line_is_the_running_ones_with_umms_word(
        #[case] running: &str,
        #[case] transition: Transition,
        #[case] expected: &str,
    ) {
        assert_eq!(cmdline(running, transition), expected);
    }
}
