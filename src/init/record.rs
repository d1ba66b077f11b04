//! A stand-in init system for tests (selected with `UMM_INIT=record` under
//! a test root): it appends each request to `<root>/run/umm/init-actions`
//! so tests can observe what umm asked for.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{InitSystem, Resumed};
use crate::model::open::Open;
use crate::model::reboot::KexecPath;
use crate::model::verify::Service;
use crate::sys::paths::Root;

pub struct Recorder {
    log: PathBuf,
    /// The services "running": one per line, `name state [finished-ok]
    /// [on-demand] [enabled] [early]` (early: started before basic.target,
    /// so kept in maintenance).
    services: PathBuf,
    /// If this file exists, resuming "fails" (the normal target is not reached).
    fail_resume: PathBuf,
    /// If this file exists, the boot is paused: the normal target is not
    /// reached until a resume succeeds (which removes it).
    paused: PathBuf,
    /// If this file exists, the init system has no kexec path (upstart).
    no_kexec: PathBuf,
    /// If this file exists, kexec goes through runlevel 6 as on sysvinit:
    /// only with the umm-kexec script installed under the root.
    runlevel6: PathBuf,
    root: Root,
    /// If this file exists, starting the kexec fails.
    kexec_fails: PathBuf,
}

impl Recorder {
    pub fn new(root: &Root) -> Recorder {
        Recorder {
            log: root.path("/run/umm/init-actions"),
            services: root.path("/run/umm/init-services"),
            fail_resume: root.path("/run/umm/init-resume-fails"),
            paused: root.path("/run/umm/init-paused"),
            no_kexec: root.path("/run/umm/init-no-kexec"),
            runlevel6: root.path("/run/umm/init-kexec-runlevel6"),
            root: root.clone(),
            kexec_fails: root.path("/run/umm/init-kexec-fails"),
        }
    }

    fn record(&self, action: &str) -> Result<()> {
        if let Some(dir) = self.log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        writeln!(f, "{action}")?;
        Ok(())
    }
}

impl InitSystem for Recorder {
    fn name(&self) -> &'static str {
        "test-recorder"
    }

    fn reboot(&self) -> Result<()> {
        self.record("reboot")
    }

    /// Native, unless `<root>/run/umm/init-no-kexec` (none) or
    /// `<root>/run/umm/init-kexec-runlevel6` (sysvinit's) exists.
    fn kexec_path(&self) -> KexecPath {
        if self.no_kexec.exists() {
            KexecPath::Unsupported
        } else if self.runlevel6.exists() {
            KexecPath::Runlevel6 {
                script_installed: crate::sys::kexec::kexec_script_installed(&self.root),
            }
        } else {
            KexecPath::Native
        }
    }

    /// Fails if `<root>/run/umm/init-kexec-fails` exists.
    fn kexec(&self) -> Result<()> {
        if self.kexec_fails.exists() {
            anyhow::bail!("kexec.target refused (test)");
        }
        self.record("kexec")
    }

    fn resume(&self, wait: Option<Duration>) -> Result<Resumed> {
        self.record(if wait.is_some() {
            "resume"
        } else {
            "resume --no-wait"
        })?;
        let failed = self.fail_resume.exists();
        if !failed {
            let _ = std::fs::remove_file(&self.paused);
        }
        Ok(Resumed {
            reached: wait.is_some() && !failed,
            waited: wait.is_some(),
            elapsed: Duration::from_millis(10),
            failed_units: if failed {
                vec!["broken.service".into()]
            } else {
                vec![]
            },
        })
    }

    fn normal_reached(&self, _within: Duration) -> Result<bool> {
        Ok(!self.fail_resume.exists() && !self.paused.exists())
    }

    fn enter_maintenance_late(&self) -> Result<()> {
        self.record("enter-late")
    }

    fn services(&self) -> Result<Vec<Service>> {
        Ok(self
            .service_lines()
            .into_iter()
            .filter_map(|words| {
                Some(Service {
                    name: words.first()?.clone(),
                    active: Open::parse(words.get(1).map_or("", String::as_str)),
                    finished_ok: words.iter().any(|w| w == "finished-ok"),
                    on_demand: words.iter().any(|w| w == "on-demand"),
                })
            })
            .collect())
    }

    fn enabled_services(&self) -> Result<Vec<String>> {
        Ok(self.names_with("enabled", true))
    }

    fn outside_maintenance(&self, units: &[String]) -> Result<Vec<String>> {
        let early = self.names_with("early", true);
        Ok(units
            .iter()
            .filter(|u| !early.contains(u))
            .cloned()
            .collect())
    }
}

impl Recorder {
    fn service_lines(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(&self.services)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
            .filter(|w| !w.is_empty())
            .collect()
    }

    fn names_with(&self, flag: &str, present: bool) -> Vec<String> {
        self.service_lines()
            .into_iter()
            .filter(|w| w.iter().skip(2).any(|x| x == flag) == present)
            .filter_map(|w| w.first().cloned())
            .collect()
    }
}
