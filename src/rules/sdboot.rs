//! Boot counting with systemd-boot (Boot Loader Specification Type #1
//! entries; docs/boot-flow.md, "systemd-boot"): pure decisions, the file
//! I/O is `bootmenu::sdboot`.
//!
//! systemd-boot counts by itself: an entry named `NAME+LEFT[-DONE].conf`
//! is renamed `NAME+(LEFT-1)-(DONE+1).conf` on every attempt, and at
//! `+0-DONE` it is "bad" and sorted to the end of the menu. umm:
//! - gives a new kernel's entry (newer than the last good kernel, no
//!   counter) `reboot_count + 1` tries, and remembers that it did;
//! - blesses the entry of a boot that reached umm-boot (drops a counter it
//!   added) and records that kernel as the last good one;
//! - keeps one fallback entry, the maintenance variant of the last good
//!   kernel (`umm=on umm.why=boot-failure`), ordered right below the newest
//!   entry: first once that entry has gone bad, never before a good one.
//!
//! The order is systemd-boot's (`boot_entry_compare` in
//! src/boot/efi/boot.c, systemd v252 to v257): entries with no tries left
//! last; then entries with a `sort-key` before those without; by sort-key,
//! machine-id, then `version` descending (`strverscmp_improved`); then the
//! id (the lowercased file name, counter included) descending; then more
//! tries left, fewer done.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// The suffix of umm's fallback entry's file stem.
pub const FALLBACK_SUFFIX: &str = "~umm_fallback";

/// `+LEFT-DONE` of a counted entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    pub left: u32,
    pub done: u32,
}

/// A file name split as systemd-boot's `boot_entry_parse_tries` does: the
/// stem without `.conf` and without a valid counter (the last `+`, digits,
/// optionally `-` and digits, right before `.conf`), and the counter.
/// None: not a `.conf` name.
pub fn split_name(name: &str) -> Option<(&str, Option<Counter>)> {
    let stem = name.strip_suffix(".conf")?;
    let Some(plus) = stem.rfind('+') else {
        return Some((stem, None));
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let tail = &stem[plus + 1..];
    let (left, done) = tail.split_once('-').unwrap_or((tail, "0"));
    if !digits(left) || !digits(done) {
        return Some((stem, None));
    }
    match (left.parse::<u32>(), done.parse::<u32>()) {
        (Ok(left), Ok(done)) if left <= i32::MAX as u32 && done <= i32::MAX as u32 => {
            Some((&stem[..plus], Some(Counter { left, done })))
        }
        _ => Some((stem, None)),
    }
}

/// The file name of `stem` with `tries` left (`stem+N.conf`), or without a
/// counter.
pub fn counted_name(stem: &str, tries: Option<u32>) -> String {
    match tries {
        Some(n) => format!("{stem}+{n}.conf"),
        None => format!("{stem}.conf"),
    }
}

/// umm's fallback entry's file name, for the newest entry's stem.
pub fn fallback_name(newest_stem: &str) -> String {
    format!("{newest_stem}{FALLBACK_SUFFIX}.conf")
}

pub fn is_fallback(name: &str) -> bool {
    name.strip_suffix(".conf")
        .is_some_and(|s| s.ends_with(FALLBACK_SUFFIX))
}

fn is_version_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'~' | b'-' | b'^' | b'.')
}

/// systemd's `strverscmp_improved` (src/fundamental/string-util-fundamental.c):
/// `~` sorts before everything, even the end of the string; `-`, `^`, `.`
/// separate segments; other characters that are not letters or digits are
/// dropped.
pub fn verscmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        a = skip(a, |c| !is_version_char(c));
        b = skip(b, |c| !is_version_char(c));
        for sep in [b'~', b'-', b'^', b'.'] {
            if sep == b'-' && (a.is_empty() || b.is_empty()) {
                return a.len().min(1).cmp(&b.len().min(1));
            }
            let (sa, sb) = (a.first() == Some(&sep), b.first() == Some(&sep));
            if sa || sb {
                if sa != sb {
                    return sb.cmp(&sa);
                }
                a = a.get(1..).unwrap_or_default();
                b = b.get(1..).unwrap_or_default();
            }
        }
        let (ord, rest_a, rest_b) = segment_cmp(a, b);
        if ord != Ordering::Equal {
            return ord;
        }
        (a, b) = (rest_a, rest_b);
    }
}

