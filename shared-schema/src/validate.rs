//! Per-field validation errors. A record is checked field by field and every problem is
//! reported, so a client fixing its output sees all of them at once.

use crate::prelude::*;
use core::fmt;

/// The kind of problem with a field; [`Problem::code`] is the stable label used in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Problem {
    /// A required field is absent or `null`.
    Missing,
    /// The field has the wrong JSON type.
    WrongType,
    /// The value breaks the field's rules (characters, format, unknown level).
    Invalid,
    /// A string is longer than its limit.
    TooLong,
    /// `meta` serializes to more than its byte limit.
    TooLarge,
    /// `meta` nests deeper than its limit.
    TooDeep,
    /// The record is not valid JSON at all.
    NotJson,
}

impl Problem {
    /// A short stable label (`missing`, `wrong_type`, ...), used as a metrics reason.
    pub const fn code(self) -> &'static str {
        match self {
            Problem::Missing => "missing",
            Problem::WrongType => "wrong_type",
            Problem::Invalid => "invalid",
            Problem::TooLong => "too_long",
            Problem::TooLarge => "too_large",
            Problem::TooDeep => "too_deep",
            Problem::NotJson => "not_json",
        }
    }
}

/// One problem with one field of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field, as a path: `service`, `meta`, `meta.user`, or `record` for the whole.
    pub field: String,
    /// What kind of problem it is.
    pub problem: Problem,
    /// What was wrong and what to send instead.
    pub message: String,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, problem: Problem, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            problem,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found in one record. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRecord {
    /// The problems, in field order.
    pub errors: Vec<FieldError>,
}

impl InvalidRecord {
    /// A record-level error with a single problem.
    pub fn single(field: impl Into<String>, problem: Problem, message: impl Into<String>) -> Self {
        InvalidRecord {
            errors: vec![FieldError::new(field, problem, message)],
        }
    }

    /// The metrics label for this rejection: the first problem's code.
    pub fn reason(&self) -> &'static str {
        self.errors.first().map_or("invalid", |e| e.problem.code())
    }
}

impl fmt::Display for InvalidRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl core::error::Error for InvalidRecord {}
