//! The docs' markdown, as far as the man page needs it: the regions of
//! docs/*.md marked `<!-- man: SECTION -->` ... `<!-- /man -->` (what the
//! man page says in that section), the regions this tool writes
//! (`<!-- generated: NAME -->` ... `<!-- /generated -->`), and the little
//! markdown those regions use, as roff: paragraphs, `###` headings, lists,
//! two-or-more-column tables (as tagged paragraphs), code blocks, `code`
//! and **bold** (bold), [links](x) (their text).

use clap_mangen::roff::{bold, roman, Inline, Roff};

/// The docs the man page quotes, by path from the repository's root.
pub const DOCS: &[(&str, &str)] = &[
    (
        "docs/commands.md",
        include_str!("../../../docs/commands.md"),
    ),
    (
        "docs/configuration.md",
        include_str!("../../../docs/configuration.md"),
    ),
    ("docs/fleet.md", include_str!("../../../docs/fleet.md")),
    ("docs/hooks.md", include_str!("../../../docs/hooks.md")),
    (
        "docs/monitoring.md",
        include_str!("../../../docs/monitoring.md"),
    ),
    (
        "docs/packaging.md",
        include_str!("../../../docs/packaging.md"),
    ),
];

/// The man page's text for `section`, from the one doc that marks it.
pub fn man_region(section: &str) -> Option<&'static str> {
    let open = format!("<!-- man: {section} -->\n");
    DOCS.iter()
        .find_map(|(_, text)| between(text, &open, "<!-- /man -->"))
}

/// The text between `open` and the next `close`.
pub fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let (_, rest) = text.split_once(open)?;
    rest.split_once(close).map(|(inside, _)| inside)
}

/// `<!-- generated: NAME -->`, the opening of a region this tool writes.
pub fn generated_open(name: &str) -> String {
    format!("<!-- generated: {name} (umm-gen --docs) -->\n")
}

pub const GENERATED_CLOSE: &str = "<!-- /generated -->";

/// `text` with the generated region `name` holding `body`; `None` when
/// `text` has no such region.
pub fn replace_region(text: &str, name: &str, body: &str) -> Option<String> {
    let open = generated_open(name);
    let (before, rest) = text.split_once(&open)?;
    let (_, after) = rest.split_once(GENERATED_CLOSE)?;
    Some(format!("{before}{open}{body}{GENERATED_CLOSE}{after}"))
}

/// Markdown inline text as roff: `code` and **strong** in bold, links as
/// their text, `\|` (a pipe inside a table) as `|`.
pub fn inline(text: &str) -> Vec<Inline> {
    let text = unlink(&text.replace("\\|", "|"));
    let mut out = Vec::new();
    for (i, piece) in text.split('`').enumerate() {
        if i % 2 == 1 {
            out.push(bold(piece));
            continue;
        }
        for (j, part) in piece.split("**").enumerate() {
            if part.is_empty() {
                continue;
            }
            out.push(if j % 2 == 1 { bold(part) } else { roman(part) });
        }
    }
    out.retain(|i| !matches!(i, Inline::Roman(s) | Inline::Bold(s) if s.is_empty()));
    out
}

/// `[text](target)` as `text`.
fn unlink(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some((label, tail)) = after.split_once("](") else {
            break;
        };
        let Some(close) = tail.find(')') else {
            break;
        };
        if label.contains(']') {
            out.push_str(&rest[..=open]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..open]);
        out.push_str(label);
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    out
}

/// One block of markdown.
enum Block<'a> {
    Heading(&'a str),
    Paragraph(String),
    Item(String),
    Table(Vec<Vec<String>>),
    Code(Vec<&'a str>),
}

/// The blocks of `text`, in order.
fn blocks(text: &str) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("<!--") {
            continue;
        }
        if let Some(title) = trimmed.strip_prefix("### ").or(trimmed.strip_prefix("## ")) {
            out.push(Block::Heading(title));
        } else if trimmed.starts_with("```") {
            let code = lines
                .by_ref()
                .take_while(|l| !l.starts_with("```"))
                .collect();
            out.push(Block::Code(code));
        } else if trimmed.starts_with('|') {
            let mut rows = vec![cells(trimmed)];
            while let Some(row) = lines.next_if(|l| l.trim().starts_with('|')) {
                rows.push(cells(row.trim()));
            }
            // The header's separator row (|---|---|).
            rows.retain(|r| !r.iter().all(|c| c.chars().all(|ch| ch == '-' || ch == ':')));
            out.push(Block::Table(rows));
        } else {
            let item = trimmed.strip_prefix("- ");
            let mut joined = item.unwrap_or(trimmed).to_string();
            while let Some(more) = lines.next_if(|l| continues(l, item.is_some())) {
                joined.push(' ');
                joined.push_str(more.trim());
            }
            out.push(match item {
                Some(_) => Block::Item(joined),
                None => Block::Paragraph(joined),
            });
        }
    }
    out
}

