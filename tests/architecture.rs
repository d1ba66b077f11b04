//! The layers of docs/ARCHITECTURE.md, checked on the source: every
//! `crate::` path (in `use` declarations and in code) of every module under
//! src/ is read, and
//!
//! - each top-level module family may use only the families below it, as
//!   `LAYERS` says (the same table as the document);
//! - no modules form a cycle (a `mod.rs` that only re-exports its own
//!   children, `pub use child::…`, does not depend on them);
//! - only `output` and `cmd` print (`outln!`, `out!`, `errln!`);
//! - no function in src/ or tools/ is longer than `MAX_FN_LINES` (no file
//!   is excepted: `LONG_FNS_ALLOWED` is empty).
//!
//! Test code (`#[cfg(test)]` and after) is not read: tests may reach across.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Each family, from the bottom up, and the families it may use.
const LAYERS: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("rules", &["model"]),
    ("sys", &["model"]),
    ("init", &["model", "sys"]),
    ("hooks", &["model", "sys"]),
    ("bootmenu", &["model", "rules", "sys"]),
    ("fleet", &["model", "sys"]),
    (
        "output",
        &[
            "model", "rules", "sys", "init", "hooks", "bootmenu", "fleet",
        ],
    ),
    (
        "cmd",
        &[
            "model", "rules", "sys", "init", "hooks", "bootmenu", "fleet", "output",
        ],
    ),
    ("cli", &["model"]),
];

/// The families that may print (the printing macros of `output::print`).
const PRINTERS: &[&str] = &["output", "cmd"];

/// One module: its path (`sys::store`), file, and the code that is not test code.
struct Module {
    path: String,
    file: PathBuf,
    code: String,
    /// A `mod.rs` (or lib.rs): its children are `<path>::<name>`.
    is_dir: bool,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn modules() -> Vec<Module> {
    let mut out = Vec::new();
    collect(&src(), "", &mut out);
    out
}

fn collect(dir: &Path, prefix: &str, out: &mut Vec<Module>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let join = |n: &str| {
            if prefix.is_empty() {
                n.to_string()
            } else {
                format!("{prefix}::{n}")
            }
        };
        if path.is_dir() {
            collect(&path, &join(&name), out);
            continue;
        }
        let Some(stem) = name.strip_suffix(".rs") else {
            continue;
        };
        let (module, is_dir) = match stem {
            // The binary is not part of the library's layers.
            "main" if prefix.is_empty() => continue,
            "lib" if prefix.is_empty() => (String::new(), true),
            "mod" => (prefix.to_string(), true),
            _ => (join(stem), false),
        };
        out.push(Module {
            path: module,
            code: code_of(&fs::read_to_string(&path).unwrap()),
            file: path,
            is_dir,
        });
    }
}

/// The text up to the tests, without comments and string literals.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        out.push_str(&strip_line(line));
        out.push('\n');
    }
    out
}

/// A line without its `//` comment and with string contents blanked
/// (good enough for this code base: no `//` inside strings spans lines).
fn strip_line(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_str = false;
                    out.push('"');
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push('"');
            }
            '/' if chars.peek() == Some(&'/') => break,
            _ => out.push(c),
        }
    }
    out
}

/// Every path a module names: from `use` trees (expanded) and from code.
/// Each is `(segments, is_pub_use)`.
fn paths_in(code: &str) -> Vec<(Vec<String>, bool)> {
    let mut found = Vec::new();
    let mut rest = code;
    // `use` declarations, possibly over several lines.
    let mut outside_uses = String::new();
    while let Some(at) = find_use(rest) {
        outside_uses.push_str(&rest[..at.start]);
        let decl = &rest[at.start..at.end];
        let is_pub = decl.trim_start().starts_with("pub");
        let tree = decl
            .trim_start()
            .trim_start_matches("pub(crate)")
            .trim_start_matches("pub(super)")
            .trim_start_matches("pub")
            .trim_start()
            .trim_start_matches("use")
            .trim()
            .trim_end_matches(';');
        for p in expand_tree(tree) {
            found.push((p, is_pub));
        }
        rest = &rest[at.end..];
    }
    outside_uses.push_str(rest);
    // Paths in code: crate::a::b, super::a, and macro calls.
    let text = outside_uses;
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(start) {
            let i = from + i;
            from = i + start.len();
            let before = text[..i].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let path: String = text[i..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            found.push((
                path.split("::")
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                false,
            ));
        }
    }
    found
}

