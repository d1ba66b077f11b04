//! systemd, over D-Bus (zbus messages on `dbus::Bus`). The boot side lives in
//! units and the generator (units/systemd/, `umm internal generator`); here
//! is what the commands ask of the running manager.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zbus::zvariant::{DynamicType, OwnedObjectPath, OwnedValue, Type};

use super::dbus::Bus;
use super::{InitSystem, Resumed};
use crate::model::open::Open;
use crate::model::reboot::KexecPath;
use crate::model::verify::{ActiveState, Service};

pub struct Systemd;

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
/// The target a maintenance boot runs (see units/systemd/umm.target).
pub const MAINTENANCE_TARGET: &str = "umm.target";
/// A bound on the units looked at for "pulled in by the default target".
const MAX_PULLED: usize = 5000;

/// umm's own units: never waited for. umm-maintenance.service has a start
/// job for as long as the scheduled command runs (it keeps running after
/// `umm off`, as documented), and umm-after.service is the other finisher.
fn is_umm_unit(unit: &str) -> bool {
    unit.starts_with("umm-") || unit == MAINTENANCE_TARGET
}

/// Settled: no job is left for a unit the default target pulls in. Jobs of
/// other units (a timer that fired, umm's own) do not delay `umm off`.
pub fn settled(jobs: &[JobInfo], pulled: &HashSet<String>) -> bool {
    !jobs
        .iter()
        .any(|job| pulled.contains(&job.unit) && !is_umm_unit(&job.unit))
}

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

    /// The units `unit` pulls in, transitively (Wants, Requires, BindsTo):
    /// what "the normal target is reached" is about. Bounded by `deadline`
    /// and `MAX_PULLED`; a unit that is not loaded is skipped.
    fn pulled_in(&mut self, unit: &str, deadline: Instant) -> HashSet<String> {
        let mut seen: HashSet<String> = HashSet::from([unit.to_string()]);
        let mut queue = vec![unit.to_string()];
        while let Some(name) = queue.pop() {
            if Instant::now() >= deadline || seen.len() >= MAX_PULLED {
                break;
            }
            let Ok(path) = self.call::<_, OwnedObjectPath>("GetUnit", &(name.as_str(),)) else {
                continue;
            };
            if let Ok(id) = self.property::<String>(path.as_str(), UNIT, "Id") {
                seen.insert(id);
            }
            for dependency in ["Wants", "Requires", "BindsTo"] {
                let Ok(names) = self.property::<Vec<String>>(path.as_str(), UNIT, dependency)
                else {
                    continue;
                };
                for n in names {
                    if seen.insert(n.clone()) {
                        queue.push(n);
                    }
                }
            }
        }
        seen
    }

    fn units(&mut self, method: &str, states: Vec<&str>) -> Result<Vec<UnitInfo>> {
        if method == "ListUnits" {
            self.call(method, &())
        } else {
            self.call(method, &(states,))
        }
    }
}

/// A job, as ListJobs returns it (`a(usssoo)`).
// The reply's layout: every field is read, only some are used.
#[allow(dead_code)]
#[derive(Deserialize, Type, Debug)]
pub struct JobInfo {
    pub id: u32,
    /// The unit the job is for.
    pub unit: String,
    /// start, stop, restart, ...
    pub kind: String,
    /// waiting or running.
    pub state: String,
    pub path: OwnedObjectPath,
    pub unit_path: OwnedObjectPath,
}

/// A unit, as ListUnits and ListUnitsFiltered return it (`a(ssssssouso)`).
#[allow(dead_code)]
#[derive(Deserialize, Type, Debug)]
struct UnitInfo {
    name: String,
    description: String,
    load_state: String,
    /// ActiveState: active, inactive, failed, ...
    active_state: String,
    sub_state: String,
    /// The unit this one follows (a device's alias), or empty.
    following: String,
    path: OwnedObjectPath,
    job_id: u32,
    job_type: String,
    job_path: OwnedObjectPath,
}

