//! systemd, over D-Bus (zbus messages on `dbus::Bus`). The boot side lives in
//! units and the generator (units/systemd/, `umm internal generator`); here
//! is what the commands ask of the running manager.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use zbus::zvariant::{DynamicType, OwnedObjectPath, OwnedValue, Type};

use super::dbus::Bus;
use super::{InitSystem, Resumed};
use crate::verify::Service;

pub struct Systemd;

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// The target a maintenance boot runs (see units/systemd/umm.target).
pub const MAINTENANCE_TARGET: &str = "umm.target";

/// The systemd manager on the system bus.
struct Manager {
    bus: Bus,
}

impl Manager {
    fn connect() -> Result<Manager> {
        Ok(Manager {
            bus: Bus::system().context("cannot reach systemd over D-Bus")?,
        })
    }

    fn call<B, R>(&mut self, method: &str, body: &B) -> Result<R>
    where
        B: Serialize + DynamicType,
        R: DeserializeOwned + Type,
    {
        self.bus.call(DEST, PATH, MANAGER, method, body)
    }

    fn property<T>(&mut self, path: &str, interface: &str, name: &str) -> Result<T>
    where
        T: TryFrom<OwnedValue>,
        <T as TryFrom<OwnedValue>>::Error: Into<zbus::zvariant::Error>,
    {
        self.bus.property(DEST, path, interface, name)
    }

    fn start(&mut self, unit: &str, mode: &str) -> Result<OwnedObjectPath> {
        self.call("StartUnit", &(unit, mode))
            .with_context(|| format!("systemd refused to start {unit} ({mode})"))
    }

    fn unit_active(&mut self, unit: &str) -> Result<bool> {
        let path: OwnedObjectPath = self.call("GetUnit", &(unit,))?;
        let state: String = self.property(
            path.as_str(),
            "org.freedesktop.systemd1.Unit",
            "ActiveState",
        )?;
        Ok(state == "active")
    }

    fn units(&mut self, method: &str, states: Vec<&str>) -> Result<Vec<UnitInfo>> {
        if method == "ListUnits" {
            self.call(method, &())
        } else {
            self.call(method, &(states,))
        }
    }
}

/// What ListJobs returns for each job.
type JobInfo = (
    u32,
    String,
    String,
    String,
    OwnedObjectPath,
    OwnedObjectPath,
);

/// What ListUnits returns for each unit.
type UnitInfo = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

impl InitSystem for Systemd {
    fn name(&self) -> &'static str {
        "systemd"
    }

    fn reboot(&self) -> Result<()> {
        // What `systemctl reboot` asks for: an ordered, clean shutdown.
        Manager::connect()?
            .start("reboot.target", "replace-irreversibly")
            .map(|_| ())
    }

    fn resume(&self, wait: Option<Duration>) -> Result<Resumed> {
        let started = Instant::now();
        let mut m = Manager::connect()?;
        // The generator runs again on reload and, seeing the resume recorded
        // in /run/umm/boot.json, no longer points default.target at umm.target.
        m.call::<_, ()>("Reload", &())
            .context("systemd daemon-reload failed")?;
        let job = m.start("default.target", "isolate")?;
        let Some(wait) = wait else {
            return Ok(Resumed::not_waited(started));
        };
        let deadline = started + wait;
        // The job object exists until the job is done.
        while Instant::now() < deadline
            && m.property::<u32>(job.as_str(), "org.freedesktop.systemd1.Job", "Id")
                .is_ok()
        {
            std::thread::sleep(Duration::from_millis(250));
        }
        // Then let the rest of the resumed boot's jobs finish (units ordered
        // after the target), so that what is compared is the settled system.
        while Instant::now() < deadline
            && m.call::<_, Vec<JobInfo>>("ListJobs", &())
                .is_ok_and(|jobs| !jobs.is_empty())
        {
            std::thread::sleep(Duration::from_millis(250));
        }
        let reached = m.unit_active("default.target").unwrap_or(false);
        let failed_units = m
            .units("ListUnitsFiltered", vec!["failed"])
            .map(|units| units.into_iter().map(|u| u.0).collect())
            .unwrap_or_default();
        Ok(Resumed {
            reached,
            waited: true,
            elapsed: started.elapsed(),
            failed_units,
        })
    }

    fn enter_maintenance_late(&self) -> Result<()> {
        Manager::connect()?
            .start(MAINTENANCE_TARGET, "isolate")
            .map(|_| ())
    }

    fn services(&self) -> Result<Vec<Service>> {
        let mut m = Manager::connect()?;
        let units = m.units("ListUnits", vec![])?;
        let mut services = Vec::new();
        for u in units.into_iter().filter(|u| u.0.ends_with(".service")) {
            // Inactive and fine: a oneshot that finished successfully, or a
            // unit its own conditions skipped (systemd-pstore without pstore).
            let finished_ok = u.3 == "inactive" && {
                let path = u.6.as_str();
                let result: Result<String> =
                    m.property(path, "org.freedesktop.systemd1.Service", "Result");
                let ended: Result<u64> = m.property(
                    path,
                    "org.freedesktop.systemd1.Service",
                    "ExecMainExitTimestamp",
                );
                let condition: Result<bool> =
                    m.property(path, "org.freedesktop.systemd1.Unit", "ConditionResult");
                matches!(result, Ok(r) if r == "success")
                    && (matches!(ended, Ok(t) if t > 0) || matches!(condition, Ok(false)))
            };
            services.push(Service {
                name: u.0,
                active: u.3,
                finished_ok,
            });
        }
        Ok(services)
    }

    fn enabled_services(&self) -> Result<Vec<String>> {
        let files: Vec<(String, String)> = Manager::connect()?.call(
            "ListUnitFilesByPatterns",
            &(vec!["enabled"], vec!["*.service"]),
        )?;
        Ok(files
            .into_iter()
            .filter_map(|(path, _)| path.rsplit('/').next().map(String::from))
            .collect())
    }

    fn outside_maintenance(&self, units: &[String]) -> Result<Vec<String>> {
        let mut m = Manager::connect()?;
        let mut outside = Vec::new();
        for unit in units {
            let path: OwnedObjectPath = m.call("GetUnit", &(unit.as_str(),))?;
            let after: Vec<String> =
                m.property(path.as_str(), "org.freedesktop.systemd1.Unit", "After")?;
            // Ordered after basic.target (DefaultDependencies=yes): a
            // maintenance boot never gets that far.
            if after.iter().any(|a| a == "basic.target") {
                outside.push(unit.clone());
            }
        }
        Ok(outside)
    }
}
