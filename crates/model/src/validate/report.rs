//! Collecting field errors, and writing what was found the same way everywhere:
//! strings quoted (`"Web_1"`), numbers bare (`70000`), a missing field as `nothing`.

use std::fmt::Debug;

use crate::manifest::FieldError;

/// Strings longer than this are shortened in messages (with their length shown).
const SHOWN_CHARS: usize = 64;

/// Why a value does not fit a rule: what was expected of it. `show_length` asks the
/// message to give the value's length too (for length limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub expected: String,
    pub show_length: bool,
}

impl Mismatch {
    pub fn new(expected: impl Into<String>) -> Self {
        Mismatch {
            expected: expected.into(),
            show_length: false,
        }
    }

    /// The value is too long (or too short): its length belongs in the message.
    pub fn length(expected: impl Into<String>) -> Self {
        Mismatch {
            expected: expected.into(),
            show_length: true,
        }
    }

    /// How `value` shows in a message about this mismatch.
    pub fn found(&self, value: &str) -> String {
        if self.show_length {
            quote_len(value)
        } else {
            quote(value)
        }
    }
}

/// `"value"`, escaped, shortened to [`SHOWN_CHARS`] characters (then with its length).
pub fn quote(s: &str) -> String {
    let n = s.chars().count();
    if n <= SHOWN_CHARS {
        return format!("{s:?}");
    }
    let head: String = s.chars().take(SHOWN_CHARS - 4).collect();
    let quoted = format!("{head:?}");
    format!("{}…\" ({n} characters)", &quoted[..quoted.len() - 1])
}

/// `"value" (N characters)`.
pub fn quote_len(s: &str) -> String {
    let n = s.chars().count();
    if n <= SHOWN_CHARS {
        format!("{s:?} ({n} characters)")
    } else {
        quote(s)
    }
}

/// `"value"`, or `nothing` when absent or empty.
pub fn quote_opt(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => quote(s),
        _ => "nothing".to_string(),
    }
}

/// A list or map as found: `["a", "b"]`, `{"app": "web"}`.
pub fn show<T: Debug + ?Sized>(v: &T) -> String {
    let s = format!("{v:?}");
    if s.chars().count() <= 2 * SHOWN_CHARS {
        s
    } else {
        let head: String = s.chars().take(2 * SHOWN_CHARS - 1).collect();
        format!("{head}…")
    }
}

/// `one of A|B|C`.
pub fn one_of(values: &[&str]) -> String {
    format!("one of {}", values.join("|"))
}

/// Every problem of one object, in the order found.
#[derive(Debug, Default)]
pub struct Report {
    errors: Vec<FieldError>,
}

impl Report {
    pub fn new() -> Self {
        Report::default()
    }

    pub fn push(
        &mut self,
        field: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) {
        self.errors.push(FieldError::new(field, expected, found));
    }

    /// A required field is absent.
    pub fn missing(&mut self, field: impl Into<String>, expected: impl Into<String>) {
        self.push(field, expected, "nothing");
    }

    /// Records `res` for the string `value` at `field`; true when it passed.
    pub fn check(
        &mut self,
        field: impl Into<String>,
        value: &str,
        res: Result<(), Mismatch>,
    ) -> bool {
        match res {
            Ok(()) => true,
            Err(m) => {
                let found = m.found(value);
                self.push(field, m.expected, found);
                false
            }
        }
    }

    /// `value` must be one of `allowed`; true when it is.
    pub fn check_enum(&mut self, field: impl Into<String>, value: &str, allowed: &[&str]) -> bool {
        if allowed.contains(&value) {
            return true;
        }
        self.push(field, one_of(allowed), quote_opt(Some(value)));
        false
    }

    /// `value` must lie in `lo..=hi`; `what` names it ("a port number").
    pub fn check_range<T>(&mut self, field: impl Into<String>, what: &str, value: T, lo: T, hi: T)
    where
        T: PartialOrd + std::fmt::Display,
    {
        if value < lo || value > hi {
            self.push(
                field,
                format!("{what} between {lo} and {hi}"),
                value.to_string(),
            );
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("Web_1"), "\"Web_1\"");
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
        assert_eq!(quote_len("abc"), "\"abc\" (3 characters)");
        let long = "a".repeat(70);
        let q = quote(&long);
        assert!(q.starts_with("\"aaaa"), "{q}");
        assert!(q.ends_with("…\" (70 characters)"), "{q}");
        assert_eq!(quote_len(&long), q);
        assert_eq!(quote_opt(None), "nothing");
        assert_eq!(quote_opt(Some("")), "nothing");
        assert_eq!(show(&vec!["a", "b"]), "[\"a\", \"b\"]");
        assert_eq!(one_of(&["TCP", "UDP"]), "one of TCP|UDP");
    }

    #[test]
    fn report_collects_everything() {
        let mut r = Report::new();
        assert!(r.check("a", "x", Ok(())));
        assert!(!r.check("b", "xy", Err(Mismatch::length("at most 1 character"))));
        assert!(!r.check_enum("c", "tcp", &["TCP", "UDP"]));
        r.check_range("d", "a port number", 70000, 1, 65535);
        r.check_range("e", "a port number", 80, 1, 65535);
        r.missing("f", "a name");
        let shown: Vec<String> = r.errors().iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                "b: expected at most 1 character, found \"xy\" (2 characters)",
                "c: expected one of TCP|UDP, found \"tcp\"",
                "d: expected a port number between 1 and 65535, found 70000",
                "f: expected a name, found nothing",
            ]
        );
    }
}
