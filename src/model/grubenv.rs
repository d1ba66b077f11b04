//! The GRUB environment block (`/boot/grub/grubenv`), as GRUB's `load_env` /
//! `save_env` and `grub-editenv` read and write it: the header line
//! `# GRUB Environment Block`, then `name=value` lines (a `\` escapes the
//! next character, a newline included) and `#` comment lines, then `#`
//! padding to the block's fixed size (1024 bytes as `grub-editenv create`
//! makes it). GRUB rewrites the block in place and cannot grow it, so a
//! block keeps its size.
//!
//! Parsing keeps every line it does not change byte for byte (other
//! programs' variables, `saved_entry`, `next_entry`, comments); `set` and
//! `encode` change only the variables asked for.

/// The first line of every environment block.
pub const HEADER: &str = "# GRUB Environment Block\n";
/// The size `grub-editenv create` gives a new block.
pub const BLOCK_SIZE: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Line {
    /// A comment line, with its newline.
    Comment(String),
    /// A variable: its name and unescaped value.
    Var(String, String),
}

/// A parsed environment block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrubEnv {
    lines: Vec<Line>,
    size: usize,
}

/// Why a block could not be parsed or written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvError {
    /// Not an environment block: its first line is not the header.
    NoHeader,
    /// Not UTF-8, an entry with no `=` or no newline, or shorter than its header.
    Corrupt(&'static str),
    /// The variables no longer fit in the block's size.
    Full { needed: usize, size: usize },
}

impl std::fmt::Display for EnvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvError::NoHeader => write!(f, "it does not start with \"{}\"", HEADER.trim_end()),
            EnvError::Corrupt(what) => write!(f, "it is corrupt ({what})"),
            EnvError::Full { needed, size } => write!(
                f,
                "it is full ({needed} bytes needed, the block has {size}; remove variables with grub-editenv unset)"
            ),
        }
    }
}

impl Default for GrubEnv {
    /// An empty block, as `grub-editenv create` makes it.
    fn default() -> Self {
        GrubEnv {
            lines: Vec::new(),
            size: BLOCK_SIZE,
        }
    }
}

impl GrubEnv {
    /// Parses a whole block.
    pub fn parse(bytes: &[u8]) -> Result<GrubEnv, EnvError> {
        let text = std::str::from_utf8(bytes).map_err(|_| EnvError::Corrupt("not UTF-8"))?;
        let body = text.strip_prefix(HEADER).ok_or(EnvError::NoHeader)?;
        let mut lines = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            if rest.starts_with('#') {
                match rest.split_once('\n') {
                    Some((comment, after)) => {
                        lines.push(Line::Comment(format!("{comment}\n")));
                        rest = after;
                    }
                    // The padding: `#` to the end of the block.
                    None if rest.bytes().all(|b| b == b'#') => break,
                    None => return Err(EnvError::Corrupt("text after the padding")),
                }
                continue;
            }
            let (entry, after) = split_entry(rest)?;
            lines.push(entry);
            rest = after;
        }
        Ok(GrubEnv {
            lines,
            size: bytes.len(),
        })
    }

    /// The value of a variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.lines.iter().rev().find_map(|l| match l {
            Line::Var(n, v) if n == name => Some(v.as_str()),
            _ => None,
        })
    }

    /// Sets a variable (replacing its line in place, or adding one at the end).
    pub fn set(&mut self, name: &str, value: &str) {
        let mut found = false;
        for line in &mut self.lines {
            if let Line::Var(n, v) = line {
                if n == name {
                    *v = value.to_string();
                    found = true;
                }
            }
        }
        if !found {
            self.lines
                .push(Line::Var(name.to_string(), value.to_string()));
        }
    }

    /// The block's bytes, padded with `#` to its size.
    pub fn encode(&self) -> Result<Vec<u8>, EnvError> {
        let mut out = String::from(HEADER);
        for line in &self.lines {
            match line {
                Line::Comment(c) => out.push_str(c),
                Line::Var(n, v) => {
                    out.push_str(n);
                    out.push('=');
                    for c in v.chars() {
                        if c == '\\' || c == '\n' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('\n');
                }
            }
        }
        if out.len() > self.size {
            return Err(EnvError::Full {
                needed: out.len(),
                size: self.size,
            });
        }
        let mut bytes = out.into_bytes();
        bytes.resize(self.size, b'#');
        Ok(bytes)
    }
}

