//! Fixed sets of values that other programs may extend: a newer umm (an
//! episode that ended in a way this umm does not know, a hook phase it
//! added), or a newer systemd (a unit state). `Open<T>` holds one of the
//! values this umm knows, as an enum, or any other, kept as it was written:
//! reading it never fails, and writing it back gives the same text, so a
//! downgrade neither sets the state aside nor changes what it does not
//! understand.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An enum whose values have one name each, the text they are written as.
pub trait Named: Copy + Eq + 'static {
    /// Every value, to read a name back.
    const ALL: &'static [Self];
    /// The name it is written as (in the state, in JSON, in messages).
    fn name(self) -> &'static str;
}

/// A value of `T`, or another one, kept as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Open<T> {
    Known(T),
    /// Not one of `T`'s names: written by something newer.
    Other(String),
}

impl<T: Named> Open<T> {
    /// Reads a name: one of `T`'s, or any other.
    pub fn parse(text: &str) -> Open<T> {
        T::ALL
            .iter()
            .find(|v| v.name() == text)
            .map_or_else(|| Open::Other(text.to_string()), |v| Open::Known(*v))
    }

    /// The name, as written.
    pub fn as_str(&self) -> &str {
        match self {
            Open::Known(v) => v.name(),
            Open::Other(text) => text,
        }
    }

    /// Is it this known value?
    pub fn is(&self, value: T) -> bool {
        matches!(self, Open::Known(v) if *v == value)
    }

    /// The known value, if it is one.
    pub fn known(&self) -> Option<T> {
        match self {
            Open::Known(v) => Some(*v),
            Open::Other(_) => None,
        }
    }
}

impl<T: Named> From<T> for Open<T> {
    fn from(value: T) -> Open<T> {
        Open::Known(value)
    }
}

impl<T: Named> fmt::Display for Open<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<T: Named> Serialize for Open<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de, T: Named> Deserialize<'de> for Open<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Open<T>, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Open::parse(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Colour {
        Red,
        DarkBlue,
    }

    impl Named for Colour {
        const ALL: &'static [Colour] = &[Colour::Red, Colour::DarkBlue];
        fn name(self) -> &'static str {
            match self {
                Colour::Red => "red",
                Colour::DarkBlue => "dark-blue",
            }
        }
    }

    #[test]
    fn known_and_unknown_names_read_and_write_back_as_they_were() {
        let read: Vec<Open<Colour>> =
            serde_json::from_str(r#"["red", "dark-blue", "ultraviolet"]"#).unwrap();
        assert_eq!(
            read,
            [
                Open::Known(Colour::Red),
                Open::Known(Colour::DarkBlue),
                Open::Other("ultraviolet".into())
            ]
        );
        assert!(read[1].is(Colour::DarkBlue) && !read[2].is(Colour::Red));
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            r#"["red","dark-blue","ultraviolet"]"#
        );
        // Not a string at all is still an error: that is not a name.
        assert!(serde_json::from_str::<Open<Colour>>("3").is_err());
    }
}
