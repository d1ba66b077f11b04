//! Base images (built once per recipe by image/build-base.sh, cached) and
//! per-scenario copy-on-write overlays.

use crate::vm::{
    self, run_with_deadline, trace, wait_or_kill, BootMethod, Machine, Vm, BOOT_TIMEOUT,
};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bound for one base image build (debootstrap + first boot under TCG).
const BUILD_TIMEOUT: Duration = Duration::from_secs(45 * 60);

/// A built base image: read-only raw disks plus the root ssh key.
#[derive(Clone)]
pub struct BaseImage {
    pub variant: String,
    pub dir: PathBuf,
    /// base-VARIANT.raw, then (sepvar) base-sepvar-var.raw.
    pub disks: Vec<PathBuf>,
    pub key: PathBuf,
    /// The installed kernel and initramfs, copied out of the image when it
    /// was built, for [`BootMethod::Direct`].
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

/// The kernel command line of a direct boot: what GRUB passes (see
/// build-base.sh), without the BOOT_IMAGE and root UUID GRUB adds.
const DIRECT_APPEND: &str =
    "root=/dev/vda1 ro console=tty0 console=ttyS0,115200 net.ifnames=0 quiet";

impl BaseImage {
    /// Booting the installed kernel directly (no BIOS disk loading, no GRUB).
    pub fn direct_boot(&self) -> BootMethod {
        BootMethod::Direct {
            kernel: self.kernel.clone(),
            initrd: self.initrd.clone(),
            append: DIRECT_APPEND.into(),
        }
    }
}

/// The repository root (this crate lives in tests/vm).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    here.canonicalize().unwrap_or(here)
}

/// Where all caches, runs and logs go.
pub fn target_dir() -> PathBuf {
    repo_root().join("target")
}

fn recipe_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("image/build-base.sh")
}

