//! A stand-in init system for tests (selected with `UMM_INIT=record` under
//! a test root): it appends each request to `<root>/run/umm/init-actions`
//! so tests can observe what umm asked for.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{InitSystem, Resumed};
use crate::paths::Root;

pub struct Recorder {
    log: PathBuf,
    /// If this file exists, resuming "fails" (the normal target is not reached).
    fail_resume: PathBuf,
}

impl Recorder {
    pub fn new(root: &Root) -> Recorder {
        Recorder {
            log: root.path("/run/umm/init-actions"),
            fail_resume: root.path("/run/umm/init-resume-fails"),
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

    fn resume(&self, wait: Option<Duration>) -> Result<Resumed> {
        self.record(if wait.is_some() {
            "resume"
        } else {
            "resume --no-wait"
        })?;
        let failed = self.fail_resume.exists();
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

    fn enter_maintenance_late(&self) -> Result<()> {
        self.record("enter-late")
    }
}
