//! What sysvinit and upstart say about themselves, as text: /etc/inittab
//! (the default runlevel, the console gettys), `runlevel`'s output, the
//! scripts of a runlevel, `initctl list`.

use std::fs;

use crate::sys::paths::Root;

/// The runlevel from `runlevel`'s output ("N 2" -> '2'); None while booting ("unknown", "S").
pub fn parse_runlevel(text: &str) -> Option<char> {
    let level = text.split_whitespace().nth(1)?.chars().next()?;
    ('1'..='5').contains(&level).then_some(level)
}

/// The default runlevel from /etc/inittab (`id:2:initdefault:`), else 2.
pub fn default_runlevel(inittab: &str) -> char {
    inittab
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|l| match l.split(':').collect::<Vec<&str>>().as_slice() {
            [_, level, "initdefault", ..] => level.chars().next(),
            _ => None,
        })
        .unwrap_or('2')
}

/// The getty commands /etc/inittab would respawn in `runlevel`.
pub fn inittab_gettys(inittab: &str, runlevel: char) -> Vec<String> {
    inittab
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(
            |l| match l.splitn(4, ':').collect::<Vec<&str>>().as_slice() {
                [_, levels, "respawn", process]
                    if levels.contains(runlevel) && process.contains("getty") =>
                {
                    Some(process.trim().to_string())
                }
                _ => None,
            },
        )
        .collect()
}

/// Service names started in a runlevel: the `S<NN><name>` links of /etc/rcN.d.
pub fn runlevel_scripts(root: &Root, runlevel: char) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root.path(&format!("/etc/rc{runlevel}.d")))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let rest = n.strip_prefix('S')?;
            let name = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            (name.len() < rest.len()).then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `initctl list` lines ("cron start/running, process 1234") as (job, running).
pub fn parse_initctl_list(text: &str) -> Vec<(String, bool)> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let job = words.next()?;
            // Instance jobs: "network-interface (eth0) start/running".
            let goal = words.find(|w| !w.starts_with('('))?;
            Some((job.to_string(), goal.starts_with("start/running")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITTAB: &str = "\
id:2:initdefault:
si::sysinit:/etc/init.d/rcS
l2:2:wait:/etc/init.d/rc 2
1:2345:respawn:/sbin/getty --noclear 38400 tty1
2:23:respawn:/sbin/getty 38400 tty2
#3:23:respawn:/sbin/getty 38400 tty3
T0:23:respawn:/sbin/getty -L ttyS0 115200 vt100
ca:12345:ctrlaltdel:/sbin/shutdown -t1 -a -r now
";

    #[test]
    fn reads_the_gettys_and_default_runlevel_of_inittab() {
        assert_eq!(default_runlevel(INITTAB), '2');
        assert_eq!(
            inittab_gettys(INITTAB, '2'),
            [
                "/sbin/getty --noclear 38400 tty1",
                "/sbin/getty 38400 tty2",
                "/sbin/getty -L ttyS0 115200 vt100"
            ]
        );
        assert_eq!(
            inittab_gettys(INITTAB, '4'),
            ["/sbin/getty --noclear 38400 tty1"]
        );
        assert_eq!(default_runlevel(""), '2');
    }

    #[test]
    fn reads_runlevel_output() {
        assert_eq!(parse_runlevel("N 2\n"), Some('2'));
        assert_eq!(parse_runlevel("S 2\n"), Some('2'));
        assert_eq!(parse_runlevel("unknown\n"), None);
        assert_eq!(parse_runlevel("N S\n"), None);
    }

    #[test]
    fn lists_the_scripts_of_a_runlevel() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let rc2 = root.path("/etc/rc2.d");
        fs::create_dir_all(&rc2).unwrap();
        for f in ["S01cron", "S01ssh", "K01gone", "README", "S03rc.local"] {
            fs::write(rc2.join(f), "").unwrap();
        }
        assert_eq!(runlevel_scripts(&root, '2'), ["cron", "rc.local", "ssh"]);
    }

    #[test]
    fn reads_initctl_list() {
        let text = "cron start/running, process 812\nrc stop/waiting\nnetwork-interface (eth0) start/running\n";
        assert_eq!(
            parse_initctl_list(text),
            [
                ("cron".into(), true),
                ("rc".into(), false),
                ("network-interface".into(), true)
            ]
        );
    }
}