/// Root of the image cache: $UMM_LAB_CACHE or target/vm-cache.
pub fn cache_root() -> PathBuf {
    std::env::var_os("UMM_LAB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("vm-cache"))
}

/// FNV-1a, 64 bit: tiny and stable across Rust versions (unlike std's
/// DefaultHasher), good enough to notice that the recipe changed.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// systemd's debootstrapped tree, before configuration, kept beside its
/// image for sepvar's build.
const TREE_TAR: &str = "tree.tar";

/// Hash of the recipe (build-base.sh) and the variant, as 16 hex digits.
pub fn recipe_hash(variant: &str) -> Result<String> {
    let path = recipe_path();
    let mut bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    bytes.push(0);
    bytes.extend_from_slice(variant.as_bytes());
    Ok(format!("{:016x}", fnv1a64(&bytes)))
}

fn disk_names(variant: &str) -> Vec<String> {
    let mut names = vec![format!("base-{variant}.raw")];
    if variant == "sepvar" {
        names.push("base-sepvar-var.raw".into());
    }
    names
}

/// Return the cached base image for `variant`, building it first if the
/// cache has none for the current recipe. Builds leave `READY` when complete;
/// a directory without it is a failed or interrupted build and is redone.
pub fn ensure_base(variant: &str) -> Result<BaseImage> {
    let root = cache_root();
    let hash = recipe_hash(variant)?;
    let dir = root.join(format!("{variant}-{hash}"));
    let image = BaseImage {
        variant: variant.to_string(),
        disks: disk_names(variant).iter().map(|n| dir.join(n)).collect(),
        key: dir.join("id_ed25519"),
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.img"),
        dir: dir.clone(),
    };
    // One builder per variant: `make test` starts building the images
    // while cargo runs (`umm-lab --bases`), and the lab proper may ask for
    // one still being built; it waits here, then finds it made. The lock
    // goes with the process, whatever way it ends.
    fs::create_dir_all(&root)?;
    let lock = fs::File::create(root.join(format!("{variant}.lock")))?;
    if lock.try_lock().is_err() {
        trace(&format!(
            "base image {variant}: waiting for the build under way"
        ));
        lock.lock()?;
    }
    let complete = image
        .disks
        .iter()
        .chain([&image.kernel, &image.initrd])
        .all(|d| d.exists());
    if dir.join("READY").exists() && complete {
        return Ok(image);
    }

    // sepvar's packages are systemd's: it starts from systemd's
    // debootstrapped tree (saved as tree.tar) rather than a debootstrap of
    // its own, which saves the longest step of its build.
    let tree_from = match variant {
        "sepvar" => Some(ensure_base("systemd")?.dir.join(TREE_TAR)).filter(|t| t.exists()),
        _ => None,
    };
    prune_stale(&root, variant, &hash);
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    let log_path = dir.join("build.log");
    eprintln!(
        "building base image '{variant}' (takes minutes; log: {})",
        log_path.display()
    );
    let start = Instant::now();
    let log = fs::File::create(&log_path)?;
    // Output goes straight to the log file. On timeout the script gets
    // SIGTERM first so its EXIT trap can stop its own qemu and clean up.
    let mut child = Command::new("bash")
        .arg(recipe_path())
        .arg(&dir)
        .arg(variant)
        // One cache per variant: images build in parallel, and two
        // debootstraps sharing a --cache-dir remove each other's downloads
        // (seen in CI: "cannot open .../debs/cron_...deb").
        .env("UMM_LAB_DEB_CACHE", root.join(format!("debs-{variant}")))
        .envs(match (variant, &tree_from) {
            (_, Some(tar)) => vec![("UMM_LAB_TREE_FROM", tar.clone())],
            ("systemd", None) => vec![("UMM_LAB_TREE_SAVE", dir.join(TREE_TAR))],
            _ => vec![],
        })
        // debootstrap, sfdisk, mke2fs live in /usr/sbin, not on every user's PATH.
        .env("PATH", sbin_path())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting build-base.sh")?;
    let status = wait_or_kill(&mut child, BUILD_TIMEOUT, Duration::from_secs(60))?;
    if !status.is_some_and(|s| s.success()) {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        let why = match status {
            None => format!("timed out after {} s", BUILD_TIMEOUT.as_secs()),
            Some(s) => s.to_string(),
        };
        bail!(
            "building base image '{variant}' failed ({why}); log {}:\n{tail}",
            log_path.display()
        );
    }
    fs::write(
        dir.join("READY"),
        format!("{}\n", start.elapsed().as_secs()),
    )?;
    eprintln!(
        "built base image '{variant}' in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(image)
}

fn sbin_path() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{path}:/usr/local/sbin:/usr/sbin:/sbin")
}

/// Remove cached builds of `variant` made from older recipes.
fn prune_stale(root: &Path, variant: &str, keep_hash: &str) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(hash) = name.strip_prefix(&format!("{variant}-")) else {
            continue;
        };
        if hash != keep_hash && hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            eprintln!("removing stale base image {}", entry.path().display());
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// One qcow2 overlay per base disk in `dir` (disk0.qcow2, disk1.qcow2,
/// ...). Writes go to the overlays; the base stays untouched.
pub fn create_overlays(base: &BaseImage, dir: &Path) -> Result<Vec<PathBuf>> {
    overlays_over(&base.disks, dir)
}

/// A base image with the .deb under test installed, booted once more so
/// that umm ran from the start of a boot, settled, and saved as a running
/// VM: scenarios resume it in about a second instead of booting and
/// installing for a minute and a half each.
#[derive(Clone)]
pub struct Ready {
    /// qcow2 disks over the base image's, as they were when the state was saved.
    pub disks: Vec<PathBuf>,
    /// The saved VM state (memory and devices), for `-incoming`.
    pub state: PathBuf,
    pub boot: BootMethod,
    /// How long making it took (0 when it came from the cache).
    pub made_in: Duration,
}

/// The ready state of `base` with `deb` installed, made once per .deb
/// (cached beside the base image, keyed by the .deb's contents).
pub fn ensure_ready(base: &BaseImage, deb: &Path) -> Result<Ready> {
    let bytes = fs::read(deb).with_context(|| format!("reading {}", deb.display()))?;
    // A state saved with N vCPUs resumes only on a machine with N.
    let key = format!("ready-{:016x}-{}cpu", fnv1a64(&bytes), vm::vcpus());
    let dir = base.dir.join(&key);
    let ready = Ready {
        disks: (0..base.disks.len())
            .map(|i| dir.join(format!("disk{i}.qcow2")))
            .collect(),
        state: dir.join("state.bin"),
        boot: base.direct_boot(),
        made_in: Duration::ZERO,
    };
    if dir.join("READY").exists() {
        return Ok(ready);
    }
    // Older .debs' states are of no use any more.
    if let Ok(entries) = fs::read_dir(&base.dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("ready-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    let started = Instant::now();
    fs::create_dir_all(&dir)?;
    let overlays = create_overlays(base, &dir)?;
    let machine = Machine {
        disks: overlays,
        boot: ready.boot.clone(),
        incoming: None,
    };
    let mut vm = Vm::start(&dir, &machine, &base.key)?;
    vm.wait_ssh(BOOT_TIMEOUT)?;
    let remote = "/root/umm.deb";
    vm.scp_to(deb, remote)?;
    // Bounded generously: the postinst runs update-grub, which under TCG
    // on a loaded host (parallel labs) took more than the usual 120 s.
    let out = vm.ssh_timeout(
        &format!("DEBIAN_FRONTEND=noninteractive dpkg -i {remote} && rm {remote}"),
        Duration::from_secs(600),
    )?;
    anyhow::ensure!(
        out.status.success(),
        "installing the package failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    // umm runs from the start of a boot from here on.
    vm.reboot_clean()?;
    let settled = vm.settle()?;
    trace(&format!("ready state of {}: {settled}", base.variant));
    vm.ssh_ok("umm status >/dev/null && sync")?;
    vm.save_state(&ready.state)?;
    fs::write(
        dir.join("READY"),
        format!("{}\n", started.elapsed().as_secs()),
    )?;
    Ok(Ready {
        made_in: started.elapsed(),
        ..ready
    })
}

/// qcow2 overlays over `disks` (raw or qcow2) in `dir`: disk0.qcow2, ...
pub fn overlays_over(disks: &[PathBuf], dir: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut overlays = Vec::new();
    for (i, disk) in disks.iter().enumerate() {
        let overlay = dir.join(format!("disk{i}.qcow2"));
        let _ = fs::remove_file(&overlay);
        let backing_format = if disk.extension().is_some_and(|e| e == "qcow2") {
            "qcow2"
        } else {
            "raw"
        };
        let out = run_with_deadline(
            Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2", "-F", backing_format, "-b"])
                .arg(disk)
                .arg(&overlay)
                .stdin(Stdio::null()),
            Duration::from_secs(60),
        )?;
        if !out.status.success() {
            bail!(
                "qemu-img create {} failed: {}",
                overlay.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        overlays.push(overlay);
    }
    Ok(overlays)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_known_values() {
        // Reference values of FNV-1a 64.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn hash_depends_on_variant() {
        assert_ne!(
            recipe_hash("systemd").unwrap(),
            recipe_hash("sepvar").unwrap()
        );
    }
}
