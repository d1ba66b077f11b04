//! The node's local time zone, for maintenance windows: the TZif data of
//! `/etc/localtime` under the root prefix (a symbolic link into
//! /usr/share/zoneinfo, or a copy), read by jiff. No file: UTC, as glibc
//! does.

use std::path::PathBuf;

use jiff::tz::TimeZone;

use super::fsread;
use super::paths::Root;

pub const LOCALTIME: &str = "/etc/localtime";

/// TZif files are a few KiB; the largest in tzdata is under 4 KiB.
const TZIF_MAX: u64 = 256 * 1024;

/// The local zone; an error names the file and says what to do.
pub fn zone(root: &Root) -> Result<TimeZone, String> {
    let path = resolve(root);
    match fsread::read(&path, TZIF_MAX) {
        Ok(bytes) => TimeZone::tzif("localtime", &bytes).map_err(|e| {
            format!(
                "{}: not a time zone file ({e}); set the zone again (timedatectl set-timezone, or dpkg-reconfigure tzdata)",
                path.display()
            )
        }),
        // No /etc/localtime at all; a link to nothing is an error below.
        Err(e) if e.is_absent() && path == root.path(LOCALTIME) => Ok(TimeZone::UTC),
        Err(e) => Err(format!("{e}; the node's time zone is needed for [rolling] windows")),
    }
}

/// `/etc/localtime` under the prefix; an absolute link target is taken
/// under the prefix too, so a test root never reads the host's zone.
fn resolve(root: &Root) -> PathBuf {
    let link = root.path(LOCALTIME);
    match std::fs::read_link(&link) {
        Ok(target) if target.is_absolute() => root.join(&target),
        Ok(target) => link
            .parent()
            .map_or(target.clone(), |dir| dir.join(&target)),
        Err(_) => link,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zone_is_read_under_the_root_and_utc_when_absent() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        assert_eq!(zone(&root).unwrap(), TimeZone::UTC);
        std::fs::create_dir_all(root.path("/etc")).unwrap();
        std::fs::write(root.path(LOCALTIME), b"not tzif").unwrap();
        let e = zone(&root).unwrap_err();
        assert!(e.contains("etc/localtime: not a time zone file"), "{e}");
        // A link into the zone files, absolute as systemd writes it: read
        // under the root, not from the host.
        std::fs::remove_file(root.path(LOCALTIME)).unwrap();
        std::os::unix::fs::symlink("/usr/share/zoneinfo/Nowhere", root.path(LOCALTIME)).unwrap();
        assert!(zone(&root).is_err(), "a dangling link is an error, not UTC");
        // The link's target under the root: a zone one hour east of UTC.
        std::fs::create_dir_all(root.path("/usr/share/zoneinfo")).unwrap();
        std::fs::write(
            root.path("/usr/share/zoneinfo/Nowhere"),
            tzif_plus_one_hour(),
        )
        .unwrap();
        let tz = zone(&root).unwrap();
        let noon = jiff::Timestamp::from_second(43_200).unwrap();
        assert_eq!(tz.to_datetime(noon).hour(), 13);
    }

    /// A TZif (version 1) file for a fixed zone, UTC+1, named "PLS".
    fn tzif_plus_one_hour() -> Vec<u8> {
        let mut f = b"TZif".to_vec();
        f.extend([0u8; 16]); // version 1, reserved
                             // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
        for count in [0u32, 0, 0, 0, 1, 4] {
            f.extend(count.to_be_bytes());
        }
        f.extend(3600i32.to_be_bytes()); // utoff
        f.extend([0, 0]); // isdst, desigidx
        f.extend(b"PLS\0");
        f
    }
}