/// `s` without its leading bytes that match.
fn skip(s: &[u8], matches: impl Fn(u8) -> bool) -> &[u8] {
    let n = s.iter().take_while(|&&c| matches(c)).count();
    s.get(n..).unwrap_or_default()
}

/// One numeric or alphabetic segment of each: their order, and what
/// follows each.
fn segment_cmp<'a, 'b>(a: &'a [u8], b: &'b [u8]) -> (Ordering, &'a [u8], &'b [u8]) {
    let numeric =
        a.first().is_some_and(u8::is_ascii_digit) || b.first().is_some_and(u8::is_ascii_digit);
    let class = |c: &u8| {
        if numeric {
            c.is_ascii_digit()
        } else {
            c.is_ascii_alphabetic()
        }
    };
    let na = a.iter().take_while(|c| class(c)).count();
    let nb = b.iter().take_while(|c| class(c)).count();
    let (sa, rest_a) = a.split_at(na);
    let (sb, rest_b) = b.split_at(nb);
    let ord = if numeric {
        let (ta, tb) = (skip(sa, |c| c == b'0'), skip(sb, |c| c == b'0'));
        (na > 0)
            .cmp(&(nb > 0))
            .then(ta.len().cmp(&tb.len()))
            .then(ta.cmp(tb))
    } else {
        let n = na.min(nb);
        sa.iter().take(n).cmp(sb.iter().take(n)).then(na.cmp(&nb))
    };
    (ord, rest_a, rest_b)
}

/// What the order and the decisions need of one entry file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// The file name (`x+2-1.conf`).
    pub name: String,
    pub sort_key: Option<String>,
    pub machine_id: Option<String>,
    pub version: Option<String>,
}

impl Entry {
    /// The lines systemd-boot orders by, from the entry's text.
    pub fn parse(name: &str, text: &str) -> Entry {
        let mut e = Entry {
            name: name.to_string(),
            ..Entry::default()
        };
        for line in text.lines() {
            let (key, value) = key_value(line);
            let slot = match key {
                "sort-key" => &mut e.sort_key,
                "machine-id" => &mut e.machine_id,
                "version" => &mut e.version,
                _ => continue,
            };
            *slot = Some(value.to_string());
        }
        e
    }

    pub fn counter(&self) -> Option<Counter> {
        split_name(&self.name).and_then(|(_, c)| c)
    }

    pub fn stem(&self) -> &str {
        split_name(&self.name).map_or(&self.name, |(s, _)| s)
    }

    /// No tries left: systemd-boot sorts it last.
    pub fn is_bad(&self) -> bool {
        self.counter().is_some_and(|c| c.left == 0)
    }
}

/// systemd-boot's order of two entries (`boot_entry_compare`).
pub fn compare(a: &Entry, b: &Entry) -> Ordering {
    a.is_bad().cmp(&b.is_bad()).then_with(|| compare_good(a, b))
}

/// The order as if no entry were bad.
fn compare_good(a: &Entry, b: &Entry) -> Ordering {
    let opt = |x: &Option<String>| x.clone().unwrap_or_default();
    a.sort_key
        .is_none()
        .cmp(&b.sort_key.is_none())
        .then_with(|| match (&a.sort_key, &b.sort_key) {
            (Some(ka), Some(kb)) => ka
                .cmp(kb)
                .then(opt(&a.machine_id).cmp(&opt(&b.machine_id)))
                .then(verscmp(&opt(&b.version), &opt(&a.version))),
            _ => Ordering::Equal,
        })
        .then_with(|| verscmp(&b.name.to_lowercase(), &a.name.to_lowercase()))
        .then_with(|| match (a.counter(), b.counter()) {
            (Some(ca), Some(cb)) => cb.left.cmp(&ca.left).then(ca.done.cmp(&cb.done)),
            _ => Ordering::Equal,
        })
}

/// The menu as systemd-boot shows it; its default (no `default` set) is
/// the first.
pub fn menu_order(entries: &[Entry]) -> Vec<&Entry> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| compare(a, b));
    sorted
}

/// What umm remembers between boots (/var/lib/umm/sd-boot.json).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The kernel last seen reaching userspace (`uname -r`).
    #[serde(default)]
    pub good: Option<String>,
    /// Stems of the entries umm gave a counter to.
    #[serde(default)]
    pub counted: Vec<String>,
    /// A kernel whose entry went bad and whose failure umm-boot saw.
    #[serde(default)]
    pub failed: Option<String>,
    /// Attempts of that kernel (its entry's DONE).
    #[serde(default)]
    pub failed_attempts: u32,
    /// When umm-boot first saw it (seconds since the epoch).
    #[serde(default)]
    pub failed_since: Option<i64>,
}

