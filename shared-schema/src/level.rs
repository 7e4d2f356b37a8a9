//! Severity levels: five ordered names, a few accepted aliases.

use crate::prelude::*;
use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The severity of a record, ordered from least to most severe.
///
/// A query for a level means "this level or worse", which is why the derive order matters.
/// On input the names are case-insensitive and the aliases `trace` (DEBUG), `warn` (WARNING),
/// `err` (ERROR) and `fatal` (CRITICAL) are accepted; output is always the upper-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Diagnostic detail (alias `trace`).
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that did not fail (alias `warn`).
    Warning,
    /// An operation failed (alias `err`).
    Error,
    /// The service cannot go on (alias `fatal`).
    Critical,
}

impl Level {
    /// Every level, least severe first.
    pub const ALL: [Level; 5] = [
        Level::Debug,
        Level::Info,
        Level::Warning,
        Level::Error,
        Level::Critical,
    ];

    /// The canonical upper-case name, as stored and sent.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }

    /// Parses a level name or alias, ignoring ASCII case. `None` for anything else.
    pub fn parse(name: &str) -> Option<Level> {
        // Longest accepted name is 8 bytes; anything longer cannot match and is not copied.
        if name.len() > 8 {
            return None;
        }
        let mut buf = [0u8; 8];
        let lower = &mut buf[..name.len()];
        lower.copy_from_slice(name.as_bytes());
        lower.make_ascii_lowercase();
        Some(match &*lower {
            b"debug" | b"trace" => Level::Debug,
            b"info" => Level::Info,
            b"warning" | b"warn" => Level::Warning,
            b"error" | b"err" => Level::Error,
            b"critical" | b"fatal" => Level::Critical,
            _ => return None,
        })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a string that is not a level name or alias.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown level {0:?}: use DEBUG, INFO, WARNING, ERROR or CRITICAL (or trace, warn, err, fatal)"
)]
pub struct UnknownLevel(pub String);

impl FromStr for Level {
    type Err = UnknownLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::parse(s).ok_or_else(|| UnknownLevel(s.to_owned()))
    }
}

impl Serialize for Level {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <alloc::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_and_alias_in_any_case() {
        let cases = [
            ("DEBUG", Level::Debug),
            ("debug", Level::Debug),
            ("Trace", Level::Debug),
            ("TRACE", Level::Debug),
            ("INFO", Level::Info),
            ("info", Level::Info),
            ("WARNING", Level::Warning),
            ("warn", Level::Warning),
            ("WaRn", Level::Warning),
            ("ERROR", Level::Error),
            ("err", Level::Error),
            ("ERR", Level::Error),
            ("CRITICAL", Level::Critical),
            ("fatal", Level::Critical),
            ("FATAL", Level::Critical),
        ];
        for (name, level) in cases {
            assert_eq!(Level::parse(name), Some(level), "{name}");
        }
    }

    #[test]
    fn unknown_names_are_rejected() {
        for name in [
            "",
            "notice",
            "warnings",
            "errors",
            "criticals",
            "inf",
            " info",
            "INFO ",
        ] {
            assert_eq!(Level::parse(name), None, "{name:?}");
        }
        let err = "verbose".parse::<Level>().unwrap_err();
        assert!(err.to_string().contains("verbose"));
    }

    #[test]
    fn levels_are_ordered_by_severity() {
        assert!(Level::ALL.windows(2).all(|w| w[0] < w[1]));
        assert!(Level::Critical >= Level::Error);
    }

    #[test]
    fn serializes_as_canonical_name() {
        assert_eq!(
            serde_json::to_string(&Level::Warning).unwrap(),
            "\"WARNING\""
        );
        let l: Level = serde_json::from_str("\"fatal\"").unwrap();
        assert_eq!(l, Level::Critical);
    }
}
