//! umm's entries in a generated grub.cfg (written by grub/42_umm through
//! grub-mkconfig): found by their ids or titles, each with the id
//! `grub-reboot` accepts.

use super::{Kind, MenuEntry};

pub const GRUB_CFGS: &[&str] = &["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"];

/// umm's entries in the text of a grub.cfg: menu entries whose id has umm's
/// prefix or whose title has umm's suffix.
pub fn grub_cfg_entries(text: &str) -> Vec<MenuEntry> {
    // Open blocks: Some(path component) for menu entries and submenus.
    let mut stack: Vec<Option<String>> = Vec::new();
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if line == "}" {
            stack.pop();
            continue;
        }
        let entry = line.strip_prefix("menuentry ").map(|rest| (rest, true));
        let submenu = line.strip_prefix("submenu ").map(|rest| (rest, false));
        let Some((rest, is_entry)) = entry.or(submenu) else {
            if line.ends_with('{') {
                stack.push(None);
            }
            continue;
        };
        let Some((title, after)) = grub_word(rest) else {
            continue;
        };
        let id = after
            .split_once("$menuentry_id_option")
            .and_then(|(_, r)| grub_word(r))
            .map(|(id, _)| id);
        let component = id.clone().unwrap_or_else(|| title.replace('>', ">>"));
        if is_entry {
            let kind = Kind::ALL.into_iter().find(|k| {
                id.as_deref().is_some_and(|i| i.starts_with(k.id_prefix()))
                    || title.ends_with(k.title_suffix())
            });
            if let Some(kind) = kind {
                let mut path: Vec<&str> = stack.iter().flatten().map(String::as_str).collect();
                path.push(&component);
                found.push(MenuEntry {
                    title: title.clone(),
                    kind,
                    id: path.join(">"),
                });
            }
        }
        if line.ends_with('{') {
            stack.push(Some(component));
        }
    }
    found
}

/// The first word of a GRUB script line, unquoted ('...', "...", \x), and
/// the rest of the line.
pub(super) fn grub_word(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    let mut word = String::new();
    let mut chars = s.char_indices();
    let mut quote: Option<char> = None;
    let mut end = s.len();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                end = i;
                break;
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None | Some('"'), '\\') => word.extend(chars.next().map(|(_, c)| c)),
            (_, c) => word.push(c),
        }
    }
    (!word.is_empty() || end > 0).then(|| (word, &s[end..]))
}