/// One `name=value\n` entry at the start of `text`, and what follows it.
fn split_entry(text: &str) -> Result<(Line, &str), EnvError> {
    let (name, after_name) = text
        .split_once('=')
        .ok_or(EnvError::Corrupt("an entry without '='"))?;
    if name.is_empty() || name.contains('\n') {
        return Err(EnvError::Corrupt("an entry without a name"));
    }
    let mut value = String::new();
    let mut chars = after_name.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, escaped)) => value.push(escaped),
                None => break,
            },
            '\n' => {
                let rest = after_name.get(i + 1..).unwrap_or("");
                return Ok((Line::Var(name.to_string(), value), rest));
            }
            c => value.push(c),
        }
    }
    Err(EnvError::Corrupt("an entry without a newline"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(body: &str) -> Vec<u8> {
        let mut b = format!("{HEADER}{body}").into_bytes();
        b.resize(BLOCK_SIZE, b'#');
        b
    }

    #[test]
    fn keeps_other_lines_and_changes_only_what_is_set() {
        let original = block("# WARNING: keep\nsaved_entry=gnulinux>x\numm_tries=xx\n");
        let mut env = GrubEnv::parse(&original).unwrap();
        assert_eq!(env.get("umm_tries"), Some("xx"));
        assert_eq!(env.get("saved_entry"), Some("gnulinux>x"));
        env.set("umm_tries", "");
        env.set("umm_good", "6.1.0-2-amd64");
        let expected =
            block("# WARNING: keep\nsaved_entry=gnulinux>x\numm_tries=\numm_good=6.1.0-2-amd64\n");
        assert_eq!(env.encode().unwrap(), expected);
    }

    #[test]
    fn escapes_round_trip() {
        let mut env = GrubEnv::default();
        env.set("a", "b\\c\nd");
        let bytes = env.encode().unwrap();
        assert_eq!(bytes.len(), BLOCK_SIZE);
        assert_eq!(GrubEnv::parse(&bytes).unwrap().get("a"), Some("b\\c\nd"));
    }

    #[test]
    fn keeps_the_block_size() {
        let mut b = format!("{HEADER}x=1\n").into_bytes();
        b.resize(2048, b'#');
        assert_eq!(GrubEnv::parse(&b).unwrap().encode().unwrap().len(), 2048);
    }

    #[test]
    fn a_full_block_is_refused() {
        let mut env = GrubEnv::default();
        env.set("big", &"y".repeat(BLOCK_SIZE - HEADER.len() - 6));
        assert!(env.encode().is_ok());
        env.set("umm_tries", "x");
        assert!(matches!(env.encode(), Err(EnvError::Full { .. })));
    }

    #[test]
    fn corrupt_blocks_are_refused() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "no header"),
            (b"saved_entry=0\n", "no header"),
            (b"# GRUB Environment Block\nnoequals\n###", "corrupt"),
            (b"# GRUB Environment Block\na=unterminated", "corrupt"),
            (b"# GRUB Environment Block\n###a=1", "corrupt"),
            (b"# GRUB Environment Block\na=\xff\n###", "corrupt"),
        ];
        for (bytes, what) in cases {
            let err = GrubEnv::parse(bytes).unwrap_err();
            let kind = match err {
                EnvError::NoHeader => "no header",
                EnvError::Corrupt(_) => "corrupt",
                EnvError::Full { .. } => "full",
            };
            assert_eq!(kind, *what, "{bytes:?}");
        }
    }
}