/// Whether `line` goes on the paragraph (or list item) before it.
fn continues(line: &str, in_item: bool) -> bool {
    let t = line.trim();
    !(t.is_empty()
        || t.starts_with('|')
        || t.starts_with('#')
        || t.starts_with("```")
        || t.starts_with("<!--")
        || t.starts_with("- ")
        || (in_item && !line.starts_with(' ')))
}

/// `| a | b |` as its cells (`\|` stays, for `inline`).
fn cells(row: &str) -> Vec<String> {
    let row = row.trim();
    let inner = row.strip_prefix('|').unwrap_or(row);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'|') {
            chars.next();
            cell.push_str("\\|");
        } else if c == '|' {
            out.push(std::mem::take(&mut cell).trim().to_string());
        } else {
            cell.push(c);
        }
    }
    out.push(cell.trim().to_string());
    out
}

/// `text` (a man region) as roff, into `r`.
pub fn to_roff(r: &mut Roff, text: &str) {
    let mut first = true;
    for block in blocks(text) {
        match block {
            Block::Heading(title) => {
                r.control("SS", [title]);
                first = true;
                continue;
            }
            Block::Paragraph(p) => {
                if !first {
                    r.control("PP", []);
                }
                r.text(inline(&p));
            }
            Block::Item(item) => {
                r.control("IP", ["\\(bu", "2"]);
                r.text(inline(&item));
            }
            Block::Table(rows) => table(r, &rows),
            Block::Code(lines) => {
                r.control("PP", []);
                r.control("nf", []);
                for line in lines {
                    r.text([roman(line)]);
                }
                r.control("fi", []);
            }
        }
        first = false;
    }
}

/// A table as tagged paragraphs: the first column is the tag, the second
/// the text, and any further column a line of its own, named by its header.
fn table(r: &mut Roff, rows: &[Vec<String>]) {
    let Some((header, body)) = rows.split_first() else {
        return;
    };
    for row in body {
        r.control("TP", []);
        r.text(inline(row.first().map_or("", String::as_str)));
        r.text(inline(row.get(1).map_or("", String::as_str)));
        for (name, cell) in header.iter().zip(row).skip(2) {
            r.control("br", []);
            let mut line = inline(&format!("{}: ", capitalized(name)));
            line.extend(inline(cell));
            r.text(line);
        }
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roff(text: &str) -> String {
        let mut r = Roff::new();
        to_roff(&mut r, text);
        r.render()
    }

    #[test]
    fn tables_become_tagged_paragraphs_with_their_extra_columns() {
        let out = roff("| a | b | c |\n|---|---|---|\n| `x` | one \\| two | three |\n");
        assert!(
            out.contains(".TP\n\\fBx\\fR\none | two\n.br\nC: three\n"),
            "{out}"
        );
        assert!(!out.contains("---"), "{out}");
    }

    #[test]
    fn paragraphs_lists_headings_and_links() {
        let out = roff(
            "First [link](a.md)\nwraps.\n\n### Sub\n\nText **strong**.\n\n- item\n  goes on\n- two\n",
        );
        assert!(out.contains("First link wraps.\n"), "{out}");
        assert!(out.contains(".SS Sub\nText \\fBstrong\\fR.\n"), "{out}");
        assert!(out.contains(".IP \\(bu 2\nitem goes on\n"), "{out}");
        assert!(!out.contains(".PP\n.SS"), "{out}");
    }

    #[test]
    fn every_man_region_is_closed_and_found_once() {
        for (path, text) in DOCS {
            let opens = text.matches("<!-- man: ").count();
            assert_eq!(opens, text.matches("<!-- /man -->").count(), "{path}");
            for name in text.split("<!-- man: ").skip(1) {
                let name = name.split(" -->").next().unwrap();
                let docs = DOCS
                    .iter()
                    .filter(|(_, t)| t.contains(&format!("<!-- man: {name} -->")))
                    .count();
                assert_eq!(docs, 1, "{name} is marked in {docs} docs");
            }
        }
    }
}