/// The next `use …;` declaration at the start of a line.
fn find_use(text: &str) -> Option<std::ops::Range<usize>> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let is_use = t.starts_with("use ")
            || t.starts_with("pub use ")
            || t.starts_with("pub(crate) use ")
            || t.starts_with("pub(super) use ");
        if is_use {
            let end = text[offset..].find(';').map(|e| offset + e + 1)?;
            return Some(offset..end);
        }
        offset += line.len();
    }
    None
}

/// `a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e].
fn expand_tree(tree: &str) -> Vec<Vec<String>> {
    // `x as y` names x: keep the left side once the spaces are gone.
    let words: Vec<&str> = tree.split_whitespace().collect();
    let tree: String = words.join(" ").replace(" as ", "@");
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = Vec::new();
    expand(&tree, &mut Vec::new(), &mut out);
    out
}

fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    for part in split_top(tree) {
        match part.find('{') {
            Some(open) => {
                let head = &part[..open];
                let inner = &part[open + 1..part.len() - 1];
                let added: Vec<String> = head
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                let n = added.len();
                prefix.extend(added);
                expand(inner, prefix, out);
                prefix.truncate(prefix.len() - n);
            }
            None => {
                let mut p = prefix.clone();
                let part = part.split('@').next().unwrap_or(part);
                p.extend(
                    part.split("::")
                        .filter(|s| !s.is_empty() && *s != "self")
                        .map(String::from),
                );
                out.push(p);
            }
        }
    }
}

/// Splits at the commas that are not inside braces.
fn split_top(tree: &str) -> Vec<&str> {
    let (mut depth, mut start, mut parts) = (0, 0, Vec::new());
    for (i, c) in tree.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&tree[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&tree[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// The module a path names, from module `m`: the longest known module
/// that prefixes it (`crate::sys::store::Locked` -> `sys::store`).
fn resolve(m: &Module, path: &[String], known: &BTreeSet<String>) -> Option<String> {
    let mut abs: Vec<String> = match path.first().map(String::as_str) {
        Some("crate") => path[1..].to_vec(),
        Some("super") => {
            let mut base: Vec<String> = if m.path.is_empty() {
                vec![]
            } else {
                m.path.split("::").map(String::from).collect()
            };
            let mut p = path;
            // `super` of a mod.rs is its parent's parent in file terms
            // only for a file module; a mod.rs's `super` is its parent.
            while p.first().map(String::as_str) == Some("super") {
                base.pop();
                p = &p[1..];
            }
            base.extend(p.iter().cloned());
            base
        }
        // A child module named directly from a mod.rs (`use child::x`).
        Some(first) if m.is_dir && known.contains(&join(&m.path, first)) => {
            let mut base: Vec<String> = if m.path.is_empty() {
                vec![]
            } else {
                m.path.split("::").map(String::from).collect()
            };
            base.extend(path.iter().cloned());
            base
        }
        _ => return None,
    };
    while !abs.is_empty() {
        let candidate = abs.join("::");
        if known.contains(&candidate) {
            return Some(candidate);
        }
        abs.pop();
    }
    None
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}::{name}")
    }
}

fn family(module: &str) -> &str {
    module.split("::").next().unwrap_or("")
}

/// Module -> the modules it uses.
fn graph(modules: &[Module]) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<String> = modules.iter().map(|m| m.path.clone()).collect();
    let mut edges = BTreeMap::new();
    for m in modules {
        let mut uses = BTreeSet::new();
        for (path, is_pub_use) in paths_in(&m.code) {
            let Some(target) = resolve(m, &path, &known) else {
                continue;
            };
            let is_descendant = m.path.is_empty() || target.starts_with(&format!("{}::", m.path));
            if target == m.path || (m.is_dir && is_pub_use && is_descendant) {
                continue;
            }
            uses.insert(target);
        }
        if m.is_dir {
            uses.extend(children_named_in_code(m, &known));
        }
        edges.insert(m.path.clone(), uses);
    }
    edges
}