/// The active services among `units` (the filter by state also matches a
/// sub-state of the same name, so the active state is checked here too).
fn active_service_names(units: Vec<UnitInfo>) -> Vec<String> {
    units
        .into_iter()
        .filter(|u| u.name.ends_with(".service"))
        .filter(|u| Open::parse(&u.active_state).is(ActiveState::Active))
        .map(|u| u.name)
        .collect()
}

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

    fn kexec_path(&self) -> KexecPath {
        KexecPath::Native
    }

    fn kexec(&self) -> Result<()> {
        // What `systemctl kexec` asks for once a kernel is loaded: the same
        // ordered shutdown as a reboot; systemd-shutdown then boots the
        // loaded kernel (reboot(RB_KEXEC) when kexec-tools is absent, since
        // systemd 246), or reboots if that fails.
        Manager::connect()?
            .start("kexec.target", "replace-irreversibly")
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
        // Then let the rest of the target's own jobs finish (units it pulls
        // in that are ordered after it), so that what is compared is the
        // settled system; nothing else is waited for.
        let pulled = m.pulled_in("default.target", deadline);
        while Instant::now() < deadline
            && m.call::<_, Vec<JobInfo>>("ListJobs", &())
                .is_ok_and(|jobs| !settled(&jobs, &pulled))
        {
            std::thread::sleep(Duration::from_millis(250));
        }
        let reached = m.unit_active("default.target").unwrap_or(false);
        let failed_units = m
            .units("ListUnitsFiltered", vec!["failed"])
            .map(|units| units.into_iter().map(|u| u.name).collect())
            .unwrap_or_default();
        Ok(Resumed {
            reached,
            waited: true,
            elapsed: started.elapsed(),
            failed_units,
        })
    }

    fn normal_reached(&self, within: Duration) -> Result<bool> {
        let deadline = Instant::now() + within;
        let mut m = Manager::connect()?;
        loop {
            if m.unit_active("default.target")? {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn enter_maintenance_late(&self) -> Result<()> {
        Manager::connect()?
            .start(MAINTENANCE_TARGET, "isolate")
            .map(|_| ())
    }

    fn services(&self) -> Result<Vec<Service>> {
        let mut m = Manager::connect()?;
        let units = m.units("ListUnits", vec![])?;
        let active_units: std::collections::HashSet<String> = units
            .iter()
            .filter(|u| Open::parse(&u.active_state).is(ActiveState::Active))
            .map(|u| u.name.clone())
            .collect();
        let mut services = Vec::new();
        for u in units.into_iter().filter(|u| u.name.ends_with(".service")) {
            let active = Open::parse(&u.active_state);
            // Inactive and fine: a oneshot that finished successfully, or a
            // unit its own conditions skipped (systemd-pstore without pstore).
            let finished_ok = active.is(ActiveState::Inactive) && {
                let path = u.path.as_str();
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
            // Inactive, with a socket, path or timer listening for it.
            let on_demand = active.is(ActiveState::Inactive) && {
                let triggers: Result<Vec<String>> = m.property(
                    u.path.as_str(),
                    "org.freedesktop.systemd1.Unit",
                    "TriggeredBy",
                );
                triggers.is_ok_and(|t| t.iter().any(|t| active_units.contains(t)))
            };
            services.push(Service {
                name: u.name,
                active,
                finished_ok,
                on_demand,
            });
        }
        Ok(services)
    }

    fn active_services(&self) -> Result<Vec<String>> {
        // One call: ListUnitsFiltered by state, no property per unit.
        let units = Manager::connect()?.units("ListUnitsFiltered", vec!["active"])?;
        Ok(active_service_names(units))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn job(unit: &str) -> JobInfo {
        JobInfo {
            id: 7,
            unit: unit.into(),
            kind: "start".into(),
            state: "running".into(),
            path: OwnedObjectPath::try_from("/org/freedesktop/systemd1/job/7").unwrap(),
            unit_path: OwnedObjectPath::try_from("/org/freedesktop/systemd1/unit/x").unwrap(),
        }
    }

    fn unit(name: &str, active: &str, sub: &str) -> UnitInfo {
        let path = || OwnedObjectPath::try_from("/org/freedesktop/systemd1/unit/x").unwrap();
        UnitInfo {
            name: name.into(),
            description: String::new(),
            load_state: "loaded".into(),
            active_state: active.into(),
            sub_state: sub.into(),
            following: String::new(),
            path: path(),
            job_id: 0,
            job_type: String::new(),
            job_path: path(),
        }
    }

    /// `umm on` keeps the services running now, for the check after
    /// `umm off`: only services, only active ones.
    #[test]
    fn active_services_are_the_active_services_only() {
        let units = vec![
            unit("ssh.service", "active", "running"),
            unit("nova-compute.service", "active", "running"),
            unit("setup.service", "active", "exited"),
            unit("multi-user.target", "active", "active"),
            unit("ssh.socket", "active", "listening"),
            unit("odd.service", "activating", "active"),
            unit("failed.service", "failed", "failed"),
        ];
        assert_eq!(
            active_service_names(units),
            ["ssh.service", "nova-compute.service", "setup.service"]
        );
    }

    /// Issue #16 item 3: `umm off` waited its whole --timeout while the
    /// scheduled command kept umm-maintenance.service's start job open.
    #[rstest::rstest]
    #[case::nothing_left(&[], true)]
    #[case::the_scheduled_command(&["umm-maintenance.service"], true)]
    #[case::umm_after(&["umm-after.service"], true)]
    #[case::a_timer_that_fired(&["apt-daily.service"], true)]
    #[case::a_unit_of_the_target(&["nova-compute.service"], false)]
    #[case::both(&["umm-maintenance.service", "cron.service"], false)]
    fn settled_ignores_what_the_default_target_does_not_pull_in(
        #[case] jobs: &[&str],
        #[case] expected: bool,
    ) {
        let pulled: HashSet<String> = [
            "multi-user.target",
            "nova-compute.service",
            "cron.service",
            "umm-after.service",
        ]
        .map(String::from)
        .into();
        let jobs: Vec<JobInfo> = jobs.iter().map(|u| job(u)).collect();
        assert_eq!(settled(&jobs, &pulled), expected);
    }
}