/// An entry of umm's own (a maintenance or skip variant, the fallback) or
/// the rescue entry: never counted, never the newest.
/// (umm's file stems carry `~umm_`: `~umm_on`, `~umm_off`, `~umm_fallback`.)
pub fn is_kernel_entry(name: &str) -> bool {
    split_name(name).is_some_and(|(stem, _)| !stem.contains("~umm_"))
        && !name.starts_with('.')
        && !name.contains("-0-rescue")
}

/// A BLS line's key and value (separated by spaces or tabs).
fn key_value(line: &str) -> (&str, &str) {
    let line = line.trim_start();
    line.split_once([' ', '\t'])
        .map_or((line, ""), |(k, v)| (k, v.trim()))
}

/// What a run can tell the plan.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// umm is enabled (policy and switch): otherwise its counters and its
    /// fallback go.
    pub enabled: bool,
    /// Tries a new kernel's entry gets (`reboot_count + 1`).
    pub tries: u32,
    /// umm-boot: this boot reached userspace on this kernel.
    pub kernel: Option<&'a str>,
    /// This boot came through the fallback (the boot-failure marker).
    pub failure_seen: bool,
    pub now: i64,
}

/// umm's fallback entry, to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fallback {
    pub name: String,
    /// The last good kernel's entry it copies.
    pub from: String,
    /// Maintenance with the boot-failure marker; else the good kernel's
    /// normal boot (after the failure was seen: no new loop).
    pub armed: bool,
    pub sort_key: Option<String>,
    pub machine_id: Option<String>,
    pub version: Option<String>,
}

/// What to change: renames (old, new) in order, the fallback to write,
/// the files to remove, and the record to save.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub renames: Vec<(String, String)>,
    pub fallback: Option<Fallback>,
    pub remove: Vec<String>,
    pub record: Record,
}

/// The plan for `entries` (the directory's readable entries).
pub fn plan(entries: &[Entry], record: &Record, input: &PlanInput) -> Plan {
    let mut plan = Plan {
        record: record.clone(),
        ..Plan::default()
    };
    let counted = |e: &&Entry| e.counter().is_some();
    plan.record
        .counted
        .retain(|stem| entries.iter().filter(counted).any(|e| e.stem() == stem));
    let mine = |e: &&Entry| counted(e) && plan.record.counted.iter().any(|s| s == e.stem());
    let umms: Vec<&Entry> = entries.iter().filter(mine).collect();
    plan.remove = entries
        .iter()
        .filter(|e| is_fallback(&e.name))
        .map(|e| e.name.clone())
        .collect();
    if !input.enabled {
        for e in umms {
            plan.renames
                .push((e.name.clone(), counted_name(e.stem(), None)));
        }
        plan.record.counted.clear();
        return plan;
    }
    if let Some(kernel) = input.kernel {
        bless(&mut plan, &umms, kernel);
    }
    let current: Vec<Entry> = renamed(entries, &plan.renames);
    if input.failure_seen {
        see_failure(&mut plan.record, &current, input.now);
    }
    count_new(&mut plan, &current, input.tries);
    let current = renamed(entries, &plan.renames);
    forget_failure(&mut plan.record, &current);
    plan.fallback = fallback(&current, &plan.record);
    if let Some(f) = &plan.fallback {
        plan.remove.retain(|n| *n != f.name);
    }
    plan
}

/// The boot reached userspace: its kernel is the last good one, and
/// umm's counter on its entry goes.
fn bless(plan: &mut Plan, umms: &[&Entry], kernel: &str) {
    for e in umms.iter().filter(|e| e.version.as_deref() == Some(kernel)) {
        plan.renames
            .push((e.name.clone(), counted_name(e.stem(), None)));
        plan.record.counted.retain(|s| s != e.stem());
    }
    plan.record.good = Some(kernel.to_string());
    if plan.record.failed.as_deref() == Some(kernel) {
        plan.record.failed = None;
        plan.record.failed_attempts = 0;
        plan.record.failed_since = None;
    }
}

/// This boot came through the fallback: the newest entry went bad.
fn see_failure(record: &mut Record, entries: &[Entry], now: i64) {
    let Some(newest) = newest(entries).filter(|e| e.is_bad()) else {
        return;
    };
    let Some(version) = &newest.version else {
        return;
    };
    if record.failed.as_ref() != Some(version) {
        record.failed = Some(version.clone());
        record.failed_since = Some(now);
    }
    record.failed_attempts = newest.counter().map_or(0, |c| c.done);
}