/// The child modules a `mod.rs` names in its code by a relative path
/// (`etcd::Etcd::new(...)`), not through `use`.
fn children_named_in_code(m: &Module, known: &BTreeSet<String>) -> Vec<String> {
    let prefix = if m.path.is_empty() {
        String::new()
    } else {
        format!("{}::", m.path)
    };
    let code: String = m
        .code
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("use ")
                || t.starts_with("pub use ")
                || t.starts_with("pub(crate) use "))
        })
        .collect::<Vec<_>>()
        .join("\n");
    known
        .iter()
        .filter_map(|k| k.strip_prefix(&prefix).map(|rest| (k, rest)))
        .filter(|(_, rest)| !rest.is_empty() && !rest.contains("::"))
        .filter(|(_, child)| {
            code.match_indices(&format!("{child}::")).any(|(i, _)| {
                !code[..i]
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            })
        })
        .map(|(k, _)| k.clone())
        .collect()
}

#[test]
fn every_family_uses_only_the_layers_below_it() {
    let modules = modules();
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (module, uses) in graph(&modules) {
        if module.is_empty() {
            continue;
        }
        let from = family(&module);
        let Some(may) = allowed.get(from) else {
            wrong.push(format!(
                "{module}: the family `{from}` is not in LAYERS (add it there and in docs/ARCHITECTURE.md)"
            ));
            continue;
        };
        for target in uses {
            let to = family(&target);
            if to != from && !may.contains(&to) {
                wrong.push(format!(
                    "{module} uses {target}: `{from}` may use only {may:?}"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "layering violations:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_modules_form_a_cycle() {
    let edges = graph(&modules());
    // Depth-first search with colours; a grey node reached again is a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    let mut colour: BTreeMap<&str, Colour> =
        edges.keys().map(|k| (k.as_str(), Colour::White)).collect();
    fn visit<'a>(
        node: &'a str,
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        colour: &mut BTreeMap<&'a str, Colour>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        colour.insert(node, Colour::Grey);
        stack.push(node);
        for next in edges.get(node).into_iter().flatten() {
            match colour.get(next.as_str()).copied().unwrap_or(Colour::Black) {
                Colour::Grey => {
                    let from = stack.iter().position(|n| *n == next).unwrap();
                    let mut cycle: Vec<String> =
                        stack[from..].iter().map(|s| s.to_string()).collect();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Colour::White => {
                    if let Some(c) = visit(next, edges, colour, stack) {
                        return Some(c);
                    }
                }
                Colour::Black => {}
            }
        }
        stack.pop();
        colour.insert(node, Colour::Black);
        None
    }
    let nodes: Vec<&str> = edges.keys().map(String::as_str).collect();
    for node in nodes {
        if colour[node] == Colour::White {
            if let Some(cycle) = visit(node, &edges, &mut colour, &mut Vec::new()) {
                panic!("modules in a cycle: {}", cycle.join(" -> "));
            }
        }
    }
}

#[test]
fn only_output_and_cmd_print() {
    let mut wrong = Vec::new();
    for m in modules() {
        let fam = family(&m.path);
        if m.path.is_empty() || PRINTERS.contains(&fam) {
            continue;
        }
        for mac in ["outln!", "out!", "errln!"] {
            let hit = m.code.match_indices(mac).any(|(i, _)| {
                !m.code[..i]
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            if hit {
                wrong.push(format!("{} ({}) uses {mac}", m.path, m.file.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "printing outside output and cmd:\n{}",
        wrong.join("\n")
    );
}

/// The checker itself: a `use` tree expands to every path in it.
#[test]
fn use_trees_expand() {
    let paths = expand_tree("crate::sys::{self, config::{self, InUse}, store}");
    let shown: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        shown,
        [
            "crate::sys",
            "crate::sys::config",
            "crate::sys::config::InUse",
            "crate::sys::store"
        ]
    );
}

/// The checker itself: it sees the edges it must (a checker that saw none
/// would pass every other test here).
#[test]
fn the_graph_has_the_known_edges() {
    let edges = graph(&modules());
    for (from, to) in [
        ("rules::boot", "model::state"),
        ("sys::store", "sys::atomic"),
        ("cmd::enter", "hooks"),
        ("cmd::enter", "rules"),
        ("init::sysv", "init"),
        ("cli", "model::timefmt"),
    ] {
        assert!(
            edges.get(from).is_some_and(|e| e.contains(to)),
            "{from} -> {to} not seen; {from} uses {:?}",
            edges.get(from)
        );
    }
}

/// docs/ARCHITECTURE.md describes every family of `LAYERS`, and every
/// module family under src/ is in `LAYERS`.
#[test]
fn the_architecture_document_names_every_family() {
    let doc =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ARCHITECTURE.md"))
            .unwrap();
    for (family, _) in LAYERS {
        let named = doc.contains(&format!("`src/{family}/`"))
            || doc.contains(&format!("`src/{family}.rs`"));
        assert!(named, "docs/ARCHITECTURE.md does not describe src/{family}");
    }
    let known: BTreeSet<&str> = LAYERS.iter().map(|(f, _)| *f).collect();
    for m in modules() {
        let fam = family(&m.path);
        assert!(
            m.path.is_empty() || known.contains(fam),
            "{} ({}) is in no layer: add `{fam}` to LAYERS and docs/ARCHITECTURE.md",
            m.path,
            m.file.display()
        );
    }
}

/// The checker itself: a `mod.rs` that names a child in its code (not
/// through `use`) depends on it.
#[test]
fn a_child_named_in_code_is_an_edge() {
    let m = Module {
        path: "fleet".into(),
        file: PathBuf::from("src/fleet/mod.rs"),
        code: "pub use etcd::Etcd;\nfn f() { Box::new(fleetlock::FleetLock::new()) }\n".into(),
        is_dir: true,
    };
    let known: BTreeSet<String> = ["fleet", "fleet::etcd", "fleet::fleetlock", "fleet::http"]
        .map(String::from)
        .into();
    assert_eq!(children_named_in_code(&m, &known), ["fleet::fleetlock"]);
}

/// The longest a function in src/ or tools/ may be, from its `fn` line to
/// its closing brace (CONTRIBUTING.md: small steps).
const MAX_FN_LINES: usize = 60;

/// Files whose long functions wait for their split (issue #23); none now:
/// a file added here must say why.
const LONG_FNS_ALLOWED: &[&str] = &[];

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        if path.is_dir() {
            if e.file_name() != "target" {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The functions of rustfmt-formatted `text` (up to its tests) as
/// (name, first line, length in lines): a function runs from its `fn` line
/// to the first line that is its indentation followed by `}`.
fn function_lengths(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let Some(name) = fn_name(body) else { continue };
        let Some(open) =
            (i..lines.len()).find(|&j| lines[j].contains('{') || lines[j].ends_with(';'))
        else {
            continue;
        };
        if !lines[open].contains('{') || lines[open].trim_end().ends_with('}') {
            continue; // a declaration without a body, or a one-line body
        }
        let close = format!("{indent}}}");
        if let Some(end) = (open + 1..lines.len()).find(|&j| lines[j] == close) {
            out.push((name, i + 1, end - i + 1));
        }
    }
    out
}

/// The name of the function a line declares (`pub(crate) const fn name…`).
fn fn_name(line: &str) -> Option<String> {
    let mut rest = line;
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let name: String = rest
        .strip_prefix("fn ")?
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Small steps: no function in src/ or tools/ (test code aside) is longer
/// than `MAX_FN_LINES`, except in the files of `LONG_FNS_ALLOWED`.
#[test]
fn no_function_is_longer_than_sixty_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tools"), &mut files);
    let mut long = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel.ends_with("/tests.rs") || LONG_FNS_ALLOWED.iter().any(|a| rel.starts_with(a)) {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        for (name, line, len) in function_lengths(&text) {
            if len > MAX_FN_LINES {
                long.push(format!(
                    "{rel}:{line}: `{name}` is {len} lines; split it into named steps"
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// The measure itself: bodies, declarations, one-liners and nesting.
#[test]
fn function_lengths_count_from_fn_to_its_closing_brace() {
    let text = "fn a() {\n    1\n}\n\nimpl X {\n    pub(crate) fn b(\n        x: u8,\n    ) -> u8 {\n        if x {\n        }\n        x\n    }\n    fn c() {}\n    fn d();\n}\n#[cfg(test)]\nfn e() {\n}\n";
    assert_eq!(
        function_lengths(text),
        [("a".to_string(), 1, 3), ("b".to_string(), 6, 7)]
    );
}
