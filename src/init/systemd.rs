//! systemd, over D-Bus (zbus). The boot side lives in units and the
//! generator (units/systemd/, `umm internal generator`); here is what the
//! commands ask of the running manager.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use zbus::blocking::{Connection, Proxy};
use zbus::zvariant::OwnedObjectPath;

use super::{InitSystem, Resumed};
use crate::verify::Service;

pub struct Systemd;

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// The target a maintenance boot runs (see units/systemd/umm.target).
pub const MAINTENANCE_TARGET: &str = "umm.target";

fn manager(conn: &Connection) -> Result<Proxy<'static>> {
    Proxy::new(conn, DEST, PATH, MANAGER).context("cannot reach systemd over D-Bus")
}

fn connect() -> Result<Connection> {
    Connection::system().context("cannot connect to the D-Bus system bus")
}

impl Systemd {
    fn start(&self, unit: &str, mode: &str) -> Result<OwnedObjectPath> {
        let conn = connect()?;
        let job: OwnedObjectPath = manager(&conn)?
            .call("StartUnit", &(unit, mode))
            .with_context(|| format!("systemd refused to start {unit} ({mode})"))?;
        Ok(job)
    }
}

impl InitSystem for Systemd {
    fn name(&self) -> &'static str {
        "systemd"
    }

    fn reboot(&self) -> Result<()> {
        // What `systemctl reboot` asks for: an ordered, clean shutdown.
        self.start("reboot.target", "replace-irreversibly")
            .map(|_| ())
    }

    fn resume(&self, wait: Option<Duration>) -> Result<Resumed> {
        let started = Instant::now();
        let conn = connect()?;
        let manager = manager(&conn)?;
        // The generator runs again on reload and, seeing the resume recorded
        // in /run/umm/boot.json, no longer points default.target at umm.target.
        manager
            .call::<_, _, ()>("Reload", &())
            .context("systemd daemon-reload failed")?;
        let job: OwnedObjectPath = manager
            .call("StartUnit", &("default.target", "isolate"))
            .context("systemd refused to isolate default.target")?;
        let Some(wait) = wait else {
            return Ok(Resumed {
                reached: false,
                waited: false,
                elapsed: started.elapsed(),
                failed_units: Vec::new(),
            });
        };
        let deadline = started + wait;
        while Instant::now() < deadline && job_exists(&conn, &job) {
            std::thread::sleep(Duration::from_millis(250));
        }
        let reached = unit_active(&conn, &manager, "default.target").unwrap_or(false);
        Ok(Resumed {
            reached,
            waited: true,
            elapsed: started.elapsed(),
            failed_units: failed_units(&manager).unwrap_or_default(),
        })
    }

    fn enter_maintenance_late(&self) -> Result<()> {
        self.start(MAINTENANCE_TARGET, "isolate").map(|_| ())
    }

    fn services(&self) -> Result<Vec<Service>> {
        let conn = connect()?;
        let units: Vec<UnitInfo> = manager(&conn)?.call("ListUnits", &())?;
        Ok(units
            .into_iter()
            .filter(|u| u.0.ends_with(".service"))
            .map(|u| {
                // A finished oneshot is inactive with a successful result.
                let finished_ok = u.3 == "inactive"
                    && Proxy::new(
                        &conn,
                        DEST,
                        u.6.as_str(),
                        "org.freedesktop.systemd1.Service",
                    )
                    .and_then(|p| {
                        Ok((
                            p.get_property::<String>("Result")?,
                            p.get_property::<u64>("ExecMainExitTimestamp")?,
                        ))
                    })
                    .is_ok_and(|(result, ended)| result == "success" && ended > 0);
                Service {
                    name: u.0,
                    active: u.3,
                    finished_ok,
                }
            })
            .collect())
    }

    fn enabled_services(&self) -> Result<Vec<String>> {
        let conn = connect()?;
        let files: Vec<(String, String)> = manager(&conn)?.call(
            "ListUnitFilesByPatterns",
            &(vec!["enabled"], vec!["*.service"]),
        )?;
        Ok(files
            .into_iter()
            .filter_map(|(path, _)| path.rsplit('/').next().map(String::from))
            .collect())
    }

    fn outside_maintenance(&self, units: &[String]) -> Result<Vec<String>> {
        let conn = connect()?;
        let manager = manager(&conn)?;
        let mut outside = Vec::new();
        for unit in units {
            let path: OwnedObjectPath = manager.call("GetUnit", &(unit.as_str(),))?;
            let after: Vec<String> =
                Proxy::new(&conn, DEST, path.as_str(), "org.freedesktop.systemd1.Unit")?
                    .get_property("After")?;
            // Ordered after basic.target (DefaultDependencies=yes): a
            // maintenance boot never gets that far.
            if after.iter().any(|a| a == "basic.target") {
                outside.push(unit.clone());
            }
        }
        Ok(outside)
    }
}

fn job_exists(conn: &Connection, job: &OwnedObjectPath) -> bool {
    Proxy::new(conn, DEST, job.as_str(), "org.freedesktop.systemd1.Job")
        .and_then(|p| p.get_property::<u32>("Id"))
        .is_ok()
}

fn unit_active(conn: &Connection, manager: &Proxy, unit: &str) -> Result<bool> {
    let path: OwnedObjectPath = manager.call("GetUnit", &(unit,))?;
    let unit = Proxy::new(conn, DEST, path.as_str(), "org.freedesktop.systemd1.Unit")?;
    Ok(unit.get_property::<String>("ActiveState")? == "active")
}

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

/// Units in the failed state, by name.
pub fn failed_units(manager: &Proxy) -> Result<Vec<String>> {
    let units: Vec<UnitInfo> = manager.call("ListUnitsFiltered", &(vec!["failed"],))?;
    Ok(units.into_iter().map(|u| u.0).collect())
}