/// A failure is over once the newest entry is another kernel's (a newer
/// kernel installed, the failed one removed), as GRUB's `umm_failed` is.
fn forget_failure(record: &mut Record, entries: &[Entry]) {
    if record.failed.is_some()
        && newest(entries).and_then(|e| e.version.as_ref()) != record.failed.as_ref()
    {
        record.failed = None;
        record.failed_attempts = 0;
        record.failed_since = None;
    }
}

/// A kernel entry newer than the last good kernel and without a counter
/// gets `tries`.
fn count_new(plan: &mut Plan, entries: &[Entry], tries: u32) {
    let Some(good) = plan.record.good.clone() else {
        return;
    };
    for e in entries.iter().filter(|e| is_kernel_entry(&e.name)) {
        let newer = e
            .version
            .as_deref()
            .is_some_and(|v| verscmp(v, &good) == Ordering::Greater);
        if newer && e.counter().is_none() {
            let to = counted_name(e.stem(), Some(tries));
            plan.record.counted.push(e.stem().to_string());
            plan.renames.push((e.name.clone(), to));
        }
    }
}

/// The entries with `renames` applied.
fn renamed(entries: &[Entry], renames: &[(String, String)]) -> Vec<Entry> {
    entries
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let Some((_, to)) = renames.iter().find(|(from, _)| *from == e.name) {
                e.name = to.clone();
            }
            e
        })
        .collect()
}

/// The first kernel entry in systemd-boot's order, bad or not.
pub fn newest(entries: &[Entry]) -> Option<&Entry> {
    entries
        .iter()
        .filter(|e| is_kernel_entry(&e.name))
        .min_by(|a, b| compare_good(a, b))
}

/// The fallback: the last good kernel's entry, ordered right below the
/// newest entry (its sort-key and machine-id, its version with `~umm`
/// appended: `~` sorts below the end of a version; no sort-key: its file
/// name, the newest's stem with `~umm_fallback`).
fn fallback(entries: &[Entry], record: &Record) -> Option<Fallback> {
    let good = record.good.as_deref()?;
    let newest = newest(entries)?;
    let from = entries
        .iter()
        .filter(|e| is_kernel_entry(&e.name) && e.version.as_deref() == Some(good))
        .min_by_key(|e| (e.counter().is_some(), e.name.clone()))?;
    Some(Fallback {
        name: fallback_name(newest.stem()),
        from: from.name.clone(),
        armed: record.failed.is_none() || record.failed != newest.version,
        sort_key: newest.sort_key.clone(),
        machine_id: newest.machine_id.clone(),
        version: newest.version.as_ref().map(|v| format!("{v}~umm")),
    })
}

/// The fallback's text from the good kernel's entry: its title marked,
/// `options` with `umm=on umm.why=boot-failure` when armed (umm's own
/// arguments dropped), the ordering lines replaced; the rest kept.
pub fn fallback_text(good: &str, f: &Fallback) -> String {
    let mut out = format!(
        "# Written by umm from {}: its fallback after a boot failure; changes are overwritten.\n",
        f.from
    );
    let suffix = if f.armed {
        ", maintenance after a boot failure (umm)"
    } else {
        ", last good kernel (umm)"
    };
    for line in good.lines() {
        let (key, value) = key_value(line);
        match key {
            "title" => out += &format!("title {value}{suffix}\n"),
            "options" => out += &format!("options {}\n", fallback_options(value, f.armed)),
            "sort-key" | "machine-id" | "version" => {}
            _ => out += &format!("{line}\n"),
        }
    }
    let fields = [
        ("sort-key", &f.sort_key),
        ("machine-id", &f.machine_id),
        ("version", &f.version),
    ];
    for (key, value) in fields {
        if let Some(v) = value {
            out += &format!("{key} {v}\n");
        }
    }
    out
}

fn fallback_options(value: &str, armed: bool) -> String {
    let mut words: Vec<&str> = value
        .split_ascii_whitespace()
        .filter(|w| *w != "umm" && !w.starts_with("umm=") && !w.starts_with("umm.why="))
        .collect();
    if armed {
        words.extend(["umm=on", super::boot::BOOT_FAILURE_MARKER]);
    }
    words.join(" ")
}

#[cfg(test)]
mod tests;
