//! The crate's errors: [`ConfigError`] for a whole file, [`ParseValueError`] for one value.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// Why a configuration file was rejected, and where.
///
/// Its `Display` is the one line the daemon prints before it refuses to start, e.g.
/// `/etc/codriver/codriver.toml:12:9: pairing.window: invalid duration "soon": expected a number
/// followed by ms, s, min, h or d (e.g. "90s")`. The parts are also available one by one.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    file: PathBuf,
    location: Option<Location>,
    key_path: Option<String>,
    kind: ConfigErrorKind,
}

/// What kind of problem a [`ConfigError`] reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file could not be read: missing, unreadable, or not UTF-8.
    #[error("cannot read the config file: {0}")]
    Io(std::io::Error),
    /// The text is not valid TOML (including a key defined twice).
    #[error("invalid TOML: {message}")]
    Syntax {
        /// The TOML parser's description of the problem.
        message: String,
    },
    /// A key the schema does not know; nothing is ever silently ignored.
    #[error("unknown key, expected one of: {}", expected.join(", "))]
    UnknownKey {
        /// The unknown key as written.
        key: String,
        /// The keys that are valid in that table.
        expected: Vec<String>,
    },
    /// A key without a default (such as a phone's `address`) is missing.
    #[error("missing required key")]
    MissingKey {
        /// The missing key.
        key: String,
    },
    /// A value has the wrong type, is out of range or is not one of the valid choices.
    #[error("{message}")]
    InvalidValue {
        /// What is wrong and what would be valid.
        message: String,
    },
    /// Values that are fine alone but not together: a duplicate phone address, a binding naming
    /// an unknown button, a codec list without `cvsd`, a GPIO line used twice.
    #[error("{message}")]
    Conflict {
        /// What conflicts with what.
        message: String,
    },
}

impl ConfigError {
    /// The file the error is about (the `origin` given to [`crate::Config::parse`]).
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The 1-based line of the offending text, when the error points at one.
    pub fn line(&self) -> Option<usize> {
        self.location.map(|l| l.line)
    }

    /// The 1-based column (in characters) of the offending text, when the error points at one.
    pub fn column(&self) -> Option<usize> {
        self.location.map(|l| l.column)
    }

    /// The dotted key path of the offending value, e.g. `phones[1].address`, when there is one.
    pub fn key_path(&self) -> Option<&str> {
        self.key_path.as_deref()
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.kind
    }

    pub(crate) fn io(file: &Path, error: std::io::Error) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            location: None,
            key_path: None,
            kind: ConfigErrorKind::Io(error),
        }
    }

    pub(crate) fn new(
        source: &Source<'_>,
        span: Option<Range<usize>>,
        key_path: Option<String>,
        kind: ConfigErrorKind,
    ) -> Self {
        ConfigError {
            file: source.file.to_path_buf(),
            location: span.map(|span| source.location(span.start)),
            key_path: key_path.filter(|path| !path.is_empty()),
            kind,
        }
    }

    fn render(&self) -> String {
        let mut out = self.file.display().to_string();
        if let Some(Location { line, column }) = self.location {
            out.push_str(&format!(":{line}:{column}"));
        }
        if let Some(path) = &self.key_path {
            out.push_str(": ");
            out.push_str(path);
        }
        out.push_str(&format!(": {}", self.kind));
        out
    }
}

/// A value that does not parse: returned by the `FromStr` impls of this crate's value types
/// (`Address`, `HfpVolume`, the enums, …) and used as the message of a [`ConfigError`].
///
/// Its `Display` says what was given and what is valid, e.g. `invalid Bluetooth address "x":
/// expected six two-digit hex numbers separated by colons (e.g. "AA:BB:CC:DD:EE:FF")`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseValueError {
    message: String,
}

impl ParseValueError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ParseValueError {
            message: message.into(),
        }
    }
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Location {
    line: usize,
    column: usize,
}

/// The text being parsed and the file it came from, to turn byte offsets into locations.
pub(crate) struct Source<'a> {
    pub(crate) file: &'a Path,
    pub(crate) text: &'a str,
}

impl Source<'_> {
    /// The 1-based line of a byte offset, for messages that refer to another place.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.location(offset).line
    }

    fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        // A UTF-8 byte order mark is invisible in editors: don't count it as a column.
        let line_text = before[line_start..]
            .strip_prefix('\u{feff}')
            .unwrap_or(&before[line_start..]);
        Location {
            line,
            column: line_text.chars().count() + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locate(text: &str, offset: usize) -> (usize, usize) {
        let source = Source {
            file: Path::new("x.toml"),
            text,
        };
        let l = source.location(offset);
        (l.line, l.column)
    }

    #[test]
    fn locations_are_one_based_and_count_characters() {
        assert_eq!(locate("abc", 0), (1, 1));
        assert_eq!(locate("abc\ndef", 5), (2, 2));
        assert_eq!(locate("é = 1\nx", 3), (1, 3));
        assert_eq!(locate("a\r\nb", 3), (2, 1));
        assert_eq!(locate("\u{feff}abc", 4), (1, 2));
        assert_eq!(locate("ab", 99), (1, 3));
    }
}
